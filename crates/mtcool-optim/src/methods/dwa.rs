//! `dwa`: Dynamic Weight Average (Liu, Johns & Davison, CVPR 2019). Weights from the ratio of
//! the last two epochs' mean training losses, w = K · softmax(r / T); uniform in the first two
//! epochs.
//!
//! # The rule
//!
//! w_k(t) = K · exp(r_k / T) / Σ_i exp(r_i / T), r_k = L̄_k(t−1) / L̄_k(t−2) on epoch-mean
//! training losses; w = 1 for the first two epochs (lorenmt/mtan; LibMTL `weighting/DWA.py`).

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::aggregators::{check_finite, fail};
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
        match (last, weights(last, before, self.temperature)) {
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

const METHOD: &str = "dwa";

/// This epoch's loss weights (they sum to K) from the last two epochs' mean losses.
///
/// `last` = L̄(t−1), `before_last` = L̄(t−2). If either is `None` (the first two epochs) the
/// weights are all 1, K being taken from the one that is given; if both are `None` the task
/// count is unknown and this returns an error, so callers start from K ones and keep them.
/// Losses must be finite, `before_last` positive, and `temperature` finite and > 0. The
/// softmax is computed stably (max-shifted).
pub fn weights(
    last: Option<&[f64]>,
    before_last: Option<&[f64]>,
    temperature: f64,
) -> Result<Vec<f64>> {
    if !temperature.is_finite() || temperature <= 0.0 {
        return Err(fail(
            METHOD,
            format!("the temperature must be finite and > 0, got {temperature}"),
        ));
    }
    let (last, before) = match (last, before_last) {
        (Some(l), Some(b)) => (l, b),
        (Some(x), None) | (None, Some(x)) => return Ok(vec![1.0; x.len()]),
        (None, None) => {
            return Err(fail(
                METHOD,
                "no epoch losses yet: the number of tasks is unknown (use K ones)",
            ))
        }
    };
    let k = last.len();
    if k == 0 {
        return Err(fail(METHOD, "no tasks"));
    }
    check_finite(METHOD, "last-epoch losses", last, k)?;
    check_finite(METHOD, "losses of the epoch before", before, k)?;
    if let Some((i, v)) = before.iter().enumerate().find(|(_, v)| **v <= 0.0) {
        return Err(fail(
            METHOD,
            format!("task {i}'s mean loss two epochs ago is {v}: the ratio needs it > 0"),
        ));
    }
    let scaled: Vec<f64> = last
        .iter()
        .zip(before)
        .map(|(l, b)| l / b / temperature)
        .collect();
    let max = scaled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = scaled.iter().map(|s| (s - max).exp()).collect();
    let total: f64 = exp.iter().sum();
    Ok(exp.iter().map(|e| k as f64 * e / total).collect())
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

    #[test]
    fn first_two_epochs_are_uniform() {
        assert_eq!(
            weights(None, Some(&[1.0, 2.0, 3.0]), 2.0).unwrap(),
            vec![1.0; 3]
        );
        assert_eq!(weights(Some(&[1.0, 2.0]), None, 2.0).unwrap(), vec![1.0; 2]);
        assert!(weights(None, None, 2.0).is_err());
    }

    #[test]
    fn third_epoch_by_hand() {
        // r = (0.5/1.0, 0.9/1.0) = (0.5, 0.9); T = 2: exp(0.25), exp(0.45).
        // w_1 = 2 e^{0.25}/(e^{0.25} + e^{0.45}) = 2/(1 + e^{0.2}) = 0.900332…
        let w = weights(Some(&[0.5, 0.9]), Some(&[1.0, 1.0]), 2.0).unwrap();
        let w1 = 2.0 / (1.0 + 0.2f64.exp());
        assert!((w[0] - w1).abs() < 1e-15 && (w[1] - (2.0 - w1)).abs() < 1e-15);
        assert!((w1 - 0.900_332_005_375_044_3).abs() < 1e-12);
        // Equal ratios give uniform weights summing to K.
        let w = weights(Some(&[2.0, 4.0, 6.0]), Some(&[4.0, 8.0, 12.0]), 2.0).unwrap();
        assert!(w.iter().all(|v| (v - 1.0).abs() < 1e-15));
    }

    #[test]
    fn bad_inputs() {
        assert!(weights(Some(&[1.0, 1.0]), Some(&[1.0]), 2.0).is_err());
        assert!(weights(Some(&[1.0, f64::NAN]), Some(&[1.0, 1.0]), 2.0).is_err());
        assert!(weights(Some(&[1.0, 1.0]), Some(&[0.0, 1.0]), 2.0).is_err());
        assert!(weights(Some(&[1.0]), Some(&[1.0]), 0.0).is_err());
        assert!(weights(Some(&[]), Some(&[]), 2.0).is_err());
    }
}
