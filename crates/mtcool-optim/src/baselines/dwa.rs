//! `dwa`: Dynamic Weight Average (Liu, Johns & Davison, CVPR 2019). Weights from the ratio of
//! the last two epochs' mean training losses, w = K · softmax(r / T); uniform in the first two
//! epochs.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::aggregators::dwa;
use crate::error::{OptimError, Result};
use crate::state::{from_memory, to_memory};
use crate::weighting_method::{weighted_sum, Weighting};

/// Options of `dwa`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DwaConfig {
    /// Softmax temperature T.
    pub temperature: f64,
}

impl Default for DwaConfig {
    fn default() -> Self {
        Self { temperature: 2.0 }
    }
}

/// Dynamic Weight Average.
#[derive(Debug)]
pub struct Dwa {
    temperature: f64,
    /// Mean training loss per finished epoch.
    epoch_means: Vec<Vec<f64>>,
    /// Running sums of the current epoch.
    sums: Vec<f64>,
    steps: usize,
    weights: Vec<f64>,
    /// Why the last epoch's weights could not be computed (non-finite or zero mean losses),
    /// returned by the next step: `begin_epoch` cannot fail.
    failure: Option<OptimError>,
}

impl Dwa {
    /// Uniform weights until two epochs have finished.
    pub fn new(config: &DwaConfig, tasks: usize) -> Self {
        Self {
            temperature: config.temperature,
            epoch_means: Vec::new(),
            sums: vec![0.0; tasks],
            steps: 0,
            weights: vec![1.0; tasks],
            failure: None,
        }
    }

    /// This epoch's weights.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }
}

impl Weighting for Dwa {
    fn name(&self) -> &'static str {
        "dwa"
    }

    fn begin_epoch(&mut self, epoch: usize) {
        if self.steps > 0 {
            let steps = self.steps as f64;
            self.epoch_means
                .push(self.sums.iter().map(|s| s / steps).collect());
            self.sums.iter_mut().for_each(|s| *s = 0.0);
            self.steps = 0;
        }
        let n = self.epoch_means.len();
        let (last, before) = if epoch >= 2 && n >= 2 {
            (
                Some(self.epoch_means[n - 1].as_slice()),
                Some(self.epoch_means[n - 2].as_slice()),
            )
        } else {
            (None, None)
        };
        match (last, dwa::weights(last, before, self.temperature)) {
            (_, Ok(w)) => self.weights = w,
            // The first two epochs: no losses yet, the weights stay uniform.
            (None, Err(_)) => {}
            (Some(_), Err(e)) => self.failure = Some(e),
        }
    }

    fn objective(&mut self, losses: &[Tensor], values: &[f64]) -> Result<Tensor> {
        if let Some(e) = self.failure.take() {
            return Err(e);
        }
        for (s, v) in self.sums.iter_mut().zip(values) {
            *s += v;
        }
        self.steps += 1;
        weighted_sum(losses, &self.weights)
    }

    fn applied_weights(&self, _values: &[f64]) -> Result<Vec<f64>> {
        Ok(self.weights.clone())
    }

    fn memory(&self) -> Result<serde_json::Value> {
        to_memory(&(&self.epoch_means, &self.sums, self.steps, &self.weights))
    }

    fn restore_memory(&mut self, memory: &serde_json::Value) -> Result<()> {
        (self.epoch_means, self.sums, self.steps, self.weights) = from_memory(memory)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn a_diverged_epoch_fails_the_next_step_instead_of_keeping_stale_weights() {
        let mut dwa = Dwa::new(&DwaConfig::default(), 2);
        let loss = |v: f32| Tensor::new(v, &Device::Cpu).unwrap();
        for (epoch, values) in [[1.0, 1.0], [f64::NAN, 0.5]].iter().enumerate() {
            dwa.begin_epoch(epoch);
            let losses = [loss(values[0] as f32), loss(values[1] as f32)];
            dwa.objective(&losses, values).unwrap();
        }
        dwa.begin_epoch(2);
        let err = dwa
            .objective(&[loss(1.0), loss(1.0)], &[1.0, 1.0])
            .unwrap_err();
        assert!(err.to_string().contains("dwa"), "{err}");
    }
}
