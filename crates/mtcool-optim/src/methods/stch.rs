//! `stch`: smooth Tchebycheff scalarisation (Lin et al., ICML 2024; Xi-L/STCH `STCH_MTL`,
//! as in its LibMTL-based trainer). The first `warmup_epochs` epochs minimise Σ_i log L_i;
//! the next one does too while averaging the losses into the nadir point z_i; from then on
//!
//! ```text
//! objective = K μ log Σ_i exp(log(L_i / z_i) / μ)
//! ```
//!
//! a smooth maximum of the log-normalised losses (μ → 0: the Tchebycheff max).

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::aggregators::fail;
use crate::error::{OptimError, Result};
use crate::state::{from_memory, to_memory};
use crate::weighting_method::Weighting;

/// Added inside every logarithm, as the reference does.
const LOG_EPS: f64 = 1e-20;

/// Options of `stch` (the authors' defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StchConfig {
    /// The smoothing μ (> 0).
    pub mu: f64,
    /// Epochs of Σ log L before the nadir point is measured (during the next epoch).
    pub warmup_epochs: usize,
}

impl Default for StchConfig {
    fn default() -> Self {
        Self {
            mu: 1.0,
            warmup_epochs: 4,
        }
    }
}

/// Smooth Tchebycheff scalarisation.
#[derive(Debug)]
pub struct Stch {
    config: StchConfig,
    epoch: usize,
    sums: Vec<f64>,
    steps: usize,
    nadir: Option<Vec<f64>>,
}

impl Stch {
    /// STCH for `tasks` tasks.
    pub fn new(config: &StchConfig, tasks: usize) -> Result<Self> {
        if !(config.mu.is_finite() && config.mu > 0.0) {
            return Err(fail("stch", format!("mu must be > 0, got {}", config.mu)));
        }
        Ok(Self {
            config: config.clone(),
            epoch: 0,
            sums: vec![0.0; tasks],
            steps: 0,
            nadir: None,
        })
    }

    /// The smooth-max weights softmax(log(L/z)/μ), once the nadir point is known.
    fn softmax_weights(&self, values: &[f64]) -> Option<Vec<f64>> {
        let nadir = self.nadir.as_ref()?;
        let scaled: Vec<f64> = values
            .iter()
            .zip(nadir)
            .map(|(l, z)| ((l + LOG_EPS) / z).ln() / self.config.mu)
            .collect();
        Some(super::rlw::softmax(&scaled))
    }
}

impl Weighting for Stch {
    fn name(&self) -> &'static str {
        "stch"
    }

    fn begin_epoch(&mut self, epoch: usize) {
        self.epoch = epoch;
        if epoch > self.config.warmup_epochs && self.nadir.is_none() && self.steps > 0 {
            let steps = self.steps as f64;
            self.nadir = Some(self.sums.iter().map(|s| s / steps).collect());
        }
    }

    fn objective(&mut self, losses: &[Tensor], values: &[f64]) -> Result<Tensor> {
        if let Some((task, value)) = values
            .iter()
            .enumerate()
            .find(|(_, v)| v.is_nan() || **v < 0.0)
        {
            return Err(OptimError::Config {
                method: "stch".into(),
                problem: format!("task {task}'s loss is {value}: its logarithm needs it ≥ 0"),
            });
        }
        // log(L + 1e-20), as the reference: a batch loss can round to 0 in f32.
        let logs: Vec<Tensor> = losses
            .iter()
            .map(|l| (l + LOG_EPS)?.log())
            .collect::<candle_core::Result<_>>()?;
        let Some(nadir) = self.nadir.as_ref() else {
            if self.epoch == self.config.warmup_epochs {
                self.sums.iter_mut().zip(values).for_each(|(s, v)| *s += v);
                self.steps += 1;
            }
            return Ok(Tensor::stack(&logs, 0)?.sum_all()?);
        };
        let k = losses.len() as f64;
        let mu = self.config.mu;
        let scaled: Vec<Tensor> = logs
            .iter()
            .zip(nadir)
            .map(|(log, z)| (log - z.ln())? / mu)
            .collect::<candle_core::Result<_>>()?;
        let stacked = Tensor::stack(&scaled, 0)?;
        // log Σ exp(x) = m + log Σ exp(x − m), m the (constant) maximum.
        let max = stacked.max_all()?.detach();
        let shifted = stacked.broadcast_sub(&max)?;
        let lse = (shifted.exp()?.sum_all()?.log()? + max)?;
        Ok((lse * (k * mu))?)
    }

    /// 1/L_i during the warm-up, then K softmax(log(L/z)/μ)_i / L_i (with the logarithms'
    /// 1e-20 added to L_i).
    fn applied_weights(&self, values: &[f64]) -> Result<Vec<f64>> {
        let k = values.len() as f64;
        Ok(match self.softmax_weights(values) {
            None => values.iter().map(|l| 1.0 / (l + LOG_EPS)).collect(),
            Some(p) => p
                .iter()
                .zip(values)
                .map(|(p, l)| k * p / (l + LOG_EPS))
                .collect(),
        })
    }

    fn memory(&self) -> Result<serde_json::Value> {
        to_memory(&(self.epoch, &self.sums, self.steps, &self.nadir))
    }

    fn restore_memory(&mut self, memory: &serde_json::Value) -> Result<()> {
        (self.epoch, self.sums, self.steps, self.nadir) = from_memory(memory)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn losses(values: [f32; 2]) -> (Var, Var, [Tensor; 2]) {
        let a = Var::new(values[0], &Device::Cpu).unwrap();
        let b = Var::new(values[1], &Device::Cpu).unwrap();
        let t = [a.as_tensor().clone(), b.as_tensor().clone()];
        (a, b, t)
    }

    #[test]
    fn warm_up_then_nadir_then_smooth_max_with_matching_weights() {
        let config = StchConfig {
            mu: 0.5,
            warmup_epochs: 1,
        };
        let mut stch = Stch::new(&config, 2).unwrap();
        stch.begin_epoch(0);
        let (a, _, t) = losses([2.0, 0.5]);
        let grads = stch.objective(&t, &[2.0, 0.5]).unwrap().backward().unwrap();
        assert!((grads.get(&a).unwrap().to_scalar::<f32>().unwrap() - 0.5).abs() < 1e-6);
        // Epoch 1 measures the nadir point: the mean of (2, 1) and (4, 1).
        stch.begin_epoch(1);
        for v in [[2.0, 1.0], [4.0, 1.0]] {
            let (_, _, t) = losses([v[0] as f32, v[1] as f32]);
            stch.objective(&t, &v).unwrap();
        }
        stch.begin_epoch(2);
        assert_eq!(stch.nadir, Some(vec![3.0, 1.0]));
        let values = [3.0, 2.0];
        let (a, b, t) = losses([3.0, 2.0]);
        let objective = stch.objective(&t, &values).unwrap();
        // K μ log(exp(log 1 / μ) + exp(log 2 / μ)) = 2 · 0.5 · log(1 + 4) = log 5.
        assert!((objective.to_scalar::<f32>().unwrap() - 5f32.ln()).abs() < 1e-5);
        let grads = objective.backward().unwrap();
        let w = stch.applied_weights(&values).unwrap();
        for (var, w) in [(&a, w[0]), (&b, w[1])] {
            let g = f64::from(grads.get(var).unwrap().to_scalar::<f32>().unwrap());
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }
        assert!(stch.objective(&t, &[f64::NAN, 1.0]).is_err());
        assert!(stch.objective(&t, &[0.0, 1.0]).is_ok());
        assert!(Stch::new(&StchConfig { mu: 0.0, ..config }, 2).is_err());
    }
}
