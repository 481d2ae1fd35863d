//! `mgda` (Sener & Koltun, NeurIPS 2018): the min-norm point of the convex hull of the
//! (normalised) task gradients. As in the authors' code, the weights α found on the
//! normalised gradients scale the raw task losses, heads included.
//!
//! `representation = true` is MGDA-UB (gradients w.r.t. the shared representation; needs
//! one input shared by all tasks). With a separate input per task (MNIST's even / odd
//! split) the upper bound does not apply, so such configs use the parameter-space form.

use nalgebra::DMatrix;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::aggregators::mgda::{self, GradNormalization};
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
        let n = mgda::normalizers(gramian, losses, self.config.normalization)?;
        let alpha = mgda::min_norm_weights(&mgda::normalize_gramian(gramian, &n))?;
        let alpha: Vec<f64> = alpha.iter().copied().collect();
        Ok(Combination {
            heads: Some(alpha.clone()),
            shared: alpha,
            max_norm: None,
        })
    }
}
