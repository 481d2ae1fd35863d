//! Partitioned BatchNorm and the U-Net blocks: statistics, modes, and gradients checked by
//! finite differences.
#![allow(clippy::unwrap_used, missing_docs)]

use candle_core::{DType, Device, Tensor, Var};
use mtcool_models::ops::{self, OpsBackend};
use mtcool_models::partitioned::{
    ConvBlock, NoiseMap, Owner, PartitionedBatchNorm2d, SliceView, UpBlock,
};
use mtcool_models::ParamBuilder;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

fn randn(shape: &[usize], seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..shape.iter().product::<usize>())
        .map(|_| StandardNormal.sample(&mut rng))
        .collect()
}

fn tensor(shape: &[usize], seed: u64) -> Tensor {
    Tensor::from_vec(randn(shape, seed), shape, &Device::Cpu).unwrap()
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// Per-channel mean and biased variance of an `(N, C, H, W)` tensor, computed in f64.
fn channel_stats(x: &Tensor) -> Vec<(f64, f64)> {
    let (n, c, h, w) = x.dims4().unwrap();
    let v = flat(x);
    (0..c)
        .map(|ch| {
            let vals: Vec<f64> = (0..n)
                .flat_map(|i| {
                    let start = (i * c + ch) * h * w;
                    v[start..start + h * w].iter().map(|&a| f64::from(a))
                })
                .collect();
            let m = vals.iter().sum::<f64>() / vals.len() as f64;
            let var = vals.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / vals.len() as f64;
            (m, var)
        })
        .collect()
}

/// An input whose channel `c` has mean `c` and standard deviation `1 + c`.
fn shifted_input() -> Tensor {
    let x = tensor(&[4, 6, 5, 5], 1);
    let scale = Tensor::arange(1f32, 7.0, &Device::Cpu)
        .unwrap()
        .reshape((1, 6, 1, 1))
        .unwrap();
    let shift = (scale.clone() - 1.0).unwrap();
    x.broadcast_mul(&scale)
        .unwrap()
        .broadcast_add(&shift)
        .unwrap()
}

#[test]
fn batch_norm_training_normalises_and_updates_running_stats_like_pytorch() {
    let pb = ParamBuilder::new(candle_nn::VarMap::new(), &Device::Cpu, 0);
    let bn = PartitionedBatchNorm2d::new(&pb.pp("bn"), 6, &Owner::partition(2)).unwrap();
    let x = shifted_input();
    let y = bn.forward(&x, &SliceView::all(), true).unwrap();
    for (m, v) in channel_stats(&y) {
        assert!(m.abs() < 1e-5, "mean {m}");
        assert!((v - 1.0).abs() < 1e-3, "variance {v}");
    }
    let count = 4.0 * 25.0;
    let stats = channel_stats(&x);
    let (rm, rv) = bn.running_stats().unwrap();
    for ((m, v), (rm, rv)) in stats.iter().zip(flat(&rm).iter().zip(flat(&rv))) {
        let unbiased = v * count / (count - 1.0);
        assert!(
            (f64::from(*rm) - 0.1 * m).abs() < 1e-5,
            "{rm} vs {}",
            0.1 * m
        );
        assert!((f64::from(rv) - (0.9 + 0.1 * unbiased)).abs() < 1e-4);
    }
    // each task owns γ, β and the running statistics of its 3 channels
    assert_eq!(bn.params_of(Owner::Task(0)).len(), 2);
    assert_eq!(bn.buffers_of(Owner::Task(1))[0].dims(), &[3]);
    let names: Vec<String> = pb
        .buffers()
        .data()
        .lock()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert!(
        names.contains(&"bn.task1.running_var".to_string()),
        "{names:?}"
    );
    assert_eq!(pb.vars().all_vars().len(), 4);
}

#[test]
fn batch_norm_evaluation_uses_running_stats() {
    let pb = ParamBuilder::new(candle_nn::VarMap::new(), &Device::Cpu, 0);
    let bn = PartitionedBatchNorm2d::new(&pb.pp("bn"), 6, &Owner::partition(3)).unwrap();
    let x = shifted_input();
    // train a few times so that the running statistics move away from (0, 1)
    for _ in 0..3 {
        bn.forward(&x, &SliceView::all(), true).unwrap();
    }
    let (rm, rv) = bn.running_stats().unwrap();
    let before = (flat(&rm), flat(&rv));
    let y = bn.forward(&x, &SliceView::all(), false).unwrap();
    let (rm2, rv2) = bn.running_stats().unwrap();
    assert_eq!(
        before,
        (flat(&rm2), flat(&rv2)),
        "evaluation changed the statistics"
    );
    let expected = x
        .broadcast_sub(&rm.reshape((1, 6, 1, 1)).unwrap())
        .unwrap()
        .broadcast_div(
            &(rv.reshape((1, 6, 1, 1)).unwrap() + 1e-5)
                .unwrap()
                .sqrt()
                .unwrap(),
        )
        .unwrap();
    let diff = (y - expected)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(diff < 1e-5, "{diff}");
}

#[test]
fn noisy_passes_leave_running_stats_alone() {
    let pb = ParamBuilder::new(candle_nn::VarMap::new(), &Device::Cpu, 0);
    let bn = PartitionedBatchNorm2d::new(&pb.pp("bn"), 6, &Owner::partition(2)).unwrap();
    let x = shifted_input();
    let gamma1 = bn.params_of(Owner::Task(1))[0].clone();
    let mut noise = NoiseMap::new();
    noise.insert(gamma1.id(), Tensor::full(0.5f32, 3, &Device::Cpu).unwrap());
    let view = SliceView::task(0).with_noise(&noise);
    assert!(view.is_noisy());
    let clean = bn.forward(&x, &SliceView::task(0), true).unwrap();
    let stats = bn.running_stats().unwrap();
    let noisy = bn.forward(&x, &view, true).unwrap();
    let after = bn.running_stats().unwrap();
    assert_eq!(flat(&stats.0), flat(&after.0));
    assert_eq!(flat(&stats.1), flat(&after.1));
    // the noise reached task 1's channels only: γ₁ = 1.5 scales them
    let (c, n) = (flat(&clean), flat(&noisy));
    let per_channel = 25;
    for i in 0..c.len() {
        let ch = (i / per_channel) % 6;
        let expected = if ch >= 3 { 1.5 * c[i] } else { c[i] };
        assert!((n[i] - expected).abs() < 1e-5);
    }
    // an empty noise map is a clean pass
    let empty = NoiseMap::new();
    assert!(!SliceView::all().with_noise(&empty).is_noisy());
}

/// Central differences of `f` at `var`, element by element.
fn finite_differences(var: &Var, eps: f64, f: &dyn Fn() -> f64) -> Vec<f64> {
    let base = var
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap();
    let base: Vec<f64> = base.to_vec1().unwrap();
    let (shape, dtype) = (var.shape().clone(), var.dtype());
    let set = |v: &[f64]| {
        let t = Tensor::from_vec(v.to_vec(), shape.clone(), &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        var.set(&t).unwrap();
    };
    let mut grads = Vec::with_capacity(base.len());
    for i in 0..base.len() {
        let mut v = base.clone();
        v[i] = base[i] + eps;
        set(&v);
        let plus = f();
        v[i] = base[i] - eps;
        set(&v);
        let minus = f();
        grads.push((plus - minus) / (2.0 * eps));
    }
    set(&base);
    grads
}

fn assert_grads_close(what: &str, autograd: &Tensor, numeric: &[f64], tol: f64) {
    let a: Vec<f64> = autograd
        .flatten_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(a.len(), numeric.len(), "{what}");
    let scale = numeric.iter().fold(1f64, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(numeric).enumerate() {
        assert!(
            (x - y).abs() <= tol * scale,
            "{what}[{i}]: autograd {x} vs finite differences {y}"
        );
    }
}

/// `loss = Σ up(x)·r + Σ x·q` followed by a convolution: `x` has two consumers, the case in
/// which candle's own `upsample_nearest2d` backward loses gradient.
#[test]
fn upsampling_then_convolution_gradients_match_finite_differences() {
    for (dtype, backend) in [
        (DType::F64, OpsBackend::Candle),
        (DType::F32, OpsBackend::Fast),
        (DType::F32, OpsBackend::Candle),
    ] {
        let var = |shape: &[usize], seed| {
            Var::from_tensor(&tensor(shape, seed).to_dtype(dtype).unwrap()).unwrap()
        };
        let x = var(&[2, 2, 3, 4], 1);
        let w = var(&[3, 2, 3, 3], 2);
        let b = var(&[3], 3);
        let r = tensor(&[2, 3, 6, 8], 4).to_dtype(dtype).unwrap();
        let q = tensor(&[2, 2, 3, 4], 5).to_dtype(dtype).unwrap();
        let loss = || -> Tensor {
            let up = ops::upsample_nearest(x.as_tensor(), 2, backend).unwrap();
            let y = ops::conv2d(&up, &w, &b, 1, 1, backend).unwrap();
            let main = (y * &r).unwrap().sum_all().unwrap();
            let side = (x.as_tensor() * &q).unwrap().sum_all().unwrap();
            (main + side).unwrap()
        };
        let value = || -> f64 {
            loss()
                .to_dtype(DType::F64)
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        let grads = loss().backward().unwrap();
        // The loss is linear in each of x, w and b: central differences are exact up to
        // rounding for any step, so a large one keeps f32 rounding small.
        let tol = if dtype == DType::F64 { 1e-9 } else { 1e-4 };
        for (name, v) in [("x", &x), ("w", &w), ("b", &b)] {
            let numeric = finite_differences(v, 1.0, &value);
            let what = format!("{name} ({dtype:?}, {backend})");
            assert_grads_close(&what, grads.get(v).unwrap(), &numeric, tol);
        }
    }
}

#[test]
fn batch_norm_gradients_match_finite_differences() {
    let pb = ParamBuilder::new(candle_nn::VarMap::new(), &Device::Cpu, 0);
    let bn = PartitionedBatchNorm2d::new(&pb.pp("bn"), 4, &Owner::partition(2)).unwrap();
    let x = Var::from_tensor(&tensor(&[3, 4, 2, 3], 7)).unwrap();
    let r = tensor(&[3, 4, 2, 3], 8);
    // give γ and β values away from 1 and 0
    for (i, v) in bn
        .params_of(Owner::Task(0))
        .into_iter()
        .chain(bn.params_of(Owner::Task(1)))
        .enumerate()
    {
        v.set(&tensor(&[2], 20 + i as u64)).unwrap();
    }
    for train in [true, false] {
        let loss = || {
            bn.forward(&x, &SliceView::all(), train)
                .unwrap()
                .mul(&r)
                .unwrap()
                .sum_all()
                .unwrap()
        };
        let value = || f64::from(loss().to_scalar::<f32>().unwrap());
        let grads = loss().backward().unwrap();
        let numeric = finite_differences(&x, 1e-2, &value);
        assert_grads_close("x", grads.get(&x).unwrap(), &numeric, 2e-3);
        for v in bn.params_of(Owner::Task(1)) {
            let numeric = finite_differences(&v, 1e-2, &value);
            assert_grads_close("γ/β", grads.get(&v).unwrap(), &numeric, 2e-3);
        }
    }
}

#[test]
fn blocks_keep_shapes_and_names() {
    let pb = ParamBuilder::new(candle_nn::VarMap::new(), &Device::Cpu, 0);
    let down = ConvBlock::new(&pb.pp("down1"), 3, 6, &Owner::partition(2)).unwrap();
    let up = UpBlock::new(&pb.pp("up1"), 12, 6, 6, &[Owner::Task(1)]).unwrap();
    let x = tensor(&[2, 3, 8, 8], 1);
    let skip = down.forward(&x, &SliceView::all(), true).unwrap();
    assert_eq!(skip.dims(), &[2, 6, 8, 8]);
    let deep = tensor(&[2, 12, 4, 4], 2);
    let y = up.forward(&deep, &skip, &SliceView::all(), true).unwrap();
    assert_eq!(y.dims(), &[2, 6, 8, 8]);
    assert!(flat(&y).iter().all(|&v| v >= 0.0), "ReLU output");
    let mut names: Vec<String> = pb.vars().data().lock().unwrap().keys().cloned().collect();
    names.sort();
    for expected in [
        "down1.conv1.task0.weight",
        "down1.bn2.task1.bias",
        "up1.upconv.task1.weight",
        "up1.upbn.task1.weight",
        "up1.conv1.task1.weight",
        "up1.bn2.task1.weight",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not in {names:?}"
        );
    }
    // conv 3×3 weights of up1.conv1 read skip (6) + up-sampled (6) channels
    let w = pb
        .vars()
        .data()
        .lock()
        .unwrap()
        .get("up1.conv1.task1.weight")
        .unwrap()
        .dims()
        .to_vec();
    assert_eq!(w, vec![6, 12, 3, 3]);
    // the BatchNorm affine is a parameter; the convolution parameters are what MT-COOL perturbs
    assert_eq!(down.params_of(Owner::Task(0)).len(), 8);
    assert_eq!(down.conv_params_of(Owner::Task(0)).len(), 4);
    assert_eq!(down.buffers_of(Owner::Task(0)).len(), 4);
}

/// The fast BatchNorm op (with and without the fused ReLU) against the same formula from
/// candle's ops: outputs, statistics and the gradients of x, γ and β.
#[test]
fn fast_batch_norm_matches_candle_ops() {
    let x = Var::from_tensor(&tensor(&[3, 5, 7, 6], 30)).unwrap();
    let gamma = Var::from_tensor(&tensor(&[5], 31)).unwrap();
    let beta = Var::from_tensor(&tensor(&[5], 32)).unwrap();
    let r = tensor(&[3, 5, 7, 6], 33);
    for relu in [false, true] {
        let run = |backend| {
            let (y, mean, var) =
                ops::batch_norm_train(&x, &gamma, &beta, 1e-5, relu, backend).unwrap();
            let grads = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let mut all = vec![flat(&y), flat(&mean), flat(&var)];
            for v in [&x, &gamma, &beta] {
                all.push(flat(grads.get(v).unwrap()));
            }
            all
        };
        let (fast, slow) = (run(OpsBackend::Fast), run(OpsBackend::Candle));
        for (i, (a, b)) in fast.iter().zip(&slow).enumerate() {
            let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
            let d = a.iter().zip(b).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
            assert!(d <= 1e-4 * scale, "relu={relu}, output {i}: {d}");
        }
    }
}
