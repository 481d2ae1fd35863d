//! `mgda` (Sener & Koltun, NeurIPS 2018): the min-norm point of the convex hull of the
//! (normalised) task gradients. As in the authors' code, the weights α found on the
//! normalised gradients scale the raw task losses, heads included.
//!
//! `representation = true` is MGDA-UB (gradients w.r.t. the shared representation; needs
//! one input shared by all tasks). With a separate input per task (MNIST's even / odd
//! split) the upper bound does not apply, so such configs use the parameter-space form.
//!
//! # The rule
//!
//! Pipeline: [`normalizers`] gives n_i, [`normalize_gramian`] turns M into the Gramian of
//! ĝ_i = g_i / n_i, and [`min_norm_weights`] solves min over the simplex of ‖Σ α_i ĝ_i‖².
//!
//! Which vectors the weights multiply is the caller's choice, and the references differ: the
//! spec and LibMTL use d = Σ α_i ĝ_i, while the authors' training code
//! (isl-org/MultiObjectiveOptimization, `train_multi_task.py`) weights the *raw* task losses
//! by α, i.e. d = Σ α_i g_i. [`raw_weights`] converts the former into weights on the raw g_i
//! (α_i / n_i).

use nalgebra::{DMatrix, DVector};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::aggregators::{check_finite, check_gramian, fail, quad};
use crate::error::Result;
use crate::gradient_method::{Aggregator, Combination, Space};

/// Options of `mgda`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MgdaConfig {
    /// Gradient normalisation before the min-norm solve.
    pub normalization: GradNormalization,
    /// MGDA-UB: gradients w.r.t. the shared representation.
    pub representation: bool,
}

impl Default for MgdaConfig {
    fn default() -> Self {
        Self {
            normalization: GradNormalization::LossPlus,
            representation: true,
        }
    }
}

/// MGDA.
#[derive(Debug)]
pub struct Mgda {
    config: MgdaConfig,
}

impl Mgda {
    /// MGDA with `config`.
    pub fn new(config: &MgdaConfig) -> Self {
        Self {
            config: config.clone(),
        }
    }
}

impl Aggregator for Mgda {
    fn name(&self) -> &'static str {
        "mgda"
    }

    fn space(&self) -> Space {
        if self.config.representation {
            Space::Representation
        } else {
            Space::Parameters
        }
    }

    fn combine(
        &mut self,
        gramian: &DMatrix<f64>,
        losses: &[f64],
        _rng: &mut ChaCha8Rng,
    ) -> Result<Combination> {
        let n = normalizers(gramian, losses, self.config.normalization)?;
        let alpha = min_norm_weights(&normalize_gramian(gramian, &n))?;
        let alpha: Vec<f64> = alpha.iter().copied().collect();
        Ok(Combination {
            heads: Some(alpha.clone()),
            shared: alpha,
            max_norm: None,
        })
    }
}

const METHOD: &str = "mgda";

/// The smallest normaliser: every n_i below it is raised to it (see [`normalizers`]).
pub const MIN_NORMALIZER: f64 = 1e-12;

/// Iteration cap of the authors' Frank–Wolfe solver (`MinNormSolver.MAX_ITER`).
pub const MAX_ITER: usize = 250;

/// Stop threshold of the authors' solver on the L1 change of the weights (`STOP_CRIT`).
pub const STOP_CRIT: f64 = 1e-5;

/// How task gradients are normalised before the min-norm problem (`gradient_normalizers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GradNormalization {
    /// n_i = ‖g_i‖.
    L2,
    /// n_i = L_i.
    Loss,
    /// n_i = L_i ‖g_i‖ (the authors' scripts).
    #[default]
    #[serde(rename = "loss+")]
    LossPlus,
    /// n_i = 1.
    None,
}

/// The normalisers n_i of `kind`, with ‖g_i‖ = √M_ii.
///
/// The references divide by n_i unguarded (0 gives inf/NaN). Here n_i must be finite and
/// ≥ 0 (a negative loss under `loss`/`loss+` is an error), and any n_i below
/// [`MIN_NORMALIZER`] (1e-12) is raised to it, so a zero gradient stays a zero ĝ_i.
pub fn normalizers(
    gram: &DMatrix<f64>,
    losses: &[f64],
    kind: GradNormalization,
) -> Result<DVector<f64>> {
    let k = check_gramian(METHOD, gram)?;
    let needs_losses = matches!(kind, GradNormalization::Loss | GradNormalization::LossPlus);
    if needs_losses {
        check_finite(METHOD, "losses", losses, k)?;
        if let Some((i, l)) = losses.iter().enumerate().find(|(_, l)| **l < 0.0) {
            return Err(fail(
                METHOD,
                format!("loss {i} is negative ({l}): cannot normalise by it"),
            ));
        }
    }
    let n = DVector::from_fn(k, |i, _| {
        let norm = gram[(i, i)].sqrt();
        let n = match kind {
            GradNormalization::L2 => norm,
            GradNormalization::Loss => losses[i],
            GradNormalization::LossPlus => losses[i] * norm,
            GradNormalization::None => 1.0,
        };
        n.max(MIN_NORMALIZER)
    });
    if let Some(bad) = n.iter().find(|v| !v.is_finite()) {
        return Err(fail(METHOD, format!("a normaliser is not finite ({bad})")));
    }
    Ok(n)
}

/// The Gramian of ĝ_i = g_i / n_i: M_ij / (n_i n_j).
///
/// `n` must have one entry per row of `gram` (as [`normalizers`] returns); entries past
/// either length are ignored.
pub fn normalize_gramian(gram: &DMatrix<f64>, n: &DVector<f64>) -> DMatrix<f64> {
    let k = gram.nrows().min(gram.ncols()).min(n.len());
    DMatrix::from_fn(k, k, |i, j| gram[(i, j)] / (n[i] * n[j]))
}

/// Weights on the raw gradients g_i equivalent to `alpha` on ĝ_i = g_i / n_i: α_i / n_i.
pub fn raw_weights(alpha: &DVector<f64>, n: &DVector<f64>) -> DVector<f64> {
    alpha.component_div(n)
}

/// The weight on x_1 of the min-norm point of the segment [x_1, x_2], from
/// v11 = ‖x_1‖², v12 = x_1·x_2, v22 = ‖x_2‖²: clip((v22 − v12)/‖x_1 − x_2‖², 0, 1), and ½
/// when x_1 = x_2 (any point is optimal). Returns (weight, squared norm at it).
///
/// The authors' `_min_norm_element_from2` returns 0.999 / 0.001 instead of the clipped
/// 1 / 0; here the clip is exact.
fn segment_min(v11: f64, v12: f64, v22: f64) -> (f64, f64) {
    let den = v11 + v22 - 2.0 * v12;
    let gamma = if den <= f64::EPSILON * (v11 + v22) || den <= 0.0 {
        // x_1 = x_2 up to rounding: every point of the segment is the same vector.
        0.5
    } else {
        ((v22 - v12) / den).clamp(0.0, 1.0)
    };
    let cost =
        gamma * gamma * v11 + 2.0 * gamma * (1.0 - gamma) * v12 + (1.0 - gamma).powi(2) * v22;
    (gamma, cost.max(0.0))
}

/// MGDA's weights: the α on the simplex minimising αᵀ M α (M is the Gramian of the vectors
/// to combine, usually [`normalize_gramian`]'s output).
///
/// - K = 1: [1].
/// - K = 2: the exact closed form α_1 = clip(((g_2 − g_1)·g_2)/‖g_1 − g_2‖², 0, 1),
///   α_2 = 1 − α_1; ½/½ when g_1 = g_2. (The authors' code returns 0.999/0.001 instead of
///   a clipped 1/0; the same exact clip is used for the pair start and line searches below.)
/// - K > 2: the authors' Frank–Wolfe solver ([`frank_wolfe`] with [`MAX_ITER`] = 250 and
///   [`STOP_CRIT`] = 1e-5): start from the best pair, then move toward the vertex with the
///   smallest (M α)_t with an exact line search. Being capped, it can stop short of the exact
///   minimum on ill-conditioned Gramians (measured up to ~3e-3 of the mean ‖g_i‖² for K ≥ 4);
///   call [`frank_wolfe`] with a larger budget for a tighter answer.
pub fn min_norm_weights(gram: &DMatrix<f64>) -> Result<DVector<f64>> {
    frank_wolfe(gram, MAX_ITER, STOP_CRIT)
}

/// The authors' Frank–Wolfe min-norm solver (`find_min_norm_element_FW`) with an explicit
/// budget: best-pair start, at most `max_iter` steps, stop when the L1 change of α is below
/// `tol`. K ≤ 2 is solved exactly.
pub fn frank_wolfe(gram: &DMatrix<f64>, max_iter: usize, tol: f64) -> Result<DVector<f64>> {
    let k = check_gramian(METHOD, gram)?;
    if k == 1 {
        return Ok(DVector::from_element(1, 1.0));
    }
    // Best pair.
    let mut best = (f64::INFINITY, 0, 1, 0.5);
    for i in 0..k {
        for j in i + 1..k {
            let (gamma, cost) = segment_min(gram[(i, i)], gram[(i, j)], gram[(j, j)]);
            if cost < best.0 {
                best = (cost, i, j, gamma);
            }
        }
    }
    let mut sol = DVector::zeros(k);
    sol[best.1] = best.3;
    sol[best.2] = 1.0 - best.3;
    if k == 2 {
        return Ok(sol);
    }
    for _ in 0..max_iter {
        let m_sol = gram * &sol;
        let t = m_sol.imin();
        let v11 = sol.dot(&m_sol);
        let v12 = m_sol[t];
        let v22 = gram[(t, t)];
        let (gamma, _) = segment_min(v11, v12, v22);
        let mut next = &sol * gamma;
        next[t] += 1.0 - gamma;
        let change: f64 = (&next - &sol).iter().map(|v| v.abs()).sum();
        sol = next;
        if change < tol {
            break;
        }
    }
    Ok(sol)
}

/// ‖Σ α_i x_i‖² = αᵀ M α, the objective of [`min_norm_weights`].
pub fn squared_norm(gram: &DMatrix<f64>, alpha: &DVector<f64>) -> f64 {
    quad(gram, alpha, alpha)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::{value::StrDeserializer, IntoDeserializer};

    use crate::aggregators::testing::{gram, random_g};

    fn on_simplex(a: &DVector<f64>) {
        assert!(
            a.iter().all(|&v| (-1e-12..=1.0 + 1e-12).contains(&v)),
            "{a}"
        );
        assert!((a.sum() - 1.0).abs() < 1e-12, "{a}");
    }

    #[test]
    fn serde_names() {
        for (name, kind) in [
            ("l2", GradNormalization::L2),
            ("loss", GradNormalization::Loss),
            ("loss+", GradNormalization::LossPlus),
            ("none", GradNormalization::None),
        ] {
            let de: StrDeserializer<'_, serde::de::value::Error> = name.into_deserializer();
            assert_eq!(GradNormalization::deserialize(de).unwrap(), kind);
        }
        let de: StrDeserializer<'_, serde::de::value::Error> = "loss_plus".into_deserializer();
        assert!(GradNormalization::deserialize(de).is_err());
        assert_eq!(GradNormalization::default(), GradNormalization::LossPlus);
    }

    #[test]
    fn normalizers_of_each_kind() {
        // g1 = (3, 4), g2 = (0, 2): norms 5 and 2.
        let g = DMatrix::from_row_slice(2, 2, &[3.0, 4.0, 0.0, 2.0]);
        let m = gram(&g);
        let losses = [2.0, 0.5];
        let n = |k| normalizers(&m, &losses, k).unwrap();
        assert_eq!(n(GradNormalization::L2), DVector::from_vec(vec![5.0, 2.0]));
        assert_eq!(
            n(GradNormalization::Loss),
            DVector::from_vec(vec![2.0, 0.5])
        );
        assert_eq!(
            n(GradNormalization::LossPlus),
            DVector::from_vec(vec![10.0, 1.0])
        );
        assert_eq!(
            n(GradNormalization::None),
            DVector::from_vec(vec![1.0, 1.0])
        );
        let nl2 = n(GradNormalization::L2);
        let mn = normalize_gramian(&m, &nl2);
        assert!((mn[(0, 0)] - 1.0).abs() < 1e-15 && (mn[(1, 1)] - 1.0).abs() < 1e-15);
        assert!((mn[(0, 1)] - 8.0 / 10.0).abs() < 1e-15);
        // Guards.
        assert!(normalizers(&m, &[1.0], GradNormalization::Loss).is_err());
        assert!(normalizers(&m, &[1.0, f64::NAN], GradNormalization::LossPlus).is_err());
        assert!(normalizers(&m, &[1.0, -1.0], GradNormalization::Loss).is_err());
        // Losses are not needed (nor checked) for `l2` and `none`.
        assert!(normalizers(&m, &[], GradNormalization::L2).is_ok());
        let zero = DMatrix::zeros(2, 2);
        let nz = normalizers(&zero, &[], GradNormalization::L2).unwrap();
        assert_eq!(nz, DVector::from_element(2, MIN_NORMALIZER));
        assert!(normalize_gramian(&zero, &nz).iter().all(|v| *v == 0.0));
        assert_eq!(
            raw_weights(&DVector::from_vec(vec![0.5, 0.5]), &nl2),
            DVector::from_vec(vec![0.1, 0.25])
        );
    }

    #[test]
    fn k1_and_bad_input() {
        let m = DMatrix::from_element(1, 1, 4.0);
        assert_eq!(min_norm_weights(&m).unwrap(), DVector::from_element(1, 1.0));
        assert!(min_norm_weights(&DMatrix::zeros(0, 0)).is_err());
        assert!(min_norm_weights(&DMatrix::from_element(2, 2, f64::NAN)).is_err());
    }

    #[test]
    fn k2_matches_closed_form_and_lies_in_hull() {
        for seed in 0..50 {
            let g = random_g(2, 1 + (seed as usize % 4), seed);
            let m = gram(&g);
            let a = min_norm_weights(&m).unwrap();
            on_simplex(&a);
            let (g1, g2) = (g.row(0), g.row(1));
            let diff = g1 - g2;
            let expected = if diff.norm_squared() == 0.0 {
                0.5
            } else {
                ((g2 - g1).dot(&g2) / diff.norm_squared()).clamp(0.0, 1.0)
            };
            assert!(
                (a[0] - expected).abs() < 1e-12,
                "seed {seed}: {} vs {expected}",
                a[0]
            );
            // The point is the min-norm point of the segment: brute force over a grid.
            let val = squared_norm(&m, &a);
            for s in 0..=1000 {
                let t = s as f64 / 1000.0;
                let p = g1 * t + g2 * (1.0 - t);
                assert!(val <= p.norm_squared() + 1e-12);
            }
        }
    }

    #[test]
    fn k2_hand_cases() {
        // Orthogonal unit vectors: the midpoint.
        let a = min_norm_weights(&DMatrix::identity(2, 2)).unwrap();
        assert_eq!(a, DVector::from_vec(vec![0.5, 0.5]));
        // g1 = (1, 0), g2 = (2, 0): g1 itself is the min-norm point (clip at 1).
        let a = min_norm_weights(&DMatrix::from_row_slice(2, 2, &[1.0, 2.0, 2.0, 4.0])).unwrap();
        assert_eq!(a, DVector::from_vec(vec![1.0, 0.0]));
        // Identical gradients: any point; we take the midpoint.
        let a = min_norm_weights(&DMatrix::from_element(2, 2, 3.0)).unwrap();
        assert_eq!(a, DVector::from_vec(vec![0.5, 0.5]));
        // Opposite gradients: 0 is in the hull.
        let m = DMatrix::from_row_slice(2, 2, &[1.0, -1.0, -1.0, 1.0]);
        let a = min_norm_weights(&m).unwrap();
        assert!(squared_norm(&m, &a) < 1e-15);
    }

    /// Best value of αᵀ M α over the simplex grid with step 1/steps (K = 3 or 4).
    fn grid_min(m: &DMatrix<f64>, steps: usize) -> f64 {
        let k = m.nrows();
        let mut best = f64::INFINITY;
        let mut idx = vec![0usize; k - 1];
        loop {
            let used: usize = idx.iter().sum();
            if used <= steps {
                let mut a = DVector::zeros(k);
                for (i, &c) in idx.iter().enumerate() {
                    a[i] = c as f64 / steps as f64;
                }
                a[k - 1] = (steps - used) as f64 / steps as f64;
                best = best.min(squared_norm(m, &a));
            }
            // Odometer increment.
            let mut p = 0;
            loop {
                if p == k - 1 {
                    return best;
                }
                idx[p] += 1;
                if idx[p] <= steps {
                    break;
                }
                idx[p] = 0;
                p += 1;
            }
        }
    }

    #[test]
    fn k3_k4_no_worse_than_grid_and_kkt() {
        for (k, d, steps) in [(3, 2, 400), (3, 5, 400), (4, 6, 60), (4, 3, 60)] {
            for seed in 0..8u64 {
                let g = random_g(k, d, 100 + seed);
                let m = gram(&g);
                let scale = m.trace() / k as f64;
                let a = min_norm_weights(&m).unwrap();
                on_simplex(&a);
                let val = squared_norm(&m, &a);
                let grid = grid_min(&m, steps);
                assert!(
                    val <= grid + 1e-4 * scale,
                    "k={k} d={d} seed={seed}: {val} vs grid {grid}"
                );
                // KKT: (M α)_i ≥ αᵀMα for all i, with equality where α_i > 0.
                let ma = &m * &a;
                for i in 0..k {
                    assert!(ma[i] >= val - 2e-3 * scale, "k={k} seed={seed} i={i}");
                    if a[i] > 1e-3 {
                        assert!(ma[i] <= val + 2e-3 * scale, "k={k} seed={seed} i={i}");
                    }
                }
                // With a large budget the solver satisfies KKT tightly.
                let a = frank_wolfe(&m, 100_000, 1e-15).unwrap();
                let val = squared_norm(&m, &a);
                let ma = &m * &a;
                for i in 0..k {
                    assert!(ma[i] >= val - 1e-6 * scale);
                    if a[i] > 1e-3 {
                        assert!(ma[i] <= val + 1e-6 * scale);
                    }
                }
            }
        }
    }

    #[test]
    fn k5_zero_in_hull() {
        // g_5 = −(g_1 + … + g_4)/4 puts 0 in the hull: the min norm is 0.
        let mut g = random_g(5, 8, 7);
        let mean = (g.rows(0, 4).row_sum()) / 4.0;
        g.row_mut(4).copy_from(&(-mean));
        let m = gram(&g);
        let a = frank_wolfe(&m, 100_000, 1e-15).unwrap();
        on_simplex(&a);
        assert!(squared_norm(&m, &a) < 1e-6 * m.trace());
    }
}
