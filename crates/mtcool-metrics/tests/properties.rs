//! Property tests over seeded random inputs (ChaCha8, so every run sees the same cases).

#![allow(clippy::unwrap_used)]

use mtcool_metrics::{
    accuracy, auroc, dice, f1, iou, mean_std, precision, sensitivity, specificity,
    AurocAccumulator, BinaryCounts, ClassMetric, ConfusionMatrix,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CASES: u64 = 200;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A random pair of binary masks with random densities (empty and full masks included).
fn masks(r: &mut ChaCha8Rng) -> (Vec<bool>, Vec<bool>) {
    let n = r.random_range(0..300);
    let density = |r: &mut ChaCha8Rng| match r.random_range(0..6) {
        0 => 0.0,
        1 => 1.0,
        _ => r.random::<f64>(),
    };
    let (dp, dt) = (density(r), density(r));
    let pred = (0..n).map(|_| r.random_bool(dp)).collect();
    let target = (0..n).map(|_| r.random_bool(dt)).collect();
    (pred, target)
}

/// Scores on a 1/64 grid (many ties; every transform below is exact or strictly monotone on
/// it) with both labels present.
fn scored(r: &mut ChaCha8Rng) -> (Vec<f64>, Vec<bool>) {
    loop {
        let n = r.random_range(2..200);
        let levels = r.random_range(1..100);
        let shift = r.random::<f64>();
        let labels: Vec<bool> = (0..n).map(|_| r.random_bool(0.4)).collect();
        let scores = labels
            .iter()
            .map(|&l| {
                let raw = r.random::<f64>() + if l { shift } else { 0.0 };
                (raw * f64::from(levels)).floor() / 64.0
            })
            .collect();
        if labels.iter().any(|&l| l) && labels.iter().any(|&l| !l) {
            return (scores, labels);
        }
    }
}

fn pairwise_auroc(scores: &[f64], labels: &[bool]) -> f64 {
    let (mut twice_wins, mut pairs) = (0u64, 0u64);
    for (&si, &li) in scores.iter().zip(labels) {
        for (&sj, &lj) in scores.iter().zip(labels) {
            if li && !lj {
                pairs += 1;
                twice_wins += match si.partial_cmp(&sj).unwrap() {
                    std::cmp::Ordering::Greater => 2,
                    std::cmp::Ordering::Equal => 1,
                    std::cmp::Ordering::Less => 0,
                };
            }
        }
    }
    twice_wins as f64 / (2 * pairs) as f64
}

#[test]
fn binary_dice_equals_f1_and_iou_follows_from_dice() {
    let mut r = rng(1);
    for _ in 0..CASES {
        let (p, t) = masks(&mut r);
        let d = dice(&p, &t);
        assert_eq!(d, f1(&p, &t));
        assert!((iou(&p, &t) - d / (2.0 - d)).abs() < 1e-12);
        // The binary matrix's positive class agrees with the slice functions.
        let mut cm = ConfusionMatrix::binary();
        cm.try_add(&p, &t).unwrap();
        assert_eq!(cm.per_class(ClassMetric::Dice)[1], d);
        assert_eq!(cm.class_counts(1), BinaryCounts::from_slices(&p, &t));
    }
}

#[test]
fn binary_metrics_are_bounded_and_symmetric() {
    let mut r = rng(2);
    for _ in 0..CASES {
        let (p, t) = masks(&mut r);
        for v in [
            dice(&p, &t),
            iou(&p, &t),
            precision(&p, &t),
            sensitivity(&p, &t),
            specificity(&p, &t),
            BinaryCounts::from_slices(&p, &t).accuracy(),
        ] {
            assert!((0.0..=1.0).contains(&v), "{v} out of [0, 1]");
        }
        assert_eq!(dice(&p, &t), dice(&t, &p));
        assert_eq!(iou(&p, &t), iou(&t, &p));
        // Swapping prediction and target swaps precision and sensitivity.
        assert_eq!(precision(&p, &t), sensitivity(&t, &p));
        // Complementing both masks swaps sensitivity and specificity.
        let (np, nt): (Vec<bool>, Vec<bool>) = p.iter().zip(&t).map(|(a, b)| (!a, !b)).unzip();
        assert_eq!(sensitivity(&p, &t), specificity(&np, &nt));
    }
}

#[test]
fn multiclass_properties() {
    let mut r = rng(3);
    for _ in 0..CASES {
        let k = r.random_range(1..25usize);
        let n = r.random_range(0..500);
        let pred: Vec<u32> = (0..n).map(|_| r.random_range(0..k as u32)).collect();
        let target: Vec<u32> = (0..n)
            .map(|i| {
                if r.random_bool(0.5) {
                    pred[i]
                } else {
                    r.random_range(0..k as u32)
                }
            })
            .collect();
        let mut cm = ConfusionMatrix::new(k).unwrap();
        cm.try_add(&pred, &target).unwrap();
        assert_eq!(cm.total(), n as u64);
        assert_eq!(cm.accuracy(), accuracy(&pred, &target));
        let acc = cm.accuracy();
        for m in [
            ClassMetric::Precision,
            ClassMetric::Sensitivity,
            ClassMetric::F1,
        ] {
            assert!((cm.micro_average(m) - acc).abs() < 1e-12, "micro {m:?}");
        }
        for m in [
            ClassMetric::Precision,
            ClassMetric::Sensitivity,
            ClassMetric::Specificity,
            ClassMetric::F1,
            ClassMetric::Iou,
        ] {
            for v in cm
                .per_class(m)
                .into_iter()
                .chain([cm.macro_average(m), cm.micro_average(m)])
            {
                assert!((0.0..=1.0).contains(&v), "{m:?}: {v}");
            }
        }
        assert_eq!(
            cm.per_class(ClassMetric::F1),
            cm.per_class(ClassMetric::Dice)
        );
        // Swapping prediction and target transposes the matrix.
        let mut swapped = ConfusionMatrix::new(k).unwrap();
        swapped.try_add(&target, &pred).unwrap();
        assert_eq!(
            cm.per_class(ClassMetric::Precision),
            swapped.per_class(ClassMetric::Sensitivity)
        );
    }
}

#[test]
fn streaming_in_random_batches_equals_one_pass() {
    let mut r = rng(4);
    for _ in 0..50 {
        let k = r.random_range(2..6u8);
        let n = r.random_range(0..20_000);
        let pred: Vec<u8> = (0..n).map(|_| r.random_range(0..k)).collect();
        let target: Vec<u8> = (0..n)
            .map(|_| {
                if r.random_bool(0.05) {
                    255
                } else {
                    r.random_range(0..k)
                }
            })
            .collect();
        let fov: Vec<bool> = (0..n).map(|_| r.random_bool(0.8)).collect();
        let scores: Vec<f32> = (0..n).map(|_| r.random::<f32>()).collect();
        let fg: Vec<bool> = target.iter().map(|&t| t == 1).collect();

        let mut whole = ConfusionMatrix::new(usize::from(k))
            .unwrap()
            .with_ignore_label(255);
        whole.try_add_masked(&pred, &target, &fov).unwrap();
        let mut whole_auc = AurocAccumulator::new();
        whole_auc.try_add_masked(&scores, &fg, &fov).unwrap();

        let mut parts = ConfusionMatrix::new(usize::from(k))
            .unwrap()
            .with_ignore_label(255);
        let mut parts_auc = AurocAccumulator::new();
        let mut start = 0;
        while start < n {
            let end = (start + r.random_range(1..5000)).min(n);
            let mut part = ConfusionMatrix::new(usize::from(k))
                .unwrap()
                .with_ignore_label(255);
            part.try_add_masked(&pred[start..end], &target[start..end], &fov[start..end])
                .unwrap();
            parts.merge(&part).unwrap();
            parts_auc
                .try_add_masked(&scores[start..end], &fg[start..end], &fov[start..end])
                .unwrap();
            start = end;
        }
        assert_eq!(whole, parts);
        assert_eq!(whole_auc.compute(), parts_auc.compute());
    }
}

#[test]
fn auroc_equals_pairwise_definition() {
    let mut r = rng(5);
    for _ in 0..CASES {
        let (s, l) = scored(&mut r);
        let exact = auroc(&s, &l).unwrap();
        assert!((exact - pairwise_auroc(&s, &l)).abs() < 1e-12);
        assert!((0.0..=1.0).contains(&exact));
    }
}

#[test]
fn auroc_is_invariant_to_monotone_transforms() {
    let mut r = rng(6);
    for _ in 0..CASES {
        let (s, l) = scored(&mut r);
        let base = auroc(&s, &l).unwrap();
        let transforms: [fn(f64) -> f64; 4] = [
            |x| 4.0 * x - 7.0,
            |x| (3.0 * x).exp(),
            |x| x * x * x + x,
            |x| (x - 0.7).atan(),
        ];
        for t in transforms {
            let ts: Vec<f64> = s.iter().map(|&x| t(x)).collect();
            assert_eq!(auroc(&ts, &l).unwrap(), base);
        }
    }
}

#[test]
fn auroc_of_reversed_scores_is_complement() {
    let mut r = rng(7);
    for _ in 0..CASES {
        let (s, l) = scored(&mut r);
        let rev: Vec<f64> = s.iter().map(|&x| 1.0 - x).collect();
        let (a, b) = (auroc(&s, &l).unwrap(), auroc(&rev, &l).unwrap());
        assert!((a + b - 1.0).abs() < 1e-12, "{a} + {b} != 1");
        // Flipping the labels complements it as well.
        let flipped: Vec<bool> = l.iter().map(|&x| !x).collect();
        assert!((auroc(&s, &flipped).unwrap() + a - 1.0).abs() < 1e-12);
    }
}

#[test]
fn mean_std_shift_and_scale() {
    let mut r = rng(8);
    for _ in 0..CASES {
        let n = r.random_range(2..20);
        let v: Vec<f64> = (0..n).map(|_| r.random::<f64>()).collect();
        let (m, s) = mean_std(&v);
        assert!(s >= 0.0);
        let shifted: Vec<f64> = v.iter().map(|x| 3.0 * x + 10.0).collect();
        let (m2, s2) = mean_std(&shifted);
        assert!((m2 - (3.0 * m + 10.0)).abs() < 1e-12);
        assert!((s2 - 3.0 * s).abs() < 1e-12);
        // The sample sd exceeds the population sd by sqrt(n / (n − 1)).
        let pop = (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n as f64).sqrt();
        assert!((s - pop * (n as f64 / (n as f64 - 1.0)).sqrt()).abs() < 1e-12);
    }
}
