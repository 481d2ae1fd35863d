//! The multi-class confusion matrix: a streaming accumulator of `(target, pred)` label pairs,
//! and every metric derived from it, per class, micro- and macro-averaged.
//!
//! `counts[t][p]` is the number of positions whose target is class `t` and whose prediction is
//! class `p` (scikit-learn's `confusion_matrix` layout). Class `c` seen one-vs-rest gives
//! [`BinaryCounts`]: TP = `counts[c][c]`, FP = column sum − TP, FN = row sum − TP, TN = the rest, and
//! the per-class metrics follow the binary definitions (zero division gives 0; see
//! [`crate::binary`]).
//!
//! **Averages follow scikit-learn's default `labels=None`**: they run over the classes
//! *present*, i.e. those occurring in the target or in the prediction of a counted position.
//! - *macro*: the unweighted mean of the per-class values over present classes
//!   (`average="macro"`); 0 when nothing was counted.
//! - *micro*: the metric of the summed one-vs-rest counts of the present classes
//!   (`average="micro"`). For single-label data micro precision, sensitivity, F1 and Dice all
//!   equal the accuracy.
//! - [`per_class`](ConfusionMatrix::per_class) reports every class `0..num_classes`, absent ones
//!   included (as scikit-learn with `labels=range(num_classes), average=None`).
//!
//! **Masks and the ignore label.** [`try_add_masked`](ConfusionMatrix::try_add_masked) counts
//! only positions whose mask is true (the field of view); positions whose *target* equals the
//! ignore label are skipped whatever their prediction. Every other label must be a class
//! (`< num_classes`), otherwise the batch is rejected with
//! [`MetricsError::LabelOutOfRange`] and the matrix is left as it was.
//!
//! ```
//! use mtcool_metrics::{ClassMetric, ConfusionMatrix};
//!
//! let mut cm = ConfusionMatrix::new(3)?.with_ignore_label(255);
//! // Labels may be u8, u16, u32 or bool; batches are added one at a time.
//! cm.try_add(&[0u8, 1, 2, 2], &[0u8, 1, 1, 255])?;
//! cm.try_add_masked(&[1u8, 1], &[1u8, 0], &[true, false])?;
//! assert_eq!(cm.total(), 4); // one ignored, one outside the mask
//! assert_eq!(cm.accuracy(), 0.75);
//! assert_eq!(cm.per_class(ClassMetric::Sensitivity), vec![1.0, 2.0 / 3.0, 0.0]);
//! assert!((cm.macro_average(ClassMetric::Sensitivity) - 5.0 / 9.0).abs() < 1e-12);
//! assert_eq!(cm.micro_average(ClassMetric::F1), 0.75);
//! # Ok::<(), mtcool_metrics::MetricsError>(())
//! ```

use crate::binary::{ratio, BinaryCounts};
use crate::error::{check_len, MetricsError};

/// The largest number of classes a [`ConfusionMatrix`] accepts (its dense matrix then takes
/// 128 MiB).
pub const MAX_CLASSES: usize = 4096;

/// Elements per chunk of the counting loop: per-chunk counters are `u32`, and a chunk's
/// labels stay in L1 cache.
const CHUNK: usize = 4096;

/// Classes up to which the counting loop uses four interleaved `u32` histograms on the stack
/// (breaking the store-to-load dependency when neighbouring pixels share a cell).
const SMALL_K: usize = 16;
const SMALL_CELLS: usize = SMALL_K * SMALL_K;

/// A metric computed per class (one-vs-rest) from a confusion matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClassMetric {
    /// TP / (TP + FP).
    Precision,
    /// TP / (TP + FN), also called recall.
    Sensitivity,
    /// TN / (TN + FP).
    Specificity,
    /// 2TP / (2TP + FP + FN).
    F1,
    /// Same value as [`ClassMetric::F1`], under the name segmentation papers use.
    Dice,
    /// TP / (TP + FP + FN), the Jaccard index.
    Iou,
}

impl ClassMetric {
    /// Evaluates this metric on one-vs-rest counts.
    pub fn of(self, counts: &BinaryCounts) -> f64 {
        match self {
            ClassMetric::Precision => counts.precision(),
            ClassMetric::Sensitivity => counts.sensitivity(),
            ClassMetric::Specificity => counts.specificity(),
            ClassMetric::F1 => counts.f1(),
            ClassMetric::Dice => counts.dice(),
            ClassMetric::Iou => counts.iou(),
        }
    }
}

/// A `num_classes × num_classes` confusion matrix accumulated batch by batch (see the
/// [module docs](self) for the conventions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfusionMatrix {
    num_classes: usize,
    ignore: Option<u32>,
    /// Row-major `[target][pred]`.
    counts: Vec<u64>,
}

/// Why the counting loop stopped: everything before `index` has been counted.
struct Stop {
    index: usize,
    error: MetricsError,
}

impl ConfusionMatrix {
    /// An empty matrix over classes `0..num_classes`.
    ///
    /// # Errors
    /// [`MetricsError::InvalidNumClasses`] unless `1 <= num_classes <= MAX_CLASSES`.
    pub fn new(num_classes: usize) -> Result<Self, MetricsError> {
        if num_classes == 0 || num_classes > MAX_CLASSES {
            return Err(MetricsError::InvalidNumClasses(num_classes));
        }
        Ok(Self {
            num_classes,
            ignore: None,
            counts: vec![0; num_classes * num_classes],
        })
    }

    /// An empty 2×2 matrix (class 1 is the positive class).
    pub fn binary() -> Self {
        Self {
            num_classes: 2,
            ignore: None,
            counts: vec![0; 4],
        }
    }

    /// Skips every position whose target equals `label` (e.g. 255 for "void" borders). The
    /// label may also be one of the classes, whose row is then never counted.
    #[must_use]
    pub fn with_ignore_label(mut self, label: u32) -> Self {
        self.ignore = Some(label);
        self.drop_ignored_row();
        self
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// The ignore label, if any.
    pub fn ignore_label(&self) -> Option<u32> {
        self.ignore
    }

    /// Adds one batch of predicted and target labels.
    ///
    /// # Errors
    /// [`MetricsError::LengthMismatch`] if the lengths differ, or
    /// [`MetricsError::LabelOutOfRange`] for a label that is neither a class nor (for the
    /// target) the ignore label. On error the matrix is unchanged.
    pub fn try_add<L: Copy + Into<u32>>(
        &mut self,
        pred: &[L],
        target: &[L],
    ) -> Result<(), MetricsError> {
        check_len("target", target.len(), pred.len())?;
        self.add_batch(pred, target, None)
    }

    /// Adds one batch, counting only the positions where `mask` is true (e.g. the field of
    /// view). Labels outside the mask are not looked at.
    ///
    /// # Errors
    /// As [`try_add`](Self::try_add), and [`MetricsError::LengthMismatch`] for the mask.
    pub fn try_add_masked<L: Copy + Into<u32>>(
        &mut self,
        pred: &[L],
        target: &[L],
        mask: &[bool],
    ) -> Result<(), MetricsError> {
        check_len("target", target.len(), pred.len())?;
        check_len("mask", mask.len(), pred.len())?;
        self.add_batch(pred, target, Some(mask))
    }

    /// Adds the counts of another matrix (e.g. one per worker).
    ///
    /// # Errors
    /// [`MetricsError::Incompatible`] if the number of classes or the ignore label differ.
    pub fn merge(&mut self, other: &Self) -> Result<(), MetricsError> {
        if self.num_classes != other.num_classes || self.ignore != other.ignore {
            return Err(MetricsError::Incompatible(format!(
                "{} classes (ignore {:?}) vs {} classes (ignore {:?})",
                self.num_classes, self.ignore, other.num_classes, other.ignore
            )));
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        Ok(())
    }

    /// Sets every count back to 0.
    pub fn reset(&mut self) {
        self.counts.fill(0);
    }

    /// Number of counted positions with target `target` and prediction `pred`.
    ///
    /// # Panics
    /// If either class is `>= num_classes`.
    pub fn count(&self, target: usize, pred: usize) -> u64 {
        assert!(target < self.num_classes && pred < self.num_classes);
        self.counts[target * self.num_classes + pred]
    }

    /// The whole matrix, row-major `[target][pred]`.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Number of counted positions.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// One-vs-rest counts of `class`.
    ///
    /// # Panics
    /// If `class >= num_classes`.
    pub fn class_counts(&self, class: usize) -> BinaryCounts {
        let k = self.num_classes;
        assert!(class < k, "class {class} out of range for {k} classes");
        let tp = self.counts[class * k + class];
        let row: u64 = self.counts[class * k..(class + 1) * k].iter().sum();
        let col: u64 = (0..k).map(|t| self.counts[t * k + class]).sum();
        BinaryCounts {
            true_pos: tp,
            false_pos: col - tp,
            false_neg: row - tp,
            true_neg: self.total() - row - (col - tp),
        }
    }

    /// Whether `class` occurs in the target or the prediction of a counted position: the
    /// classes the averages run over.
    pub fn is_present(&self, class: usize) -> bool {
        let c = self.class_counts(class);
        c.true_pos + c.false_pos + c.false_neg > 0
    }

    /// Fraction of counted positions predicted correctly (trace / total); 0 when empty.
    pub fn accuracy(&self) -> f64 {
        let k = self.num_classes;
        let hits = (0..k).map(|c| self.counts[c * k + c]).sum();
        ratio(hits, self.total())
    }

    /// Pixel accuracy of a segmentation: the same value as [`accuracy`](Self::accuracy).
    pub fn pixel_accuracy(&self) -> f64 {
        self.accuracy()
    }

    /// Mean per-class sensitivity over the classes present in the *target*
    /// (scikit-learn's `balanced_accuracy_score`, a.k.a. mean pixel accuracy); 0 when empty.
    pub fn balanced_accuracy(&self) -> f64 {
        let (sum, n) = (0..self.num_classes)
            .map(|c| self.class_counts(c))
            .filter(|c| c.true_pos + c.false_neg > 0)
            .fold((0.0, 0u64), |(s, n), c| (s + c.sensitivity(), n + 1));
        if n == 0 {
            0.0
        } else {
            sum / n as f64
        }
    }

    /// `metric` of every class `0..num_classes`, absent classes included.
    pub fn per_class(&self, metric: ClassMetric) -> Vec<f64> {
        (0..self.num_classes)
            .map(|c| metric.of(&self.class_counts(c)))
            .collect()
    }

    /// Unweighted mean of `metric` over the present classes; 0 when nothing was counted.
    pub fn macro_average(&self, metric: ClassMetric) -> f64 {
        let (sum, n) = (0..self.num_classes)
            .map(|c| self.class_counts(c))
            .filter(|c| c.true_pos + c.false_pos + c.false_neg > 0)
            .fold((0.0, 0u64), |(s, n), c| (s + metric.of(&c), n + 1));
        if n == 0 {
            0.0
        } else {
            sum / n as f64
        }
    }

    /// `metric` of the one-vs-rest counts summed over the present classes; 0 when nothing was
    /// counted.
    pub fn micro_average(&self, metric: ClassMetric) -> f64 {
        let mut sum = BinaryCounts::default();
        for c in 0..self.num_classes {
            let counts = self.class_counts(c);
            if counts.true_pos + counts.false_pos + counts.false_neg > 0 {
                sum.merge(&counts);
            }
        }
        metric.of(&sum)
    }

    fn drop_ignored_row(&mut self) {
        let k = self.num_classes;
        if let Some(ignore) = self.ignore.map(|i| i as usize).filter(|&i| i < k) {
            self.counts[ignore * k..(ignore + 1) * k].fill(0);
        }
    }

    /// Counts a batch into `self.counts`; on error, subtracts again what was counted so that
    /// the matrix is unchanged.
    fn add_batch<L: Copy + Into<u32>>(
        &mut self,
        pred: &[L],
        target: &[L],
        mask: Option<&[bool]>,
    ) -> Result<(), MetricsError> {
        let result = self.tally::<L, false>(pred, target, mask);
        let result = match result {
            Ok(()) => Ok(()),
            Err(Stop { index, error }) => {
                // Everything before `index` is valid and was counted: take it out again.
                let undo = self.tally::<L, true>(
                    &pred[..index],
                    &target[..index],
                    mask.map(|m| &m[..index]),
                );
                debug_assert!(undo.is_ok(), "a valid prefix cannot fail");
                Err(error)
            }
        };
        // The fast paths count the ignore label's row when it is a class; it is always 0.
        self.drop_ignored_row();
        result
    }

    /// The counting pass. Adds (or, with `SUB`, subtracts) the pairs of the batch, stopping at
    /// the first invalid label. Counts wrap, so that an add followed by a subtract of the same
    /// prefix restores every cell exactly even when the two passes took different paths
    /// through the ignored row.
    fn tally<L: Copy + Into<u32>, const SUB: bool>(
        &mut self,
        pred: &[L],
        target: &[L],
        mask: Option<&[bool]>,
    ) -> Result<(), Stop> {
        let k = self.num_classes;
        let mut offset = 0;
        let mut sub = [[0u32; SMALL_CELLS]; 4];
        while offset < pred.len() {
            let end = (offset + CHUNK).min(pred.len());
            let (pc, tc) = (&pred[offset..end], &target[offset..end]);
            let mc = mask.map(|m| &m[offset..end]);
            let fast_done = if k == 2 {
                binary_chunk(pc, tc, mc).map(|[tn, fp, fneg, tp]| {
                    self.bump::<SUB>(0, u64::from(tn));
                    self.bump::<SUB>(1, u64::from(fp));
                    self.bump::<SUB>(2, u64::from(fneg));
                    self.bump::<SUB>(3, u64::from(tp));
                })
            } else if k <= SMALL_K {
                small_chunk(pc, tc, mc, k as u32, &mut sub).then(|| {
                    for cell in 0..k * k {
                        let v: u64 = sub.iter().map(|h| u64::from(h[cell])).sum();
                        self.bump::<SUB>(cell, v);
                    }
                })
            } else {
                large_chunk::<L, SUB>(pc, tc, mc, k, &mut self.counts).then_some(())
            };
            if fast_done.is_none() {
                self.slow_chunk::<L, SUB>(pc, tc, mc, offset)?;
            }
            offset = end;
        }
        Ok(())
    }

    fn bump<const SUB: bool>(&mut self, cell: usize, v: u64) {
        let c = &mut self.counts[cell];
        *c = if SUB {
            c.wrapping_sub(v)
        } else {
            c.wrapping_add(v)
        };
    }

    /// Element by element, for chunks holding ignore labels or invalid labels.
    fn slow_chunk<L: Copy + Into<u32>, const SUB: bool>(
        &mut self,
        pc: &[L],
        tc: &[L],
        mc: Option<&[bool]>,
        offset: usize,
    ) -> Result<(), Stop> {
        let k = self.num_classes;
        for (i, (&p, &t)) in pc.iter().zip(tc).enumerate() {
            if mc.is_some_and(|m| !m[i]) {
                continue;
            }
            let (p, t): (u32, u32) = (p.into(), t.into());
            if Some(t) == self.ignore {
                continue;
            }
            for (what, label) in [("target", t), ("pred", p)] {
                if label as usize >= k {
                    return Err(Stop {
                        index: offset + i,
                        error: MetricsError::LabelOutOfRange {
                            what,
                            label,
                            index: offset + i,
                            num_classes: k,
                        },
                    });
                }
            }
            self.bump::<SUB>(t as usize * k + p as usize, 1);
        }
        Ok(())
    }
}

/// Two classes: four sums the compiler vectorises. Returns `[tn, fp, fn, tp]`, or `None` if a
/// counted label is not 0 or 1.
fn binary_chunk<L: Copy + Into<u32>>(pc: &[L], tc: &[L], mc: Option<&[bool]>) -> Option<[u32; 4]> {
    let (mut or, mut sp, mut st, mut spt, mut n) = (0u32, 0u32, 0u32, 0u32, 0u32);
    match mc {
        None => {
            for (&p, &t) in pc.iter().zip(tc) {
                let (p, t): (u32, u32) = (p.into(), t.into());
                or |= p | t;
                sp = sp.wrapping_add(p);
                st = st.wrapping_add(t);
                spt = spt.wrapping_add(p & t);
            }
            n = pc.len() as u32;
        }
        Some(mc) => {
            for ((&p, &t), &m) in pc.iter().zip(tc).zip(mc) {
                let keep = 0u32.wrapping_sub(u32::from(m));
                let (p, t): (u32, u32) = (p.into() & keep, t.into() & keep);
                or |= p | t;
                sp = sp.wrapping_add(p);
                st = st.wrapping_add(t);
                spt = spt.wrapping_add(p & t);
                n += u32::from(m);
            }
        }
    }
    (or <= 1).then(|| [n - sp - (st - spt), sp - spt, st - spt, spt])
}

/// Up to [`SMALL_K`] classes: four interleaved histograms. Returns false (and leaves garbage
/// in `sub`, to be discarded) if a counted label is `>= k`.
fn small_chunk<L: Copy + Into<u32>>(
    pc: &[L],
    tc: &[L],
    mc: Option<&[bool]>,
    k: u32,
    sub: &mut [[u32; SMALL_CELLS]; 4],
) -> bool {
    for h in sub.iter_mut() {
        h.fill(0);
    }
    let cell = |p: L, t: L| {
        let (p, t): (u32, u32) = (p.into(), t.into());
        // Masking with the table size keeps the index in bounds (so the check compiles away);
        // it only changes cells of a chunk that is then discarded.
        let idx = t.wrapping_mul(k).wrapping_add(p) as usize & (SMALL_CELLS - 1);
        (idx, (p >= k) | (t >= k))
    };
    let mut bad = false;
    match mc {
        None => {
            let (p4, t4) = (pc.chunks_exact(4), tc.chunks_exact(4));
            let (pr, tr) = (p4.remainder(), t4.remainder());
            for (p4, t4) in p4.zip(t4) {
                for j in 0..4 {
                    let (idx, b) = cell(p4[j], t4[j]);
                    sub[j][idx] += 1;
                    bad |= b;
                }
            }
            for (&p, &t) in pr.iter().zip(tr) {
                let (idx, b) = cell(p, t);
                sub[0][idx] += 1;
                bad |= b;
            }
        }
        Some(mc) => {
            let (p4, t4, m4) = (pc.chunks_exact(4), tc.chunks_exact(4), mc.chunks_exact(4));
            let (pr, tr, mr) = (p4.remainder(), t4.remainder(), m4.remainder());
            for ((p4, t4), m4) in p4.zip(t4).zip(m4) {
                for j in 0..4 {
                    let (idx, b) = cell(p4[j], t4[j]);
                    sub[j][idx] += u32::from(m4[j]);
                    bad |= b & m4[j];
                }
            }
            for ((&p, &t), &m) in pr.iter().zip(tr).zip(mr) {
                let (idx, b) = cell(p, t);
                sub[0][idx] += u32::from(m);
                bad |= b & m;
            }
        }
    }
    !bad
}

/// More than [`SMALL_K`] classes: validate the chunk, then count straight into the matrix.
/// Returns false, having counted nothing, if a counted label is `>= k`.
fn large_chunk<L: Copy + Into<u32>, const SUB: bool>(
    pc: &[L],
    tc: &[L],
    mc: Option<&[bool]>,
    k: usize,
    counts: &mut [u64],
) -> bool {
    let valid = |p: L, t: L| {
        let (p, t): (u32, u32) = (p.into(), t.into());
        (p.max(t) as usize) < k
    };
    let delta = if SUB { u64::MAX } else { 1 }; // wrapping −1 or +1
    match mc {
        None => {
            if !pc.iter().zip(tc).all(|(&p, &t)| valid(p, t)) {
                return false;
            }
            for (&p, &t) in pc.iter().zip(tc) {
                let (p, t): (u32, u32) = (p.into(), t.into());
                let c = &mut counts[t as usize * k + p as usize];
                *c = c.wrapping_add(delta);
            }
        }
        Some(mc) => {
            let all_valid = pc
                .iter()
                .zip(tc)
                .zip(mc)
                .all(|((&p, &t), &m)| !m || valid(p, t));
            if !all_valid {
                return false;
            }
            for ((&p, &t), &m) in pc.iter().zip(tc).zip(mc) {
                if m {
                    let (p, t): (u32, u32) = (p.into(), t.into());
                    let c = &mut counts[t as usize * k + p as usize];
                    *c = c.wrapping_add(delta);
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, element by element.
    fn naive(
        k: usize,
        ignore: Option<u32>,
        pred: &[u32],
        target: &[u32],
        mask: Option<&[bool]>,
    ) -> Option<Vec<u64>> {
        let mut counts = vec![0; k * k];
        for i in 0..pred.len() {
            if mask.is_some_and(|m| !m[i]) || Some(target[i]) == ignore {
                continue;
            }
            let (t, p) = (target[i] as usize, pred[i] as usize);
            if t >= k || p >= k {
                return None;
            }
            counts[t * k + p] += 1;
        }
        Some(counts)
    }

    /// A deterministic pseudo-random sequence (no RNG dependency in unit tests).
    fn lcg(seed: u64, n: usize, modulo: u32) -> Vec<u32> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 33) % u64::from(modulo)) as u32
            })
            .collect()
    }

    #[test]
    fn all_paths_match_the_definition() {
        let n = 3 * CHUNK + 5;
        for k in [1usize, 2, 3, 5, 16, 17, 40] {
            for ignore in [None, Some(0), Some(k as u32), Some(255)] {
                let pred = lcg(1, n, k as u32);
                let mut target = lcg(2, n, k as u32);
                if let Some(ig) = ignore {
                    // Sprinkle the ignore label into one chunk only.
                    for i in (CHUNK..2 * CHUNK).step_by(97) {
                        target[i] = ig;
                    }
                }
                let mask: Vec<bool> = lcg(3, n, 4).iter().map(|&v| v != 0).collect();
                for m in [None, Some(mask.as_slice())] {
                    let mut cm = ConfusionMatrix::new(k).expect("valid k");
                    if let Some(ig) = ignore {
                        cm = cm.with_ignore_label(ig);
                    }
                    match m {
                        None => cm.try_add(&pred, &target),
                        Some(m) => cm.try_add_masked(&pred, &target, m),
                    }
                    .expect("valid labels");
                    let expected = naive(k, ignore, &pred, &target, m).expect("valid");
                    assert_eq!(cm.counts(), expected, "k={k} ignore={ignore:?}");
                }
            }
        }
    }

    #[test]
    fn u8_and_bool_labels() {
        let mut a = ConfusionMatrix::binary();
        a.try_add(&[true, false, true], &[true, true, false])
            .expect("valid");
        let mut b = ConfusionMatrix::binary();
        b.try_add(&[1u8, 0, 1], &[1u8, 1, 0]).expect("valid");
        assert_eq!(a, b);
        assert_eq!(
            a.class_counts(1),
            BinaryCounts::from_slices(&[true, false, true], &[true, true, false])
        );
    }

    #[test]
    fn invalid_label_rejects_batch_and_keeps_matrix() {
        for k in [2usize, 3, 20] {
            let n = 2 * CHUNK + 9;
            let pred = lcg(4, n, k as u32);
            let target = lcg(5, n, k as u32);
            let mut cm = ConfusionMatrix::new(k)
                .expect("valid k")
                .with_ignore_label(0);
            cm.try_add(&pred[..100], &target[..100]).expect("valid");
            let before = cm.clone();
            let mut bad = pred.clone();
            bad[CHUNK + 7] = k as u32;
            let err = cm.try_add(&bad, &target).expect_err("pred out of range");
            assert_eq!(
                err,
                MetricsError::LabelOutOfRange {
                    what: "pred",
                    label: k as u32,
                    index: CHUNK + 7,
                    num_classes: k,
                }
            );
            assert_eq!(cm, before, "k={k}");
            // The same label outside the mask, or at an ignored position, is not looked at.
            let mut mask = vec![true; n];
            mask[CHUNK + 7] = false;
            cm.try_add_masked(&bad, &target, &mask).expect("masked out");
            let mut ignored = target.clone();
            ignored[CHUNK + 7] = 0;
            cm.try_add(&bad, &ignored).expect("ignored");
        }
    }

    #[test]
    fn target_out_of_range_is_reported() {
        let mut cm = ConfusionMatrix::new(3).expect("valid k");
        let err = cm.try_add(&[0u32, 1], &[0u32, 7]).expect_err("bad target");
        assert!(matches!(
            err,
            MetricsError::LabelOutOfRange {
                what: "target",
                label: 7,
                index: 1,
                ..
            }
        ));
        assert_eq!(cm.total(), 0);
    }

    #[test]
    fn new_validates_and_merge_checks_shape() {
        assert_eq!(
            ConfusionMatrix::new(0),
            Err(MetricsError::InvalidNumClasses(0))
        );
        assert!(ConfusionMatrix::new(MAX_CLASSES + 1).is_err());
        let mut a = ConfusionMatrix::new(3).expect("valid k");
        let b = ConfusionMatrix::new(4).expect("valid k");
        assert!(a.merge(&b).is_err());
        let mut c = ConfusionMatrix::new(3).expect("valid k");
        c.try_add(&[0u32, 2], &[0u32, 1]).expect("valid");
        a.merge(&c).expect("same shape");
        a.merge(&c).expect("same shape");
        assert_eq!(a.count(1, 2), 2);
        a.reset();
        assert_eq!(a.total(), 0);
    }

    #[test]
    fn averages_skip_absent_classes() {
        let mut cm = ConfusionMatrix::new(4).expect("valid k");
        // Class 3 never occurs; class 2 is only predicted.
        cm.try_add(&[0u32, 1, 1, 2], &[0u32, 1, 0, 1])
            .expect("valid");
        assert!(!cm.is_present(3) && cm.is_present(2));
        let f1 = cm.per_class(ClassMetric::F1);
        assert_eq!(f1[3], 0.0);
        assert_eq!(
            cm.macro_average(ClassMetric::F1),
            (f1[0] + f1[1] + f1[2]) / 3.0
        );
        assert_eq!(cm.micro_average(ClassMetric::Precision), cm.accuracy());
        assert_eq!(cm.balanced_accuracy(), (0.5 + 0.5) / 2.0);
        let empty = ConfusionMatrix::new(3).expect("valid k");
        assert_eq!(empty.macro_average(ClassMetric::Iou), 0.0);
        assert_eq!(empty.micro_average(ClassMetric::Iou), 0.0);
        assert_eq!(empty.accuracy(), 0.0);
        assert_eq!(empty.balanced_accuracy(), 0.0);
    }
}
