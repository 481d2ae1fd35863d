//! Resuming a method from its saved state: for every method and both optimisers, training on
//! from a restored state gives the parameters of uninterrupted training, bit for bit, and
//! training on without the state does not (so the test sees a forgotten piece of state).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};
use mtcool_models::{checkpoint, LeNetMt, MultiTaskModel};
use mtcool_optim::{
    AdamConfig, Method, MethodKind, MethodOptions, MethodState, OptimizerConfig, SgdConfig,
    TaskBatch,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const STEPS_PER_EPOCH: usize = 2;

fn batch(seed: u64) -> TaskBatch {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pixels: Vec<f32> = (0..4 * 784).map(|_| rng.random_range(-1.0..1.0)).collect();
    let labels: Vec<u32> = (0..4).map(|_| rng.random_range(0..5)).collect();
    TaskBatch {
        input: Tensor::from_vec(pixels, (4, 1, 28, 28), &Device::Cpu).unwrap(),
        target: Tensor::from_vec(labels, 4, &Device::Cpu).unwrap(),
    }
}

fn options(optimizer: OptimizerConfig) -> MethodOptions {
    let mut o = MethodOptions {
        optimizer,
        ..MethodOptions::default()
    };
    o.baselines.fixed.weights = vec![1.0, 0.5];
    // Tasks with their own images: the parameter-space form.
    o.baselines.mgda.representation = false;
    o.mtcool.warmup_epochs = 1;
    o
}

fn train_epochs(
    method: &mut dyn Method,
    model: &dyn MultiTaskModel,
    epochs: std::ops::Range<usize>,
    rng: &mut ChaCha8Rng,
) {
    for epoch in epochs {
        method.begin_epoch(epoch);
        for step in 0..STEPS_PER_EPOCH {
            let seed = (epoch * STEPS_PER_EPOCH + step) as u64;
            let batches = [batch(2 * seed), batch(2 * seed + 1)];
            method.step(model, &batches, rng).unwrap();
        }
    }
}

fn weights(model: &dyn MultiTaskModel) -> BTreeMap<String, Vec<f32>> {
    checkpoint::model_tensors(model, std::path::Path::new("memory"))
        .unwrap()
        .into_iter()
        .map(|(n, t)| (n, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

/// The state as a resume file keeps it: values through JSON text, tensors as they are.
fn through_json(state: &MethodState) -> MethodState {
    let text = serde_json::to_string(state.values()).unwrap();
    MethodState::from_parts(
        state.tensors().clone(),
        serde_json::from_str(&text).unwrap(),
    )
}

fn check(kind: MethodKind, optimizer: OptimizerConfig) {
    let options = options(optimizer);
    let build = |seed| {
        let model = LeNetMt::new(&Device::Cpu, kind.sharing(), &[5, 5], seed).unwrap();
        let method = mtcool_optim::build(kind, &model, &options).unwrap();
        (model, method)
    };
    let (model, mut method) = build(1);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    train_epochs(method.as_mut(), &model, 0..3, &mut rng);
    let saved_model = checkpoint::model_tensors(&model, std::path::Path::new("memory")).unwrap();
    let saved_state = through_json(&method.state(&model).unwrap());
    let saved_rng = rng.clone();
    train_epochs(method.as_mut(), &model, 3..5, &mut rng);
    let expected = weights(&model);

    let (resumed, mut resumed_method) = build(2);
    checkpoint::set_model(&resumed, &saved_model, std::path::Path::new("memory")).unwrap();
    resumed_method.restore(&resumed, &saved_state).unwrap();
    train_epochs(
        resumed_method.as_mut(),
        &resumed,
        3..5,
        &mut saved_rng.clone(),
    );
    let got = weights(&resumed);
    let differing: Vec<&String> = got
        .iter()
        .filter(|(n, v)| expected.get(*n) != Some(v))
        .map(|(n, _)| n)
        .collect();
    assert!(
        differing.is_empty(),
        "{kind} with {optimizer}: resumed training differs from uninterrupted training in \
         {differing:?}"
    );

    let (forgetful, mut fresh_method) = build(2);
    checkpoint::set_model(&forgetful, &saved_model, std::path::Path::new("memory")).unwrap();
    train_epochs(
        fresh_method.as_mut(),
        &forgetful,
        3..5,
        &mut saved_rng.clone(),
    );
    assert!(
        weights(&forgetful) != expected,
        "{kind} with {optimizer}: training on without the saved state changed nothing"
    );
}

#[test]
fn every_method_resumes_bit_for_bit_with_sgd() {
    for kind in MethodKind::ALL {
        check(kind, SgdConfig::default().into());
    }
}

#[test]
fn every_method_resumes_bit_for_bit_with_adam() {
    for kind in MethodKind::ALL {
        check(kind, AdamConfig::default().into());
    }
}

#[test]
fn a_state_of_another_method_is_refused() {
    let model = LeNetMt::new(&Device::Cpu, MethodKind::Joint.sharing(), &[5, 5], 0).unwrap();
    let other = LeNetMt::new(&Device::Cpu, MethodKind::Joint.sharing(), &[5, 4], 0).unwrap();
    let o = options(SgdConfig::default().into());
    let mut method = mtcool_optim::build(MethodKind::Joint, &model, &o).unwrap();
    train_epochs(
        method.as_mut(),
        &model,
        0..1,
        &mut ChaCha8Rng::seed_from_u64(0),
    );
    let mut wrong = mtcool_optim::build(MethodKind::Joint, &other, &o).unwrap();
    let err = wrong
        .restore(&other, &method.state(&model).unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("in the saved state but"), "{err}");
}
