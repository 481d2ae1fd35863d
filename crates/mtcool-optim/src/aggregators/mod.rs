//! Pure functions from task-gradient Gramians (or small per-task statistics) to update weights.
//!
//! Each rule lives in its method's file under [`crate::methods`] and is re-exported here, so
//! `aggregators::<name>::…` names the maths without the training step; the shared checks
//! ([`check_gramian`]) and test helpers live here.
//!
//! The gradient-based baselines all output a linear combination of the task gradients
//! g_1, …, g_K (the rows of the K×d matrix G over the shared parameters). So each of them is
//! written here as a map from the K×K Gramian M = G Gᵀ (plus a few scalars) to a weight vector
//! `alpha`; the caller applies the update direction d = Σ_j alpha_j g_j. Everything is plain
//! `f64` maths on [`nalgebra`] types: no tensors, no networks, no device.
//!
//! | module | method | input | output |
//! |---|---|---|---|
//! | [`mgda`] | MGDA (Sener & Koltun 2018) | Gramian, losses | min-norm weights on the simplex |
//! | [`pcgrad`] | PCGrad (Yu et al. 2020) | Gramian, RNG | summed projection coefficients |
//! | [`cagrad`] | CAGrad (Liu et al. 2021) | Gramian, c | g_0 + λ g_w, as weights |
//! | [`imtl`] | IMTL-G (Liu et al. 2021) | Gramian | weights with equal projections |
//! | [`nash`] | Nash-MTL (Navon et al. 2022) | Gramian | α > 0 with M̃α = 1/α |
//! | [`aligned`] | Aligned-MTL (Senushkin et al. 2023) | Gramian, w | B w |
//! | [`upgrad`] | UPGrad (Quinton & Rey 2024) | Gramian | mean of the dual-cone projections of e_i |
//! | [`dualproj`] | DualProj (Quinton & Rey 2024) | Gramian | dual-cone projection of the mean |
//! | [`fairgrad`] | FairGrad (Ban & Ji 2024) | Gramian, α | w > 0 with G w = w^(−1/α) |
//! | [`con_fig`] | ConFIG (Liu et al. 2024) | Gramian | equal projections on unit gradients, summed length |
//! | [`gradvac`] | GradVac (Wang et al. 2021) | Gramian, target cosines, β, RNG | PCGrad-like coefficients towards target cosines |
//! | [`gradnorm`] | GradNorm (Chen et al. 2018) | gradient norms, relative losses, α | loss weights K·softmax(s) and ∂L_grad/∂s |
//! | [`excess_mtl`] | ExcessMTL (He et al. 2024) | excess-risk estimates | exponentiated loss-weight update |
//! | [`db_mtl`] | DB-MTL (Lin et al. 2023) | Gramian of averaged log-loss gradients | max-norm balancing weights |
//! | [`moco`] | MoCo (Fernando et al. 2023) | Gramian of tracked gradients, λ | softmax step on λ |
//! | [`sdmgrad`] | SDMGrad (Xiao et al. 2023) | cross Gramian of two samples, λ | projected momentum steps on w |
//! | [`modo`] | MoDo (Chen et al. 2023) | cross Gramian of two samples | projected step on λ |
//! | [`gradnorm`] | GradNorm (Chen et al. 2018) | gradient norms, relative losses, α | loss weights K·softmax(s), ∂L_grad/∂s |
//! | [`excess_mtl`] | ExcessMTL (He et al. 2024) | excess-risk estimates | exponentiated loss-weight update |
//! | [`db_mtl`] | DB-MTL (Lin et al. 2023) | Gramian of averaged log-loss gradients | max-norm balancing weights |
//! | [`moco`] | MoCo (Fernando et al. 2023) | Gramian of tracked gradients, λ | softmax step on λ |
//! | [`sdmgrad`] | SDMGrad (Xiao et al. 2023) | cross Gramian of two samples, w | projected momentum steps on w |
//! | [`modo`] | MoDo (Chen et al. 2023) | cross Gramian of two samples, λ | projected step on λ |
//! | [`dwa`] | DWA (Liu et al. 2019) | epoch-mean losses | loss weights |
//! | [`famo`] | FAMO (Liu et al. 2023) | losses | loss weights + logit state |
//! | [`graddrop`] | GradDrop (Chen et al. 2020) | per-element sign signals, U | keep masks |
//!
//! Every Gramian-taking function validates its input with [`check_gramian`] (square, K ≥ 1,
//! finite, non-negative diagonal) and reports problems as
//! [`OptimError::Aggregator`](crate::error::OptimError::Aggregator); none of them panics on
//! NaN, infinity or empty input.

pub use crate::methods::{
    aligned, cagrad, con_fig, db_mtl, dual_cone, dualproj, dwa, excess_mtl, fairgrad, famo,
    graddrop, gradnorm, gradvac, imtl, mgda, moco, modo, nash, pcgrad, sdmgrad, upgrad,
};

pub use famo::{FamoConfig, FamoState};
pub use mgda::GradNormalization;

use nalgebra::{DMatrix, DVector};

use crate::error::{OptimError, Result};

/// Builds the error of `method` with a one-line `problem`.
pub(crate) fn fail(method: &'static str, problem: impl Into<String>) -> OptimError {
    OptimError::Aggregator {
        method,
        problem: problem.into(),
    }
}

/// Checks that `gram` can be a task-gradient Gramian and returns K, its number of rows.
///
/// Fails unless `gram` is square with K ≥ 1, every entry is finite and every diagonal entry
/// (a squared norm) is ≥ 0. Symmetry is not checked: the functions here read `gram` as given
/// and, where an eigen-decomposition needs it, use its symmetric part (M + Mᵀ)/2.
pub fn check_gramian(method: &'static str, gram: &DMatrix<f64>) -> Result<usize> {
    let (rows, cols) = gram.shape();
    if rows == 0 || rows != cols {
        return Err(fail(
            method,
            format!("the Gramian must be K×K with K ≥ 1, got {rows}×{cols}"),
        ));
    }
    if let Some(bad) = gram.iter().find(|v| !v.is_finite()) {
        return Err(fail(
            method,
            format!("the Gramian has a non-finite entry ({bad})"),
        ));
    }
    if let Some(i) = (0..rows).find(|&i| gram[(i, i)] < 0.0) {
        return Err(fail(
            method,
            format!(
                "the Gramian's diagonal entry {i} is negative ({}), not a squared norm",
                gram[(i, i)]
            ),
        ));
    }
    Ok(rows)
}

/// Checks that `values` has `k` finite entries; `what` names them in the message.
pub(crate) fn check_finite(
    method: &'static str,
    what: &str,
    values: &[f64],
    k: usize,
) -> Result<()> {
    if values.len() != k {
        return Err(fail(
            method,
            format!("{} {what} for {k} tasks", values.len()),
        ));
    }
    if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(fail(method, format!("{what} {i} is not finite ({v})")));
    }
    Ok(())
}

/// The Euclidean projection of `v` onto the probability simplex {w ≥ 0, Σ w = 1} (the
/// sort-based algorithm of Duchi et al. 2008, as in the SDMGrad and MoDo references).
pub fn project_to_simplex(v: &DVector<f64>) -> DVector<f64> {
    let k = v.len();
    if k == 0 {
        return v.clone();
    }
    let mut sorted: Vec<f64> = v.iter().copied().collect();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let mut cumulative = 0.0;
    let mut theta = (v.sum() - 1.0) / k as f64;
    for (i, &u) in sorted.iter().enumerate() {
        cumulative += u;
        let candidate = (cumulative - 1.0) / (i + 1) as f64;
        if u - candidate > 0.0 {
            theta = candidate;
        }
    }
    v.map(|x| (x - theta).max(0.0))
}

/// The symmetric part (M + Mᵀ)/2.
pub(crate) fn symmetric_part(gram: &DMatrix<f64>) -> DMatrix<f64> {
    (gram + gram.transpose()) * 0.5
}

/// xᵀ M y.
pub(crate) fn quad(gram: &DMatrix<f64>, x: &DVector<f64>, y: &DVector<f64>) -> f64 {
    x.dot(&(gram * y))
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for the aggregator tests: random explicit task-gradient matrices.

    use nalgebra::DMatrix;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    /// A K×d matrix of independent standard normal entries.
    pub fn random_g(k: usize, d: usize, seed: u64) -> DMatrix<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        DMatrix::from_fn(k, d, |_, _| StandardNormal.sample(&mut rng))
    }

    /// G Gᵀ.
    pub fn gram(g: &DMatrix<f64>) -> DMatrix<f64> {
        g * g.transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simplex_projection_is_the_nearest_point_of_the_simplex() {
        let cases: [&[f64]; 5] = [
            &[0.2, 0.8],
            &[2.0, 0.0, -1.0],
            &[0.0, 0.0, 0.0],
            &[-5.0, 3.0, 3.0, 0.1],
            &[1e3, -1e3],
        ];
        for case in cases {
            let v = DVector::from_column_slice(case);
            let w = project_to_simplex(&v);
            assert!((w.sum() - 1.0).abs() < 1e-12, "{w}");
            assert!(w.iter().all(|x| *x >= 0.0));
            // Optimality: v − w is θ·1 plus a non-negative part where w = 0 (KKT).
            let r = &v - &w;
            let theta = (0..v.len()).find(|&i| w[i] > 0.0).map(|i| r[i]).unwrap();
            for i in 0..v.len() {
                if w[i] > 0.0 {
                    assert!((r[i] - theta).abs() < 1e-12);
                } else {
                    assert!(r[i] <= theta + 1e-12);
                }
            }
        }
        let inside = DVector::from_column_slice(&[0.25, 0.75]);
        assert_eq!(project_to_simplex(&inside), inside);
    }

    #[test]
    fn check_gramian_accepts_and_rejects() {
        assert_eq!(check_gramian("t", &DMatrix::identity(3, 3)).unwrap(), 3);
        assert!(check_gramian("t", &DMatrix::zeros(0, 0)).is_err());
        assert!(check_gramian("t", &DMatrix::zeros(2, 3)).is_err());
        let mut m = DMatrix::identity(2, 2);
        m[(0, 1)] = f64::NAN;
        assert!(check_gramian("t", &m).is_err());
        m[(0, 1)] = f64::INFINITY;
        assert!(check_gramian("t", &m).is_err());
        let m = DMatrix::from_row_slice(2, 2, &[-1.0, 0.0, 0.0, 1.0]);
        let err = check_gramian("t", &m).unwrap_err().to_string();
        assert!(err.contains("negative") && !err.contains('\n'), "{err}");
    }
}
