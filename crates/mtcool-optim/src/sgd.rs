//! Stochastic gradient descent with momentum and weight decay (PyTorch's `torch.optim.SGD`
//! semantics): `g ← ∇ + λθ`, `v ← μv + g` (`v ← g` on the first step), `θ ← θ − η v`.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Hyper-parameters of [`Sgd`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SgdConfig {
    /// Learning rate η.
    pub lr: f64,
    /// Momentum μ (0 disables it).
    pub momentum: f64,
    /// L2 weight decay λ, added to the gradient.
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self {
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 5e-4,
        }
    }
}

/// SGD over a fixed set of parameters.
#[derive(Debug)]
pub struct Sgd {
    config: SgdConfig,
    params: Vec<(Var, Option<Tensor>)>,
}

impl Sgd {
    /// An optimiser updating `vars`.
    pub fn new(vars: Vec<Var>, config: SgdConfig) -> Self {
        Self {
            config,
            params: vars.into_iter().map(|v| (v, None)).collect(),
        }
    }

    /// The parameters this optimiser updates.
    pub fn vars(&self) -> impl Iterator<Item = &Var> {
        self.params.iter().map(|(v, _)| v)
    }

    /// Applies one update from `grads`; parameters without a gradient are left untouched.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step_with(|var| grads.get(var).cloned())
    }

    /// Applies one update with the gradients `grad_of` gives (e.g. a method's combined
    /// gradients); parameters for which it gives `None` are left untouched.
    pub fn step_with(&mut self, grad_of: impl Fn(&Var) -> Option<Tensor>) -> Result<()> {
        let SgdConfig {
            lr,
            momentum,
            weight_decay,
        } = self.config;
        for (var, velocity) in &mut self.params {
            let Some(grad) = grad_of(var) else { continue };
            // Detached throughout: the velocity must not carry the autograd history of every
            // previous step (it would keep all of them alive).
            let theta = var.as_tensor().detach();
            let mut g = grad.detach();
            if weight_decay != 0.0 {
                g = (g + (&theta * weight_decay)?)?;
            }
            if momentum != 0.0 {
                let v = match velocity.take() {
                    Some(prev) => ((prev * momentum)? + g)?,
                    None => g,
                };
                *velocity = Some(v.clone());
                g = v;
            }
            var.set(&(theta - (g * lr)?)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use candle_core::Device;

    #[test]
    fn velocity_keeps_no_autograd_history() {
        // A velocity that tracked ops would chain every step's graph and leak memory.
        let var = Var::new(&[1f32, 2.0], &Device::Cpu).unwrap();
        let mut sgd = Sgd::new(vec![var.clone()], SgdConfig::default());
        for _ in 0..2 {
            let grads = var
                .as_tensor()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            sgd.step(&grads).unwrap();
        }
        let velocity = sgd.params[0].1.as_ref().unwrap();
        assert!(!velocity.track_op());
    }

    #[test]
    fn matches_torch_sgd_by_hand() {
        // θ = 1, loss = θ² → ∇ = 2θ; lr 0.1, μ 0.9, wd 0.01
        let var = Var::new(&[1f32], &Device::Cpu).unwrap();
        let cfg = SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 0.01,
        };
        let mut sgd = Sgd::new(vec![var.clone()], cfg);
        let mut theta = 1f64;
        let mut v = 0f64;
        for step in 0..3 {
            let grads = var
                .as_tensor()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            sgd.step(&grads).unwrap();
            let g = 2.0 * theta + 0.01 * theta;
            v = if step == 0 { g } else { 0.9 * v + g };
            theta -= 0.1 * v;
            let got = var.as_tensor().to_vec1::<f32>().unwrap()[0] as f64;
            assert!((got - theta).abs() < 1e-6, "step {step}: {got} vs {theta}");
        }
    }
}
