//! `gls`: geometric loss strategy (Chennupati et al., CVPR workshops 2019; LibMTL
//! `weighting/GLS.py`): minimise the geometric mean (Π_i L_i)^{1/K}, computed as
//! exp(mean_i log L_i). Its gradient is Σ_i (GLS / (K L_i)) ∇L_i: each task is weighted by
//! the inverse of its loss.

use candle_core::Tensor;

use crate::error::{OptimError, Result};
use crate::weighting_method::Weighting;

/// The geometric loss strategy.
#[derive(Debug, Default)]
pub struct Gls;

impl Weighting for Gls {
    fn name(&self) -> &'static str {
        "gls"
    }

    fn objective(&mut self, losses: &[Tensor], values: &[f64]) -> Result<Tensor> {
        if let Some((task, value)) = values.iter().enumerate().find(|(_, v)| **v <= 0.0) {
            return Err(OptimError::Config {
                method: "gls".into(),
                problem: format!("task {task}'s loss is {value}: the geometric mean needs it > 0"),
            });
        }
        let logs = losses
            .iter()
            .map(Tensor::log)
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Tensor::stack(&logs, 0)?.mean_all()?.exp()?)
    }

    /// GLS / (K L_i).
    fn applied_weights(&self, values: &[f64]) -> Result<Vec<f64>> {
        let k = values.len() as f64;
        let gls = (values.iter().map(|v| v.ln()).sum::<f64>() / k).exp();
        Ok(values.iter().map(|v| gls / (k * v)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn geometric_mean_and_its_inverse_loss_weights() {
        let a = Var::new(4f32, &Device::Cpu).unwrap();
        let b = Var::new(1f32, &Device::Cpu).unwrap();
        let losses = [a.as_tensor().clone(), b.as_tensor().clone()];
        let objective = Gls.objective(&losses, &[4.0, 1.0]).unwrap();
        assert!((objective.to_scalar::<f32>().unwrap() - 2.0).abs() < 1e-6);
        let grads = objective.backward().unwrap();
        // ∂/∂a √(ab) = √b / (2√a) = 0.25, ∂/∂b = √a / (2√b) = 1.
        let grad = |v: &Var| grads.get(v).unwrap().to_scalar::<f32>().unwrap();
        assert!((grad(&a) - 0.25).abs() < 1e-6 && (grad(&b) - 1.0).abs() < 1e-6);
        assert!(Gls.objective(&losses, &[0.0, 1.0]).is_err());
        let w = Gls.applied_weights(&[4.0, 1.0]).unwrap();
        assert!((w[0] - 0.25).abs() < 1e-12 && (w[1] - 1.0).abs() < 1e-12);
    }
}
