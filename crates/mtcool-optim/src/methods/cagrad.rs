//! `cagrad` (Liu et al., NeurIPS 2021): conflict-averse gradient descent. The update
//! maximises the worst task's improvement within a ball of radius c‖g_0‖ around the mean
//! gradient g_0; heads get their plain gradients.
//!
//! # The rule
//!
//! With g_w = Σ_i w_i g_i and b = (1/K, …, 1/K), the dual problem is
//! min over the simplex of F(w) = g_w·g_0 + √φ ‖g_w‖ = wᵀ M b + √φ √(wᵀ M w),
//! φ = c² ‖g_0‖² = c² bᵀ M b, and the update is d = g_0 + (√φ/‖g_w‖) g_w, divided by 1 + c²
//! when `rescale` (reference: Cranial-XIX/CAGrad, `cagrad` in `cityscapes/utils.py` with
//! `rescale = 1`, and `cagrad` in `mtrl/mtrl_files/cagrad.py`; the latter's `cagrad_exact`
//! divides by 1 + λ instead). The cityscapes reference solves for w with SciPy's SLSQP (the
//! mtrl one with 20 softmax-parametrised SGD steps) and adds 1e-8/1e-4 guards to the norms;
//! here K = 2 is solved in closed form and K > 2 by accelerated projected gradient run to
//! rounding-level accuracy.

use nalgebra::{DMatrix, DVector};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::aggregators::{check_gramian, fail, quad};
use crate::error::{OptimError, Result};
use crate::gradient_method::{Aggregator, Combination};

/// Options of `cagrad`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CagradConfig {
    /// The radius c (0 gives the mean gradient).
    pub c: f64,
    /// Divide the update by 1 + c² (the reference's `rescale = 1`).
    pub rescale: bool,
}

impl Default for CagradConfig {
    fn default() -> Self {
        Self {
            c: 0.4,
            rescale: true,
        }
    }
}

/// CAGrad.
#[derive(Debug)]
pub struct CaGrad {
    config: CagradConfig,
}

impl CaGrad {
    /// CAGrad with `config`.
    pub fn new(config: &CagradConfig) -> Result<Self> {
        if !config.c.is_finite() || config.c < 0.0 {
            return Err(OptimError::Config {
                method: "cagrad".into(),
                problem: format!("c must be finite and ≥ 0, got {}", config.c),
            });
        }
        Ok(Self {
            config: config.clone(),
        })
    }
}

impl Aggregator for CaGrad {
    fn name(&self) -> &'static str {
        "cagrad"
    }

    fn combine(
        &mut self,
        gramian: &DMatrix<f64>,
        _losses: &[f64],
        _rng: &mut ChaCha8Rng,
    ) -> Result<Combination> {
        let alpha = weights(gramian, self.config.c, self.config.rescale)?;
        Ok(Combination::shared(alpha.iter().copied().collect()))
    }
}

const METHOD: &str = "cagrad";

/// Iteration cap of the K > 2 solver (it usually stops far earlier).
const MAX_ITER: usize = 50_000;

/// The K > 2 solver stops once the Frank–Wolfe gap is below this (F is scale-normalised).
const GAP_TOL: f64 = 1e-15;

/// Cap of the polishing steps of the K > 2 solver.
const POLISH_ITER: usize = 10_000;

/// Sweep cap of the coordinate descent in the degenerate case.
const CONE_SWEEPS: usize = 100_000;

/// Below this ‖g_w*‖ (relative to the RMS gradient norm) the degenerate case applies (see
/// [`weights`]). ‖g_w‖ is computed as √(wᵀMw), whose rounding noise near g_w = 0 is
/// ~√ε ≈ 1.5e-8, so the threshold sits well above it.
const MIN_GW_NORM: f64 = 1e-6;

/// CAGrad's weights: d = Σ_j alpha_j g_j = (g_0 + (√φ/‖g_w*‖) g_w*) / (1 + c² if `rescale`).
///
/// So alpha = (b + λ w*) / (1 + c²) with λ = √φ/‖g_w*‖. With c = 0 (or g_0 = 0) this is the
/// mean gradient. The weights do not depend on the scale of `gram`. `c` must be finite and
/// ≥ 0.
///
/// Degenerate case: when 0 is in the convex hull of the gradients and c is large enough
/// (c ≥ 1 always suffices), g_w* = 0 is optimal, the formula above is undefined and the
/// update is not unique: every d in the ball ‖d − g_0‖ ≤ c‖g_0‖ with all g_i·d ≥ 0 solves
/// CAGrad's primal max_d min_i g_i·d. The references then return g_0 plus whatever direction
/// their solver's residual g_w points to. Here, when ‖g_w*‖ is below 1e-6 of the RMS task
/// gradient norm, d is the point of {d : g_i·d ≥ 0 ∀i} closest to g_0 (g_0 itself when no
/// task conflicts with it), found by coordinate descent on its dual, and divided by 1 + c²
/// when `rescale`; in the degenerate case that point lies in the ball and is primal-optimal.
/// If it is outside the ball (g_w* small but not zero) the formula above is used.
pub fn weights(gram: &DMatrix<f64>, c: f64, rescale: bool) -> Result<DVector<f64>> {
    let k = check_gramian(METHOD, gram)?;
    if !c.is_finite() || c < 0.0 {
        return Err(fail(METHOD, format!("c must be finite and ≥ 0, got {c}")));
    }
    let divisor = if rescale { 1.0 + c * c } else { 1.0 };
    let b = DVector::from_element(k, 1.0 / k as f64);
    let scale = gram.trace() / k as f64;
    if scale <= 0.0 {
        // Every gradient is zero: any weights give d = 0.
        return Ok(b / divisor);
    }
    let m = gram / scale;
    let g0_sq = quad(&m, &b, &b).max(0.0);
    let sqrt_phi = c * g0_sq.sqrt();
    if sqrt_phi == 0.0 {
        return Ok(b / divisor);
    }
    let problem = Problem {
        mb: &m * &b,
        m: &m,
        sqrt_phi,
    };
    let w = if k == 1 {
        DVector::from_element(1, 1.0)
    } else if k == 2 {
        problem.solve_pair()
    } else {
        problem.solve_simplex()
    };
    let gw_norm = quad(&m, &w, &w).max(0.0).sqrt();
    if gw_norm <= MIN_GW_NORM {
        let mu = cone_projection(&m, &problem.mb);
        // Only a true degenerate case puts the projection inside the ball.
        if quad(&m, &mu, &mu) <= sqrt_phi * sqrt_phi * (1.0 + 1e-9) {
            return Ok((b + mu) / divisor);
        }
    }
    if gw_norm > 0.0 {
        Ok((b + w * (sqrt_phi / gw_norm)) / divisor)
    } else {
        Ok(b / divisor)
    }
}

/// The μ ≥ 0 for which g_0 + Σ_i μ_i g_i is the point closest to g_0 of the cone
/// {d : g_i·d ≥ 0 for all i}: the minimiser of ½ μᵀ M μ + μᵀ (M b) over μ ≥ 0 (the dual of
/// that projection), by cyclic coordinate descent. Tasks with g_i = 0 get μ_i = 0.
fn cone_projection(m: &DMatrix<f64>, mb: &DVector<f64>) -> DVector<f64> {
    let k = mb.len();
    let mut mu = DVector::<f64>::zeros(k);
    // grad = M μ + M b, kept up to date.
    let mut grad = mb.clone();
    for _ in 0..CONE_SWEEPS {
        let mut largest_change = 0.0_f64;
        for i in 0..k {
            let mii = m[(i, i)];
            if mii <= 0.0 {
                continue;
            }
            let next = (mu[i] - grad[i] / mii).max(0.0);
            let change = next - mu[i];
            if change != 0.0 {
                mu[i] = next;
                grad.axpy(change, &m.column(i), 1.0);
                largest_change = largest_change.max(change.abs());
            }
        }
        if largest_change <= 1e-15 {
            break;
        }
    }
    mu
}

/// CAGrad's dual objective F(w) = wᵀ M b + √φ √(wᵀ M w) on a scale-normalised Gramian.
struct Problem<'a> {
    m: &'a DMatrix<f64>,
    /// M b.
    mb: DVector<f64>,
    sqrt_phi: f64,
}

impl Problem<'_> {
    fn value(&self, w: &DVector<f64>) -> f64 {
        w.dot(&self.mb) + self.sqrt_phi * quad(self.m, w, w).max(0.0).sqrt()
    }

    /// ∇F(w) (a subgradient, M b, where g_w = 0).
    fn gradient(&self, w: &DVector<f64>) -> DVector<f64> {
        let mw = self.m * w;
        let norm = w.dot(&mw).max(0.0).sqrt();
        if norm > 0.0 {
            &self.mb + mw * (self.sqrt_phi / norm)
        } else {
            self.mb.clone()
        }
    }

    /// K = 2, w = (t, 1 − t): F(t) = p0 + p1 t + √φ √q(t), q(t) = A t² + 2 B t + C with
    /// A = ‖g_1 − g_2‖², B = (g_1 − g_2)·g_2, C = ‖g_2‖². F is convex; its stationary point
    /// solves √φ (A t + B) = −p1 √q(t), i.e. with u = A t + B and Δ = A C − B² ≥ 0,
    /// u² (A φ − p1²) = p1² Δ and sign(u) = −sign(p1) (none when A φ ≤ p1²: F is then
    /// monotone). For parallel gradients (Δ = 0) F is piecewise linear with its kink where
    /// g_w = 0, t = −B/A. The minimiser is the best of: the stationary point, the kink and
    /// the two ends, clipped to [0, 1] and compared by F (which also absorbs rounding in the
    /// closed form near A φ = p1²).
    fn solve_pair(&self) -> DVector<f64> {
        let m = self.m;
        let a = m[(0, 0)] + m[(1, 1)] - m[(0, 1)] - m[(1, 0)];
        if a <= f64::EPSILON * (m[(0, 0)] + m[(1, 1)]) {
            // g_1 = g_2: F is constant.
            return DVector::from_vec(vec![0.5, 0.5]);
        }
        let b = 0.5 * (m[(0, 1)] + m[(1, 0)]) - m[(1, 1)];
        let c = m[(1, 1)];
        let p1 = self.mb[0] - self.mb[1];
        let phi = self.sqrt_phi * self.sqrt_phi;
        let mut candidates = Vec::with_capacity(4);
        if a * phi > p1 * p1 {
            let delta = (a * c - b * b).max(0.0);
            let u = -p1.signum() * p1.abs() * (delta / (a * phi - p1 * p1)).sqrt();
            candidates.push((u - b) / a);
        }
        candidates.extend([-b / a, 0.0, 1.0]);
        let point = |t: f64| DVector::from_vec(vec![t, 1.0 - t]);
        let mut best = (f64::INFINITY, point(0.5));
        for t in candidates {
            if !t.is_finite() {
                continue;
            }
            let w = point(t.clamp(0.0, 1.0));
            let f = self.value(&w);
            if f < best.0 {
                best = (f, w);
            }
        }
        best.1
    }

    /// K > 2: accelerated projected gradient (FISTA with backtracking and function-value
    /// restart) from the uniform point, stopped when the Frank–Wolfe gap
    /// ∇F(w)·w − min_i ∇F(w)_i (an upper bound on F(w) − F*) is below 1e-15, when a step from
    /// the current point can no longer decrease F (rounding level), or after 50 000 steps;
    /// then gradient-only projected steps with a safe step size, keeping the smallest gap.
    fn solve_simplex(&self) -> DVector<f64> {
        let k = self.mb.len();
        let mut x = DVector::from_element(k, 1.0 / k as f64);
        let mut fx = self.value(&x);
        let mut y = x.clone();
        let mut t = 1.0_f64;
        // Initial curvature guess: the Hessian of F is bounded by √φ λ_max(M)/‖g_w‖.
        let mut lip = (self.m.trace() * (1.0 + self.sqrt_phi)).max(1e-12);
        let mut stalled = false;
        for _ in 0..MAX_ITER {
            let gy = self.gradient(&y);
            let fy = self.value(&y);
            let mut p;
            loop {
                p = project_simplex(&(&y - &gy * (1.0 / lip)));
                let dp = &p - &y;
                let model = fy + gy.dot(&dp) + 0.5 * lip * dp.norm_squared();
                if self.value(&p) <= model + 1e-15 * fy.abs().max(1.0) || lip > 1e30 {
                    break;
                }
                lip *= 2.0;
            }
            let fp = self.value(&p);
            if fp > fx || !fp.is_finite() {
                // Momentum overshot: restart from x. Twice in a row means no progress is left.
                if stalled {
                    break;
                }
                stalled = true;
                y = x.clone();
                t = 1.0;
                continue;
            }
            stalled = false;
            let t_next = 0.5 * (1.0 + (1.0 + 4.0 * t * t).sqrt());
            y = &p + (&p - &x) * ((t - 1.0) / t_next);
            x = p;
            fx = fp;
            t = t_next;
            lip *= 0.9;
            if self.gap(&x) <= GAP_TOL {
                return x;
            }
        }
        // Polish: plain projected-gradient steps use only ∇F, so unlike the value-based
        // steps above they keep converging below the rounding level of F (which only pins w
        // to ~√ε). The step is 1/L with L = √φ tr(M)/‖g_w‖ ≥ the local curvature of F; the
        // iterate with the smallest gap is kept.
        let mut best_gap = self.gap(&x);
        let mut best = x.clone();
        for _ in 0..POLISH_ITER {
            if best_gap <= GAP_TOL {
                break;
            }
            let gw_norm = quad(self.m, &x, &x).max(0.0).sqrt();
            if gw_norm <= 0.0 {
                break;
            }
            let step = gw_norm / (self.sqrt_phi * self.m.trace());
            let next = project_simplex(&(&x - self.gradient(&x) * step));
            if next == x {
                break;
            }
            x = next;
            let gap = self.gap(&x);
            if gap < best_gap {
                best_gap = gap;
                best = x.clone();
            }
        }
        best
    }

    /// The Frank–Wolfe gap ∇F(w)·w − min_i ∇F(w)_i ≥ F(w) − F*.
    fn gap(&self, w: &DVector<f64>) -> f64 {
        let g = self.gradient(w);
        g.dot(w) - g.min()
    }
}

/// Euclidean projection onto the probability simplex (sort-based).
fn project_simplex(v: &DVector<f64>) -> DVector<f64> {
    let mut u: Vec<f64> = v.iter().copied().collect();
    u.sort_by(|a, b| b.total_cmp(a));
    let mut cumulative = 0.0;
    let mut theta = 0.0;
    for (i, &ui) in u.iter().enumerate() {
        cumulative += ui;
        let candidate = (cumulative - 1.0) / (i + 1) as f64;
        if ui - candidate > 0.0 {
            theta = candidate;
        }
    }
    v.map(|vi| (vi - theta).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::RowDVector;

    use crate::aggregators::testing::{gram, random_g};

    /// d = Σ α_j g_j as an explicit vector.
    fn direction(g: &DMatrix<f64>, alpha: &DVector<f64>) -> RowDVector<f64> {
        alpha.transpose() * g
    }

    /// Reference d from an explicit G and a given w: g_0 + c‖g_0‖/‖g_w‖ g_w, / (1 + c²).
    fn reference_d(g: &DMatrix<f64>, w: &DVector<f64>, c: f64, rescale: bool) -> RowDVector<f64> {
        let k = g.nrows();
        let g0 = g.row_sum() / k as f64;
        let gw = w.transpose() * g;
        let d = &g0 + &gw * (c * g0.norm() / gw.norm());
        if rescale {
            d / (1.0 + c * c)
        } else {
            d
        }
    }

    fn objective(g: &DMatrix<f64>, w: &DVector<f64>, c: f64) -> f64 {
        let k = g.nrows();
        let g0 = g.row_sum() / k as f64;
        let gw = w.transpose() * g;
        gw.dot(&g0) + c * g0.norm() * gw.norm()
    }

    /// Golden-section search of a convex f on [0, 1].
    fn golden(f: impl Fn(f64) -> f64) -> f64 {
        let r = (5f64.sqrt() - 1.0) / 2.0;
        let (mut lo, mut hi) = (0.0, 1.0);
        while hi - lo > 1e-13 {
            let a = hi - r * (hi - lo);
            let b = lo + r * (hi - lo);
            if f(a) <= f(b) {
                hi = b;
            } else {
                lo = a;
            }
        }
        let mid = 0.5 * (lo + hi);
        [0.0, mid, 1.0]
            .into_iter()
            .min_by(|a, b| f(*a).total_cmp(&f(*b)))
            .unwrap_or(mid)
    }

    #[test]
    fn c_zero_is_the_mean() {
        for k in 1..6 {
            let g = random_g(k, 4, k as u64);
            for rescale in [false, true] {
                let a = weights(&gram(&g), 0.0, rescale).unwrap();
                assert!((a - DVector::from_element(k, 1.0 / k as f64)).norm() < 1e-15);
            }
        }
    }

    #[test]
    fn k1_scales_the_gradient() {
        // d = g + c g, then / (1 + c²).
        let a = weights(&DMatrix::from_element(1, 1, 4.0), 0.4, true).unwrap();
        assert!((a[0] - 1.4 / 1.16).abs() < 1e-15);
        let a = weights(&DMatrix::from_element(1, 1, 4.0), 0.4, false).unwrap();
        assert!((a[0] - 1.4).abs() < 1e-15);
    }

    /// CAGrad's primal: the unscaled d must lie in the ball ‖d − g_0‖ ≤ c‖g_0‖; returns
    /// min_i g_i·d, the value it maximises.
    fn primal_value(g: &DMatrix<f64>, d: &RowDVector<f64>, c: f64) -> f64 {
        let k = g.nrows();
        let g0 = g.row_sum() / k as f64;
        let radius = c * g0.norm();
        let scale = (g.norm_squared() / k as f64).sqrt();
        assert!(
            (d - &g0).norm() <= radius + 1e-9 * scale,
            "d outside the ball"
        );
        (0..k)
            .map(|i| g.row(i).dot(d))
            .fold(f64::INFINITY, f64::min)
    }

    /// Compares our weights with a reference dual solution `w_ref`: same d when the
    /// reference's g_w is not ~0, and in every case a primal value at least as good.
    fn compare(g: &DMatrix<f64>, c: f64, w_ref: &DVector<f64>, what: &str) {
        let k = g.nrows();
        let m = gram(g);
        let scale2 = m.trace() / k as f64;
        let a = weights(&m, c, true).unwrap();
        let d = direction(g, &a) * (1.0 + c * c);
        let gw_ref = w_ref.transpose() * g;
        let p = primal_value(g, &d, c);
        if gw_ref.norm() > 1e-6 * scale2.sqrt() {
            let d_ref = reference_d(g, w_ref, c, false);
            assert!(
                (&d - &d_ref).norm() <= 1e-6 * scale2.sqrt(),
                "{what}: {d} vs {d_ref}"
            );
            let p_ref = primal_value(g, &d_ref, c);
            assert!(
                p >= p_ref - 1e-9 * scale2,
                "{what}: primal {p} vs {p_ref}, |d − d_ref| = {}",
                (&d - &d_ref).norm()
            );
        } else {
            // Degenerate (0 in the hull is optimal): the primal value is 0.
            assert!(p.abs() <= 1e-9 * scale2, "{what}: primal value {p}");
        }
    }

    #[test]
    fn k2_matches_golden_section_and_grid() {
        for seed in 0..60 {
            let g = random_g(2, 1 + seed as usize % 5, 1000 + seed);
            let m = gram(&g);
            for c in [0.1, 0.4, 1.0, 3.0] {
                let t = golden(|t| objective(&g, &DVector::from_vec(vec![t, 1.0 - t]), c));
                let w = DVector::from_vec(vec![t, 1.0 - t]);
                compare(&g, c, &w, &format!("seed {seed} c {c}"));
                // No grid point beats the dual objective of our solution's w (outside the
                // degenerate case, where alpha is not b + λ w).
                let a = weights(&m, c, false).unwrap();
                let rest = a - DVector::from_element(2, 0.5);
                let gw_ref = w.transpose() * &g;
                if gw_ref.norm() > 1e-6 * (m.trace() / 2.0).sqrt() && rest.sum() > 0.0 {
                    let w_ours = &rest / rest.sum();
                    let f = objective(&g, &w_ours, c);
                    for s in 0..=2000 {
                        let t = s as f64 / 2000.0;
                        let fg = objective(&g, &DVector::from_vec(vec![t, 1.0 - t]), c);
                        assert!(f <= fg + 1e-12 * m.trace());
                    }
                }
            }
        }
    }

    /// Nested-grid minimisation of F over the simplex for K = 3: a coarse grid, then
    /// repeatedly a finer grid around the best point (F is convex).
    fn nested_grid_min(g: &DMatrix<f64>, c: f64) -> DVector<f64> {
        let mut center = (1.0 / 3.0, 1.0 / 3.0);
        let mut radius = 0.5;
        let n = 40;
        for _ in 0..30 {
            let mut best = (f64::INFINITY, center);
            for i in 0..=2 * n {
                for j in 0..=2 * n {
                    let w0 = center.0 + radius * (i as f64 / n as f64 - 1.0);
                    let w1 = center.1 + radius * (j as f64 / n as f64 - 1.0);
                    let (w0, w1) = (w0.clamp(0.0, 1.0), w1.clamp(0.0, 1.0));
                    if w0 + w1 > 1.0 {
                        continue;
                    }
                    let w = DVector::from_vec(vec![w0, w1, 1.0 - w0 - w1]);
                    let f = objective(g, &w, c);
                    if f < best.0 {
                        best = (f, (w0, w1));
                    }
                }
            }
            center = best.1;
            radius *= 0.25;
        }
        DVector::from_vec(vec![center.0, center.1, 1.0 - center.0 - center.1])
    }

    #[test]
    fn k3_matches_nested_grid() {
        for seed in 0..12 {
            let g = random_g(3, 2 + seed as usize % 4, 2000 + seed);
            let c = [0.2, 0.4, 0.8, 1.5][seed as usize % 4];
            let w_ref = nested_grid_min(&g, c);
            compare(&g, c, &w_ref, &format!("seed {seed} c {c}"));
        }
    }

    #[test]
    fn degenerate_hull_contains_zero() {
        // 1-D, opposite signs, c = 3: g_w* = 0 is the unique dual optimum and the only
        // primal solution is d = 0.
        let g = DMatrix::from_row_slice(2, 1, &[1.0, -0.5]);
        let a = weights(&gram(&g), 3.0, true).unwrap();
        assert!(direction(&g, &a).norm() < 1e-12, "{a}");
        // g1 = (1, 0), g2 = (−1, 0), g3 = (0, 1), c = 0.4: g_w* = 0 again; g_0 = (0, 1/3)
        // conflicts with no task, so d = g_0.
        let g = DMatrix::from_row_slice(3, 2, &[1.0, 0.0, -1.0, 0.0, 0.0, 1.0]);
        let a = weights(&gram(&g), 0.4, false).unwrap();
        let d = direction(&g, &a);
        assert!(
            (d - RowDVector::from_vec(vec![0.0, 1.0 / 3.0])).norm() < 1e-8,
            "{a}"
        );
        // Three tasks in 1-D containing 0, c = 2: d = 0.
        let g = DMatrix::from_row_slice(3, 1, &[2.0, -1.0, 0.5]);
        let a = weights(&gram(&g), 2.0, false).unwrap();
        assert!(direction(&g, &a).norm() < 1e-8, "{a}");
    }

    #[test]
    fn k_gt_2_optimality_and_primal_property() {
        // At the optimum, d (unscaled) maximises min_i g_i·d over the ball
        // ‖d − g_0‖ ≤ c‖g_0‖: every task with w_i > 0 has the same g_i·d, the minimum.
        for (k, dim, seed) in [(3, 5, 1), (4, 6, 2), (5, 3, 3), (6, 10, 4), (8, 4, 5)] {
            let g = random_g(k, dim, 3000 + seed);
            let m = gram(&g);
            let c = 0.4;
            let a = weights(&m, c, false).unwrap();
            let d = direction(&g, &a);
            let g0 = g.row_sum() / k as f64;
            assert!(((&d - &g0).norm() - c * g0.norm()).abs() < 1e-9 * g0.norm());
            let w = (a - DVector::from_element(k, 1.0 / k as f64)).map(|v| v.max(0.0));
            let w = &w / w.sum();
            let dots: Vec<f64> = (0..k).map(|i| g.row(i).dot(&d)).collect();
            let min = dots.iter().copied().fold(f64::INFINITY, f64::min);
            let scale = m.trace() / k as f64;
            for i in 0..k {
                if w[i] > 1e-6 {
                    assert!((dots[i] - min).abs() < 1e-6 * scale, "k {k}: {dots:?} {w}");
                }
            }
        }
    }

    #[test]
    fn degenerate_inputs() {
        // All-zero gradients: the mean weights.
        let a = weights(&DMatrix::zeros(3, 3), 0.4, true).unwrap();
        assert!((a - DVector::from_element(3, 1.0 / (3.0 * 1.16))).norm() < 1e-15);
        // Opposite gradients: g_0 = 0, so d = g_0 = 0 and the weights are the mean.
        let m = DMatrix::from_row_slice(2, 2, &[1.0, -1.0, -1.0, 1.0]);
        let a = weights(&m, 0.4, false).unwrap();
        assert!(quad(&m, &a, &a) < 1e-20);
        // Identical gradients.
        let a = weights(&DMatrix::from_element(2, 2, 2.0), 0.5, false).unwrap();
        assert!((a - DVector::from_element(2, 0.5 + 0.25)).norm() < 1e-12);
        assert!(weights(&DMatrix::identity(2, 2), -1.0, true).is_err());
        assert!(weights(&DMatrix::identity(2, 2), f64::NAN, true).is_err());
        assert!(weights(&DMatrix::from_element(2, 2, f64::INFINITY), 0.4, true).is_err());
    }

    #[test]
    fn projection_onto_simplex() {
        let p = project_simplex(&DVector::from_vec(vec![0.2, 0.2, 0.2]));
        assert!((p - DVector::from_element(3, 1.0 / 3.0)).norm() < 1e-15);
        let p = project_simplex(&DVector::from_vec(vec![5.0, 0.0, -1.0]));
        assert_eq!(p, DVector::from_vec(vec![1.0, 0.0, 0.0]));
        let p = project_simplex(&DVector::from_vec(vec![0.5, 0.5, 0.5]));
        assert!((p.sum() - 1.0).abs() < 1e-15);
    }
}
