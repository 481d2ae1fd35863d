//! A tiny end-to-end grid on synthetic MNIST-format files: it learns, writes the results
//! files of the contract, resumes, and survives a diverging run.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use candle_core::Device;
use mtcool_train::config::Overrides;
use mtcool_train::results::{RunRecord, Summary};
use mtcool_train::{run_grid, ExperimentConfig, GridRequest};

fn write_mnist(dir: &Path) {
    mtcool_data::mnist::write_synthetic(dir, 700, 200, 0).unwrap();
}

fn config(lr: f64) -> ExperimentConfig {
    let text = format!(
        r#"
name = "toy"
description = "synthetic even / odd"
methods = ["joint", "mtcool"]
[data]
dataset = "mnist"
train_size = 600
tasks = [{{ name = "even", classes = [0, 2, 4, 6, 8] }}, {{ name = "odd", classes = [1, 3, 5, 7, 9] }}]
[model]
arch = "lenet"
[training]
epochs = 4
batch_size = 32
runs = 1
[training.sgd]
lr = {lr}
[mtcool]
warmup_epochs = 1
[paper]
metrics = ["even/accuracy", "odd/accuracy"]
[paper.methods.joint]
"even/accuracy" = {{ mean = 0.99 }}
"odd/accuracy" = {{ mean = 0.98 }}
"#
    );
    ExperimentConfig::parse(&text, Path::new("toy.toml")).unwrap()
}

/// The run's TensorBoard log holds one event per epoch and the test metrics, and its
/// `history.csv` has the run file's numbers, epoch by epoch.
fn tracking_agrees_with_the_run_file(exp: &Path, method: &str) {
    use mtcool_train::tracking::{events::event_files, HISTORY_CSV};
    let record: RunRecord =
        mtcool_train::results::read_json(&exp.join(format!("runs/{method}-seed0.json"))).unwrap();
    let dir = mtcool_train::results::tracking_dir(exp, method, 0, false);
    let files = event_files(&dir).unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    let events: Vec<tfrecord::Event> = tfrecord::EventIter::open(&files[0], Default::default())
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    let steps: Vec<i64> = events.iter().skip(2).map(|e| e.step).collect();
    let epochs: Vec<i64> = (1..=record.epochs as i64).collect();
    assert_eq!(steps[..epochs.len()], epochs[..], "one event per epoch");
    assert_eq!(steps.len(), epochs.len() + 1, "then the test metrics");
    let csv = std::fs::read_to_string(dir.join(HISTORY_CSV)).unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), record.history.len());
    for (row, epoch) in rows.iter().zip(&record.history) {
        let val: f64 = row[column("val/even/accuracy")].parse().unwrap();
        assert_eq!(val, epoch.val["even/accuracy"]);
        let loss: f64 = row[column("train/odd/loss")].parse().unwrap();
        assert_eq!(loss, epoch.train_loss["odd"]);
        assert!(!row[column("mtcool/clamped_fraction/even")].is_empty() || epoch.epoch == 1);
    }
}

#[test]
fn grid_learns_writes_results_and_resumes() {
    let root = tempfile::tempdir().unwrap();
    write_mnist(&root.path().join("data/mnist"));
    let request = GridRequest {
        config: config(0.05),
        data_dir: root.path().join("data"),
        out_dir: root.path().join("out"),
        methods: None,
        overrides: Overrides::default(),
        device: Device::Cpu,
        config_path: None,
        parallel: Default::default(),
    };
    let report = run_grid(&request).unwrap();
    assert_eq!((report.trained, report.reused), (2, 0));
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let text = std::fs::read_to_string(root.path().join("out/toy/summary.json")).unwrap();
    let summary: Summary = serde_json::from_str(&text).unwrap();
    assert_eq!(summary.experiment, "toy");
    assert!(!summary.quick);
    assert_eq!(summary.device, "cpu");
    for method in ["joint", "mtcool"] {
        let m = &summary.methods[method];
        assert_eq!(m.runs.len(), 1);
        for key in ["even/accuracy", "odd/accuracy"] {
            assert!(m.mean[key] > 0.9, "{method} {key} = {}", m.mean[key]);
            assert_eq!(m.std[key], 0.0);
        }
    }
    let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(raw["methods"]["joint"]["runs"][0]["seed"].is_u64());
    assert!(root.path().join("out/toy/runs/mtcool-seed0.json").is_file());
    let table = std::fs::read_to_string(&report.table_path).unwrap();
    assert!(
        table.contains("| joint |") && table.contains("99.00"),
        "{table}"
    );
    tracking_agrees_with_the_run_file(&root.path().join("out/toy"), "mtcool");

    // the same request again reuses both runs and trains nothing
    let again = run_grid(&request).unwrap();
    assert_eq!((again.trained, again.reused), (0, 2));
    assert_eq!(
        std::fs::read_to_string(root.path().join("out/toy/summary.json")).unwrap(),
        text
    );

    // changing a setting invalidates only the affected runs' fingerprints
    let more = GridRequest {
        methods: Some(vec!["joint".into()]),
        overrides: Overrides {
            epochs: Some(1),
            ..Overrides::default()
        },
        ..request.clone()
    };
    let third = run_grid(&more).unwrap();
    assert_eq!((third.trained, third.reused), (1, 0));
    let summary: Summary =
        serde_json::from_str(&std::fs::read_to_string(&third.summary_path).unwrap()).unwrap();
    assert_eq!(summary.methods.len(), 2, "the mtcool entry was kept");
    assert_eq!(summary.methods["joint"].runs[0].epochs, 1);
}

#[test]
fn a_diverging_run_is_reported_and_the_grid_goes_on() {
    let root = tempfile::tempdir().unwrap();
    write_mnist(&root.path().join("data/mnist"));
    let request = GridRequest {
        config: config(1e12),
        data_dir: root.path().join("data"),
        out_dir: root.path().join("out"),
        methods: Some(vec!["joint".into(), "independent".into()]),
        overrides: Overrides {
            epochs: Some(1),
            ..Overrides::default()
        },
        device: Device::Cpu,
        config_path: None,
        parallel: Default::default(),
    };
    let report = run_grid(&request).unwrap();
    assert_eq!(report.failures.len(), 2, "{:?}", report.failures);
    assert!(
        report.failures[0].contains("diverged"),
        "{}",
        report.failures[0]
    );
    assert!(report.summary_path.is_file());
}

#[test]
fn a_missing_dataset_names_the_file_and_the_fetch_command() {
    let root = tempfile::tempdir().unwrap();
    let request = GridRequest {
        config: config(0.05),
        data_dir: root.path().join("data"),
        out_dir: root.path().join("out"),
        methods: None,
        overrides: Overrides::default(),
        device: Device::Cpu,
        config_path: None,
        parallel: Default::default(),
    };
    let err = run_grid(&request).unwrap_err().to_string();
    assert!(
        err.contains("train-images-idx3-ubyte") && err.contains("xtask data mnist"),
        "{err}"
    );
}

#[test]
fn same_seed_gives_the_same_numbers() {
    let root = tempfile::tempdir().unwrap();
    write_mnist(&root.path().join("data/mnist"));
    let run = |out: &str, seed: u64| {
        let request = GridRequest {
            config: config(0.05),
            data_dir: root.path().join("data"),
            out_dir: root.path().join(out),
            methods: Some(vec!["mtcool".into()]),
            overrides: Overrides {
                epochs: Some(2),
                seed: Some(seed),
                ..Overrides::default()
            },
            device: Device::Cpu,
            config_path: None,
            parallel: Default::default(),
        };
        run_grid(&request).unwrap();
        // the whole record: test metrics and every epoch's training loss and validation numbers
        let path = root
            .path()
            .join(out)
            .join(format!("toy/runs/mtcool-seed{seed}.json"));
        let record: RunRecord =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let history: Vec<_> = record
            .history
            .iter()
            .map(|e| (e.train_loss.clone(), e.val.clone()))
            .collect();
        (record.metrics, history)
    };
    let first = run("a", 3);
    assert_eq!(first, run("b", 3));
    assert_ne!(first, run("c", 4));
}

#[test]
fn diagnostics_and_early_stopping_are_recorded() {
    let root = tempfile::tempdir().unwrap();
    write_mnist(&root.path().join("data/mnist"));
    let mut config = config(0.05);
    config.training.epochs = 30;
    config.training.early_stopping_patience = Some(2);
    config.methods = vec!["joint".into(), "mtcool".into(), "pcgrad".into()];
    let request = GridRequest {
        config,
        data_dir: root.path().join("data"),
        out_dir: root.path().join("out"),
        methods: None,
        overrides: Overrides::default(),
        device: Device::Cpu,
        config_path: None,
        parallel: Default::default(),
    };
    let report = run_grid(&request).unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    for method in ["joint", "mtcool", "pcgrad"] {
        let path = root
            .path()
            .join(format!("out/toy/runs/{method}-seed0.json"));
        let record: RunRecord =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        // early stopping: the tested epoch is the best validation loss, and training stopped
        // `patience` epochs after it (or ran to the end)
        let best = record.best_epoch.unwrap();
        let val_loss = |e: &mtcool_train::results::EpochRecord| -> f64 {
            e.val
                .iter()
                .filter(|(k, _)| k.ends_with("/loss"))
                .map(|(_, v)| v)
                .sum()
        };
        let losses: Vec<f64> = record.history.iter().map(val_loss).collect();
        let min = losses.iter().copied().fold(f64::INFINITY, f64::min);
        assert_eq!(losses[best - 1], min, "{method}");
        assert!(record.epochs == 30 || record.epochs == best + 2, "{method}");
        assert_eq!(record.history.len(), record.epochs);
        // gradient conflict: one cosine per epoch, within [-1, 1]
        for e in &record.history {
            let c = e.gradient_cosine["even~odd"];
            assert!((-1.0..=1.0).contains(&c), "{method}: {c}");
        }
        // flatness: every bound for both tasks; the unperturbed point has no spread
        assert_eq!(record.flatness.len(), 2 * 6, "{method}");
        let clean = &record.flatness[0];
        assert_eq!((clean.bound, clean.sd), (0.0, 0.0));
        assert!(record.flatness.iter().all(|p| p.loss.is_finite()));
    }
}
