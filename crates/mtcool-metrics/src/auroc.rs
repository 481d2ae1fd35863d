//! Area under the ROC curve, exact and tie-aware.
//!
//! AUROC is the probability that a random positive scores higher than a random negative,
//! counting ties as one half: the Mann–Whitney statistic divided by its maximum,
//!
//! AUROC = (#{(i, j): s⁺ᵢ > s⁻ⱼ} + ½ #{(i, j): s⁺ᵢ = s⁻ⱼ}) / (n⁺ n⁻),
//!
//! which is what scikit-learn's `roc_auc_score` computes with the trapezoidal rule. Here it is
//! computed exactly in integers (twice the statistic, as `u128`) after sorting, and divided once.
//!
//! Conventions: a NaN score is an error ([`MetricsError::NanScore`]; scikit-learn rejects it as
//! well); ±∞ are ordinary scores; −0.0 ties with 0.0. With no positive or no negative target
//! AUROC is undefined and [`MetricsError::SingleClass`] is returned (scikit-learn returns NaN
//! with a warning, older releases raise).
//!
//! ```
//! use mtcool_metrics::{auroc, AurocAccumulator};
//!
//! // One tie between a positive and a negative counts one half.
//! assert_eq!(auroc(&[0.1, 0.4, 0.4, 0.8], &[false, false, true, true])?, 0.875);
//!
//! // Streaming, per image, restricted to the field of view; f32 scores are accepted.
//! let mut acc = AurocAccumulator::new();
//! acc.try_add_masked(&[0.9f32, 0.2, 0.7], &[true, false, false], &[true, true, false])?;
//! acc.try_add(&[0.3f32], &[true])?;
//! assert_eq!(acc.compute()?, 1.0);
//! # Ok::<(), mtcool_metrics::MetricsError>(())
//! ```

use crate::error::{check_len, MetricsError};

/// Streaming AUROC: keeps the scores of the counted positions, split by label (so labels take
/// no memory; 8 bytes per counted position), and computes the exact statistic on demand.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AurocAccumulator {
    pos: Vec<f64>,
    neg: Vec<f64>,
    /// Whether both vectors are currently sorted.
    sorted: bool,
}

impl AurocAccumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one batch of scores (higher means "more likely positive") and their labels.
    ///
    /// # Errors
    /// [`MetricsError::LengthMismatch`] or [`MetricsError::NanScore`]; the accumulator is then
    /// unchanged.
    pub fn try_add<S: Copy + Into<f64>>(
        &mut self,
        scores: &[S],
        labels: &[bool],
    ) -> Result<(), MetricsError> {
        check_len("labels", labels.len(), scores.len())?;
        if let Some(index) = scores.iter().position(|&s| s.into().is_nan()) {
            return Err(MetricsError::NanScore { index });
        }
        for (&s, &l) in scores.iter().zip(labels) {
            self.push(s.into(), l);
        }
        Ok(())
    }

    /// Adds one batch, keeping only the positions where `mask` is true (e.g. the field of
    /// view). Scores outside the mask are not looked at.
    ///
    /// # Errors
    /// As [`try_add`](Self::try_add).
    pub fn try_add_masked<S: Copy + Into<f64>>(
        &mut self,
        scores: &[S],
        labels: &[bool],
        mask: &[bool],
    ) -> Result<(), MetricsError> {
        check_len("labels", labels.len(), scores.len())?;
        check_len("mask", mask.len(), scores.len())?;
        let nan = scores
            .iter()
            .zip(mask)
            .position(|(&s, &m)| m && s.into().is_nan());
        if let Some(index) = nan {
            return Err(MetricsError::NanScore { index });
        }
        for ((&s, &l), _) in scores.iter().zip(labels).zip(mask).filter(|(_, &m)| m) {
            self.push(s.into(), l);
        }
        Ok(())
    }

    /// Adds everything another accumulator holds.
    pub fn merge(&mut self, other: &Self) {
        self.pos.extend_from_slice(&other.pos);
        self.neg.extend_from_slice(&other.neg);
        self.sorted = false;
    }

    /// Forgets every score (keeping the allocation).
    pub fn reset(&mut self) {
        self.pos.clear();
        self.neg.clear();
        self.sorted = false;
    }

    /// Number of positive labels seen.
    pub fn positives(&self) -> u64 {
        self.pos.len() as u64
    }

    /// Number of negative labels seen.
    pub fn negatives(&self) -> u64 {
        self.neg.len() as u64
    }

    /// The exact AUROC of everything added so far. Takes `&mut self` because it sorts the
    /// stored scores in place (O(n log n) once; further adds are allowed).
    ///
    /// # Errors
    /// [`MetricsError::SingleClass`] if no positive or no negative was seen.
    pub fn compute(&mut self) -> Result<f64, MetricsError> {
        if self.pos.is_empty() || self.neg.is_empty() {
            return Err(MetricsError::SingleClass {
                positives: self.positives(),
                negatives: self.negatives(),
            });
        }
        if !self.sorted {
            self.pos.sort_unstable_by(f64::total_cmp);
            self.neg.sort_unstable_by(f64::total_cmp);
            self.sorted = true;
        }
        Ok(mann_whitney(&self.pos, &self.neg))
    }

    fn push(&mut self, score: f64, label: bool) {
        // Adding 0.0 turns −0.0 into 0.0, so that the total order used for sorting ties them.
        let score = score + 0.0;
        if label {
            self.pos.push(score);
        } else {
            self.neg.push(score);
        }
        self.sorted = false;
    }
}

/// U / (n⁺ n⁻) for sorted, NaN-free, non-empty score lists, computed as the integer 2U.
fn mann_whitney(pos: &[f64], neg: &[f64]) -> f64 {
    let mut twice_u: u128 = 0;
    let (mut i, mut below) = (0, 0);
    while i < pos.len() {
        let v = pos[i];
        while below < neg.len() && neg[below] < v {
            below += 1;
        }
        let ties = neg[below..].iter().take_while(|&&s| s == v).count();
        let start = i;
        while i < pos.len() && pos[i] == v {
            i += 1;
        }
        let group = (i - start) as u128;
        twice_u += group * (2 * below as u128 + ties as u128);
    }
    let pairs = 2 * pos.len() as u128 * neg.len() as u128;
    twice_u as f64 / pairs as f64
}

/// Exact, tie-aware AUROC of `scores` against `labels` (true = positive).
///
/// # Errors
/// [`MetricsError::LengthMismatch`], [`MetricsError::NanScore`], or
/// [`MetricsError::SingleClass`] when the labels are all equal (or empty).
pub fn auroc(scores: &[f64], labels: &[bool]) -> Result<f64, MetricsError> {
    let mut acc = AurocAccumulator::new();
    acc.try_add(scores, labels)?;
    acc.compute()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition: every positive/negative pair.
    fn pairwise(scores: &[f64], labels: &[bool]) -> f64 {
        let (mut wins, mut pairs) = (0.0, 0.0);
        for (i, &si) in scores.iter().enumerate() {
            for (j, &sj) in scores.iter().enumerate() {
                if labels[i] && !labels[j] {
                    pairs += 1.0;
                    if si > sj {
                        wins += 1.0;
                    } else if si == sj {
                        wins += 0.5;
                    }
                }
            }
        }
        wins / pairs
    }

    #[test]
    fn matches_pairwise_definition_with_many_ties() {
        let scores: Vec<f64> = (0..200).map(|i| f64::from((i * 37) % 11)).collect();
        let labels: Vec<bool> = (0..200).map(|i| (i * 13) % 7 < 3).collect();
        let exact = auroc(&scores, &labels).expect("both classes");
        assert!((exact - pairwise(&scores, &labels)).abs() < 1e-15);
    }

    #[test]
    fn perfect_reversed_and_all_tied() {
        let labels = [false, false, true, true];
        assert_eq!(auroc(&[0.0, 1.0, 2.0, 3.0], &labels), Ok(1.0));
        assert_eq!(auroc(&[3.0, 2.0, 1.0, 0.0], &labels), Ok(0.0));
        assert_eq!(auroc(&[5.0; 4], &labels), Ok(0.5));
    }

    #[test]
    fn infinities_and_signed_zero() {
        let labels = [false, true, false, true];
        assert_eq!(
            auroc(&[f64::NEG_INFINITY, f64::INFINITY, 0.0, 1.0], &labels),
            Ok(1.0)
        );
        assert_eq!(auroc(&[0.0, -0.0], &[false, true]), Ok(0.5));
        assert_eq!(
            auroc(&[f64::INFINITY, f64::INFINITY], &[false, true]),
            Ok(0.5)
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            auroc(&[0.1, 0.2], &[true, true]),
            Err(MetricsError::SingleClass {
                positives: 2,
                negatives: 0
            })
        );
        assert!(matches!(
            auroc(&[], &[]),
            Err(MetricsError::SingleClass { .. })
        ));
        assert_eq!(
            auroc(&[0.1, f64::NAN], &[true, false]),
            Err(MetricsError::NanScore { index: 1 })
        );
        assert!(matches!(
            auroc(&[0.1], &[true, false]),
            Err(MetricsError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn streaming_equals_one_shot_and_errors_leave_state() {
        let scores: Vec<f64> = (0..50).map(|i| f64::from((i * 7) % 13) / 13.0).collect();
        let labels: Vec<bool> = (0..50).map(|i| i % 3 == 0).collect();
        let mut acc = AurocAccumulator::new();
        for (s, l) in scores.chunks(7).zip(labels.chunks(7)) {
            acc.try_add(s, l).expect("valid batch");
        }
        let before = acc.clone();
        assert!(acc.try_add(&[0.5, f64::NAN], &[true, false]).is_err());
        assert_eq!(acc, before);
        let streamed = acc.compute().expect("both classes");
        assert_eq!(streamed, auroc(&scores, &labels).expect("both classes"));
        // Adding after a compute re-sorts.
        acc.try_add(&[2.0], &[false]).expect("valid");
        let mut all = scores.clone();
        all.push(2.0);
        let mut all_labels = labels.clone();
        all_labels.push(false);
        assert_eq!(acc.compute(), auroc(&all, &all_labels));
        let mut merged = AurocAccumulator::new();
        merged.merge(&acc);
        assert_eq!(merged.compute(), acc.compute());
        merged.reset();
        assert_eq!(merged.positives() + merged.negatives(), 0);
    }

    #[test]
    fn mask_skips_positions_and_their_nans() {
        let mut acc = AurocAccumulator::new();
        acc.try_add_masked(
            &[0.9, f64::NAN, 0.1],
            &[true, true, false],
            &[true, false, true],
        )
        .expect("NaN is outside the mask");
        assert_eq!((acc.positives(), acc.negatives()), (1, 1));
        assert_eq!(
            acc.try_add_masked(&[f64::NAN], &[true], &[true]),
            Err(MetricsError::NanScore { index: 0 })
        );
    }
}
