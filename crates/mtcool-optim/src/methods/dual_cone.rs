//! Projection onto the dual cone of the task gradients, in weight space (Quinton & Rey 2024,
//! torchjd's `_project_weights`): for a preference `u`, the weights
//!
//! ```text
//! v = argmin_{v ≥ u} vᵀ G v
//! ```
//!
//! give `Jᵀv`, the projection of `Jᵀu` onto the dual cone {x : J x ≥ 0} of the rows of J
//! (G = J Jᵀ). UPGrad averages such projections of every e_i; DualProj projects the mean.
//!
//! Substituting v = u + x turns it into the non-negative QP min ½ xᵀGx + (Gu)ᵀx, x ≥ 0,
//! whose KKT conditions are x ≥ 0, r = G(u + x) ≥ 0, x_j r_j = 0. For K ≤ [`EXACT_TASKS`] every
//! support set is tried, smallest first, and the first KKT point is returned (any KKT point
//! of a convex QP is a minimiser), so the conditions hold to rounding. For more tasks, cyclic
//! coordinate descent runs to convergence instead.

use nalgebra::{DMatrix, DVector};

use crate::aggregators::{check_gramian, fail, symmetric_part};
use crate::error::Result;

/// Task counts up to which the projection is solved exactly by support enumeration.
pub const EXACT_TASKS: usize = 12;

/// v = argmin_{v ≥ u} vᵀ G v for the Gramian `gram` (K×K) and the preference `u` (K).
pub fn project(
    method: &'static str,
    gram: &DMatrix<f64>,
    u: &DVector<f64>,
) -> Result<DVector<f64>> {
    let k = check_gramian(method, gram)?;
    if u.len() != k || u.iter().any(|x| !x.is_finite()) {
        return Err(fail(
            method,
            format!("the preference needs {k} finite entries"),
        ));
    }
    let g = symmetric_part(gram);
    let q = &g * u;
    let x = if k <= EXACT_TASKS {
        exact(&g, &q)
    } else {
        coordinate_descent(&g, &q)
    };
    Ok(u + x)
}

/// The tolerance of the KKT checks: rounding relative to the Gramian's scale.
fn tolerance(g: &DMatrix<f64>, q: &DVector<f64>) -> f64 {
    let scale = g.amax().max(q.amax()).max(f64::MIN_POSITIVE);
    1e-11 * scale * g.nrows() as f64
}

/// Support enumeration: the first subset S (by size) with G_SS x_S = −q_S solvable, x_S ≥ 0
/// and r_j ≥ 0 off S.
fn exact(g: &DMatrix<f64>, q: &DVector<f64>) -> DVector<f64> {
    let k = g.nrows();
    let tol = tolerance(g, q);
    let mut subsets: Vec<u32> = (0..1u32 << k).collect();
    subsets.sort_by_key(|s| s.count_ones());
    for mask in subsets {
        if let Some(x) = kkt_point(g, q, mask, tol) {
            return x;
        }
    }
    // Unreachable for a PSD G (a KKT point always exists); fall back rather than fail.
    coordinate_descent(g, q)
}

/// The KKT point with support `mask`, if there is one.
fn kkt_point(g: &DMatrix<f64>, q: &DVector<f64>, mask: u32, tol: f64) -> Option<DVector<f64>> {
    let k = g.nrows();
    let support: Vec<usize> = (0..k).filter(|j| mask & (1 << j) != 0).collect();
    let mut x: DVector<f64> = DVector::zeros(k);
    if !support.is_empty() {
        let n = support.len();
        let sub = DMatrix::from_fn(n, n, |a, b| g[(support[a], support[b])]);
        let rhs = DVector::from_fn(n, |a, _| -q[support[a]]);
        let solution = sub
            .clone()
            .svd(true, true)
            .solve(&rhs, 1e-12 * sub.amax())
            .ok()?;
        if (&sub * &solution - &rhs).amax() > tol {
            return None;
        }
        for (a, &j) in support.iter().enumerate() {
            if solution[a] < -tol {
                return None;
            }
            x[j] = solution[a].max(0.0);
        }
    }
    let r = g * &x + q;
    (0..k)
        .filter(|j| mask & (1 << j) == 0)
        .all(|j| r[j] >= -tol)
        .then_some(x)
}

/// Cyclic coordinate descent on the non-negative QP (exact minimisation per coordinate).
fn coordinate_descent(g: &DMatrix<f64>, q: &DVector<f64>) -> DVector<f64> {
    let k = g.nrows();
    let tol = tolerance(g, q);
    let mut x: DVector<f64> = DVector::zeros(k);
    let mut r = q.clone();
    for _ in 0..100_000 {
        let mut largest = 0f64;
        for j in 0..k {
            if g[(j, j)] <= 0.0 {
                continue;
            }
            let next = (x[j] - r[j] / g[(j, j)]).max(0.0);
            let delta = next - x[j];
            if delta != 0.0 {
                r += g.column(j) * delta;
                x[j] = next;
                largest = largest.max(delta.abs() * g[(j, j)]);
            }
        }
        if largest <= tol {
            break;
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregators::testing::{gram, random_g};

    /// The KKT conditions of v = argmin_{v ≥ u} vᵀGv, to `tol`.
    fn assert_projection(g: &DMatrix<f64>, u: &DVector<f64>, v: &DVector<f64>, tol: f64) {
        let r = g * v;
        for j in 0..u.len() {
            assert!(v[j] - u[j] >= -tol, "v ≥ u fails at {j}: {v} vs {u}");
            assert!(r[j] >= -tol, "Gv ≥ 0 fails at {j}: {r}");
            assert!(
                ((v[j] - u[j]) * r[j]).abs() <= tol,
                "slackness fails at {j}"
            );
        }
    }

    #[test]
    fn exact_and_iterative_solutions_satisfy_the_kkt_conditions() {
        for seed in 0..40 {
            let k = 2 + (seed as usize % 5);
            let g = gram(&random_g(k, 3 + seed as usize % 7, seed));
            let u = DVector::from_fn(k, |i, _| if i == 0 { 1.0 } else { 0.2 });
            let v = project("t", &g, &u).unwrap();
            assert_projection(&g, &u, &v, 1e-9);
            let x = coordinate_descent(&symmetric_part(&g), &(&g * &u));
            let direction = |w: &DVector<f64>| w.dot(&(&g * w));
            assert!((direction(&(&u + x)) - direction(&v)).abs() < 1e-6 * direction(&v).max(1.0));
        }
    }

    #[test]
    fn a_non_conflicting_preference_is_kept() {
        // Two aligned gradients: G u ≥ 0 already, so v = u.
        let g = DMatrix::from_row_slice(2, 2, &[1.0, 0.5, 0.5, 1.0]);
        let u = DVector::from_vec(vec![0.5, 0.5]);
        assert_eq!(project("t", &g, &u).unwrap(), u);
    }
}
