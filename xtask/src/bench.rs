//! `cargo xtask bench`: training-step throughput of LeNet-MT per method and op set, written
//! to `docs/benchmarks.md`.
//!
//! One step = one iteration of the method on one mini-batch per task (both tasks), forward,
//! backward and SGD, on seeded random data. Each row is the median of several timed blocks
//! after a few warm-up steps. When `python3 -c "import torch"` works, the same Joint step in
//! PyTorch is timed in the same run as a reference row.

use std::fmt::Write as _;
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

const TORCH_SCRIPT: &str = r#"
import sys, time, torch, torch.nn as nn, torch.nn.functional as F
torch.manual_seed(0); torch.set_num_threads(int(sys.argv[1]))
batch, steps, repeats = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
enc = nn.Sequential(nn.Conv2d(1, 10, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(10, 20, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(320, 50), nn.ReLU())
heads = nn.ModuleList([nn.Linear(50, 5), nn.Linear(50, 5)])
opt = torch.optim.SGD(list(enc.parameters()) + list(heads.parameters()), lr=0.01, momentum=0.9, weight_decay=5e-4)
xs = [torch.randn(batch, 1, 28, 28) for _ in range(2)]; ys = [torch.randint(0, 5, (batch,)) for _ in range(2)]
def step():
    opt.zero_grad(); loss = sum(F.cross_entropy(heads[t](enc(xs[t])), ys[t]) for t in range(2)); loss.backward(); opt.step()
for _ in range(3): step()
rates = []
for _ in range(repeats):
    t = time.perf_counter()
    for _ in range(steps): step()
    rates.append(2 * batch * steps / (time.perf_counter() - t))
rates.sort(); print(rates[len(rates) // 2]); print(torch.__version__)
"#;

/// The PyTorch Joint step's images/s and torch version, if PyTorch is installed.
fn torch_reference(args: &Args, threads: usize) -> Option<(f64, String)> {
    let output = Command::new("python3")
        .arg("-c")
        .arg(TORCH_SCRIPT)
        .args([threads, args.batch, args.steps, args.repeats].map(|n| n.to_string()))
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let rate = lines.next()?.trim().parse().ok()?;
    Some((rate, lines.next().unwrap_or("?").trim().to_string()))
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

/// Runs the benchmark and writes the report.
pub fn run(args: Args) -> Result<()> {
    let threads: usize = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let mut rows: Vec<(String, f64, f64)> = Vec::new();
    for kind in [MethodKind::Joint, MethodKind::MtCool] {
        tracing::info!(
            "timing {kind} ({} steps × {} repeats per op set)",
            args.steps,
            args.repeats
        );
        let fast = time_step(kind, OpsBackend::Fast, &args)?;
        let candle = time_step(kind, OpsBackend::Candle, &args)?;
        rows.push((kind.name().to_string(), fast, candle));
    }
    let per_method: Vec<(MethodKind, f64)> = args
        .methods
        .clone()
        .unwrap_or_else(|| MethodKind::ALL.to_vec())
        .into_iter()
        .map(|kind| {
            tracing::info!("timing {kind} (fast ops)");
            // Timed again here (not reused from the table above) so that every row of this
            // table is measured in the same stretch of time.
            let rate = time_step(kind, OpsBackend::Fast, &args)?;
            Ok((kind, rate))
        })
        .collect::<Result<_>>()?;
    let torch = torch_reference(&args, threads);
    let mut report = String::new();
    let _ = writeln!(report, "# Benchmarks\n");
    let _ = writeln!(
        report,
        "Written by `cargo xtask bench`. One LeNet-MT training step = one iteration on a batch of \
         {} images per task (both tasks): forward, backward, SGD; MT-COOL after its warm-up (one \
         clean and one noisy pass per task). Images/s count both tasks' images; median of {} \
         blocks of {} steps.\n",
        args.batch, args.repeats, args.steps
    );
    let _ = writeln!(report, "Machine: {}.\n", machine());
    let _ = writeln!(
        report,
        "| step | fast ops (images/s) | candle ops (images/s) | fast / candle |"
    );
    let _ = writeln!(report, "|---|---:|---:|---:|");
    for (name, fast, candle) in &rows {
        let _ = writeln!(
            report,
            "| LeNet-MT {name} | {fast:.0} | {candle:.0} | {:.1}× |",
            fast / candle
        );
    }
    match &torch {
        Some((rate, version)) => {
            let _ = writeln!(
                report,
                "| LeNet joint, PyTorch {version} ({threads} threads) | {rate:.0} | | |"
            );
        }
        None => {
            let _ = writeln!(report, "\nPyTorch is not installed here: no reference row.");
        }
    }
    let joint = rows[0].1;
    let mtcool = rows[1].1;
    let _ = writeln!(
        report,
        "\nMT-COOL step cost relative to Joint (fast ops): {:.2}× per image.",
        joint / mtcool
    );
    let _ = writeln!(
        report,
        "\n## Every method (fast ops)\n\nOne step as above; cost = Joint's images/s ÷ the \
         method's (how many Joint steps one step of the method costs).\n"
    );
    let _ = writeln!(report, "| method | images/s | cost vs Joint |");
    let _ = writeln!(report, "|---|---:|---:|");
    let joint_here = per_method
        .iter()
        .find(|(k, _)| *k == MethodKind::Joint)
        .map_or(joint, |(_, r)| *r);
    for (kind, rate) in &per_method {
        let _ = writeln!(report, "| {kind} | {rate:.0} | {:.2}× |", joint_here / rate);
    }
    let _ = writeln!(
        report,
        "\nGPU throughput of whole training runs (H100) is in `docs/results.md`."
    );
    let out = in_workspace(&args.out);
    std::fs::write(&out, &report).with_context(|| format!("{}: cannot write", out.display()))?;
    println!("{report}");
    println!("wrote {}", out.display());
    Ok(())
}
