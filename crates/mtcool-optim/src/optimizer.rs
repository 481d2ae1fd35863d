//! The optimiser a method steps with: SGD (the MT-COOL tables) or Adam (the UCL report, and
//! LibMTL's default for every method).

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::adam::{AdamConfig, Moments};
use crate::error::Result;
use crate::sgd::SgdConfig;
use crate::state::{matching, MethodState, VarNames};

/// Which optimiser, by name (`optimizer = "sgd" | "adam"` in a config).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// SGD with momentum and weight decay.
    #[default]
    Sgd,
    /// Adam.
    Adam,
}

impl std::fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sgd => "sgd",
            Self::Adam => "adam",
        })
    }
}

/// An optimiser with its hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptimizerConfig {
    /// SGD.
    Sgd(SgdConfig),
    /// Adam.
    Adam(AdamConfig),
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self::Sgd(SgdConfig::default())
    }
}

impl From<SgdConfig> for OptimizerConfig {
    fn from(config: SgdConfig) -> Self {
        Self::Sgd(config)
    }
}

impl From<AdamConfig> for OptimizerConfig {
    fn from(config: AdamConfig) -> Self {
        Self::Adam(config)
    }
}

impl OptimizerConfig {
    /// The base learning rate (before any schedule).
    pub fn lr(&self) -> f64 {
        match self {
            Self::Sgd(c) => c.lr,
            Self::Adam(c) => c.lr,
        }
    }
}

impl std::fmt::Display for OptimizerConfig {
    /// `SGD (lr 0.01, momentum 0.9, weight decay 0.0005)` or `Adam (lr 0.001, β 0.9 / 0.999,
    /// ε 1e-8, weight decay 0)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sgd(c) => write!(
                f,
                "SGD (lr {}, momentum {}, weight decay {})",
                c.lr, c.momentum, c.weight_decay
            ),
            Self::Adam(c) => write!(
                f,
                "Adam (lr {}, β {} / {}, ε {:e}, weight decay {})",
                c.lr, c.beta1, c.beta2, c.eps, c.weight_decay
            ),
        }
    }
}

/// What the optimiser remembers of one parameter.
#[derive(Debug)]
enum State {
    /// SGD's velocity.
    Velocity(Tensor),
    /// Adam's moment estimates.
    Moments(Moments),
}

/// SGD or Adam over a fixed set of parameters.
#[derive(Debug)]
pub struct Optimizer {
    config: OptimizerConfig,
    lr_scale: f64,
    params: Vec<(Var, Option<State>)>,
}

impl Optimizer {
    /// An optimiser updating `vars`.
    pub fn new(vars: Vec<Var>, config: impl Into<OptimizerConfig>) -> Self {
        Self {
            config: config.into(),
            lr_scale: 1.0,
            params: vars.into_iter().map(|v| (v, None)).collect(),
        }
    }

    /// Multiplies the configured learning rate by `scale` from the next step on (a
    /// learning-rate schedule's factor for the epoch).
    pub fn set_lr_scale(&mut self, scale: f64) {
        self.lr_scale = scale;
    }

    /// The configured hyper-parameters with the learning rate scaled.
    fn scaled_config(&self) -> OptimizerConfig {
        match self.config {
            OptimizerConfig::Sgd(c) => OptimizerConfig::Sgd(SgdConfig {
                lr: c.lr * self.lr_scale,
                ..c
            }),
            OptimizerConfig::Adam(c) => OptimizerConfig::Adam(AdamConfig {
                lr: c.lr * self.lr_scale,
                ..c
            }),
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
    /// gradients); parameters for which it gives `None` are left untouched (and Adam's step
    /// count for them does not advance, as in PyTorch).
    pub fn step_with(&mut self, grad_of: impl Fn(&Var) -> Option<Tensor>) -> Result<()> {
        let config = self.scaled_config();
        for (var, state) in &mut self.params {
            let Some(grad) = grad_of(var) else { continue };
            // Detached throughout: the state must not carry the autograd history of every
            // previous step (it would keep all of them alive).
            let theta = var.as_tensor().detach();
            let grad = grad.detach();
            let (next, kept) = match (config, state.take()) {
                (OptimizerConfig::Sgd(c), previous) => {
                    let velocity = match previous {
                        Some(State::Velocity(v)) => Some(v),
                        _ => None,
                    };
                    let (next, velocity) = c.update(&theta, grad, velocity)?;
                    (next, velocity.map(State::Velocity))
                }
                (OptimizerConfig::Adam(c), previous) => {
                    let moments = match previous {
                        Some(State::Moments(m)) => Some(m),
                        _ => None,
                    };
                    let (next, moments) = c.update(&theta, grad, moments)?;
                    (next, Some(State::Moments(moments)))
                }
            };
            var.set(&next)?;
            *state = kept;
        }
        Ok(())
    }

    /// What it remembers of each parameter `p` (named by `names`): `p.velocity` for SGD,
    /// `p.first`, `p.second` and `p.steps` for Adam; nothing for one not yet updated.
    pub fn state(&self, names: &VarNames) -> Result<MethodState> {
        let mut saved = MethodState::default();
        for (i, (var, state)) in self.params.iter().enumerate() {
            let i = names.name(var, i);
            match state {
                Some(State::Velocity(v)) => saved.put_tensor(format!("{i}.velocity"), v)?,
                Some(State::Moments(m)) => {
                    let (first, second, steps) = m.parts();
                    saved.put_tensor(format!("{i}.first"), first)?;
                    saved.put_tensor(format!("{i}.second"), second)?;
                    saved.put(format!("{i}.steps"), &steps)?;
                }
                None => {}
            }
        }
        Ok(saved)
    }

    /// Restores what [`Optimizer::state`] saved (for the same parameters).
    pub fn restore(&mut self, names: &VarNames, saved: &MethodState) -> Result<()> {
        let mut restored = Vec::with_capacity(self.params.len());
        for (i, (var, _)) in self.params.iter().enumerate() {
            let i = names.name(var, i);
            let tensor = |part: &str| -> Result<Option<Tensor>> {
                let name = format!("{i}.{part}");
                saved
                    .maybe_tensor(&name)
                    .map(|t| matching(t, var, &name))
                    .transpose()
            };
            let state = match (self.config, tensor("velocity")?, tensor("first")?) {
                (OptimizerConfig::Sgd(_), Some(v), _) => Some(State::Velocity(v)),
                (OptimizerConfig::Adam(_), _, Some(first)) => {
                    let second = tensor("second")?.ok_or_else(|| crate::OptimError::State {
                        problem: format!("`{i}.second` is missing"),
                    })?;
                    let steps = saved.get(&format!("{i}.steps"))?;
                    Some(State::Moments(Moments::from_parts(first, second, steps)))
                }
                _ => None,
            };
            restored.push(state);
        }
        for ((_, state), saved) in self.params.iter_mut().zip(restored) {
            *state = saved;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod testing {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// One step of `optimizer` on `scale · Σ var²`.
    pub fn step_on_sum_of_squares(optimizer: &mut Optimizer, var: &Var, scale: f64) {
        let loss = (var.as_tensor().sqr().unwrap().sum_all().unwrap() * scale).unwrap();
        optimizer.step(&loss.backward().unwrap()).unwrap();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::testing::step_on_sum_of_squares;
    use super::*;
    use crate::AdamConfig;
    use candle_core::Device;

    #[test]
    fn configs_describe_themselves() {
        assert_eq!(
            OptimizerConfig::default().to_string(),
            "SGD (lr 0.01, momentum 0.9, weight decay 0.0005)"
        );
        assert_eq!(
            OptimizerConfig::from(AdamConfig::default()).to_string(),
            "Adam (lr 0.001, β 0.9 / 0.999, ε 1e-8, weight decay 0)"
        );
    }

    #[test]
    fn lr_scale_acts_as_a_smaller_learning_rate() {
        for (config, halved) in [
            (
                OptimizerConfig::from(SgdConfig::default()),
                OptimizerConfig::from(SgdConfig {
                    lr: 0.005,
                    ..SgdConfig::default()
                }),
            ),
            (
                AdamConfig::default().into(),
                AdamConfig {
                    lr: 5e-4,
                    ..AdamConfig::default()
                }
                .into(),
            ),
        ] {
            let scaled = Var::new(&[1f32, -2.0], &Device::Cpu).unwrap();
            let reference = Var::new(&[1f32, -2.0], &Device::Cpu).unwrap();
            let mut a = Optimizer::new(vec![scaled.clone()], config);
            let mut b = Optimizer::new(vec![reference.clone()], halved);
            a.set_lr_scale(0.5);
            for _ in 0..3 {
                step_on_sum_of_squares(&mut a, &scaled, 1.0);
                step_on_sum_of_squares(&mut b, &reference, 1.0);
            }
            let values = |v: &Var| v.as_tensor().to_vec1::<f32>().unwrap();
            assert_eq!(values(&scaled), values(&reference), "{config:?}");
        }
    }

    #[test]
    fn state_keeps_no_autograd_history() {
        // State that tracked ops would chain every step's graph and leak memory.
        for config in [
            OptimizerConfig::from(SgdConfig::default()),
            AdamConfig::default().into(),
        ] {
            let var = Var::new(&[1f32, 2.0], &Device::Cpu).unwrap();
            let mut optimizer = Optimizer::new(vec![var.clone()], config);
            for _ in 0..2 {
                step_on_sum_of_squares(&mut optimizer, &var, 1.0);
            }
            let tracked = match optimizer.params[0].1.as_ref().unwrap() {
                State::Velocity(v) => v.track_op(),
                State::Moments(m) => m.tracks_op(),
            };
            assert!(!tracked, "{config:?}");
        }
    }
}
