//! Agreement with scikit-learn (and numpy / LibMTL for aggregation) on the committed fixtures
//! written by `fixtures/make_golden.py`, to 1e-9, edge cases included.

#![allow(clippy::unwrap_used)]

use mtcool_metrics::{
    accuracy, auroc, delta_m, delta_m_per_task, dice, f1, iou, mean_std, precision, sensitivity,
    specificity, AurocAccumulator, BinaryCounts, ClassMetric, ConfusionMatrix, DeltaTerm,
    MetricsError,
};
use serde_json::Value;

const TOL: f64 = 1e-9;

fn golden() -> Value {
    serde_json::from_str(include_str!("fixtures/golden.json")).unwrap()
}

fn close(got: f64, want: &Value, what: &str) {
    let want = want
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: not a number"));
    assert!(
        (got - want).abs() <= TOL,
        "{what}: got {got}, scikit-learn {want}"
    );
}

fn ints(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn bools(v: &Value) -> Vec<bool> {
    ints(v).into_iter().map(|x| x != 0).collect()
}

fn mask(case: &Value) -> Option<Vec<bool>> {
    (!case["mask"].is_null()).then(|| bools(&case["mask"]))
}

#[test]
fn binary_metrics_match_sklearn() {
    let g = golden();
    let cases = g["binary"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (pred, target) = (bools(&case["pred"]), bools(&case["target"]));
        let mut counts = BinaryCounts::default();
        let mut cm = ConfusionMatrix::binary();
        let (pred_u8, target_u8): (Vec<u8>, Vec<u8>) = pred
            .iter()
            .zip(&target)
            .map(|(&p, &t)| (u8::from(p), u8::from(t)))
            .unzip();
        match mask(case) {
            Some(m) => {
                counts.try_add_masked(&pred, &target, &m).unwrap();
                cm.try_add_masked(&pred_u8, &target_u8, &m).unwrap();
            }
            None => {
                counts.try_add(&pred, &target).unwrap();
                cm.try_add(&pred_u8, &target_u8).unwrap();
                // The slice functions of the public API.
                close(dice(&pred, &target), &case["f1"], &format!("{name} dice()"));
                close(f1(&pred, &target), &case["f1"], &format!("{name} f1()"));
                close(iou(&pred, &target), &case["iou"], &format!("{name} iou()"));
                close(
                    precision(&pred, &target),
                    &case["precision"],
                    &format!("{name} precision()"),
                );
                close(
                    sensitivity(&pred, &target),
                    &case["sensitivity"],
                    &format!("{name} sensitivity()"),
                );
                close(
                    specificity(&pred, &target),
                    &case["specificity"],
                    &format!("{name} specificity()"),
                );
                let (pu, tu): (Vec<u32>, Vec<u32>) = (ints(&case["pred"]), ints(&case["target"]));
                close(
                    accuracy(&pu, &tu),
                    &case["accuracy"],
                    &format!("{name} accuracy()"),
                );
            }
        }
        assert_eq!(cm.class_counts(1), counts, "{name}: matrix vs counts");
        for (got, key) in [
            (counts.accuracy(), "accuracy"),
            (counts.precision(), "precision"),
            (counts.sensitivity(), "sensitivity"),
            (counts.specificity(), "specificity"),
            (counts.f1(), "f1"),
            (counts.dice(), "f1"),
            (counts.iou(), "iou"),
            (cm.accuracy(), "accuracy"),
        ] {
            close(got, &case[key], &format!("{name} {key}"));
        }
        // The documented choice: where zero_division matters, we follow the default (0),
        // and is_empty_pair() flags exactly the cases where zero_division=1.0 would differ.
        let differs = case["f1"] != case["f1_zero_division_one"];
        assert_eq!(counts.is_empty_pair(), differs, "{name}: empty pair");
    }
}

const METRICS: [(ClassMetric, &str); 6] = [
    (ClassMetric::Precision, "precision"),
    (ClassMetric::Sensitivity, "sensitivity"),
    (ClassMetric::Specificity, "specificity"),
    (ClassMetric::F1, "f1"),
    (ClassMetric::Dice, "f1"),
    (ClassMetric::Iou, "iou"),
];

#[test]
fn multiclass_metrics_match_sklearn() {
    let g = golden();
    let cases = g["multiclass"].as_array().unwrap();
    assert!(cases.len() >= 8);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let k = case["num_classes"].as_u64().unwrap() as usize;
        let (pred, target) = (ints(&case["pred"]), ints(&case["target"]));
        let mut cm = ConfusionMatrix::new(k).unwrap();
        if let Some(ignore) = case["ignore"].as_u64() {
            cm = cm.with_ignore_label(ignore as u32);
        }
        // Two batches, to exercise accumulation.
        let half = pred.len() / 2;
        match mask(case) {
            Some(m) => {
                cm.try_add_masked(&pred[..half], &target[..half], &m[..half])
                    .unwrap();
                cm.try_add_masked(&pred[half..], &target[half..], &m[half..])
                    .unwrap();
            }
            None => {
                cm.try_add(&pred[..half], &target[..half]).unwrap();
                cm.try_add(&pred[half..], &target[half..]).unwrap();
            }
        }
        let want: Vec<u64> = case["confusion"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| row.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()))
            .collect();
        assert_eq!(cm.counts(), want, "{name}: confusion matrix");
        close(
            cm.accuracy(),
            &case["accuracy"],
            &format!("{name} accuracy"),
        );
        close(
            cm.pixel_accuracy(),
            &case["accuracy"],
            &format!("{name} pixel accuracy"),
        );
        close(
            cm.balanced_accuracy(),
            &case["balanced_accuracy"],
            &format!("{name} balanced accuracy"),
        );
        for (metric, key) in METRICS {
            let per = cm.per_class(metric);
            let want = case["per_class"][key].as_array().unwrap();
            assert_eq!(per.len(), want.len(), "{name} {key}: classes");
            for (c, (got, want)) in per.iter().zip(want).enumerate() {
                close(*got, want, &format!("{name} {key} class {c}"));
            }
            close(
                cm.macro_average(metric),
                &case["macro"][key],
                &format!("{name} macro {key}"),
            );
            close(
                cm.micro_average(metric),
                &case["micro"][key],
                &format!("{name} micro {key}"),
            );
        }
    }
}

#[test]
fn auroc_matches_sklearn() {
    let g = golden();
    let cases = g["auroc"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let scores: Vec<f64> = case["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let labels = bools(&case["labels"]);
        let mut acc = AurocAccumulator::new();
        let got = match mask(case) {
            Some(m) => {
                acc.try_add_masked(&scores, &labels, &m).unwrap();
                acc.compute()
            }
            None => {
                // Streamed in batches, and through the one-shot function.
                for (s, l) in scores.chunks(17).zip(labels.chunks(17)) {
                    acc.try_add(s, l).unwrap();
                }
                assert_eq!(acc.compute(), auroc(&scores, &labels), "{name}");
                acc.compute()
            }
        };
        if case["auroc"].is_null() {
            assert!(
                matches!(got, Err(MetricsError::SingleClass { .. })),
                "{name}: expected the single-class error, got {got:?}"
            );
        } else {
            close(got.unwrap(), &case["auroc"], name);
        }
    }
}

#[test]
fn mean_std_matches_numpy() {
    let g = golden();
    for case in g["mean_std"].as_array().unwrap() {
        let values: Vec<f64> = case["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let (mean, sd) = mean_std(&values);
        close(mean, &case["mean"], "mean");
        close(sd, &case["std"], "sample sd");
    }
}

#[test]
fn delta_m_matches_libmtl() {
    let g = golden();
    for case in g["delta_m"].as_array().unwrap() {
        let tasks: Vec<Vec<DeltaTerm>> = case["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|task| {
                task.as_array()
                    .unwrap()
                    .iter()
                    .map(|t| {
                        DeltaTerm::new(
                            t[0].as_f64().unwrap(),
                            t[1].as_f64().unwrap(),
                            t[2].as_bool().unwrap(),
                        )
                    })
                    .collect()
            })
            .collect();
        let flat: Vec<DeltaTerm> = tasks.iter().flatten().copied().collect();
        let slices: Vec<&[DeltaTerm]> = tasks.iter().map(Vec::as_slice).collect();
        close(delta_m(&flat).unwrap(), &case["delta_m"], "delta_m");
        close(
            delta_m_per_task(&slices).unwrap(),
            &case["delta_m_per_task"],
            "delta_m_per_task (LibMTL count_improvement)",
        );
    }
}
