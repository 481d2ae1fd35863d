//! Times forward + backward of LeNet's convolutional layers (conv 1→10 k5, pool 2, conv 10→20
//! k5, pool 2) with both op sets:
//! `cargo run -p mtcool-models --release --example ops_bench -- [candle|fast|both] [batch...]`.

use std::time::Instant;

use candle_core::{Device, Result, Tensor, Var};
use mtcool_models::ops::{conv2d, max_pool2d, OpsBackend};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

fn tensor(shape: &[usize], scale: f32, seed: u64) -> Result<Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| {
            let v: f32 = StandardNormal.sample(&mut rng);
            scale * v
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu)
}

struct Layers {
    w1: Var,
    b1: Var,
    w2: Var,
    b2: Var,
}

impl Layers {
    fn step(&self, x: &Tensor, backend: OpsBackend, backward: bool) -> Result<()> {
        let y = conv2d(x, &self.w1, &self.b1, 1, 0, backend)?;
        let y = max_pool2d(&y, 2, backend)?;
        let y = conv2d(&y, &self.w2, &self.b2, 1, 0, backend)?;
        let y = max_pool2d(&y, 2, backend)?;
        if backward {
            y.sum_all()?.backward()?;
        }
        Ok(())
    }
}

fn time(f: impl Fn() -> Result<()>, budget_s: f64) -> Result<f64> {
    f()?;
    let start = Instant::now();
    let mut iters = 0;
    while iters < 3 || start.elapsed().as_secs_f64() < budget_s {
        f()?;
        iters += 1;
    }
    Ok(start.elapsed().as_secs_f64() / f64::from(iters))
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "both".into());
    let batches: Vec<usize> = args.filter_map(|a| a.parse().ok()).collect();
    let batches = if batches.is_empty() {
        vec![64, 256]
    } else {
        batches
    };
    let backends: Vec<OpsBackend> = match which.as_str() {
        "both" => vec![OpsBackend::Candle, OpsBackend::Fast],
        other => vec![other.parse().map_err(candle_core::Error::msg)?],
    };
    let layers = Layers {
        w1: Var::from_tensor(&tensor(&[10, 1, 5, 5], 0.2, 1)?)?,
        b1: Var::from_tensor(&tensor(&[10], 0.1, 2)?)?,
        w2: Var::from_tensor(&tensor(&[20, 10, 5, 5], 0.06, 3)?)?,
        b2: Var::from_tensor(&tensor(&[20], 0.1, 4)?)?,
    };
    println!("rayon threads: {}", rayon::current_num_threads());
    for batch in batches {
        let x = tensor(&[batch, 1, 28, 28], 1.0, 9)?;
        let mut step_s = Vec::new();
        for &backend in &backends {
            let fwd = time(|| layers.step(&x, backend, false), 0.1)?;
            let all = time(|| layers.step(&x, backend, true), 4.0)?;
            println!(
                "batch {batch:4} {backend:6}: forward {:7.2} ms, forward+backward {:7.2} ms, {:7.0} images/s",
                fwd * 1e3,
                all * 1e3,
                batch as f64 / all
            );
            step_s.push(all);
        }
        if let [candle, fast] = step_s[..] {
            println!(
                "batch {batch:4} speedup (forward+backward): {:.1}x",
                candle / fast
            );
        }
    }
    Ok(())
}
