//! `uncertainty` (Kendall, Gal & Cipolla, CVPR 2018): learned log-variances s_i = log σ_i².
//!
//! - `form = "kendall"` (the paper): e^{−s_i} L_i + ½ s_i for classification tasks and
//!   ½ e^{−s_i} L_i + ½ s_i for regression tasks;
//! - `form = "libmtl"` (LibMTL's `UW`): e^{−s_i} L_i + s_i for every task.
//!
//! s_i starts at 0 and is trained by the network's optimiser (as LibMTL does).

use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::error::{OptimError, Result};
use crate::weighting_method::Weighting;

/// Which published form of the objective.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UncertaintyForm {
    /// Kendall et al.'s classification / regression forms.
    #[default]
    Kendall,
    /// LibMTL: e^{−s} L + s for all tasks.
    Libmtl,
}

/// Options of `uncertainty`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UncertaintyConfig {
    /// The objective's form.
    pub form: UncertaintyForm,
    /// Indices of regression tasks (the ½ e^{−s} L form); the others are classification.
    pub regression_tasks: Vec<usize>,
}

/// Uncertainty weighting.
#[derive(Debug)]
pub struct Uncertainty {
    log_vars: Vec<Var>,
    form: UncertaintyForm,
    regression: Vec<bool>,
}

impl Uncertainty {
    /// One log-variance per task, on `device`.
    pub fn new(config: &UncertaintyConfig, tasks: usize, device: &Device) -> Result<Self> {
        let mut regression = vec![false; tasks];
        for &t in &config.regression_tasks {
            *regression.get_mut(t).ok_or_else(|| OptimError::Config {
                method: "uncertainty".into(),
                problem: format!("regression task {t} out of range ({tasks} tasks)"),
            })? = true;
        }
        let log_vars = (0..tasks)
            .map(|_| Var::zeros((), DType::F32, device))
            .collect::<candle_core::Result<_>>()?;
        Ok(Self {
            log_vars,
            form: config.form,
            regression,
        })
    }

    /// The current log-variances s_i.
    pub fn log_variances(&self) -> Result<Vec<f64>> {
        self.log_vars
            .iter()
            .map(|s| Ok(s.as_tensor().to_dtype(DType::F64)?.to_scalar::<f64>()?))
            .collect()
    }
}

impl Weighting for Uncertainty {
    fn name(&self) -> &'static str {
        "uncertainty"
    }

    fn extra_vars(&self) -> Vec<Var> {
        self.log_vars.clone()
    }

    fn objective(&mut self, losses: &[Tensor], _values: &[f64]) -> Result<Tensor> {
        let mut total: Option<Tensor> = None;
        for ((loss, s), &regression) in losses.iter().zip(&self.log_vars).zip(&self.regression) {
            let s = s.as_tensor();
            let precision = s.neg()?.exp()?;
            let (data_scale, reg_scale) = match (self.form, regression) {
                (UncertaintyForm::Kendall, false) => (1.0, 0.5),
                (UncertaintyForm::Kendall, true) => (0.5, 0.5),
                (UncertaintyForm::Libmtl, _) => (1.0, 1.0),
            };
            let term = (((precision * loss)? * data_scale)? + (s * reg_scale)?)?;
            total = Some(match total {
                None => term,
                Some(acc) => (acc + term)?,
            });
        }
        total.ok_or_else(|| OptimError::Config {
            method: "uncertainty".into(),
            problem: "no task losses".into(),
        })
    }

    /// The precision e^{−s_i}, times ½ for Kendall's regression form.
    fn applied_weights(&self, _values: &[f64]) -> Result<Vec<f64>> {
        Ok(self
            .log_variances()?
            .iter()
            .zip(&self.regression)
            .map(|(s, &regression)| {
                let scale = match (self.form, regression) {
                    (UncertaintyForm::Kendall, true) => 0.5,
                    _ => 1.0,
                };
                scale * (-s).exp()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn log_variance_gradient_matches_the_formula() {
        // d/ds (e^{-s} L + ½ s) = −e^{-s} L + ½; at s = 0, L = 3: −2.5.
        // Regression form: d/ds (½ e^{-s} L + ½ s) = −1.5 + 0.5 = −1.
        let cfg = UncertaintyConfig {
            form: UncertaintyForm::Kendall,
            regression_tasks: vec![1],
        };
        let mut uw = Uncertainty::new(&cfg, 2, &Device::Cpu).unwrap();
        let l = Tensor::new(3f32, &Device::Cpu).unwrap();
        let obj = uw.objective(&[l.clone(), l], &[3.0, 3.0]).unwrap();
        let grads = obj.backward().unwrap();
        let g: Vec<f32> = uw
            .log_vars
            .iter()
            .map(|s| grads.get(s).unwrap().to_scalar::<f32>().unwrap())
            .collect();
        assert!(
            (g[0] + 2.5).abs() < 1e-6 && (g[1] + 1.0).abs() < 1e-6,
            "{g:?}"
        );
        // LibMTL form: −e^{-s} L + 1 = −2.
        let cfg = UncertaintyConfig {
            form: UncertaintyForm::Libmtl,
            regression_tasks: vec![],
        };
        let mut uw = Uncertainty::new(&cfg, 1, &Device::Cpu).unwrap();
        let l = Tensor::new(3f32, &Device::Cpu).unwrap();
        let grads = uw.objective(&[l], &[3.0]).unwrap().backward().unwrap();
        let g = grads
            .get(&uw.log_vars[0])
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((g + 2.0).abs() < 1e-6);
    }
}
