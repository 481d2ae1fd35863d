//! `con-fig` (Liu, Chen & Thuerey 2024): weights from [`crate::aggregators::con_fig`]; heads
//! get their plain gradients. No options.

use nalgebra::DMatrix;
use rand_chacha::ChaCha8Rng;

use crate::aggregators::con_fig;
use crate::error::Result;
use crate::gradient_method::{Aggregator, Combination};

/// ConFIG.
#[derive(Debug, Default)]
pub struct ConFig;

impl Aggregator for ConFig {
    fn name(&self) -> &'static str {
        "con-fig"
    }

    fn combine(
        &mut self,
        gramian: &DMatrix<f64>,
        _losses: &[f64],
        _rng: &mut ChaCha8Rng,
    ) -> Result<Combination> {
        Ok(Combination::shared(
            con_fig::weights(gramian)?.iter().copied().collect(),
        ))
    }
}
