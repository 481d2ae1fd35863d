//! `cargo xtask bench`: training-step throughput per op set (fast = mtcool's own conv/pool
//! ops, candle = candle's `conv2d`/`max_pool2d`), written to `docs/benchmarks.md`.
//!
//! Rows (`--rows`, default all):
//! - `lenet`: LeNet-MT Joint and MT-COOL steps with both op sets, and every method with the
//!   fast ops. One step = one iteration of the method on one mini-batch per task (both
//!   tasks), forward, backward and SGD, on seeded random data; median of several timed blocks
//!   after a few warm-up steps.
//! - `unet`, `psinet`: one Joint step of U-Net-MT (4 × 3 × 256 × 256) and of Psi-Net
//!   (5 × 3 × 256 × 256) per op set; steps take seconds to minutes, so only a few are timed
//!   (see [`Args`]).
//! - `torch`: when `$MTCOOL_PYTHON -c "import torch"` works (default interpreter `python3`),
//!   the LeNet Joint step in PyTorch (`bench_lenet.py`), as a reference row; with `unet` /
//!   `psinet`, also those networks in PyTorch (`bench_large.py`), each timed right after our
//!   row of it, with the ratio.
//!
//! - `grid`: wall time of the quick MNIST grid of four methods at `--jobs 1` and `--jobs 2`
//!   (whole processes, alternating), and whether both gave the same metrics.
//!
//! Each group of rows is one section of the report; a run with fewer rows keeps the other
//! sections of the existing report as they were.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use mtcool_models::ops::OpsBackend;
use mtcool_models::LeNetMt;
use mtcool_optim::{MethodKind, MethodOptions, MtCoolConfig, TaskBatch};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::in_workspace;

#[path = "bench_large.rs"]
mod large;

#[path = "bench_grid.rs"]
mod grid;

use large::{Net, Timing};

/// A group of rows of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Row {
    /// LeNet-MT: Joint and MT-COOL per op set, every method with the fast ops.
    Lenet,
    /// U-Net-MT Joint step per op set.
    Unet,
    /// Psi-Net Joint step per op set.
    Psinet,
    /// The LeNet Joint step in PyTorch (reference).
    Torch,
    /// Wall time of the quick MNIST grid of four methods at `--jobs 1` and `--jobs 2`.
    Grid,
}

/// Options of `bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Mini-batch size per task.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Steps per timed block.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Timed blocks per row (the median is reported).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Methods of the per-method table (default: all), timed with the fast ops.
    #[arg(long, value_delimiter = ',')]
    methods: Option<Vec<MethodKind>>,
    /// Which rows to run (default: all); the report's other sections are kept.
    #[arg(long, value_enum, value_delimiter = ',')]
    rows: Option<Vec<Row>>,
    /// U-Net-MT / Psi-Net with the fast ops and PyTorch: untimed steps first (the first steps
    /// of a process touch fresh memory and run up to 2× slower).
    #[arg(long, default_value_t = 2)]
    large_warmup: usize,
    /// U-Net-MT / Psi-Net with the fast ops: timed steps (median reported).
    #[arg(long, default_value_t = 2)]
    large_steps: usize,
    /// U-Net-MT / Psi-Net with candle's ops: timed steps, without warm-up (minutes each).
    #[arg(long, default_value_t = 1)]
    slow_steps: usize,
    /// Grid rows: alternating repeats of each setting (the median is reported).
    #[arg(long, default_value_t = 3)]
    grid_repeats: usize,
    /// Skip Psi-Net with candle's ops (the slowest row by far).
    #[arg(long)]
    skip_slow: bool,
    /// Skip both networks' rows with candle's ops (minutes per step; for profiling the fast
    /// ops against PyTorch).
    #[arg(long)]
    skip_candle: bool,
    /// Where to write the markdown report.
    #[arg(long, default_value = "docs/benchmarks.md")]
    out: PathBuf,
}

fn random_batch(rng: &mut ChaCha8Rng, n: usize) -> Result<TaskBatch> {
    let pixels: Vec<f32> = (0..n * 28 * 28)
        .map(|_| rng.random_range(-0.5..2.8))
        .collect();
    let labels: Vec<u32> = (0..n).map(|_| rng.random_range(0..5)).collect();
    Ok(TaskBatch {
        input: Tensor::from_vec(pixels, (n, 1, 28, 28), &Device::Cpu)?,
        target: Tensor::from_vec(labels, n, &Device::Cpu)?,
    })
}

/// Median images/s of `kind`'s step with `ops`.
fn time_step(kind: MethodKind, ops: OpsBackend, args: &Args) -> Result<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let batches = vec![
        random_batch(&mut rng, args.batch)?,
        random_batch(&mut rng, args.batch)?,
    ];
    let model = LeNetMt::new(&Device::Cpu, kind.sharing(), &[5, 5], 0)?.with_ops(ops);
    let mut options = MethodOptions {
        mtcool: MtCoolConfig {
            warmup_epochs: 0,
            ..MtCoolConfig::default()
        },
        ..MethodOptions::default()
    };
    options.baselines.fixed.weights = vec![1.0, 1.0];
    // MNIST's tasks have their own inputs: MGDA in parameter space (as experiments/mnist.toml).
    options.baselines.mgda.representation = false;
    let mut method = mtcool_optim::build(kind, &model, &options)?;
    method.begin_epoch(0);
    for _ in 0..3 {
        method.step(&model, &batches, &mut rng)?;
    }
    let mut rates = Vec::with_capacity(args.repeats);
    for _ in 0..args.repeats {
        let start = Instant::now();
        for _ in 0..args.steps {
            method.step(&model, &batches, &mut rng)?;
        }
        let seconds = start.elapsed().as_secs_f64();
        rates.push((2 * args.batch * args.steps) as f64 / seconds);
    }
    rates.sort_by(f64::total_cmp);
    Ok(rates[rates.len() / 2])
}

/// The PyTorch script of the LeNet reference row (written to a temporary file and run).
const TORCH_SCRIPT: &str = include_str!("bench_lenet.py");
/// The PyTorch script of the U-Net-MT / Psi-Net reference rows.
const TORCH_LARGE_SCRIPT: &str = include_str!("bench_large.py");

/// Runs a PyTorch reference `script` with `args` and returns its images/s and torch version,
/// or why it was not measured.
fn torch_reference(script: &str, args: &[String]) -> std::result::Result<(f64, String), String> {
    let python = std::env::var("MTCOOL_PYTHON").unwrap_or_else(|_| "python3".into());
    let importable = Command::new(&python)
        .args(["-c", "import torch"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !importable {
        return Err("not measured: torch not installed".into());
    }
    let measure = || -> Result<(f64, String)> {
        let mut file = tempfile::Builder::new()
            .prefix("bench_torch")
            .suffix(".py")
            .tempfile()?;
        file.write_all(script.as_bytes())?;
        file.flush()?;
        let output = Command::new(&python).arg(file.path()).args(args).output()?;
        if !output.status.success() {
            anyhow::bail!(
                "the script failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let line = text.lines().last().unwrap_or_default();
        let json: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("not JSON: {line:?}"))?;
        let rate = json["images_per_s"]
            .as_f64()
            .context("no images_per_s in the output")?;
        let version = json["torch"].as_str().unwrap_or("?").to_string();
        Ok((rate, version))
    };
    measure().map_err(|e| format!("not measured: {e:#}"))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_default();
    format!("{cpu}, {threads} thread(s); {rustc}; candle-core 0.11.1; release profile, mimalloc")
}

/// The LeNet section: Joint and MT-COOL per op set, then every method with the fast ops.
fn lenet_section(args: &Args) -> Result<String> {
    let mut rows: Vec<(MethodKind, f64, f64)> = Vec::new();
    for kind in [MethodKind::Joint, MethodKind::MtCool] {
        tracing::info!(
            "timing LeNet-MT {kind} ({} steps × {} repeats per op set)",
            args.steps,
            args.repeats
        );
        let fast = time_step(kind, OpsBackend::Fast, args)?;
        let candle = time_step(kind, OpsBackend::Candle, args)?;
        rows.push((kind, fast, candle));
    }
    let per_method: Vec<(MethodKind, f64)> = args
        .methods
        .clone()
        .unwrap_or_else(|| MethodKind::ALL.to_vec())
        .into_iter()
        .map(|kind| {
            tracing::info!("timing LeNet-MT {kind} (fast ops)");
            // Timed again here (not reused from the table above) so that every row of this
            // table is measured in the same stretch of time.
            let rate = time_step(kind, OpsBackend::Fast, args)?;
            Ok((kind, rate))
        })
        .collect::<Result<_>>()?;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## LeNet-MT\n\nOne LeNet-MT training step = one iteration on a batch of {} images per \
         task (both tasks): forward, backward, SGD; MT-COOL after its warm-up (one clean and one \
         noisy pass per task). Images/s count both tasks' images; median of {} blocks of {} \
         steps.\n",
        args.batch, args.repeats, args.steps
    );
    let _ = writeln!(s, "Machine: {}.\n", machine());
    let _ = writeln!(
        s,
        "| step | fast ops (images/s) | candle ops (images/s) | fast / candle |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|");
    for (kind, fast, candle) in &rows {
        let _ = writeln!(
            s,
            "| LeNet-MT {} | {fast:.0} | {candle:.0} | {:.1}× |",
            kind.name(),
            fast / candle
        );
    }
    let joint = rows[0].1;
    let mtcool = rows[1].1;
    let _ = writeln!(
        s,
        "\nMT-COOL step cost relative to Joint (fast ops): {:.2}× per image.",
        joint / mtcool
    );
    let _ = writeln!(
        s,
        "\n### Every method (fast ops)\n\nOne step as above; cost = Joint's images/s ÷ the \
         method's (how many Joint steps one step of the method costs).\n"
    );
    let _ = writeln!(s, "| method | images/s | cost vs Joint |");
    let _ = writeln!(s, "|---|---:|---:|");
    let joint_here = per_method
        .iter()
        .find(|(k, _)| *k == MethodKind::Joint)
        .map_or(joint, |(_, r)| *r);
    for (kind, rate) in &per_method {
        let _ = writeln!(s, "| {kind} | {rate:.0} | {:.2}× |", joint_here / rate);
    }
    Ok(s)
}

/// The PyTorch reference section (the LeNet Joint step).
fn torch_section(args: &Args, threads: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## PyTorch reference\n\nThe LeNet-MT Joint step above (same layers, {} images per \
         task, SGD lr 0.01, momentum 0.9, weight decay 5e-4) in PyTorch on {threads} thread(s) \
         (`xtask/src/bench_lenet.py`, run by `$MTCOOL_PYTHON`, default `python3`); median of \
         {} blocks of {} steps after 3 warm-up steps.\n",
        args.batch, args.repeats, args.steps
    );
    let _ = writeln!(s, "Machine: {}.\n", machine());
    let _ = writeln!(s, "| step | images/s |");
    let _ = writeln!(s, "|---|---:|");
    let script_args = [threads, args.batch, args.steps, args.repeats].map(|n| n.to_string());
    match torch_reference(TORCH_SCRIPT, &script_args) {
        Ok((rate, version)) => {
            let _ = writeln!(
                s,
                "| LeNet-MT joint, PyTorch {version} (reference) | {rate:.0} |"
            );
        }
        Err(why) => {
            tracing::warn!("PyTorch row: {why}");
            let _ = writeln!(s, "| LeNet-MT joint, PyTorch (reference) | {why} |");
        }
    }
    s
}

/// `rate` with three significant digits (steps of the big networks take seconds to minutes).
fn significant(rate: f64) -> String {
    let magnitude = if rate > 0.0 {
        rate.log10().floor()
    } else {
        0.0
    };
    let decimals = (2.0 - magnitude).clamp(0.0, 6.0) as usize;
    format!("{rate:.decimals$}")
}

/// One network's row of the U-Net-MT / Psi-Net table.
struct LargeRow {
    net: Net,
    fast: f64,
    /// Candle's ops: images/s, or why not measured.
    candle: std::result::Result<f64, String>,
    /// PyTorch: images/s and version, or why not measured; `None` without the `torch` rows.
    torch: Option<std::result::Result<(f64, String), String>>,
}

impl LargeRow {
    fn markdown(&self) -> String {
        let fast = self.fast;
        let (candle, vs_candle) = match &self.candle {
            Ok(rate) => (significant(*rate), format!("{:.1}×", fast / rate)),
            Err(why) => (why.clone(), String::new()),
        };
        let (torch, vs_torch) = match &self.torch {
            Some(Ok((rate, version))) => (
                format!("{} ({version})", significant(*rate)),
                format!("**{:.2}×**", fast / rate),
            ),
            Some(Err(why)) => (why.clone(), String::new()),
            None => ("not run (`--rows torch`)".into(), String::new()),
        };
        format!(
            "| {} | {} | {candle} | {vs_candle} | {torch} | {vs_torch} |",
            self.net.label(),
            significant(fast)
        )
    }
}

/// Times one network: fast ops, then (with `torch`) the PyTorch model right after, then
/// candle's ops unless skipped.
fn large_row(args: &Args, net: Net, threads: usize, torch: bool) -> Result<LargeRow> {
    let fast_timing = Timing {
        warmup: args.large_warmup,
        steps: args.large_steps,
    };
    tracing::info!("timing {} (fast ops)", net.label());
    let fast = large::time_step(net, OpsBackend::Fast, fast_timing)?;
    tracing::info!("{}: fast ops {fast:.3} images/s", net.label());
    let torch = torch.then(|| {
        tracing::info!("timing {} (PyTorch)", net.label());
        let script_args = [
            net.torch_name().to_string(),
            threads.to_string(),
            args.large_warmup.to_string(),
            args.large_steps.to_string(),
        ];
        let rate = torch_reference(TORCH_LARGE_SCRIPT, &script_args);
        match &rate {
            Ok((r, _)) => tracing::info!("{}: PyTorch {r:.3} images/s", net.label()),
            Err(why) => tracing::warn!("{} PyTorch row: {why}", net.label()),
        }
        rate
    });
    let candle = if args.skip_candle || (net == Net::PsiNet && args.skip_slow) {
        let flag = if args.skip_candle {
            "--skip-candle"
        } else {
            "--skip-slow"
        };
        Err(format!("skipped (`{flag}`)"))
    } else {
        tracing::info!("timing {} (candle ops)", net.label());
        let slow = Timing {
            warmup: 0,
            steps: args.slow_steps,
        };
        let rate = large::time_step(net, OpsBackend::Candle, slow)?;
        tracing::info!("{}: candle ops {rate:.3} images/s", net.label());
        Ok(rate)
    };
    Ok(LargeRow {
        net,
        fast,
        candle,
        torch,
    })
}

/// The U-Net-MT / Psi-Net section.
fn large_section(args: &Args, nets: &[Net], threads: usize, torch: bool) -> Result<String> {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## U-Net-MT and Psi-Net\n\nOne Joint training step: every task's forward on the same \
         batch (one encoder pass), backward of the summed loss (cross-entropy for class maps \
         and labels, MSE for the box and the reconstruction), SGD. U-Net-MT: HRF-AV layout \
         (vessel 2 + artery/vein 3 classes), widths 16-32-64-128-256, partitioned. Psi-Net: \
         segmentation (2 classes), species (2 classes), box (4), reconstruction (3 channels), \
         widths 64-128-256-512-1024, hard-shared encoder. Images/s = batch ÷ median step time. \
         Steps take seconds to minutes, so few are timed: fast ops and PyTorch {} warm-up + {} \
         timed step(s); candle ops no warm-up, {} timed step(s). PyTorch: the same layers in \
         `xtask/src/bench_large.py` on {threads} thread(s), timed right after our fast-ops \
         row of the same network (`$MTCOOL_PYTHON`, default `python3`).\n",
        args.large_warmup, args.large_steps, args.slow_steps
    );
    let _ = writeln!(s, "Machine: {}.\n", machine());
    let _ = writeln!(
        s,
        "| step | fast ops (images/s) | candle ops (images/s) | fast / candle | PyTorch \
         (images/s) | fast / PyTorch |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|");
    for &net in nets {
        let _ = writeln!(s, "{}", large_row(args, net, threads, torch)?.markdown());
    }
    Ok(s)
}

const LENET: &str = "lenet";
const TORCH: &str = "torch";
const LARGE: &str = "large";
const GRID: &str = "grid";
/// The perf breakdown of one step (`xtask/profile/breakdown.py`): written by hand, kept as is.
const PROFILE: &str = "profile";

/// The text of section `name` in an earlier report, between its markers. Reports written
/// before the sections had markers hold only the LeNet section, from the "Written by" line
/// to the GPU footnote.
fn old_section(old: &str, name: &str) -> Option<String> {
    let open = format!("<!-- bench:{name} -->");
    let close = format!("<!-- /bench:{name} -->");
    if let Some(start) = old.find(&open) {
        let body = &old[start + open.len()..];
        let end = body.find(&close)?;
        return Some(body[..end].trim().to_string());
    }
    if name != LENET || old.contains("<!-- bench:") {
        return None;
    }
    let start = old.find("Written by")?;
    let end = old.find("GPU throughput").unwrap_or(old.len());
    Some(old[start..end].trim().to_string())
}

/// Runs the benchmark and writes the report.
pub fn run(args: Args) -> Result<()> {
    // The grid rows divide the cores between workers unless the user fixed the threads
    // (as given before `cli::init` filled the variable in).
    let user_threads = mtcool_train::cli::user_threads().map(|n| n.to_string());
    // The setting: 2 threads unless RAYON_NUM_THREADS says otherwise (set before any
    // tensor op, so candle and rayon both read it).
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "2");
    }
    let threads: usize = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2);
    let rows = args
        .rows
        .clone()
        .unwrap_or_else(|| vec![Row::Lenet, Row::Unet, Row::Psinet, Row::Torch, Row::Grid]);
    let out = in_workspace(&args.out);
    let old = std::fs::read_to_string(&out).unwrap_or_default();
    let mut sections: Vec<(&str, Option<String>)> = vec![
        (LENET, None),
        (TORCH, None),
        (LARGE, None),
        (GRID, None),
        (PROFILE, None),
    ];
    if rows.contains(&Row::Lenet) {
        sections[0].1 = Some(lenet_section(&args)?);
    }
    if rows.contains(&Row::Torch) {
        sections[1].1 = Some(torch_section(&args, threads));
    }
    let nets: Vec<Net> = [(Row::Unet, Net::UNet), (Row::Psinet, Net::PsiNet)]
        .into_iter()
        .filter(|(row, _)| rows.contains(row))
        .map(|(_, net)| net)
        .collect();
    if !nets.is_empty() {
        let torch = rows.contains(&Row::Torch);
        sections[2].1 = Some(large_section(&args, &nets, threads, torch)?);
    }
    if rows.contains(&Row::Grid) {
        sections[3].1 = Some(grid::grid_section(
            args.grid_repeats,
            user_threads.as_deref(),
        )?);
    }
    let mut report = String::new();
    let _ = writeln!(
        report,
        "# Benchmarks\n\nWritten by `cargo xtask bench` (fast = mtcool's own convolution and \
         pooling ops, candle = candle's `conv2d`/`max_pool2d`). `--rows` picks the sections to \
         measure; the others are kept from the previous report, each with the machine it ran \
         on. Timings on a shared machine are noisy.\n"
    );
    for (name, fresh) in sections {
        let kept = fresh
            .map(|s| s.trim().to_string())
            .or_else(|| old_section(&old, name));
        let body = match kept {
            Some(body) => body,
            None if name == PROFILE => continue,
            None => format!("_Section `{name}` not measured yet._"),
        };
        let _ = writeln!(
            report,
            "<!-- bench:{name} -->\n{body}\n<!-- /bench:{name} -->\n"
        );
    }
    let _ = writeln!(
        report,
        "GPU throughput of whole training runs (H100) is in `docs/results.md`."
    );
    std::fs::write(&out, &report).with_context(|| format!("{}: cannot write", out.display()))?;
    println!("{report}");
    println!("wrote {}", out.display());
    Ok(())
}
