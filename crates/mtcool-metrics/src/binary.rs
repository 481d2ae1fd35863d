//! Binary (foreground / background) metrics: the four counts of a 2×2 confusion matrix and
//! everything derived from them.
//!
//! | metric | formula | when the denominator is 0 |
//! |---|---|---|
//! | accuracy (pixel accuracy) | (TP + TN) / N | 0 |
//! | precision | TP / (TP + FP) | 0 |
//! | sensitivity (recall) | TP / (TP + FN) | 0 |
//! | specificity | TN / (TN + FP) | 0 |
//! | F1 = Dice | 2TP / (2TP + FP + FN) | 0 |
//! | IoU (Jaccard) | TP / (TP + FP + FN) | 0 |
//!
//! **Zero division gives 0**, as scikit-learn's default `zero_division="warn"` does for
//! `precision_score`, `recall_score`, `f1_score` and `jaccard_score` (specificity is
//! `recall_score` with `pos_label=0`). In particular **Dice and IoU of two empty masks are 0**:
//! scikit-learn's `f1_score` and `jaccard_score` return 0 there (1 only with
//! `zero_division=1.0`). Keeping that value keeps Dice ≡ F1 and IoU = Dice / (2 − Dice)
//! true everywhere; callers that want to score an empty-vs-empty image as perfect can test
//! [`BinaryCounts::is_empty_pair`] themselves. Accuracy of empty input is 0 by the same rule
//! (scikit-learn rejects empty input).
//!
//! ```
//! use mtcool_metrics::{dice, iou, BinaryCounts};
//!
//! let pred = [true, true, false, false];
//! let target = [true, false, true, false];
//! assert_eq!(dice(&pred, &target), 0.5); // 2·1 / (2·1 + 1 + 1)
//! assert_eq!(iou(&pred, &target), 1.0 / 3.0);
//!
//! // The streaming form: add batches (here restricted to a field of view), read at the end.
//! let mut counts = BinaryCounts::default();
//! counts.try_add_masked(&pred, &target, &[true, true, true, false])?;
//! assert_eq!((counts.true_pos, counts.false_pos, counts.false_neg, counts.true_neg), (1, 1, 1, 0));
//! # Ok::<(), mtcool_metrics::MetricsError>(())
//! ```

use crate::error::{check_len, MetricsError};

/// Elements counted in `u32` before being added to the `u64` totals; small enough never to
/// overflow, large enough that the flush is free. Keeps the inner loops vectorisable.
const CHUNK: usize = 1 << 16;

/// `num / den`, or 0 when `den` is 0 (scikit-learn's default `zero_division`).
pub(crate) fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// The 2×2 confusion matrix of a binary prediction, as a streaming accumulator: add batches
/// with [`try_add`](Self::try_add) / [`try_add_masked`](Self::try_add_masked), or combine
/// partial counts with [`merge`](Self::merge), then read any metric.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct BinaryCounts {
    /// Predicted positive, truly positive.
    pub true_pos: u64,
    /// Predicted positive, truly negative.
    pub false_pos: u64,
    /// Predicted negative, truly positive.
    pub false_neg: u64,
    /// Predicted negative, truly negative.
    pub true_neg: u64,
}

impl BinaryCounts {
    /// Counts of one prediction against its target.
    ///
    /// # Panics
    /// If the slices have different lengths (a programming error; use
    /// [`try_add`](Self::try_add) to get an error instead).
    pub fn from_slices(pred: &[bool], target: &[bool]) -> Self {
        assert_eq!(pred.len(), target.len(), "pred and target lengths differ");
        let mut counts = Self::default();
        counts.add_unchecked(pred, target, None);
        counts
    }

    /// Adds one batch of predictions and targets.
    ///
    /// # Errors
    /// [`MetricsError::LengthMismatch`] if the lengths differ; the counts are then unchanged.
    pub fn try_add(&mut self, pred: &[bool], target: &[bool]) -> Result<(), MetricsError> {
        check_len("target", target.len(), pred.len())?;
        self.add_unchecked(pred, target, None);
        Ok(())
    }

    /// Adds one batch, counting only the positions where `mask` is true (e.g. the field of
    /// view of a fundus image).
    ///
    /// # Errors
    /// [`MetricsError::LengthMismatch`] if the lengths differ; the counts are then unchanged.
    pub fn try_add_masked(
        &mut self,
        pred: &[bool],
        target: &[bool],
        mask: &[bool],
    ) -> Result<(), MetricsError> {
        check_len("target", target.len(), pred.len())?;
        check_len("mask", mask.len(), pred.len())?;
        self.add_unchecked(pred, target, Some(mask));
        Ok(())
    }

    /// Adds the counts of another accumulator (e.g. one per worker or per image).
    pub fn merge(&mut self, other: &Self) {
        self.true_pos += other.true_pos;
        self.false_pos += other.false_pos;
        self.false_neg += other.false_neg;
        self.true_neg += other.true_neg;
    }

    /// The tight counting loop: per chunk, three (four with a mask) `u32` sums that the
    /// compiler vectorises; the four cells follow from TP, ΣP, ΣT and N.
    fn add_unchecked(&mut self, pred: &[bool], target: &[bool], mask: Option<&[bool]>) {
        let (mut tp, mut sp, mut st, mut n) = (0u64, 0u64, 0u64, 0u64);
        match mask {
            None => {
                for (pc, tc) in pred.chunks(CHUNK).zip(target.chunks(CHUNK)) {
                    let (mut a, mut b, mut c) = (0u32, 0u32, 0u32);
                    for (&p, &t) in pc.iter().zip(tc) {
                        let (p, t) = (u32::from(p), u32::from(t));
                        a += p & t;
                        b += p;
                        c += t;
                    }
                    tp += u64::from(a);
                    sp += u64::from(b);
                    st += u64::from(c);
                    n += pc.len() as u64;
                }
            }
            Some(mask) => {
                for ((pc, tc), mc) in pred
                    .chunks(CHUNK)
                    .zip(target.chunks(CHUNK))
                    .zip(mask.chunks(CHUNK))
                {
                    let (mut a, mut b, mut c, mut d) = (0u32, 0u32, 0u32, 0u32);
                    for ((&p, &t), &m) in pc.iter().zip(tc).zip(mc) {
                        let (p, t, m) = (u32::from(p), u32::from(t), u32::from(m));
                        a += p & t & m;
                        b += p & m;
                        c += t & m;
                        d += m;
                    }
                    tp += u64::from(a);
                    sp += u64::from(b);
                    st += u64::from(c);
                    n += u64::from(d);
                }
            }
        }
        self.true_pos += tp;
        self.false_pos += sp - tp;
        self.false_neg += st - tp;
        self.true_neg += n - sp - (st - tp);
    }

    /// Number of counted positions.
    pub fn total(&self) -> u64 {
        self.true_pos + self.false_pos + self.false_neg + self.true_neg
    }

    /// True when neither the prediction nor the target has a positive: the case where Dice,
    /// IoU, F1, precision and sensitivity are 0 by convention (see the [module docs](self)).
    pub fn is_empty_pair(&self) -> bool {
        self.true_pos + self.false_pos + self.false_neg == 0
    }

    /// (TP + TN) / N, the pixel accuracy; 0 when nothing was counted.
    pub fn accuracy(&self) -> f64 {
        ratio(self.true_pos + self.true_neg, self.total())
    }

    /// TP / (TP + FP); 0 when nothing is predicted positive.
    pub fn precision(&self) -> f64 {
        ratio(self.true_pos, self.true_pos + self.false_pos)
    }

    /// TP / (TP + FN), also called recall or true-positive rate; 0 when the target has no
    /// positive.
    pub fn sensitivity(&self) -> f64 {
        ratio(self.true_pos, self.true_pos + self.false_neg)
    }

    /// TN / (TN + FP), the true-negative rate; 0 when the target has no negative.
    pub fn specificity(&self) -> f64 {
        ratio(self.true_neg, self.true_neg + self.false_pos)
    }

    /// 2TP / (2TP + FP + FN), the harmonic mean of precision and sensitivity; 0 when both
    /// masks are empty.
    pub fn f1(&self) -> f64 {
        ratio(
            2 * self.true_pos,
            2 * self.true_pos + self.false_pos + self.false_neg,
        )
    }

    /// The Dice (Sørensen) coefficient 2|P ∩ T| / (|P| + |T|), identical to [`f1`](Self::f1);
    /// 0 when both masks are empty.
    pub fn dice(&self) -> f64 {
        self.f1()
    }

    /// The Jaccard index |P ∩ T| / |P ∪ T| = TP / (TP + FP + FN); 0 when both masks are
    /// empty.
    pub fn iou(&self) -> f64 {
        ratio(
            self.true_pos,
            self.true_pos + self.false_pos + self.false_neg,
        )
    }
}

/// Fraction of positions where `pred` equals `target` (multi-class or binary labels); 0 for
/// empty input.
///
/// ```
/// assert_eq!(mtcool_metrics::accuracy(&[0, 1, 2, 2], &[0, 1, 1, 2]), 0.75);
/// ```
///
/// # Panics
/// If the slices have different lengths (a programming error; the accumulator API,
/// [`ConfusionMatrix::try_add`](crate::ConfusionMatrix::try_add), returns an error instead).
pub fn accuracy(pred: &[u32], target: &[u32]) -> f64 {
    assert_eq!(pred.len(), target.len(), "pred and target lengths differ");
    let mut hits = 0u64;
    for (pc, tc) in pred.chunks(CHUNK).zip(target.chunks(CHUNK)) {
        let mut h = 0u32;
        for (p, t) in pc.iter().zip(tc) {
            h += u32::from(p == t);
        }
        hits += u64::from(h);
    }
    ratio(hits, pred.len() as u64)
}

macro_rules! slice_metric {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// # Panics
        /// If the slices have different lengths (a programming error; use
        /// [`BinaryCounts::try_add`] to get an error instead).
        pub fn $name(pred: &[bool], target: &[bool]) -> f64 {
            BinaryCounts::from_slices(pred, target).$name()
        }
    };
}

slice_metric!(
    /// Dice coefficient of a binary prediction; 0 when both masks are empty (see
    /// [`BinaryCounts::dice`]).
    dice
);
slice_metric!(
    /// IoU (Jaccard index) of a binary prediction; 0 when both masks are empty (see
    /// [`BinaryCounts::iou`]).
    iou
);
slice_metric!(
    /// F1 score of a binary prediction, equal to [`dice`]; 0 when both masks are empty.
    f1
);
slice_metric!(
    /// Precision TP / (TP + FP); 0 when nothing is predicted positive.
    precision
);
slice_metric!(
    /// Sensitivity (recall) TP / (TP + FN); 0 when the target has no positive.
    sensitivity
);
slice_metric!(
    /// Specificity TN / (TN + FP); 0 when the target has no negative.
    specificity
);

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(pred: &[bool], target: &[bool], mask: &[bool]) -> BinaryCounts {
        let mut c = BinaryCounts::default();
        for ((&p, &t), &m) in pred.iter().zip(target).zip(mask) {
            if !m {
                continue;
            }
            match (p, t) {
                (true, true) => c.true_pos += 1,
                (true, false) => c.false_pos += 1,
                (false, true) => c.false_neg += 1,
                (false, false) => c.true_neg += 1,
            }
        }
        c
    }

    #[test]
    fn counts_match_naive_across_chunks() {
        let n = 2 * CHUNK + 17;
        let pred: Vec<bool> = (0..n).map(|i| i % 3 == 0).collect();
        let target: Vec<bool> = (0..n).map(|i| i % 5 < 2).collect();
        let mask: Vec<bool> = (0..n).map(|i| i % 7 != 0).collect();
        let all = vec![true; n];
        assert_eq!(
            BinaryCounts::from_slices(&pred, &target),
            naive(&pred, &target, &all)
        );
        let mut masked = BinaryCounts::default();
        masked
            .try_add_masked(&pred, &target, &mask)
            .expect("same lengths");
        assert_eq!(masked, naive(&pred, &target, &mask));
    }

    #[test]
    fn hand_computed_values() {
        let c = BinaryCounts {
            true_pos: 3,
            false_pos: 1,
            false_neg: 2,
            true_neg: 4,
        };
        assert_eq!(c.accuracy(), 0.7);
        assert_eq!(c.precision(), 0.75);
        assert_eq!(c.sensitivity(), 0.6);
        assert_eq!(c.specificity(), 0.8);
        assert_eq!(c.f1(), 6.0 / 9.0);
        assert_eq!(c.dice(), c.f1());
        assert_eq!(c.iou(), 0.5);
    }

    #[test]
    fn empty_masks_follow_zero_division_zero() {
        let c = BinaryCounts::from_slices(&[false; 4], &[false; 4]);
        assert!(c.is_empty_pair());
        assert_eq!(
            (c.dice(), c.iou(), c.f1(), c.precision(), c.sensitivity()),
            (0.0, 0.0, 0.0, 0.0, 0.0)
        );
        assert_eq!((c.specificity(), c.accuracy()), (1.0, 1.0));
        let all_pos = BinaryCounts::from_slices(&[true; 3], &[true; 3]);
        assert_eq!(all_pos.specificity(), 0.0);
        assert_eq!(all_pos.dice(), 1.0);
        let none = BinaryCounts::default();
        assert_eq!(none.accuracy(), 0.0);
        assert_eq!(accuracy(&[], &[]), 0.0);
    }

    #[test]
    fn try_add_rejects_length_mismatch_and_keeps_counts() {
        let mut c = BinaryCounts::from_slices(&[true], &[true]);
        let before = c;
        assert_eq!(
            c.try_add(&[true, false], &[true]),
            Err(MetricsError::LengthMismatch {
                what: "target",
                got: 1,
                expected: 2
            })
        );
        assert!(c.try_add_masked(&[true], &[true], &[]).is_err());
        assert_eq!(c, before);
    }

    #[test]
    #[should_panic(expected = "lengths differ")]
    fn slice_functions_panic_on_mismatch() {
        dice(&[true], &[]);
    }

    #[test]
    fn merge_adds() {
        let mut a = BinaryCounts::from_slices(&[true, false], &[true, true]);
        let b = BinaryCounts::from_slices(&[true, true], &[false, false]);
        a.merge(&b);
        assert_eq!(
            a,
            BinaryCounts::from_slices(&[true, false, true, true], &[true, true, false, false])
        );
    }
}
