//! `dwa`: Dynamic Weight Average (Liu, Johns & Davison, CVPR 2019). Weights from the ratio of
//! the last two epochs' mean training losses, w = K · softmax(r / T); uniform in the first two
//! epochs.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::aggregators::dwa;
use crate::error::Result;
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
        if let Ok(w) = dwa::weights(last, before, self.temperature) {
            self.weights = w;
        }
    }

    fn objective(&mut self, losses: &[Tensor], values: &[f64]) -> Result<Tensor> {
        for (s, v) in self.sums.iter_mut().zip(values) {
            *s += v;
        }
        self.steps += 1;
        weighted_sum(losses, &self.weights)
    }

    fn memory(&self) -> Result<serde_json::Value> {
        to_memory(&(&self.epoch_means, &self.sums, self.steps, &self.weights))
    }

    fn restore_memory(&mut self, memory: &serde_json::Value) -> Result<()> {
        (self.epoch_means, self.sums, self.steps, self.weights) = from_memory(memory)?;
        Ok(())
    }
}
