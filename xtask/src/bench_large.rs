//! The paper-size rows of `cargo xtask bench`: one Joint training step of U-Net-MT (HRF-AV
//! layout, partitioned, 4 × 3 × 256 × 256) and of Psi-Net (all four tasks, hard-shared,
//! 5 × 3 × 256 × 256), with the fast ops and with candle's. The networks and inputs are those
//! of the criterion bench `crates/mtcool-models/benches/models.rs`; here the step also has the
//! real task losses and the SGD update.

use std::time::Instant;

use anyhow::Result;
use candle_core::{Device, Tensor};
use mtcool_models::ops::OpsBackend;
use mtcool_models::{MultiTaskModel, PsiNet, PsiNetConfig, PsiTask, Sharing, UNetConfig, UNetMt};
use mtcool_optim::{Joint, Method, MethodKind, MethodOptions, SgdConfig, TaskBatch};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Image side of both networks' inputs.
const SIDE: usize = 256;

/// One of the paper-size networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    /// U-Net-MT, HRF-AV layout: vessel (2 classes) and artery/vein (3 classes) segmentation.
    UNet,
    /// Psi-Net: segmentation (2), species (2), box (4), reconstruction (3 channels).
    PsiNet,
}

impl Net {
    /// Row label.
    pub fn label(self) -> String {
        let n = self.batch();
        match self {
            Net::UNet => format!("U-Net-MT joint, {n} × 3 × {SIDE} × {SIDE}"),
            Net::PsiNet => format!("Psi-Net joint, {n} × 3 × {SIDE} × {SIDE}"),
        }
    }

    /// The network's name in `bench_large.py`.
    pub fn torch_name(self) -> &'static str {
        match self {
            Net::UNet => "unet",
            Net::PsiNet => "psinet",
        }
    }

    /// Images per step (every task reads the same images).
    pub fn batch(self) -> usize {
        match self {
            Net::UNet => 4,
            Net::PsiNet => 5,
        }
    }
}

/// How one row was timed.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Untimed steps first.
    pub warmup: usize,
    /// Timed steps (the median step time is reported).
    pub steps: usize,
}

/// Deterministic, image-like input in [0, 1] (as the criterion bench's).
fn images(n: usize) -> Result<Tensor> {
    let x = Tensor::arange(0f32, (n * 3 * SIDE * SIDE) as f32, &Device::Cpu)?
        .reshape((n, 3, SIDE, SIDE))?;
    Ok(((x * 0.013)?.sin()? * 0.5)?.affine(1.0, 0.5)?)
}

fn class_map(rng: &mut ChaCha8Rng, n: usize, classes: u32) -> Result<Tensor> {
    let labels: Vec<u32> = (0..n * SIDE * SIDE)
        .map(|_| rng.random_range(0..classes))
        .collect();
    Ok(Tensor::from_vec(labels, (n, SIDE, SIDE), &Device::Cpu)?)
}

/// A network, its Joint step and one batch per task.
struct Setup {
    model: Box<dyn MultiTaskModel>,
    method: Box<dyn Method>,
    batches: Vec<TaskBatch>,
}

/// The model, its Joint step and one batch per task (all tasks share one input tensor, so the
/// encoder runs once per step).
fn setup(net: Net, ops: OpsBackend) -> Result<Setup> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let n = net.batch();
    let x = images(n)?;
    let batch = |target: Tensor| TaskBatch {
        input: x.clone(),
        target,
    };
    match net {
        Net::UNet => {
            let model = UNetMt::new(
                &Device::Cpu,
                Sharing::Partitioned,
                UNetConfig::seg_seg(&[2, 3]),
                0,
            )?
            .with_ops(ops);
            // `mtcool_optim::build` pairs Joint with hard-shared models only; on the
            // partitioned layout the same Σ-loss step is built directly.
            let method = Joint::new(MethodKind::Joint.name(), &model, SgdConfig::default());
            let batches = vec![
                batch(class_map(&mut rng, n, 2)?),
                batch(class_map(&mut rng, n, 3)?),
            ];
            Ok(Setup {
                model: Box::new(model),
                method: Box::new(method),
                batches,
            })
        }
        Net::PsiNet => {
            // Two-class seg/cls heads: our losses are cross-entropy on u32 targets.
            let config = PsiNetConfig::new(vec![
                PsiTask::Segmentation { classes: 2 },
                PsiTask::Classification { classes: 2 },
                PsiTask::BoundingBox,
                PsiTask::Reconstruction { channels: 3 },
            ]);
            let model = PsiNet::new(&Device::Cpu, Sharing::Shared, config, 0)?.with_ops(ops);
            let method = mtcool_optim::build(MethodKind::Joint, &model, &MethodOptions::default())?;
            let species: Vec<u32> = (0..n).map(|_| rng.random_range(0..2)).collect();
            let boxes: Vec<f32> = (0..n * 4).map(|_| rng.random_range(0.0..1.0)).collect();
            let batches = vec![
                batch(class_map(&mut rng, n, 2)?),
                batch(Tensor::from_vec(species, n, &Device::Cpu)?),
                batch(Tensor::from_vec(boxes, (n, 4), &Device::Cpu)?),
                batch(x.clone()),
            ];
            Ok(Setup {
                model: Box::new(model),
                method,
                batches,
            })
        }
    }
}

/// Images/s of `net`'s Joint step with `ops`: batch size ÷ the median time of the timed steps.
pub fn time_step(net: Net, ops: OpsBackend, timing: Timing) -> Result<f64> {
    let Setup {
        model,
        mut method,
        batches,
    } = setup(net, ops)?;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    method.begin_epoch(0);
    for _ in 0..timing.warmup {
        method.step(model.as_ref(), &batches, &mut rng)?;
    }
    let mut seconds = Vec::with_capacity(timing.steps.max(1));
    for _ in 0..timing.steps.max(1) {
        let start = Instant::now();
        method.step(model.as_ref(), &batches, &mut rng)?;
        seconds.push(start.elapsed().as_secs_f64());
        tracing::debug!("{}: step {:.3} s", net.label(), seconds[seconds.len() - 1]);
    }
    seconds.sort_by(f64::total_cmp);
    let mid = seconds.len() / 2;
    let median = if seconds.len() % 2 == 0 {
        (seconds[mid - 1] + seconds[mid]) / 2.0
    } else {
        seconds[mid]
    };
    Ok(net.batch() as f64 / median)
}
