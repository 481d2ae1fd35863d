//! The properties of MT-COOL's step that the method notes list as its specification.
#![allow(clippy::unwrap_used)]

use candle_core::{Device, Tensor, Var};
use mtcool_models::{LeNetMt, MultiTaskModel, Sharing};
use mtcool_optim::{Method, MethodOptions, MtCool, MtCoolConfig, SgdConfig, TaskBatch, Variant};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn batch(seed: u64, n: usize) -> TaskBatch {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pixels: Vec<f32> = (0..n * 28 * 28)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let labels: Vec<u32> = (0..n).map(|_| rng.random_range(0..5)).collect();
    TaskBatch {
        input: Tensor::from_vec(pixels, (n, 1, 28, 28), &Device::Cpu).unwrap(),
        target: Tensor::from_vec(labels, n, &Device::Cpu).unwrap(),
    }
}

fn snapshot(vars: &[Var]) -> Vec<Vec<f32>> {
    vars.iter()
        .map(|v| {
            v.as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        })
        .collect()
}

fn model(seed: u64) -> LeNetMt {
    LeNetMt::new(&Device::Cpu, Sharing::Partitioned, &[5, 5], seed).unwrap()
}

fn no_warmup(b: f64, lambda: f64) -> MtCoolConfig {
    MtCoolConfig {
        noise_bound: b,
        kl_weight: lambda,
        warmup_epochs: 0,
        ..MtCoolConfig::default()
    }
}

#[test]
fn a_task_step_changes_only_that_tasks_parameters() {
    let net = model(1);
    let mut method = MtCool::new(
        &net,
        Variant::Full,
        no_warmup(0.01, 1.0),
        SgdConfig::default(),
    )
    .unwrap();
    method.begin_epoch(0);
    let mine = snapshot(&net.task_params(0));
    let others = snapshot(&net.task_params(1));
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    method.task_step(&net, 0, &batch(0, 16), &mut rng).unwrap();
    assert_eq!(
        snapshot(&net.task_params(1)),
        others,
        "task 1's parameters moved"
    );
    let after = snapshot(&net.task_params(0));
    for (i, (a, b)) in after.iter().zip(&mine).enumerate() {
        assert_ne!(a, b, "task 0's parameter {i} did not move");
    }
}

#[test]
fn the_clamp_keeps_theta_within_b_of_its_reference() {
    let net = model(2);
    let b = 1e-3;
    // a large learning rate so that the step overshoots ±b and the clamp has work to do
    let sgd = SgdConfig {
        lr: 0.5,
        ..SgdConfig::default()
    };
    let config = MtCoolConfig {
        steps_per_task: 3,
        ..no_warmup(b, 1.0)
    };
    let mut method = MtCool::new(&net, Variant::Full, config, sgd).unwrap();
    method.begin_epoch(0);
    let theta = net.encoder_params(1);
    let reference = snapshot(&theta);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (_, clamped) = method.task_step(&net, 1, &batch(1, 16), &mut rng).unwrap();
    assert!(clamped.unwrap() > 0.0, "the clamp never acted");
    for (now, then) in snapshot(&theta).iter().zip(&reference) {
        for (x, r) in now.iter().zip(then) {
            assert!(
                (x - r).abs() <= b as f32 * (1.0 + 1e-5),
                "{x} is more than {b} from {r}"
            );
        }
    }
}

#[test]
fn zero_bound_and_zero_lambda_is_exactly_the_vanilla_step() {
    let batches = [batch(3, 16), batch(4, 16)];
    let run = |variant, config| {
        let net = model(5);
        let mut method = MtCool::new(&net, variant, config, SgdConfig::default()).unwrap();
        method.begin_epoch(0);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for _ in 0..2 {
            method.step(&net, &batches, &mut rng).unwrap();
        }
        snapshot(&net.all_params())
    };
    let mtcool = run(Variant::Full, no_warmup(0.0, 0.0));
    let vanilla = run(Variant::Vanilla, no_warmup(0.01, 1.0));
    assert_eq!(mtcool, vanilla);
    // and the full method with noise does something else
    assert_ne!(run(Variant::Full, no_warmup(0.01, 1.0)), vanilla);
}

#[test]
fn warm_up_runs_the_vanilla_scheme() {
    let batches = [batch(6, 8), batch(7, 8)];
    let run = |variant, warmup_epochs| {
        let net = model(8);
        let config = MtCoolConfig {
            warmup_epochs,
            ..MtCoolConfig::default()
        };
        let mut method = MtCool::new(&net, variant, config, SgdConfig::default()).unwrap();
        method.begin_epoch(0);
        let report = method
            .step(&net, &batches, &mut ChaCha8Rng::seed_from_u64(0))
            .unwrap();
        (snapshot(&net.all_params()), report.clamped_fraction)
    };
    let (warm, clamps) = run(Variant::Full, 1);
    assert_eq!(clamps, vec![None, None]);
    assert_eq!(warm, run(Variant::Vanilla, 0).0);
    assert!(run(Variant::Full, 0).1.iter().all(Option::is_some));
}

#[test]
fn same_seed_same_step() {
    let batches = [batch(9, 8), batch(10, 8)];
    let run = |seed| {
        let net = model(11);
        let mut method = MtCool::new(
            &net,
            Variant::Full,
            no_warmup(0.05, 1.0),
            SgdConfig::default(),
        )
        .unwrap();
        method.begin_epoch(0);
        method
            .step(&net, &batches, &mut ChaCha8Rng::seed_from_u64(seed))
            .unwrap();
        snapshot(&net.all_params())
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn mtcool_refuses_a_shared_encoder() {
    let net = LeNetMt::new(&Device::Cpu, Sharing::Shared, &[5, 5], 0).unwrap();
    let err = MtCool::new(
        &net,
        Variant::Full,
        MtCoolConfig::default(),
        SgdConfig::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("partitioned"), "{err}");
}

#[test]
fn independent_networks_do_not_interact() {
    // Independent = the joint step on one network per task: task 0's batch never changes
    // how task 1's network moves.
    let run = |task0_seed| {
        let net = LeNetMt::new(&Device::Cpu, Sharing::Independent, &[5, 5], 0).unwrap();
        let kind = mtcool_optim::MethodKind::Independent;
        let mut method = mtcool_optim::build(kind, &net, &MethodOptions::default()).unwrap();
        let batches = [batch(task0_seed, 8), batch(13, 8)];
        method
            .step(&net, &batches, &mut ChaCha8Rng::seed_from_u64(0))
            .unwrap();
        (snapshot(&net.task_params(0)), snapshot(&net.task_params(1)))
    };
    let (a0, a1) = run(20);
    let (b0, b1) = run(21);
    assert_eq!(a1, b1);
    assert_ne!(a0, b0);
}

#[test]
fn joint_updates_the_shared_encoder_from_both_tasks() {
    let run = |task1_seed| {
        let net = LeNetMt::new(&Device::Cpu, Sharing::Shared, &[5, 5], 0).unwrap();
        let kind = mtcool_optim::MethodKind::Joint;
        let mut method = mtcool_optim::build(kind, &net, &MethodOptions::default()).unwrap();
        method
            .step(
                &net,
                &[batch(14, 8), batch(task1_seed, 8)],
                &mut ChaCha8Rng::seed_from_u64(0),
            )
            .unwrap();
        snapshot(&net.shared_params())
    };
    assert_ne!(run(15), run(16));
}

#[test]
fn noise_spares_the_other_tasks_batch_norm_affine_parameters() {
    use mtcool_models::{UNetConfig, UNetMt};
    let config = UNetConfig::seg_cls(3, 2).with_widths(&[4, 8, 16, 32, 64]);
    let net = UNetMt::new(&Device::Cpu, Sharing::Partitioned, config, 0).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let noise =
        mtcool_optim::mtcool::draw_noise(&net, 0, 0.01, Default::default(), &mut rng).unwrap();
    let perturbable: Vec<_> = net.perturbable_params(1).iter().map(|v| v.id()).collect();
    let batch_norm: Vec<_> = net
        .encoder_params(1)
        .iter()
        .map(|v| v.id())
        .filter(|id| !perturbable.contains(id))
        .collect();
    assert!(
        !batch_norm.is_empty(),
        "the U-Net's encoder has BatchNorm γ/β"
    );
    assert_eq!(noise.len(), perturbable.len());
    assert!(perturbable.iter().all(|id| noise.contains_key(id)));
    assert!(batch_norm.iter().all(|id| !noise.contains_key(id)));
    let own: Vec<_> = net.encoder_params(0).iter().map(|v| v.id()).collect();
    assert!(
        own.iter().all(|id| !noise.contains_key(id)),
        "no noise on the training task"
    );
}

#[test]
fn relative_noise_follows_each_weights_scale_and_so_does_the_clamp() {
    use mtcool_optim::mtcool::{clamp_to_reference, draw_noise, NoiseScale};
    let net = model(3);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let b = 0.1;
    let noise = draw_noise(&net, 0, b, NoiseScale::Relative, &mut rng).unwrap();
    let mut same = ChaCha8Rng::seed_from_u64(0);
    let absolute = draw_noise(&net, 0, b, NoiseScale::Absolute, &mut same).unwrap();
    for var in net.perturbable_params(1) {
        let w = var
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let eps = noise[&var.id()]
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let u = absolute[&var.id()]
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for ((w, e), u) in w.iter().zip(&eps).zip(&u) {
            // the same draws, scaled by |w|
            assert!((e - u * w.abs()).abs() <= 1e-7, "{e} vs {u}·|{w}|");
            assert!(e.abs() <= b as f32 * w.abs() + 1e-7);
        }
    }
    // the clamp keeps θ within ref ± b·|ref|
    let theta = net.encoder_params(0);
    let reference: Vec<Tensor> = theta
        .iter()
        .map(|v| v.as_tensor().copy().unwrap())
        .collect();
    for v in &theta {
        v.set(&(v.as_tensor() * 2.0).unwrap()).unwrap();
    }
    let moved = clamp_to_reference(&theta, &reference, b, NoiseScale::Relative).unwrap();
    assert!(
        moved > 0.9,
        "doubling moves nearly every weight out of ±10 %: {moved}"
    );
    for (v, r) in theta.iter().zip(&reference) {
        let now = v
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let r = r.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (x, r) in now.iter().zip(&r) {
            assert!(
                (x - r).abs() <= b as f32 * r.abs() * (1.0 + 1e-6),
                "{x} vs {r}"
            );
        }
    }
}

#[test]
fn epoch_alternation_trains_one_task_per_epoch() {
    use mtcool_optim::mtcool::Alternation;
    let net = model(4);
    let config = MtCoolConfig {
        alternation: Alternation::Epoch,
        ..no_warmup(0.01, 1.0)
    };
    let mut method = MtCool::new(&net, Variant::Full, config, SgdConfig::default()).unwrap();
    let batches = [batch(1, 8), batch(2, 8)];
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for epoch in 0..3 {
        method.begin_epoch(epoch);
        let before = [snapshot(&net.task_params(0)), snapshot(&net.task_params(1))];
        let report = method.step(&net, &batches, &mut rng).unwrap();
        assert_eq!(report.losses.len(), 2);
        assert!(report.losses.iter().all(|l| l.is_finite() && *l > 0.0));
        let after = [snapshot(&net.task_params(0)), snapshot(&net.task_params(1))];
        let turn = epoch % 2;
        assert_ne!(
            before[turn], after[turn],
            "epoch {epoch}: task {turn} trains"
        );
        assert_eq!(
            before[1 - turn],
            after[1 - turn],
            "epoch {epoch}: the other waits"
        );
        assert!(report.clamped_fraction[1 - turn].is_none());
    }
}
