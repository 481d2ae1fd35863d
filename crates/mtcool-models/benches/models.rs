//! One training step (forward + backward, no optimiser) of the paper-size networks on the CPU,
//! with the fast ops and with candle's own:
//!
//! - U-Net-MT, HRF-AV layout (vessel 2 + artery/vein 3 classes), widths 16-32-64-128-256,
//!   partitioned, batch 4 × 3 × 256 × 256;
//! - Psi-Net, all four tasks (segmentation, species, box, reconstruction), widths
//!   64-128-256-512-1024, hard-shared encoder, batch 5 × 3 × 256 × 256.
//!
//! The loss is the sum over tasks of the mean squared output (the step's cost is the network's;
//! the loss itself is negligible). Steps take seconds, so samples are single iterations:
//!
//! `cargo bench -p mtcool-models --bench models -- --sample-size 10`
//! (filter with e.g. `-- unet` or `-- psinet/fast`).

#![allow(missing_docs)]

use std::time::Duration;

use candle_core::{Device, Tensor};
use criterion::{BenchmarkId, Criterion, SamplingMode};
use mtcool_models::ops::OpsBackend;
use mtcool_models::{MultiTaskModel, PsiNet, PsiNetConfig, Sharing, SliceView, UNetConfig, UNetMt};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn batch(n: usize) -> Tensor {
    // deterministic, image-like values in [0, 1]
    let x = Tensor::arange(0f32, (n * 3 * 256 * 256) as f32, &Device::Cpu)
        .and_then(|t| t.reshape((n, 3, 256, 256)))
        .and_then(|t| (t * 0.013)?.sin())
        .and_then(|t| (t * 0.5)? + 0.5);
    x.unwrap_or_else(|e| panic!("input batch: {e}"))
}

fn step(net: &dyn MultiTaskModel, x: &Tensor) -> candle_core::Result<()> {
    let mut loss: Option<Tensor> = None;
    for y in net.forward_tasks(x, &SliceView::all())? {
        let l = y.sqr()?.mean_all()?;
        loss = Some(match loss {
            Some(acc) => (acc + l)?,
            None => l,
        });
    }
    if let Some(loss) = loss {
        loss.backward()?;
    }
    Ok(())
}

fn bench_model(
    c: &mut Criterion,
    name: &str,
    x: &Tensor,
    build: &dyn Fn(OpsBackend) -> Box<dyn MultiTaskModel>,
) {
    let mut group = c.benchmark_group(name);
    group
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    for ops in [OpsBackend::Fast, OpsBackend::Candle] {
        let net = build(ops);
        group.bench_function(BenchmarkId::new("forward+backward", ops), |b| {
            b.iter(|| step(net.as_ref(), x).unwrap_or_else(|e| panic!("{name} {ops}: {e}")))
        });
    }
    group.finish();
}

fn unet(c: &mut Criterion) {
    let x = batch(4);
    bench_model(c, "unet_mt_hrfav_b4_256", &x, &|ops| {
        let net = UNetMt::new(
            &Device::Cpu,
            Sharing::Partitioned,
            UNetConfig::seg_seg(&[2, 3]),
            0,
        )
        .unwrap_or_else(|e| panic!("U-Net-MT: {e}"));
        Box::new(net.with_ops(ops))
    });
}

fn psinet(c: &mut Criterion) {
    let x = batch(5);
    bench_model(c, "psinet_all_tasks_b5_256", &x, &|ops| {
        let net = PsiNet::new(&Device::Cpu, Sharing::Shared, PsiNetConfig::all_tasks(), 0)
            .unwrap_or_else(|e| panic!("Psi-Net: {e}"));
        Box::new(net.with_ops(ops))
    });
}

fn main() {
    // candle re-reads the CPU count on every matmul unless this is set (see mtcool_models::ops)
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    let mut c = Criterion::default().configure_from_args();
    unet(&mut c);
    psinet(&mut c);
    c.final_summary();
}
