//! Adam (Kingma & Ba, 2015) with PyTorch's `torch.optim.Adam` semantics: `g ← ∇ + λθ`,
//! `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, `θ ← θ − η m̂ / (√v̂ + ε)` with the bias
//! corrections `m̂ = m / (1−β₁ᵗ)`, `v̂ = v / (1−β₂ᵗ)`.
//!
//! Adam's step is invariant to a rescaling of the objective, which the methods that learn
//! loss scales (uncertainty weighting, IMTL-L) rely on: LibMTL, their reference code, trains
//! with it by default.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Hyper-parameters of Adam (an [`crate::Optimizer`] made from them).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamConfig {
    /// Learning rate η.
    pub lr: f64,
    /// Decay of the first-moment estimate β₁.
    pub beta1: f64,
    /// Decay of the second-moment estimate β₂.
    pub beta2: f64,
    /// ε added to √v̂.
    pub eps: f64,
    /// L2 weight decay λ, added to the gradient (PyTorch's `Adam`, not `AdamW`).
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// One parameter's state: its moment estimates and how many updates it has had.
#[derive(Debug)]
pub(crate) struct Moments {
    first: Tensor,
    second: Tensor,
    steps: i32,
}

impl Moments {
    /// The estimates and the step count, for saving.
    pub(crate) fn parts(&self) -> (&Tensor, &Tensor, i32) {
        (&self.first, &self.second, self.steps)
    }

    /// Moments from saved parts.
    pub(crate) fn from_parts(first: Tensor, second: Tensor, steps: i32) -> Self {
        Self {
            first,
            second,
            steps,
        }
    }

    /// Whether either estimate carries autograd history (it must not).
    #[cfg(test)]
    pub(crate) fn tracks_op(&self) -> bool {
        self.first.track_op() || self.second.track_op()
    }
}

impl AdamConfig {
    /// One update of a parameter: its new value and moments. `theta` and `grad` must be
    /// detached, so the moments keep no autograd history.
    pub(crate) fn update(
        &self,
        theta: &Tensor,
        grad: Tensor,
        moments: Option<Moments>,
    ) -> Result<(Tensor, Moments)> {
        let Self {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        } = *self;
        let mut g = grad;
        if weight_decay != 0.0 {
            g = (g + (theta * weight_decay)?)?;
        }
        let moments = match moments {
            Some(Moments {
                first,
                second,
                steps,
            }) => Moments {
                first: ((first * beta1)? + (&g * (1.0 - beta1))?)?,
                second: ((second * beta2)? + (g.sqr()? * (1.0 - beta2))?)?,
                steps: steps + 1,
            },
            None => Moments {
                first: (&g * (1.0 - beta1))?,
                second: (g.sqr()? * (1.0 - beta2))?,
                steps: 1,
            },
        };
        let first_correction = 1.0 - beta1.powi(moments.steps);
        let second_correction = 1.0 - beta2.powi(moments.steps);
        let denominator = ((&moments.second / second_correction)?.sqrt()? + eps)?;
        let update = ((&moments.first / denominator)? * (lr / first_correction))?;
        Ok(((theta - update)?, moments))
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
    fn matches_torch_adam_by_hand() {
        // θ = [1, −2], loss = Σθ² → ∇ = 2θ; lr 0.1, wd 0.01.
        let var = Var::new(&[1f32, -2.0], &Device::Cpu).unwrap();
        let cfg = AdamConfig {
            lr: 0.1,
            weight_decay: 0.01,
            ..AdamConfig::default()
        };
        let mut adam = Optimizer::new(vec![var.clone()], cfg);
        let mut theta = [1f64, -2.0];
        let (mut m, mut v) = ([0f64; 2], [0f64; 2]);
        for step in 1..=4 {
            step_on_sum_of_squares(&mut adam, &var, 1.0);
            for i in 0..2 {
                let g = 2.0 * theta[i] + 0.01 * theta[i];
                m[i] = 0.9 * m[i] + 0.1 * g;
                v[i] = 0.999 * v[i] + 0.001 * g * g;
                let m_hat = m[i] / (1.0 - 0.9f64.powi(step));
                let v_hat = v[i] / (1.0 - 0.999f64.powi(step));
                theta[i] -= 0.1 * m_hat / (v_hat.sqrt() + 1e-8);
            }
            let got = var.as_tensor().to_vec1::<f32>().unwrap();
            for i in 0..2 {
                assert!(
                    (got[i] as f64 - theta[i]).abs() < 1e-5,
                    "step {step}: {got:?} vs {theta:?}"
                );
            }
        }
    }

    #[test]
    fn step_is_invariant_to_the_loss_scale() {
        // The property the loss-scale methods need: 100·L takes the same steps as L.
        let after_three_steps = |scale: f64| {
            let var = Var::new(&[0.5f32, 3.0], &Device::Cpu).unwrap();
            let mut adam = Optimizer::new(vec![var.clone()], AdamConfig::default());
            for _ in 0..3 {
                step_on_sum_of_squares(&mut adam, &var, scale);
            }
            var.as_tensor().to_vec1::<f32>().unwrap()
        };
        let (a, b) = (after_three_steps(1.0), after_three_steps(100.0));
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
        }
    }
}
