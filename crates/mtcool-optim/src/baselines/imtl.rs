//! `imtl` (Liu et al., ICLR 2021): impartial multi-task learning. IMTL-L scales each loss
//! as e^{s_i} L_i − s_i with learned s_i; IMTL-G combines the task gradients so that the
//! update has equal projections onto every task's unit gradient. `hybrid` (default) is both.

use candle_core::{DType, Device, Tensor, Var};
use nalgebra::DMatrix;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::aggregators::imtl;
use crate::error::Result;
use crate::gradient_method::{Aggregator, Combination};

/// Which parts of IMTL are on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImtlMode {
    /// IMTL-L and IMTL-G.
    #[default]
    Hybrid,
    /// IMTL-G only.
    Gradient,
    /// IMTL-L only (the shared update is then the plain sum).
    Loss,
}

/// Options of `imtl`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImtlConfig {
    /// Which parts are on.
    pub mode: ImtlMode,
}

/// IMTL.
#[derive(Debug)]
pub struct Imtl {
    mode: ImtlMode,
    scales: Vec<Var>,
}

impl Imtl {
    /// IMTL for `tasks` tasks; the loss scales s_i start at 0 on `device`.
    pub fn new(config: &ImtlConfig, tasks: usize, device: &Device) -> Result<Self> {
        let scales = match config.mode {
            ImtlMode::Gradient => Vec::new(),
            ImtlMode::Hybrid | ImtlMode::Loss => (0..tasks)
                .map(|_| Var::zeros((), DType::F32, device))
                .collect::<candle_core::Result<_>>()?,
        };
        Ok(Self {
            mode: config.mode,
            scales,
        })
    }
}

impl Aggregator for Imtl {
    fn name(&self) -> &'static str {
        "imtl"
    }

    fn extra_vars(&self) -> Vec<Var> {
        self.scales.clone()
    }

    fn scale_losses(&self, losses: Vec<Tensor>) -> Result<Vec<Tensor>> {
        if self.scales.is_empty() {
            return Ok(losses);
        }
        losses
            .into_iter()
            .zip(&self.scales)
            .map(|(l, s)| {
                let s = s.as_tensor();
                Ok(((s.exp()? * l)? - s)?)
            })
            .collect()
    }

    fn combine(
        &mut self,
        gramian: &DMatrix<f64>,
        _losses: &[f64],
        _rng: &mut ChaCha8Rng,
    ) -> Result<Combination> {
        let k = gramian.nrows();
        let alpha = match self.mode {
            ImtlMode::Loss => vec![1.0; k],
            ImtlMode::Hybrid | ImtlMode::Gradient => {
                imtl::gradient_weights(gramian)?.iter().copied().collect()
            }
        };
        Ok(Combination::shared(alpha))
    }
}
