//! `pcgrad` (Yu et al., NeurIPS 2020): each task gradient is projected off the original
//! gradients it conflicts with, visiting the other tasks in a fresh random order (from the
//! run's RNG) every step; the update is the sum of the projected gradients.

use nalgebra::DMatrix;
use rand_chacha::ChaCha8Rng;

use crate::aggregators::pcgrad;
use crate::error::Result;
use crate::gradient_method::{Aggregator, Combination};

/// PCGrad.
#[derive(Debug, Default)]
pub struct PcGrad;

impl Aggregator for PcGrad {
    fn name(&self) -> &'static str {
        "pcgrad"
    }

    fn combine(
        &mut self,
        gramian: &DMatrix<f64>,
        _losses: &[f64],
        rng: &mut ChaCha8Rng,
    ) -> Result<Combination> {
        let alpha = pcgrad::weights(gramian, rng)?;
        Ok(Combination::shared(alpha.iter().copied().collect()))
    }
}
