//! `aligned-mtl` (Senushkin et al., CVPR 2023): the task gradients are replaced by the
//! closest set of orthogonal gradients of equal norm (scaled to the smallest singular
//! value), Ĝ = B G, and the update is Σ_i w_i ĝ_i.

use nalgebra::{DMatrix, DVector};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::aggregators::aligned;
use crate::error::Result;
use crate::gradient_method::{Aggregator, Combination};

/// Options of `aligned-mtl`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlignedConfig {
    /// Task weights w (empty: 1/K each).
    pub weights: Vec<f64>,
    /// Eigenvalues of G Gᵀ at or below this are dropped (default: LibMTL's relative rule).
    pub tolerance: Option<f64>,
}

/// Aligned-MTL.
#[derive(Debug)]
pub struct AlignedMtl {
    weights: DVector<f64>,
    tolerance: Option<f64>,
}

impl AlignedMtl {
    /// Aligned-MTL for `tasks` tasks.
    pub fn new(config: &AlignedConfig, tasks: usize) -> Result<Self> {
        let w = super::per_task(
            "aligned-mtl",
            "weights",
            &config.weights,
            tasks,
            1.0 / tasks.max(1) as f64,
        )?;
        Ok(Self {
            weights: DVector::from_vec(w),
            tolerance: config.tolerance,
        })
    }
}

impl Aggregator for AlignedMtl {
    fn name(&self) -> &'static str {
        "aligned-mtl"
    }

    fn combine(
        &mut self,
        gramian: &DMatrix<f64>,
        _losses: &[f64],
        _rng: &mut ChaCha8Rng,
    ) -> Result<Combination> {
        let alpha = aligned::weights(gramian, &self.weights, self.tolerance)?;
        Ok(Combination::shared(alpha.iter().copied().collect()))
    }
}
