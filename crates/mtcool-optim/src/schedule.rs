//! Learning-rate schedules: a factor on every optimiser's learning rate, set once per epoch
//! (PyTorch's `StepLR` / `CosineAnnealingLR` stepped after each epoch).

use serde::{Deserialize, Serialize};

/// How the learning rate changes over the epochs of a run (`training.lr_schedule`).
///
/// ```toml
/// lr_schedule = { kind = "step", every = 30, gamma = 0.5 }   # halve every 30 epochs
/// lr_schedule = { kind = "cosine" }                          # cosine annealing to 0
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum LrSchedule {
    /// The configured learning rate throughout (the MT-COOL tables).
    #[default]
    Constant,
    /// Multiplied by `gamma` every `every` epochs (`StepLR`).
    Step {
        /// Epochs between two decays.
        every: usize,
        /// Factor applied at each decay.
        gamma: f64,
    },
    /// Cosine annealing from the configured rate to `min_factor` × it over the run
    /// (`CosineAnnealingLR` with `T_max` = the run's epochs).
    Cosine {
        /// The final factor (0 unless given).
        #[serde(default)]
        min_factor: f64,
    },
}

impl LrSchedule {
    /// The factor on the learning rate during `epoch` (0-based) of a run of `epochs`.
    pub fn factor(&self, epoch: usize, epochs: usize) -> f64 {
        match *self {
            Self::Constant => 1.0,
            Self::Step { every, gamma } => {
                let decays = epoch.checked_div(every).unwrap_or(0);
                gamma.powi(i32::try_from(decays).unwrap_or(i32::MAX))
            }
            Self::Cosine { min_factor } => {
                let progress = epoch as f64 / epochs.max(1) as f64;
                min_factor
                    + (1.0 - min_factor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }

    /// Whether the schedule is the constant one (left out of result fingerprints, so runs
    /// from before schedules existed stay valid).
    pub fn is_constant(&self) -> bool {
        matches!(self, Self::Constant)
    }

    /// Checks the parameters; the message names the bad one.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Self::Step { every: 0, .. } => Err("lr_schedule: `every` must be at least 1".into()),
            Self::Step { gamma, .. } if !(gamma.is_finite() && gamma > 0.0) => Err(format!(
                "lr_schedule: `gamma` must be positive, not {gamma}"
            )),
            Self::Cosine { min_factor } if !(0.0..=1.0).contains(&min_factor) => Err(format!(
                "lr_schedule: `min_factor` must lie in [0, 1], not {min_factor}"
            )),
            _ => Ok(()),
        }
    }
}

impl std::fmt::Display for LrSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Constant => f.write_str("constant"),
            Self::Step { every, gamma } => write!(f, "×{gamma} every {every} epochs"),
            Self::Cosine { min_factor } => write!(f, "cosine to ×{min_factor}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_decays_at_each_multiple_of_every() {
        let s = LrSchedule::Step {
            every: 30,
            gamma: 0.5,
        };
        let factors: Vec<f64> = [0, 29, 30, 59, 60, 99].map(|e| s.factor(e, 100)).into();
        assert_eq!(factors, [1.0, 1.0, 0.5, 0.5, 0.25, 0.125]);
    }

    #[test]
    fn cosine_matches_pytorch_closed_form() {
        let s = LrSchedule::Cosine { min_factor: 0.0 };
        assert_eq!(s.factor(0, 50), 1.0);
        assert!((s.factor(25, 50) - 0.5).abs() < 1e-12);
        // CosineAnnealingLR after 49 of T_max = 50 steps: (1 + cos(49π/50)) / 2.
        let expected = 0.5 * (1.0 + (49.0 * std::f64::consts::PI / 50.0).cos());
        assert!((s.factor(49, 50) - expected).abs() < 1e-12);
        let floor = LrSchedule::Cosine { min_factor: 0.1 };
        assert!((floor.factor(25, 50) - 0.55).abs() < 1e-12);
    }

    #[test]
    fn parses_from_toml_and_rejects_bad_parameters() {
        #[derive(Deserialize)]
        struct T {
            lr_schedule: LrSchedule,
        }
        let t: T = toml::from_str("lr_schedule = { kind = \"step\", every = 10, gamma = 0.85 }")
            .expect("parses");
        assert_eq!(
            t.lr_schedule,
            LrSchedule::Step {
                every: 10,
                gamma: 0.85
            }
        );
        let t: T = toml::from_str("lr_schedule = { kind = \"cosine\" }").expect("parses");
        assert_eq!(t.lr_schedule, LrSchedule::Cosine { min_factor: 0.0 });
        assert!(toml::from_str::<T>("lr_schedule = { kind = \"step\", every = 10 }").is_err());
        let zero = LrSchedule::Step {
            every: 0,
            gamma: 0.5,
        };
        assert!(zero.validate().unwrap_err().contains("every"));
        assert!(LrSchedule::Cosine { min_factor: 2.0 }.validate().is_err());
    }
}
