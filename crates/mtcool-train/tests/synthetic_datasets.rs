//! The image-to-image experiments end to end on synthetic files in the real formats
//! (`mtcool_data::synth`): REFUGE, HRF-AV, pets and OrganCMNIST train with their committed
//! experiment configs (quick settings), and every metric of the summary is finite and in
//! range, under the task names of the results contract.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use candle_core::Device;
use mtcool_train::config::Overrides;
use mtcool_train::results::{RunRecord, Summary};
use mtcool_train::{run_grid, ExperimentConfig, GridRequest, MethodKind};

fn experiments() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments")
}

fn synth() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    mtcool_data::synth::write_all(dir.path(), &Default::default(), 0).unwrap();
    dir
}

fn load(name: &str) -> ExperimentConfig {
    ExperimentConfig::load(&experiments().join(format!("{name}.toml"))).unwrap()
}

/// Runs `methods` of experiment `name` with its quick settings on `data`; returns the summary.
fn quick(name: &str, methods: &[MethodKind], data: &Path) -> Summary {
    quick_with(load(name), methods, data)
}

/// Runs `methods` of `config` with its quick settings on `data`; returns the summary.
fn quick_with(config: ExperimentConfig, methods: &[MethodKind], data: &Path) -> Summary {
    let out = tempfile::tempdir().unwrap();
    let names: Vec<String> = methods.iter().map(|m| m.name().to_string()).collect();
    let summary_path = quick_grid(config, names, data, 1, out.path());
    serde_json::from_str(&std::fs::read_to_string(summary_path).unwrap()).unwrap()
}

/// Trains the `methods` rows of `config` (quick, `epochs` epochs) into `out`; returns the
/// summary's path.
fn quick_grid(
    config: ExperimentConfig,
    methods: Vec<String>,
    data: &Path,
    epochs: usize,
    out: &Path,
) -> PathBuf {
    let request = GridRequest {
        config,
        data_dir: data.to_path_buf(),
        out_dir: out.to_path_buf(),
        methods: Some(methods),
        overrides: Overrides {
            quick: true,
            epochs: Some(epochs),
            ..Default::default()
        },
        device: Device::Cpu,
        config_path: None,
        parallel: Default::default(),
    };
    let report = run_grid(&request).unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    report.summary_path
}

/// Every metric is finite; fractions lie in [0, 1]; each task has a metric.
fn check(summary: &Summary, tasks: &[&str]) {
    for (method, m) in &summary.methods {
        for task in tasks {
            assert!(
                m.mean.keys().any(|k| k.starts_with(&format!("{task}/"))),
                "{method}: no metric for task {task}: {:?}",
                m.mean.keys()
            );
        }
        for (key, value) in &m.mean {
            assert!(value.is_finite(), "{method} {key} = {value}");
            if !key.ends_with("/mse") {
                assert!((0.0..=1.0).contains(value), "{method} {key} = {value}");
            }
        }
    }
}

#[test]
fn refuge_hrfav_pets_and_organcmnist_train_on_synthetic_files() {
    let data = synth();
    let refuge = quick(
        "refuge",
        &[MethodKind::Joint, MethodKind::MtCool],
        data.path(),
    );
    check(&refuge, &["seg", "cls"]);
    let m = &refuge.methods["joint"].mean;
    for key in [
        "seg/cup_dice",
        "seg/disc_dice",
        "cls/accuracy",
        "cls/specificity",
    ] {
        assert!(m.contains_key(key), "refuge lacks {key}: {:?}", m.keys());
    }

    let hrfav = quick("hrfav", &[MethodKind::Independent], data.path());
    check(&hrfav, &["vessel", "av"]);
    let m = &hrfav.methods["independent"].mean;
    for key in [
        "vessel/f1",
        "av/artery_f1",
        "av/vein_accuracy",
        "av/accuracy",
    ] {
        assert!(m.contains_key(key), "hrfav lacks {key}: {:?}", m.keys());
    }

    let organ = quick("organcmnist", &[MethodKind::Joint], data.path());
    check(&organ, &["organs-a", "organs-b"]);
}

#[cfg(feature = "hdf5")]
#[test]
fn pets_trains_on_synthetic_hdf5_files() {
    let data = synth();
    let pets = quick(
        "pets",
        &[MethodKind::Fixed, MethodKind::Uncertainty],
        data.path(),
    );
    check(&pets, &["seg", "cls", "box", "rec"]);
    let m = &pets.methods["fixed"].mean;
    for key in ["seg/accuracy", "seg/iou", "seg/dice", "box/iou", "rec/mse"] {
        assert!(m.contains_key(key), "pets lacks {key}: {:?}", m.keys());
    }
}

/// In a build without HDF5 the synthetic `pets/` holds the release layout, so the committed
/// pets config runs on `data synth`'s output unchanged.
#[cfg(not(feature = "hdf5"))]
#[test]
fn the_committed_pets_config_runs_on_the_synthetic_data_without_hdf5() {
    let data = synth();
    let pets = quick("pets", &[MethodKind::Joint], data.path());
    check(&pets, &["seg", "cls", "box", "rec"]);
}

/// The original release's layout (images, trimaps, xmls, list.txt) needs no HDF5: the pets
/// config reads it from a folder that holds it, whatever the build's features.
#[test]
fn pets_trains_on_the_original_release_layout() {
    let data = synth();
    let mut config = load("pets");
    if let mtcool_train::config::DataConfig::Pets { folder, .. } = &mut config.data {
        *folder = "pets-release".into();
    }
    let mut small = toml::Table::new();
    small.insert("size".into(), toml::Value::Integer(64));
    config
        .quick
        .data
        .get_or_insert_with(Default::default)
        .insert("release".into(), toml::Value::Table(small));
    let pets = quick_with(config, &[MethodKind::Fixed], data.path());
    check(&pets, &["seg", "cls", "box", "rec"]);
    let m = &pets.methods["fixed"].mean;
    for key in ["seg/accuracy", "seg/iou", "seg/dice", "box/iou", "rec/mse"] {
        assert!(m.contains_key(key), "pets lacks {key}: {:?}", m.keys());
    }
}

/// Random mirroring is applied (the run differs from the unmirrored one) and is drawn from
/// the run's seed (the same run repeats exactly).
#[test]
fn horizontal_flips_change_training_and_repeat_exactly() {
    let data = synth();
    let joint = [MethodKind::Joint];
    let plain = quick("refuge", &joint, data.path());
    let mut config = load("refuge");
    config.training.horizontal_flip = true;
    let flipped = quick_with(config.clone(), &joint, data.path());
    let again = quick_with(config, &joint, data.path());
    check(&flipped, &["seg", "cls"]);
    let mean = |s: &Summary| s.methods["joint"].mean.clone();
    assert_eq!(mean(&flipped), mean(&again));
    assert_ne!(mean(&flipped), mean(&plain));
}

/// Trains Joint on synthetic REFUGE (U-Net-MT: BatchNorm) with `epochs` and `patience`;
/// returns the run file.
fn refuge_run(data: &Path, epochs: usize, patience: Option<usize>) -> (RunRecord, PathBuf) {
    let mut config = load("refuge");
    config.training.early_stopping_patience = patience;
    config.training.sgd.lr = 0.05;
    let out = tempfile::tempdir().unwrap();
    quick_grid(config, vec!["joint".into()], data, epochs, out.path());
    let runs = out.keep().join("refuge/runs");
    let path = runs.join("joint-seed0-quick.json");
    let record = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    (record, runs)
}

#[test]
fn early_stopping_tests_the_best_epoch_with_its_batch_norm_statistics() {
    let data = synth();
    let (stopped, runs) = refuge_run(data.path(), 8, Some(1));
    let best = stopped.best_epoch.unwrap();
    assert!(
        best < stopped.epochs,
        "the schedule must train past its best epoch for this test to mean anything"
    );
    // The same seed trained for exactly `best` epochs ends where the early-stopped run's
    // best epoch was: parameters and BatchNorm running statistics alike.
    let (plain, _) = refuge_run(data.path(), best, None);
    assert_eq!(stopped.metrics, plain.metrics);
    // The kept model is the tested one: re-evaluated from its file, the same numbers.
    let checkpoint = runs.join(stopped.checkpoint.as_ref().unwrap());
    let (meta, metrics) = mtcool_train::checkpoint::evaluate_checkpoint(
        &checkpoint,
        data.path(),
        mtcool_train::checkpoint::EvalSplit::Test,
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(metrics, stopped.metrics);
    assert_eq!((meta.epoch, meta.method.as_str()), (best, "joint"));
    let last =
        mtcool_train::checkpoint::read_meta(&runs.join("joint-seed0-quick-last.safetensors"));
    assert_eq!(last.unwrap().epoch, stopped.epochs);
    let _ = std::fs::remove_dir_all(runs.parent().unwrap().parent().unwrap());
}
