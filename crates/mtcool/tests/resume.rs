//! Resume inside a run, through the real binary: a quick U-Net grid on synthetic REFUGE files
//! (BatchNorm; MT-COOL with SGD and its noise; Joint with Adam and early stopping) is killed
//! during epoch 2 and rerun. The rerun resumes both runs at epoch 2 and ends with the numbers
//! of an uninterrupted grid, bit for bit.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{children, kill, Synth, BIN};
use mtcool_train::results::RunRecord;

const METHODS: [&str; 2] = ["mtcool", r#"joint[optimizer = "adam"]"#];

/// The runs' file stems (`<row>-seed0-quick`).
fn runs() -> Vec<String> {
    METHODS
        .iter()
        .map(|m| {
            let spec: mtcool_train::config::MethodSpec = m.parse().unwrap();
            format!("{}-seed0-quick", spec.file_stem())
        })
        .collect()
}

struct Setup {
    synth: Synth,
    config: PathBuf,
}

impl Setup {
    fn new() -> Self {
        let synth = Synth::new();
        let config = synth.config("refuge", |text| {
            text.replace(
                "[training]\n",
                "[training]\nearly_stopping_patience = 2\ncheckpoint_every = 1\n",
            )
        });
        Self { synth, config }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.synth.path(rel)
    }

    fn train(&self, out: &str, jobs: &str) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg("train")
            .arg("--config")
            .arg(&self.config)
            .arg("--data")
            .arg(self.path("data"))
            .arg("--out")
            .arg(self.path(out))
            .args(["--quick", "--epochs", "3", "--jobs", jobs])
            .args(["--methods", &METHODS.join(",")])
            .env_remove("RAYON_NUM_THREADS")
            .env("RUST_LOG", "info");
        command
    }

    fn run_file(&self, out: &str, run: &str) -> RunRecord {
        let path = self.path(out).join(format!("refuge/runs/{run}.json"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }
}

/// What a run computed: test metrics, every epoch's losses and validation numbers, the best
/// epoch and the flatness probe.
fn numbers(record: &RunRecord) -> impl PartialEq + std::fmt::Debug {
    let history: Vec<_> = record
        .history
        .iter()
        .map(|e| {
            (
                e.train_loss.clone(),
                e.val.clone(),
                e.clamped_fraction.clone(),
            )
        })
        .collect();
    (
        record.metrics.clone(),
        history,
        record.best_epoch,
        record.flatness.clone(),
    )
}

#[test]
fn a_killed_grid_resumes_its_runs_at_their_last_epoch() {
    let setup = Setup::new();
    let reference = setup.train("reference", "1").output().unwrap();
    assert!(
        reference.status.success(),
        "{}",
        String::from_utf8_lossy(&reference.stderr)
    );
    let names = runs();
    for run in &names {
        let resume = setup.path(&format!("reference/refuge/runs/{run}-resume.safetensors"));
        assert!(!resume.exists(), "a finished run keeps no resume state");
    }

    let mut grid = setup
        .train("out", "2")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let runs = setup.path("out/refuge/runs");
    let start = Instant::now();
    while !names
        .iter()
        .all(|r| runs.join(format!("{r}-resume.safetensors")).exists())
    {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no resume state after epoch 1"
        );
        assert!(grid.try_wait().unwrap().is_none(), "the grid ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Epoch 2 is under way: kill the workers and the grid, as a lost node would.
    for worker in children(grid.id()) {
        kill(worker);
    }
    kill(grid.id());
    grid.wait().unwrap();
    for run in &names {
        assert!(!runs.join(format!("{run}.json")).exists(), "{run} finished");
    }

    let rerun = setup.train("out", "2").output().unwrap();
    let stderr = String::from_utf8_lossy(&rerun.stderr);
    assert!(rerun.status.success(), "{stderr}");
    for run in &names {
        let log = std::fs::read_to_string(setup.path(&format!("out/refuge/logs/{run}.log")))
            .unwrap_or_default();
        assert!(
            log.contains("resumed at epoch 2") || stderr.contains("resumed at epoch 2"),
            "{run}: {log}\n{stderr}"
        );
        let resumed = setup.run_file("out", run);
        assert_eq!(resumed.epochs, 3, "{run}");
        assert_eq!(
            numbers(&resumed),
            numbers(&setup.run_file("reference", run)),
            "{run}"
        );
        assert!(!runs.join(format!("{run}-resume.safetensors")).exists());
    }
}
