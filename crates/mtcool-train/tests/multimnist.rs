//! MultiMNIST end to end on synthetic MNIST files: the generator's IDX files are read as two
//! class tasks sharing one input, and MultiLeNet trains in every sharing mode (MGDA-UB takes
//! its gradients at the shared representation).
#![allow(clippy::unwrap_used)]

use std::path::Path;

use candle_core::Device;
use mtcool_train::config::{DataConfig, Overrides};
use mtcool_train::results::Summary;
use mtcool_train::{run_grid, ExperimentConfig, GridRequest};

fn write_data(root: &Path) {
    let mnist = root.join("mnist");
    mtcool_data::mnist::write_synthetic(&mnist, 700, 200, 0).unwrap();
    let files = mtcool_data::mnist::load(&mnist).unwrap();
    let (train, test) = mtcool_data::multi::generate_splits(
        (&files.train, &files.test),
        (&files.train, &files.test),
        0,
    );
    mtcool_data::multi::write(&root.join("multimnist"), &train, &test).unwrap();
}

/// A quick two-epoch grid of `methods` on generated MultiMNIST under `root`, into `out`.
fn quick_request(root: &Path, out: &Path, methods: &[&str]) -> GridRequest {
    write_data(root);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/multimnist.toml");
    let mut config = ExperimentConfig::load(&path).unwrap();
    if let DataConfig::Multi { train_size, .. } = &mut config.data {
        *train_size = 600;
    }
    GridRequest {
        config,
        data_dir: root.to_path_buf(),
        out_dir: out.to_path_buf(),
        methods: Some(methods.iter().map(|m| m.to_string()).collect()),
        overrides: Overrides {
            quick: true,
            epochs: Some(2),
            ..Default::default()
        },
        device: Device::Cpu,
        config_path: None,
        parallel: Default::default(),
    }
}

#[test]
fn multi_lenet_trains_on_generated_multimnist_in_every_sharing_mode() {
    let (root, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let methods = ["independent", "joint", "mtcool", "mgda"];
    let request = quick_request(root.path(), out.path(), &methods);
    let report = run_grid(&request).unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let summary: Summary =
        serde_json::from_str(&std::fs::read_to_string(report.summary_path).unwrap()).unwrap();
    assert_eq!(summary.methods.len(), 4);
    for (method, row) in &summary.methods {
        for key in ["left/accuracy", "right/accuracy"] {
            let value = row.mean[key];
            assert!((0.0..=1.0).contains(&value), "{method} {key} = {value}");
        }
    }
}

#[test]
fn runs_record_the_task_weights_their_method_applied() {
    let (root, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let methods = ["joint", "mgda", "rlw", "mtcool"];
    let request = quick_request(root.path(), out.path(), &methods);
    let report = run_grid(&request).unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    for method in methods {
        let file = out
            .path()
            .join(format!("multimnist/runs/{method}-seed0-quick.json"));
        let run: mtcool_train::results::RunRecord =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for epoch in &run.history {
            let w = &epoch.task_weights;
            match method {
                "joint" => assert_eq!((w["left"], w["right"]), (1.0, 1.0)),
                // MGDA's min-norm weights and RLW's softmax lie on the simplex.
                "mgda" | "rlw" => {
                    assert!(
                        (w["left"] + w["right"] - 1.0).abs() < 1e-9,
                        "{method}: {w:?}"
                    );
                    assert!(
                        w.values().all(|v| (0.0..=1.0).contains(v)),
                        "{method}: {w:?}"
                    );
                }
                _ => assert!(w.is_empty(), "{method} has no single task weights: {w:?}"),
            }
        }
    }
}
