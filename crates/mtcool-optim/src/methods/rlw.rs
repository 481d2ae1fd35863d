//! `rlw`: random loss weighting (Lin et al., TMLR 2022, "Reasonable Effectiveness of Random
//! Weighting"; LibMTL `weighting/RLW.py`): each step minimises Σ_i w_i L_i with fresh weights
//! w = softmax(z), z ~ N(0, I_K), drawn from the run's generator. The weights sum to 1, as in
//! LibMTL (Joint's sum to K).

use candle_core::Tensor;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::Result;
use crate::weighting_method::{weighted_sum, Weighting};

/// Random loss weighting.
#[derive(Debug)]
pub struct Rlw {
    weights: Vec<f64>,
}

impl Rlw {
    /// Uniform weights until the first draw.
    pub fn new(tasks: usize) -> Self {
        Self {
            weights: vec![1.0 / tasks.max(1) as f64; tasks],
        }
    }

    /// The weights of the last step.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }
}

/// softmax(z), max-shifted.
pub fn softmax(z: &[f64]) -> Vec<f64> {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = z.iter().map(|x| (x - max).exp()).collect();
    let total: f64 = exp.iter().sum();
    exp.iter().map(|e| e / total).collect()
}

impl Weighting for Rlw {
    fn name(&self) -> &'static str {
        "rlw"
    }

    fn draw(&mut self, rng: &mut ChaCha8Rng) {
        let z: Vec<f64> = (0..self.weights.len())
            .map(|_| StandardNormal.sample(rng))
            .collect();
        self.weights = softmax(&z);
    }

    fn objective(&mut self, losses: &[Tensor], _values: &[f64]) -> Result<Tensor> {
        weighted_sum(losses, &self.weights)
    }

    fn applied_weights(&self, _values: &[f64]) -> Result<Vec<f64>> {
        Ok(self.weights.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn weights_are_a_fresh_softmax_of_normals_each_step() {
        let mut rlw = Rlw::new(3);
        assert_eq!(rlw.weights(), &[1.0 / 3.0; 3]);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        rlw.draw(&mut rng);
        let first = rlw.weights().to_vec();
        rlw.draw(&mut rng);
        assert_ne!(first, rlw.weights());
        assert!((first.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(first.iter().all(|w| *w > 0.0));
        // The same stream gives the same weights.
        let mut again = Rlw::new(3);
        again.draw(&mut ChaCha8Rng::seed_from_u64(0));
        assert_eq!(again.weights(), first.as_slice());
        let s = softmax(&[0.0, 2.0_f64.ln()]);
        assert!((s[0] - 1.0 / 3.0).abs() < 1e-12 && (s[1] - 2.0 / 3.0).abs() < 1e-12);
    }
}
