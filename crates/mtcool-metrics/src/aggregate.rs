//! Aggregation over runs: mean ± sample standard deviation, and Δm% against single-task
//! baselines.
//!
//! ```
//! use mtcool_metrics::{delta_m, mean_std, DeltaTerm};
//!
//! let (mean, sd) = mean_std(&[0.80, 0.82, 0.84]);
//! assert!((mean - 0.82).abs() < 1e-12 && (sd - 0.02).abs() < 1e-12);
//!
//! // Dice up 2 % of the baseline, error rate down 10 %: Δm = (2 + 10) / 2 = 6 %.
//! let dm = delta_m(&[
//!     DeltaTerm::new(0.816, 0.80, true),
//!     DeltaTerm::new(0.09, 0.10, false),
//! ])?;
//! assert!((dm - 6.0).abs() < 1e-9);
//! # Ok::<(), mtcool_metrics::MetricsError>(())
//! ```

use crate::error::MetricsError;

/// Mean and **sample** standard deviation (divisor n − 1, numpy's `std(ddof=1)`) of the
/// values, as papers report "mean ± sd over runs".
///
/// Conventions: one value gives sd 0 (not NaN: a single run has no spread to report); no
/// values give `(NaN, NaN)`; a NaN or infinite value propagates into both results.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return (mean, if mean.is_finite() { 0.0 } else { f64::NAN });
    }
    // Two passes: the squares are taken about the mean, which keeps them accurate.
    let ss: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    (mean, (ss / (n - 1) as f64).sqrt())
}

/// One metric of one task in a Δm comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeltaTerm {
    /// The multi-task model's value M_t.
    pub value: f64,
    /// The single-task baseline's value M_b,t (must be non-zero).
    pub baseline: f64,
    /// True for metrics where larger is better (Dice, accuracy, AUROC), false for errors and
    /// losses.
    pub higher_is_better: bool,
}

impl DeltaTerm {
    /// A term from its value, baseline and direction.
    pub fn new(value: f64, baseline: f64, higher_is_better: bool) -> Self {
        Self {
            value,
            baseline,
            higher_is_better,
        }
    }

    /// The relative change in percent, signed so that positive means better than the
    /// baseline: ±(M_t − M_b,t) / M_b,t × 100.
    pub fn gain_percent(&self) -> f64 {
        let rel = (self.value - self.baseline) / self.baseline * 100.0;
        if self.higher_is_better {
            rel
        } else {
            -rel
        }
    }

    fn check(&self, index: usize) -> Result<f64, MetricsError> {
        if self.baseline == 0.0 || !self.baseline.is_finite() {
            return Err(MetricsError::InvalidBaseline {
                index,
                baseline: self.baseline,
            });
        }
        if !self.value.is_finite() {
            return Err(MetricsError::NonFinite {
                what: "Δm term",
                index,
                value: self.value,
            });
        }
        Ok(self.gain_percent())
    }
}

/// Δm% of Maninis et al. (CVPR 2019), as used by LibMTL and Vandenhende et al.: the mean over
/// the `T` terms of the signed relative change against the single-task baseline,
///
/// Δm = (1/T) Σ_t (−1)^{l_t} (M_b,t − M_t) / M_b,t × 100, with l_t = 1 when higher is better,
///
/// so that **positive Δm means the multi-task model is better** on average. Every term weighs
/// the same; for LibMTL's weighting of tasks with several metrics see [`delta_m_per_task`].
/// The relative change assumes positive metrics (as all of ours are).
///
/// # Errors
/// [`MetricsError::Empty`] for no terms, [`MetricsError::InvalidBaseline`] for a zero or
/// non-finite baseline, [`MetricsError::NonFinite`] for a NaN or infinite value.
pub fn delta_m(terms: &[DeltaTerm]) -> Result<f64, MetricsError> {
    if terms.is_empty() {
        return Err(MetricsError::Empty("delta_m"));
    }
    let mut sum = 0.0;
    for (index, term) in terms.iter().enumerate() {
        sum += term.check(index)?;
    }
    Ok(sum / terms.len() as f64)
}

/// Δm% with LibMTL's task weighting (`count_improvement`): average the signed relative changes
/// within each task first, then over tasks, so a task with several metrics counts once. Equals
/// [`delta_m`] when every task has one metric. Term indices in errors count across all tasks.
///
/// # Errors
/// As [`delta_m`], and [`MetricsError::Empty`] if a task has no terms.
pub fn delta_m_per_task(tasks: &[&[DeltaTerm]]) -> Result<f64, MetricsError> {
    if tasks.is_empty() {
        return Err(MetricsError::Empty("delta_m_per_task"));
    }
    let mut index = 0;
    let mut sum = 0.0;
    for task in tasks {
        if task.is_empty() {
            return Err(MetricsError::Empty("delta_m_per_task: a task"));
        }
        let mut task_sum = 0.0;
        for term in task.iter() {
            task_sum += term.check(index)?;
            index += 1;
        }
        sum += task_sum / task.len() as f64;
    }
    Ok(sum / tasks.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_std_conventions() {
        assert_eq!(mean_std(&[3.0]), (3.0, 0.0));
        let (m, s) = mean_std(&[]);
        assert!(m.is_nan() && s.is_nan());
        let (m, s) = mean_std(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m, 2.5);
        assert!((s - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
        let (m, s) = mean_std(&[1.0, f64::NAN]);
        assert!(m.is_nan() && s.is_nan());
        // Large offset, small spread: the two-pass formula stays accurate.
        let (_, s) = mean_std(&[1e9 + 1.0, 1e9 + 2.0, 1e9 + 3.0]);
        assert!((s - 1.0).abs() < 1e-6);
    }

    #[test]
    fn delta_m_signs() {
        // Better on a higher-is-better metric is positive; so is lower on a lower-is-better.
        assert!((delta_m(&[DeltaTerm::new(0.9, 0.8, true)]).expect("valid") - 12.5).abs() < 1e-12);
        assert!((delta_m(&[DeltaTerm::new(0.9, 0.8, false)]).expect("valid") + 12.5).abs() < 1e-12);
        assert_eq!(
            delta_m(&[DeltaTerm::new(1.0, 1.0, true)]).expect("valid"),
            0.0
        );
    }

    #[test]
    fn per_task_weighting() {
        let seg = [
            DeltaTerm::new(1.1, 1.0, true),
            DeltaTerm::new(1.3, 1.0, true),
        ];
        let cls = [DeltaTerm::new(0.5, 1.0, false)];
        let per_task = delta_m_per_task(&[&seg, &cls]).expect("valid");
        assert!((per_task - (20.0 + 50.0) / 2.0).abs() < 1e-9);
        let flat = delta_m(&[seg[0], seg[1], cls[0]]).expect("valid");
        assert!((flat - (10.0 + 30.0 + 50.0) / 3.0).abs() < 1e-9);
    }

    #[test]
    fn delta_m_errors() {
        assert_eq!(delta_m(&[]), Err(MetricsError::Empty("delta_m")));
        assert!(matches!(
            delta_m(&[
                DeltaTerm::new(1.0, 1.0, true),
                DeltaTerm::new(1.0, 0.0, true)
            ]),
            Err(MetricsError::InvalidBaseline { index: 1, .. })
        ));
        assert!(matches!(
            delta_m(&[DeltaTerm::new(f64::NAN, 1.0, true)]),
            Err(MetricsError::NonFinite { index: 0, .. })
        ));
        assert!(delta_m_per_task(&[]).is_err());
        assert!(delta_m_per_task(&[&[]]).is_err());
        let ok = [DeltaTerm::new(1.0, 1.0, true)];
        let bad = [DeltaTerm::new(1.0, f64::INFINITY, true)];
        assert!(matches!(
            delta_m_per_task(&[&ok, &bad]),
            Err(MetricsError::InvalidBaseline { index: 1, .. })
        ));
    }
}
