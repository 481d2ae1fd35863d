//! U-Net-MT and Psi-Net at small widths (4-8-16-32-64, 32 × 32 inputs, batch 2): shapes in every
//! mode and head layout, task isolation, shared = partitioned at initialisation, training,
//! input checks, and the two op sets.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashSet;

use candle_core::{DType, Device, Tensor, TensorId, Var, D};
use mtcool_models::ops::{set_conv_algorithm, ConvAlgorithm, OpsBackend};
use mtcool_models::{
    MultiTaskModel, NoiseMap, PsiNet, PsiNetConfig, PsiTask, Sharing, SliceView, TaskHead,
    UNetConfig, UNetMt,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Uniform};

const SMALL: [usize; 5] = [4, 8, 16, 32, 64];
const MODES: [Sharing; 3] = [Sharing::Partitioned, Sharing::Shared, Sharing::Independent];

fn input(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dist = Uniform::new(0f32, 1f32).unwrap();
    let v: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|_| dist.sample(&mut rng))
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

fn unet(sharing: Sharing, config: UNetConfig, seed: u64) -> UNetMt {
    UNetMt::new(&Device::Cpu, sharing, config.with_widths(&SMALL), seed).unwrap()
}

fn layouts() -> Vec<(&'static str, UNetConfig)> {
    vec![
        ("seg+seg", UNetConfig::seg_seg(&[2, 3])),
        ("seg+cls", UNetConfig::seg_cls(3, 2)),
    ]
}

/// The expected output shape of `head` for a batch of `n` images of `h × w`.
fn expected_dims(head: &TaskHead, n: usize, h: usize, w: usize) -> Vec<usize> {
    if head.is_dense_prediction() {
        vec![n, head.outputs(), h, w]
    } else {
        vec![n, head.outputs()]
    }
}

#[test]
fn unet_output_shapes_in_every_mode_and_layout() {
    let x = input(&[2, 3, 32, 32], 1);
    for (name, config) in layouts() {
        for sharing in MODES {
            let net = unet(sharing, config.clone(), 0);
            let all = net.forward_tasks(&x, &SliceView::all()).unwrap();
            assert_eq!(all.len(), 2);
            for (t, y) in all.iter().enumerate() {
                let head = net.head(t).unwrap();
                let expected = expected_dims(head, 2, 32, 32);
                assert_eq!(y.dims(), &expected[..], "{name} {sharing} task {t}");
                // forward_task computes the same (train mode: batch statistics)
                let alone = net.forward_task(&x, t, &SliceView::all()).unwrap();
                assert_eq!(flat(&alone), flat(y), "{name} {sharing} task {t}");
            }
        }
    }
    // three tasks, 64 × 64, depth 3
    let config = UNetConfig::seg_seg(&[2, 3, 4]).with_widths(&[6, 12, 24, 48]);
    let net = UNetMt::new(&Device::Cpu, Sharing::Partitioned, config, 0).unwrap();
    let x = input(&[2, 3, 64, 64], 2);
    for (t, k) in [2, 3, 4].into_iter().enumerate() {
        let y = net.forward_task(&x, t, &SliceView::task(t)).unwrap();
        assert_eq!(y.dims(), &[2, k, 64, 64]);
    }
    // each task owns a third of every encoder layer
    let w: Vec<Vec<usize>> = net
        .encoder_params(2)
        .iter()
        .map(|v| v.dims().to_vec())
        .collect();
    assert_eq!(w[0], vec![2, 3, 3, 3]);
}

#[test]
fn psinet_output_shapes_for_task_subsets_depths_and_modes() {
    let x = input(&[2, 3, 32, 32], 3);
    let subsets: Vec<Vec<PsiTask>> = vec![
        PsiNetConfig::all_tasks().tasks,
        vec![PsiTask::Segmentation { classes: 1 }],
        vec![PsiTask::BoundingBox, PsiTask::Classification { classes: 2 }],
    ];
    for tasks in subsets {
        for depth in [4, 3] {
            for sharing in MODES {
                let config = PsiNetConfig::new(tasks.clone())
                    .with_widths(&SMALL)
                    .with_depth(depth);
                let net = PsiNet::new(&Device::Cpu, sharing, config.clone(), 0).unwrap();
                assert_eq!(net.unet().config().depth(), depth);
                let out = net.forward_tasks(&x, &SliceView::all()).unwrap();
                for (t, (task, y)) in tasks.iter().zip(&out).enumerate() {
                    let expected = match *task {
                        PsiTask::Segmentation { classes } => vec![2, classes, 32, 32],
                        PsiTask::Reconstruction { channels } => vec![2, channels, 32, 32],
                        PsiTask::Classification { classes } => vec![2, classes],
                        PsiTask::BoundingBox => vec![2, 4],
                    };
                    assert_eq!(y.dims(), &expected[..], "{tasks:?} depth {depth} {sharing}");
                    let alone = net.forward_task(&x, t, &SliceView::all()).unwrap();
                    assert_eq!(flat(&alone), flat(y));
                }
            }
        }
    }
    // depth 3 at the report's widths ends at 512 channels
    assert_eq!(
        PsiNetConfig::all_tasks().with_depth(3).widths,
        vec![64, 128, 256, 512]
    );
    assert_eq!(
        PsiNetConfig::all_tasks().with_depth(5).widths,
        vec![64, 128, 256, 512, 1024, 2048]
    );
}

#[test]
fn encode_then_decode_equals_forward() {
    let x = input(&[2, 3, 32, 32], 11);
    for (name, config) in layouts() {
        for sharing in MODES {
            let net = unet(sharing, config.clone(), 0);
            let Some(features) = net.encode(&x, &SliceView::all()).unwrap() else {
                assert_eq!(sharing, Sharing::Independent);
                continue;
            };
            // 4 skips (full resolution first), then the bottom
            assert_eq!(features.len(), 5);
            assert_eq!(features[0].dims(), &[2, 4, 32, 32]);
            assert_eq!(features[4].dims(), &[2, 64, 2, 2]);
            for t in 0..2 {
                let decoded = net.decode(&features, t, &SliceView::all()).unwrap();
                let direct = net.forward_task(&x, t, &SliceView::all()).unwrap();
                assert_eq!(flat(&decoded), flat(&direct), "{name} {sharing} task {t}");
            }
            assert!(net.decode(&features[1..], 0, &SliceView::all()).is_err());
        }
    }
}

#[test]
fn wrong_input_sizes_give_clear_errors() {
    let net = unet(Sharing::Partitioned, UNetConfig::seg_cls(3, 2), 0);
    let err = |shape: &[usize]| {
        let x = Tensor::zeros(shape, DType::F32, &Device::Cpu).unwrap();
        net.forward_task(&x, 0, &SliceView::all())
            .unwrap_err()
            .to_string()
    };
    let e = err(&[2, 3, 30, 32]);
    assert!(e.contains("30×32") && e.contains("2^4 = 16"), "{e}");
    assert!(!e.contains('\n'), "one line: {e}");
    let e = err(&[2, 1, 32, 32]);
    assert!(e.contains("3 input channels"), "{e}");
    let e = err(&[3, 32, 32]);
    assert!(e.contains("(N, C, H, W)"), "{e}");
    let e = net
        .forward_task(&input(&[2, 3, 32, 32], 0), 2, &SliceView::all())
        .unwrap_err()
        .to_string();
    assert!(e.contains("task 2 out of range"), "{e}");
    // depth 3: multiples of 8 are fine
    let config = UNetConfig::seg_seg(&[2]).with_widths(&[4, 8, 16, 32]);
    let net = UNetMt::new(&Device::Cpu, Sharing::Shared, config, 0).unwrap();
    let y = net
        .forward_task(&input(&[1, 3, 40, 24], 0), 0, &SliceView::all())
        .unwrap();
    assert_eq!(y.dims(), &[1, 2, 40, 24]);
    let psi = PsiNet::new(
        &Device::Cpu,
        Sharing::Shared,
        PsiNetConfig::all_tasks().with_widths(&SMALL),
        0,
    )
    .unwrap();
    let e = psi
        .forward_task(&input(&[1, 3, 24, 24], 0), 0, &SliceView::all())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("Psi-Net: input size 24×24"), "{e}");
}

#[test]
fn bad_configurations_are_rejected() {
    let build = |sharing, config: UNetConfig| {
        UNetMt::new(&Device::Cpu, sharing, config, 0)
            .unwrap_err()
            .to_string()
    };
    let e = build(
        Sharing::Partitioned,
        UNetConfig::seg_seg(&[2, 2, 2]).with_widths(&[2, 4]),
    );
    assert!(e.contains("cannot split width 2 between 3 tasks"), "{e}");
    let e = build(
        Sharing::Shared,
        UNetConfig::new(vec![TaskHead::GuidedClassification {
            classes: 2,
            seg_task: 0,
        }]),
    );
    assert!(e.contains("must read a segmentation task"), "{e}");
    let e = build(Sharing::Shared, UNetConfig::new(vec![]));
    assert!(e.contains("at least one task"), "{e}");
    let e = build(Sharing::Shared, UNetConfig::seg_seg(&[2]).with_widths(&[8]));
    assert!(e.contains("depth ≥ 1"), "{e}");
    let e = build(Sharing::Shared, UNetConfig::seg_seg(&[0]));
    assert!(e.contains("no outputs"), "{e}");
}

fn ids(vars: &[Var]) -> HashSet<TensorId> {
    vars.iter().map(|v| v.id()).collect()
}

/// Uniform[−b, b] noise on `vars`.
fn noise_on(vars: &[Var], b: f32, seed: u64) -> NoiseMap {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dist = Uniform::new_inclusive(-b, b).unwrap();
    vars.iter()
        .map(|v| {
            let values: Vec<f32> = (0..v.elem_count()).map(|_| dist.sample(&mut rng)).collect();
            (
                v.id(),
                Tensor::from_vec(values, v.shape(), &Device::Cpu).unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_task_step_touches_only_that_tasks_parameters() {
    let x = input(&[2, 3, 32, 32], 4);
    for (name, config) in layouts() {
        for sharing in [Sharing::Partitioned, Sharing::Independent] {
            let net = unet(sharing, config.clone(), 0);
            let all_vars = net.vars().all_vars();
            assert_eq!(ids(&all_vars), ids(&net.all_params()), "{name} {sharing}");
            for t in 0..2 {
                let other = 1 - t;
                let mine = ids(&net.task_params(t));
                let noise = noise_on(&net.perturbable_params(other), 0.01, 9);
                for view in [SliceView::task(t), SliceView::task(t).with_noise(&noise)] {
                    let buffers_before: Vec<Vec<f32>> = net
                        .buffers()
                        .unwrap()
                        .all_vars()
                        .iter()
                        .map(|v| flat(v.as_tensor()))
                        .collect();
                    let y = net.forward_task(&x, t, &view).unwrap();
                    let grads = y.sqr().unwrap().mean_all().unwrap().backward().unwrap();
                    for v in &all_vars {
                        assert_eq!(
                            grads.get(v).is_some(),
                            mine.contains(&v.id()),
                            "{name} {sharing} task {t}: gradient presence of a {:?} tensor",
                            v.dims()
                        );
                    }
                    // the task's convolution weights really receive gradient
                    let nonzero = net
                        .task_params(t)
                        .iter()
                        .filter(|v| v.rank() == 4)
                        .all(|v| {
                            let g = grads.get(v).unwrap();
                            g.abs()
                                .unwrap()
                                .sum_all()
                                .unwrap()
                                .to_scalar::<f32>()
                                .unwrap()
                                > 0.0
                        });
                    assert!(nonzero, "{name} {sharing} task {t}");
                    let buffers_after: Vec<Vec<f32>> = net
                        .buffers()
                        .unwrap()
                        .all_vars()
                        .iter()
                        .map(|v| flat(v.as_tensor()))
                        .collect();
                    assert_eq!(
                        buffers_before == buffers_after,
                        view.is_noisy(),
                        "running statistics move in clean passes only"
                    );
                }
            }
        }
    }
}

#[test]
fn perturbable_parameters_are_the_encoder_convolutions() {
    let net = unet(Sharing::Partitioned, UNetConfig::seg_cls(3, 2), 0);
    for t in 0..2 {
        let enc = net.encoder_params(t);
        let pert = net.perturbable_params(t);
        // 5 blocks × 2 stages × (conv weight, conv bias, γ, β)
        assert_eq!(enc.len(), 40);
        assert_eq!(pert.len(), 20);
        assert!(ids(&pert).is_subset(&ids(&enc)));
    }
    let shared = unet(Sharing::Shared, UNetConfig::seg_cls(3, 2), 0);
    assert!(shared.encoder_params(0).is_empty() && shared.perturbable_params(1).is_empty());
    assert_eq!(shared.shared_params().len(), 40);
}

fn outputs(net: &impl MultiTaskModel, x: &Tensor) -> Vec<Vec<f32>> {
    net.forward_tasks(x, &SliceView::all())
        .unwrap()
        .iter()
        .map(flat)
        .collect()
}

#[test]
fn shared_and_partitioned_networks_start_equal() {
    let x = input(&[2, 3, 32, 32], 5);
    for (name, config) in layouts() {
        let mut part = unet(Sharing::Partitioned, config.clone(), 7);
        let mut shared = unet(Sharing::Shared, config.clone(), 7);
        assert_eq!(part.param_count(), shared.param_count());
        assert_eq!(
            outputs(&part, &x),
            outputs(&shared, &x),
            "{name} train mode"
        );
        part.set_training(false);
        shared.set_training(false);
        assert!(!part.is_training());
        assert_eq!(outputs(&part, &x), outputs(&shared, &x), "{name} eval mode");
        let other = unet(Sharing::Partitioned, config, 8);
        assert_ne!(outputs(&other, &x), outputs(&part, &x));
    }
    // a partition between one task is hard sharing: same tensors, same names, same outputs
    let one = unet(Sharing::Partitioned, UNetConfig::seg_seg(&[2]), 3);
    let hard = unet(Sharing::Shared, UNetConfig::seg_seg(&[2]), 3);
    let names = |net: &UNetMt| {
        let mut n: Vec<String> = net.vars().data().lock().unwrap().keys().cloned().collect();
        n.sort();
        n
    };
    assert_eq!(names(&one), names(&hard));
    assert!(names(&hard).contains(&"encoder.down1.conv1.shared.weight".to_string()));
    assert_eq!(outputs(&one, &x), outputs(&hard, &x));
    assert_eq!(one.shared_params().len(), hard.shared_params().len());
}

#[test]
fn parameter_names_show_task_and_layer() {
    let net = unet(Sharing::Partitioned, UNetConfig::seg_cls(3, 2), 0);
    let mut names: Vec<String> = net.vars().data().lock().unwrap().keys().cloned().collect();
    names.extend(
        net.buffers()
            .unwrap()
            .data()
            .lock()
            .unwrap()
            .keys()
            .cloned(),
    );
    for expected in [
        "encoder.down1.conv1.task0.weight",
        "encoder.down4.bn2.task1.bias",
        "encoder.bottom.conv2.task1.weight",
        "encoder.down2.bn1.task0.running_mean",
        "decoder.up2.upconv.task0.weight",
        "decoder.up1.conv2.task0.bias",
        "decoder.out.task0.weight",
        "head.conv.task1.weight",
        "head.fc.task1.weight",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing");
    }
    let indep = unet(Sharing::Independent, UNetConfig::seg_seg(&[2, 3]), 0);
    let names: Vec<String> = indep
        .vars()
        .data()
        .lock()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert!(names.contains(&"net1.encoder.down3.conv1.task1.weight".to_string()));
}

#[test]
fn training_mode_switch_selects_the_statistics() {
    let mut net = unet(Sharing::Partitioned, UNetConfig::seg_seg(&[2, 3]), 0);
    assert!(net.is_training());
    let x = input(&[2, 3, 32, 32], 6);
    let snapshot = |net: &UNetMt| -> Vec<Vec<f32>> {
        let mut vars: Vec<(String, Var)> = net
            .buffers()
            .unwrap()
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars.iter().map(|(_, v)| flat(v.as_tensor())).collect()
    };
    let fresh = snapshot(&net);
    let train_out = outputs(&net, &x);
    let moved = snapshot(&net);
    assert_ne!(
        fresh, moved,
        "a training pass updates the running statistics"
    );
    net.set_training(false);
    let eval_out = outputs(&net, &x);
    assert_eq!(moved, snapshot(&net), "an evaluation pass does not");
    assert_ne!(train_out, eval_out);
    // evaluation is per-sample: an image's output does not depend on the rest of the batch
    let first = x.narrow(0, 0, 1).unwrap();
    let alone = net.forward_task(&first, 0, &SliceView::all()).unwrap();
    let batch = net.forward_task(&x, 0, &SliceView::all()).unwrap();
    let d = (alone - batch.narrow(0, 0, 1).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(d < 1e-5, "{d}");
}

/// Cross-entropy of `(N, C, H, W)` logits against `(N, H, W)` labels, or of `(N, C)` logits.
fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Tensor {
    let logits = if logits.rank() == 4 {
        let c = logits.dim(1).unwrap();
        logits
            .permute((0, 2, 3, 1))
            .unwrap()
            .reshape(((), c))
            .unwrap()
    } else {
        logits.clone()
    };
    candle_nn::loss::cross_entropy(&logits, &labels.flatten_all().unwrap()).unwrap()
}

fn sgd_step(loss: &Tensor, params: &[Var], lr: f64) {
    let grads = loss.backward().unwrap();
    for v in params {
        if let Some(g) = grads.get(v) {
            v.set(&(v.as_tensor() - (g * lr).unwrap()).unwrap())
                .unwrap();
        }
    }
}

/// Segmentation labels from the image: class 1 where channel 0 is bright, class 2 where channel
/// 1 also is (a learnable target).
fn seg_labels(x: &Tensor, classes: u32) -> Tensor {
    let a = x
        .narrow(1, 0, 1)
        .unwrap()
        .squeeze(1)
        .unwrap()
        .gt(0.5)
        .unwrap();
    let b = x
        .narrow(1, 1, 1)
        .unwrap()
        .squeeze(1)
        .unwrap()
        .gt(0.5)
        .unwrap();
    let a = a.to_dtype(DType::U32).unwrap();
    if classes > 2 {
        (a.clone() + (a * b.to_dtype(DType::U32).unwrap()).unwrap()).unwrap()
    } else {
        a
    }
}

fn losses(net: &UNetMt, x: &Tensor, labels: &[Tensor]) -> Vec<Tensor> {
    net.forward_tasks(x, &SliceView::all())
        .unwrap()
        .iter()
        .zip(labels)
        .map(|(y, l)| cross_entropy(y, l))
        .collect()
}

fn scalar(t: &Tensor) -> f32 {
    t.to_scalar::<f32>().unwrap()
}

#[test]
fn sgd_steps_reduce_every_task_loss() {
    let x = input(&[2, 3, 32, 32], 7);
    let cls = Tensor::new(&[0u32, 1], &Device::Cpu).unwrap();
    let cases = [
        (Sharing::Partitioned, UNetConfig::seg_cls(3, 2)),
        (Sharing::Independent, UNetConfig::seg_seg(&[2, 3])),
        (Sharing::Shared, UNetConfig::seg_seg(&[2, 3])),
    ];
    for (sharing, config) in cases {
        let labels: Vec<Tensor> = config
            .heads
            .iter()
            .map(|h| match h {
                TaskHead::Segmentation { classes } => seg_labels(&x, *classes as u32),
                _ => cls.clone(),
            })
            .collect();
        let net = unet(sharing, config, 0);
        let before: Vec<f32> = losses(&net, &x, &labels).iter().map(scalar).collect();
        for _ in 0..8 {
            // joint steps on the sum of the task losses
            let total = losses(&net, &x, &labels)
                .into_iter()
                .reduce(|a, b| (a + b).unwrap())
                .unwrap();
            sgd_step(&total, &net.all_params(), 0.1);
        }
        let after: Vec<f32> = losses(&net, &x, &labels).iter().map(scalar).collect();
        for t in 0..2 {
            assert!(
                after[t] < before[t],
                "{sharing} task {t}: loss {} → {}",
                before[t],
                after[t]
            );
        }
    }
    // MT-COOL-style alternating steps: each task updates only its own parameters
    let config = UNetConfig::seg_cls(3, 2);
    let labels = vec![seg_labels(&x, 3), cls];
    let net = unet(Sharing::Partitioned, config, 1);
    let before: Vec<f32> = losses(&net, &x, &labels).iter().map(scalar).collect();
    let values =
        |vars: Vec<Var>| -> Vec<Vec<f32>> { vars.iter().map(|v| flat(v.as_tensor())).collect() };
    for _ in 0..8 {
        for (t, label) in labels.iter().enumerate() {
            let others = values(net.task_params(1 - t));
            let y = net.forward_task(&x, t, &SliceView::task(t)).unwrap();
            sgd_step(&cross_entropy(&y, label), &net.task_params(t), 0.1);
            assert_eq!(
                others,
                values(net.task_params(1 - t)),
                "task {t}'s step moved the other task"
            );
        }
    }
    let after: Vec<f32> = losses(&net, &x, &labels).iter().map(scalar).collect();
    assert!(
        after[0] < before[0] && after[1] < before[1],
        "{before:?} → {after:?}"
    );
}

#[test]
fn sgd_steps_reduce_every_psinet_loss() {
    let x = input(&[2, 3, 32, 32], 8);
    let mask = seg_labels(&x, 2)
        .unsqueeze(1)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
    let species = Tensor::new(&[[0f32], [1.0]], &Device::Cpu).unwrap();
    let boxes = Tensor::new(
        &[[0.1f32, 0.2, 0.5, 0.6], [0.3, 0.3, 0.9, 0.8]],
        &Device::Cpu,
    )
    .unwrap();
    let config = PsiNetConfig::all_tasks().with_widths(&SMALL);
    let net = PsiNet::new(&Device::Cpu, Sharing::Shared, config, 0).unwrap();
    let losses = |net: &PsiNet| -> Vec<Tensor> {
        let out = net.forward_tasks(&x, &SliceView::all()).unwrap();
        use candle_nn::loss::{binary_cross_entropy_with_logit as bce, mse};
        vec![
            bce(&out[0], &mask).unwrap(),
            bce(&out[1], &species).unwrap(),
            mse(&out[2], &boxes).unwrap(),
            mse(&out[3], &x).unwrap(),
        ]
    };
    let before: Vec<f32> = losses(&net).iter().map(scalar).collect();
    for _ in 0..8 {
        let total = losses(&net)
            .into_iter()
            .reduce(|a, b| (a + b).unwrap())
            .unwrap();
        sgd_step(&total, &net.all_params(), 0.05);
    }
    let after: Vec<f32> = losses(&net).iter().map(scalar).collect();
    for t in 0..4 {
        assert!(after[t] < before[t], "task {t}: {before:?} → {after:?}");
    }
}

/// Max |a − b| / max(1, max |b|) over all outputs.
fn relative_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    let mut worst = 0f32;
    for (a, b) in a.iter().zip(b) {
        let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
        let d = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        worst = worst.max(d / scale);
    }
    worst
}

#[test]
fn fast_and_candle_ops_agree_on_the_unet_forward() {
    let x = input(&[2, 3, 64, 64], 9);
    for (name, config) in layouts() {
        for training in [true, false] {
            let mut fast = unet(Sharing::Partitioned, config.clone(), 2);
            let mut slow =
                unet(Sharing::Partitioned, config.clone(), 2).with_ops(OpsBackend::Candle);
            fast.set_training(training);
            slow.set_training(training);
            let d = relative_diff(&outputs(&fast, &x), &outputs(&slow, &x));
            assert!(d <= 1e-4, "{name} training={training}: {d}");
        }
    }
    let psi = |ops| {
        PsiNet::new(
            &Device::Cpu,
            Sharing::Shared,
            PsiNetConfig::all_tasks().with_widths(&SMALL),
            4,
        )
        .unwrap()
        .with_ops(ops)
    };
    let d = relative_diff(
        &outputs(&psi(OpsBackend::Fast), &x),
        &outputs(&psi(OpsBackend::Candle), &x),
    );
    assert!(d <= 1e-4, "psinet: {d}");
}

#[test]
fn guided_classifier_reads_the_segmentation() {
    // changing only the segmentation decoder changes the classifier's output
    let net = unet(Sharing::Shared, UNetConfig::seg_cls(3, 2), 0);
    let x = input(&[2, 3, 32, 32], 10);
    let before = flat(&net.forward_task(&x, 1, &SliceView::all()).unwrap());
    let out_w = net.head_params(0).into_iter().rev().nth(1).unwrap();
    assert_eq!(
        out_w.dims(),
        &[3, 4, 1, 1],
        "the segmentation's 1×1 output conv"
    );
    out_w.set(&(out_w.as_tensor() * 5.0).unwrap()).unwrap();
    let after = flat(&net.forward_task(&x, 1, &SliceView::all()).unwrap());
    assert_ne!(before, after);
    // and the classifier's gradient reaches the segmentation decoder when it trains
    let y = net.forward_task(&x, 1, &SliceView::all()).unwrap();
    let grads = y
        .max(D::Minus1)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert!(grads.get(&out_w).is_some());
}

#[test]
fn direct_and_im2col_convolutions_agree_on_the_unet_forward() {
    // 128-column rows and 4–8 channels: under `ConvAlgorithm::Auto` the first level runs the
    // direct 3 × 3 kernels; forced here for every 3 × 3 layer. Switching the process-wide
    // algorithm only changes rounding, which the other tests of this file tolerate. (Outputs,
    // not gradients: max pooling routes a gradient by which input is largest, so rounding can
    // move it; tests/ops.rs checks the direct gradients against candle's layer by layer.)
    let x = input(&[2, 3, 128, 128], 11);
    let outputs_with = |algorithm| {
        set_conv_algorithm(algorithm);
        let net = unet(Sharing::Partitioned, UNetConfig::seg_seg(&[2, 3]), 5);
        let out = outputs(&net, &x);
        set_conv_algorithm(ConvAlgorithm::Auto);
        out
    };
    let direct = outputs_with(ConvAlgorithm::Direct);
    let im2col = outputs_with(ConvAlgorithm::Im2col);
    let d = relative_diff(&direct, &im2col);
    assert!(d <= 1e-4, "outputs: {d}");
}
