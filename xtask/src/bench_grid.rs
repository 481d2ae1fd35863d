//! The `grid` rows of `cargo xtask bench`: wall time of the quick MNIST grid of four methods
//! trained one after another (`--jobs 1`) and two at once (`--jobs 2`), as whole processes
//! (`xtask train --quick --jobs N` into a fresh results folder each time), alternating the two
//! settings so that load on the machine hits both alike; medians, and whether both settings
//! gave the same metrics.

use std::fmt::Write as _;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use mtcool_train::results::{read_json, Summary};

use crate::workspace_root;

/// The grid timed.
const METHODS: &str = "joint,mtcool,pcgrad,mgda";

/// One timed grid: wall seconds and the summary's metrics per method and seed.
fn time_grid(jobs: usize, threads: Option<&str>) -> Result<(f64, String)> {
    let out = tempfile::tempdir().context("a temporary results folder")?;
    let exe = std::env::current_exe().context("locating this program")?;
    let root = workspace_root();
    crate::data::ensure_mnist(&root.join("datasets/mnist"), false)?;
    let mut command = Command::new(exe);
    command
        .args(["train", "--quick", "--methods", METHODS])
        .arg("--config")
        .arg(root.join("experiments/mnist.toml"))
        .arg("--data")
        .arg(root.join("datasets"))
        .arg("--out")
        .arg(out.path())
        .args(["--jobs", &jobs.to_string()])
        .env("RUST_LOG", "warn");
    match threads {
        Some(n) => command.env("RAYON_NUM_THREADS", n),
        None => command.env_remove("RAYON_NUM_THREADS"),
    };
    let start = Instant::now();
    let output = command.output().context("running the grid")?;
    let seconds = start.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!(
            "the --jobs {jobs} grid failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let summary: Summary = read_json(&out.path().join("mnist/summary.json"))?;
    let metrics = summary
        .methods
        .iter()
        .map(|(m, s)| {
            let runs: Vec<String> = s.runs.iter().map(|r| format!("{:?}", r.metrics)).collect();
            format!("{m}: {}", runs.join("; "))
        })
        .collect::<Vec<_>>()
        .join("\n");
    Ok((seconds, metrics))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Measures the section; `threads` is `RAYON_NUM_THREADS` as the user gave it (else each
/// worker gets ⌊cores / jobs⌋).
pub fn grid_section(repeats: usize, threads: Option<&str>) -> Result<String> {
    let (mut one, mut two) = (Vec::new(), Vec::new());
    let mut same = true;
    for r in 0..repeats.max(1) {
        let (t1, m1) = time_grid(1, threads)?;
        let (t2, m2) = time_grid(2, threads)?;
        println!(
            "grid repeat {}: --jobs 1 {t1:.1} s, --jobs 2 {t2:.1} s",
            r + 1
        );
        same &= m1 == m2;
        one.push(t1);
        two.push(t2);
    }
    let (m1, m2) = (median(&mut one), median(&mut two));
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## The grid: runs at once\n\nWall time of the quick MNIST grid of {} methods \
         (`{METHODS}`, 3 epochs, one run each) as a whole process, trained one after another \
         (`--jobs 1`) and in two worker processes (`--jobs 2`, {}); median of {} alternating \
         repeats, each into a fresh results folder.\n",
        METHODS.split(',').count(),
        match threads {
            Some(n) => format!("RAYON_NUM_THREADS={n} each"),
            None => "each with ⌊cores / 2⌋ threads".into(),
        },
        one.len()
    );
    let _ = writeln!(s, "Machine: {}.\n", super::machine());
    let _ = writeln!(
        s,
        "| grid | wall time (s) | relative to --jobs 1 |\n|---|---:|---:|"
    );
    let _ = writeln!(s, "| `--jobs 1` | {m1:.1} | 1.00 |");
    let _ = writeln!(s, "| `--jobs 2` | {m2:.1} | {:.2} |", m2 / m1);
    let _ = writeln!(
        s,
        "\nWorkers pay off when a process does not scale to all cores (a LeNet-MT step runs \
         about 1.4× faster on 2 threads than on 1); runs of unequal length (MT-COOL's take about \
         twice Joint's) leave a worker idle at the end of a short grid."
    );
    let _ = writeln!(
        s,
        "\nSame metrics with `--jobs 1` and `--jobs 2` in every repeat: {}.",
        if same { "yes" } else { "**no**" }
    );
    Ok(s)
}
