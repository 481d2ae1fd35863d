//! Stochastic gradient descent with momentum and weight decay (PyTorch's `torch.optim.SGD`
//! semantics): `g ← ∇ + λθ`, `v ← μv + g` (`v ← g` on the first step), `θ ← θ − η v`.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Hyper-parameters of SGD (an [`crate::Optimizer`] made from them).
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

impl SgdConfig {
    /// One update of a parameter: its new value, and its velocity (`None` without momentum).
    /// `theta` and `grad` must be detached, so the velocity keeps no autograd history.
    pub(crate) fn update(
        &self,
        theta: &Tensor,
        grad: Tensor,
        velocity: Option<Tensor>,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let mut g = grad;
        if self.weight_decay != 0.0 {
            g = (g + (theta * self.weight_decay)?)?;
        }
        let mut kept = None;
        if self.momentum != 0.0 {
            let v = match velocity {
                Some(prev) => ((prev * self.momentum)? + g)?,
                None => g,
            };
            kept = Some(v.clone());
            g = v;
        }
        Ok(((theta - (g * self.lr)?)?, kept))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::optimizer::testing::step_on_sum_of_squares;
    use crate::Optimizer;
    use candle_core::{Device, Var};

    #[test]
    fn matches_torch_sgd_by_hand() {
        // θ = 1, loss = θ² → ∇ = 2θ; lr 0.1, μ 0.9, wd 0.01
        let var = Var::new(&[1f32], &Device::Cpu).unwrap();
        let cfg = SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 0.01,
        };
        let mut sgd = Optimizer::new(vec![var.clone()], cfg);
        let mut theta = 1f64;
        let mut v = 0f64;
        for step in 0..3 {
            step_on_sum_of_squares(&mut sgd, &var, 1.0);
            let g = 2.0 * theta + 0.01 * theta;
            v = if step == 0 { g } else { 0.9 * v + g };
            theta -= 0.1 * v;
            let got = var.as_tensor().to_vec1::<f32>().unwrap()[0] as f64;
            assert!((got - theta).abs() < 1e-6, "step {step}: {got} vs {theta}");
        }
    }
}
