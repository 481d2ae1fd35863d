//! The grid across processes, through the real binary: `--jobs`, thread counts, two grids
//! on one results folder, stale locks, a killed worker, bad options, and the SLURM scripts
//! run task by task as SLURM would.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{children, kill, run, BIN};
use mtcool_train::results::{RunRecord, Summary};

/// A toy even/odd grid on synthetic MNIST files: `methods` × `runs` runs of `epochs` epochs.
struct Toy {
    root: tempfile::TempDir,
}

impl Toy {
    fn new(methods: &str, runs: usize, epochs: usize, lr: f64) -> Self {
        let root = tempfile::tempdir().unwrap();
        mtcool_data::mnist::write_synthetic(&root.path().join("data/mnist"), 700, 200, 0).unwrap();
        let config = format!(
            r#"
name = "toy"
description = "synthetic even / odd"
methods = [{methods}]
[data]
dataset = "mnist"
train_size = 600
tasks = [{{ name = "even", classes = [0, 2, 4, 6, 8] }}, {{ name = "odd", classes = [1, 3, 5, 7, 9] }}]
[model]
arch = "lenet"
[training]
epochs = {epochs}
batch_size = 32
runs = {runs}
[training.sgd]
lr = {lr}
[mtcool]
warmup_epochs = 1
[paper]
metrics = ["even/accuracy", "odd/accuracy"]
"#
        );
        std::fs::write(root.path().join("toy.toml"), config).unwrap();
        Self { root }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    /// `mtcool train` on this toy with extra arguments, results into `out`.
    fn train(&self, out: &str, extra: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg("train")
            .arg("--config")
            .arg(self.path("toy.toml"))
            .arg("--data")
            .arg(self.path("data"))
            .arg("--out")
            .arg(self.path(out))
            .args(extra)
            .env_remove("RAYON_NUM_THREADS")
            .env("RUST_LOG", "info");
        command
    }

    fn summary(&self, out: &str) -> Summary {
        read(&self.path(out).join("toy/summary.json"))
    }

    fn run_file(&self, out: &str, name: &str) -> RunRecord {
        read(&self.path(out).join("toy/runs").join(name))
    }
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A run's (method, seed, metrics) as a summary lists it.
type RunMetrics = (String, u64, Vec<(String, f64)>);

/// Each method's per-seed metrics.
fn metrics(summary: &Summary) -> Vec<RunMetrics> {
    summary
        .methods
        .iter()
        .flat_map(|(m, s)| {
            s.runs.iter().map(move |r| {
                let values = r.metrics.iter().map(|(k, v)| (k.clone(), *v)).collect();
                (m.clone(), r.seed, values)
            })
        })
        .collect()
}

/// What a run computed: test metrics, and every epoch's losses and validation numbers.
fn numbers(record: &RunRecord) -> impl PartialEq + std::fmt::Debug {
    let history: Vec<_> = record
        .history
        .iter()
        .map(|e| (e.train_loss.clone(), e.val.clone()))
        .collect();
    (record.metrics.clone(), history, record.flatness.clone())
}

#[test]
fn jobs_and_threads_do_not_change_the_numbers() {
    let toy = Toy::new(r#""joint", "mtcool", "pcgrad""#, 2, 2, 0.05);
    run(toy
        .train("one", &["--jobs", "1"])
        .env("RAYON_NUM_THREADS", "2"));
    let out = run(&mut toy.train("two", &["--jobs", "2"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("6 run(s) trained, 0 reused, 2 job(s)"),
        "{stdout}"
    );
    let (one, two) = (toy.summary("one"), toy.summary("two"));
    assert_eq!(metrics(&one), metrics(&two));
    assert_eq!(metrics(&one).len(), 6);
    assert_eq!((one.jobs, two.jobs), (Some(1), Some(2)));
    assert!(two.wall_seconds.is_some_and(|w| w > 0.0));
    // one run alone at 1 thread equals the same run at 2 threads, epoch by epoch
    for (index, name) in [(2, "mtcool-seed0.json"), (5, "pcgrad-seed1.json")] {
        run(toy
            .train("single", &["--run-index", &index.to_string()])
            .env("RAYON_NUM_THREADS", "1"));
        let (at1, at2) = (toy.run_file("single", name), toy.run_file("one", name));
        assert_eq!(numbers(&at1), numbers(&at2), "{name}");
        assert_eq!(at1.device, "cpu");
    }
    // workers leave a log per run and no lock
    assert!(toy.path("two/toy/logs/joint-seed1.log").is_file());
    let locks = std::fs::read_dir(toy.path("two/toy/runs"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "lock")
        })
        .count();
    assert_eq!(locks, 0);
}

#[test]
fn two_grids_on_one_folder_train_each_run_once() {
    let toy = Toy::new(r#""joint", "mtcool", "independent""#, 2, 2, 0.05);
    let spawn = || {
        toy.train("shared", &[])
            .env("RAYON_NUM_THREADS", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let trained: usize = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()]
        .iter()
        .map(|out| {
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let line = stdout
                .lines()
                .find(|l| l.contains("run(s) trained"))
                .unwrap();
            line.split_whitespace()
                .next()
                .unwrap()
                .parse::<usize>()
                .unwrap()
        })
        .sum();
    assert_eq!(trained, 6, "every run trained exactly once");
    let summary = toy.summary("shared");
    assert_eq!(metrics(&summary).len(), 6);
    for m in summary.methods.values() {
        assert_eq!(m.runs.len(), 2);
    }
}

#[test]
fn a_stale_lock_is_taken_over_and_a_live_one_waited_for() {
    let toy = Toy::new(r#""joint""#, 2, 1, 0.05);
    let runs = toy.path("out/toy/runs");
    std::fs::create_dir_all(&runs).unwrap();
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let lock = format!(
        r#"{{"host": "{}", "pid": {pid}, "token": "x", "since": 0}}"#,
        mtcool_train::grid::claim::host_name()
    );
    std::fs::write(runs.join("joint-seed0.lock"), lock).unwrap();
    let out = run(&mut toy.train("out", &[]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("stale lock") && stderr.contains("taking the run over"),
        "{stderr}"
    );
    assert!(runs.join("joint-seed0.json").is_file());
    assert!(!runs.join("joint-seed0.lock").exists());

    // a live holder (this test) of seed 1: the grid waits, and reports the run when the
    // holder lets go without a result, instead of training it a second time
    for seed in [0, 1] {
        std::fs::remove_file(runs.join(format!("joint-seed{seed}.json"))).unwrap();
    }
    let live = format!(
        r#"{{"host": "{}", "pid": {}, "token": "y", "since": 0}}"#,
        mtcool_train::grid::claim::host_name(),
        std::process::id()
    );
    std::fs::write(runs.join("joint-seed1.lock"), live).unwrap();
    let grid = toy
        .train("out", &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !runs.join("joint-seed0.json").is_file() {
        assert!(start.elapsed().as_secs() < 60, "seed 0 never finished");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    std::fs::remove_file(runs.join("joint-seed1.lock")).unwrap();
    let out = grid.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("being trained by") && stderr.contains("waiting for 1 run(s)"),
        "{stderr}"
    );
    assert!(stderr.contains("stopped without a result"), "{stderr}");
    assert!(!runs.join("joint-seed1.json").exists());
}

/// The pids of `parent`'s children (Linux).
#[test]
fn a_killed_worker_fails_its_run_only() {
    let toy = Toy::new(r#""joint", "mtcool""#, 1, 6, 0.05);
    let grid = toy
        .train("out", &["--jobs", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let victim = loop {
        let kids = children(grid.id());
        if kids.len() == 2 {
            std::thread::sleep(std::time::Duration::from_millis(300));
            break kids[1];
        }
        assert!(start.elapsed().as_secs() < 60, "workers never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    kill(victim);
    let out = grid.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("signal 9") && stderr.contains("1 run(s) failed"),
        "{stderr}"
    );
    let summary = toy.summary("out");
    assert_eq!(
        summary.methods.len(),
        1,
        "the other run finished and is summarised"
    );
}

/// Runs `command`, expecting a failure whose stderr is one `error:` line containing `needle`.
fn one_line_error(command: &mut Command, needle: &str) {
    let out = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains(" INFO ") && !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains(needle),
        "{stderr}"
    );
}

#[test]
fn bad_options_give_one_clear_line() {
    let toy = Toy::new(r#""joint""#, 1, 1, 0.05);
    one_line_error(
        &mut toy.train("out", &["--jobs", "0"]),
        "--jobs: must be at least 1",
    );
    one_line_error(
        &mut toy.train("out", &["--jobs", "2", "--devices", "cpu,tpu:1"]),
        "unknown device `tpu:1`",
    );
    one_line_error(
        &mut toy.train("out", &["--run-index", "7"]),
        "this grid has 1 run(s)",
    );
    std::fs::write(toy.path("file"), "").unwrap();
    one_line_error(&mut toy.train("file/out", &[]), "cannot write results here");
}

#[test]
fn the_slurm_scripts_run_task_by_task_and_merge() {
    let toy = Toy::new(r#""joint", "mtcool""#, 2, 1, 0.05);
    run(&mut toy.train("out", &["--run-index", "1"]));
    let config = mtcool_train::ExperimentConfig::load(&toy.path("toy.toml")).unwrap();
    let args = mtcool_train::command::TrainArgs {
        config: toy.path("toy.toml"),
        grid: clap_defaults(&toy),
        run_index: None,
        worker: false,
    };
    let request = args
        .grid
        .request(
            config,
            &args.config,
            toy.path("data"),
            toy.path("slurm"),
            None,
        )
        .unwrap();
    // seed 1 of joint is already there: copy it in, as a resubmission after a failure would see
    std::fs::create_dir_all(toy.path("slurm/toy/runs")).unwrap();
    std::fs::copy(
        toy.path("out/toy/runs/joint-seed1.json"),
        toy.path("slurm/toy/runs/joint-seed1.json"),
    )
    .unwrap();
    let scripts = mtcool_train::slurm::write_scripts(
        &request,
        &mtcool_train::slurm::SlurmSettings {
            binary: BIN.into(),
            options: vec!["--time=00:10:00".into()],
        },
    )
    .unwrap();
    assert_eq!(scripts.runs, [0, 2, 3], "only the runs without results");
    let text = std::fs::read_to_string(&scripts.array).unwrap();
    assert!(text.contains("#SBATCH --array=0-2") && text.contains("#SBATCH --time=00:10:00"));
    assert!(!text.contains("--gres"), "a CPU grid asks for no GPU");
    for task in 0..scripts.runs.len() {
        run(Command::new("bash")
            .arg(&scripts.array)
            .env("SLURM_ARRAY_TASK_ID", task.to_string())
            .env("SLURM_CPUS_PER_TASK", "1"));
    }
    run(Command::new("bash").arg(&scripts.merge));
    run(&mut toy.train("local", &[]));
    assert_eq!(
        metrics(&toy.summary("slurm")),
        metrics(&toy.summary("local"))
    );
    assert!(toy.path("slurm/toy/figures/test_metrics.png").is_file());
}

/// `GridArgs` as the command line's defaults would give them.
fn clap_defaults(toy: &Toy) -> mtcool_train::command::GridArgs {
    mtcool_train::command::GridArgs {
        methods: None,
        quick: false,
        epochs: None,
        runs: None,
        seed: None,
        ops: None,
        data: toy.path("data"),
        out: toy.path("slurm"),
        device: "cpu".into(),
        jobs: 1,
        devices: None,
        quiet: false,
    }
}

#[test]
fn a_run_keeps_its_model_and_eval_reproduces_its_metrics() {
    let toy = Toy::new(r#""joint", "mtcool""#, 1, 2, 0.05);
    run(&mut toy.train("out", &[]));
    for method in ["joint", "mtcool"] {
        let record = toy.run_file("out", &format!("{method}-seed0.json"));
        let name = record.checkpoint.clone().unwrap();
        let checkpoint = toy.path("out/toy/runs").join(&name);
        assert!(checkpoint.is_file(), "{}", checkpoint.display());
        let eval = |split: &str| -> std::collections::BTreeMap<String, f64> {
            let out = run(Command::new(BIN)
                .arg("eval")
                .arg("--checkpoint")
                .arg(&checkpoint)
                .arg("--data")
                .arg(toy.path("data"))
                .args(["--split", split, "--json"]));
            serde_json::from_slice(&out.stdout).unwrap()
        };
        assert_eq!(eval("test"), record.metrics, "{method}");
        let last = record.history.last().unwrap();
        for (key, value) in eval("val") {
            if let Some(logged) = last.val.get(&key) {
                assert_eq!(value, *logged, "{method} {key}");
            }
        }
    }
    let bad = toy.path("bad.safetensors");
    std::fs::write(&bad, b"\x02\x00\x00\x00\x00\x00\x00\x00{}").unwrap();
    one_line_error(
        Command::new(BIN).arg("eval").arg("--checkpoint").arg(&bad),
        "not a checkpoint of an mtcool run",
    );
    std::fs::write(&bad, b"garbage").unwrap();
    one_line_error(
        Command::new(BIN).arg("eval").arg("--checkpoint").arg(&bad),
        "not a safetensors checkpoint",
    );
}

#[test]
fn off_a_terminal_runs_log_progress_lines_and_quiet_keeps_only_the_table() {
    let toy = Toy::new(r#""joint""#, 2, 1, 0.05);
    let plain = toy.train("plain", &[]).output().unwrap();
    assert!(plain.status.success());
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(stderr.contains("grid: 1/2 runs done, "), "{stderr}");
    assert!(stderr.contains("grid: 2/2 runs done, "), "{stderr}");

    let mut quiet = toy.train("quiet", &["--quiet"]);
    quiet.env_remove("RUST_LOG");
    let out = quiet.output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.trim().is_empty(), "--quiet printed: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("| joint |"), "{stdout}");
    assert_eq!(
        metrics(&toy.summary("quiet")),
        metrics(&toy.summary("plain"))
    );
}
