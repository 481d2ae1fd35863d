//! One training run: a method, a seed, the epoch loop and the final evaluation.

use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::{Device, Tensor};
use indicatif::ProgressBar;
use mtcool_models::{LeNetMt, MultiTaskModel};
use mtcool_optim::{MethodKind, TaskBatch};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::config::{Ops, RunSettings};
use crate::data::{iterations_per_epoch, Sampler, TaskTensors};
use crate::diagnostics::{flatness, gradient_cosines, probe_batches};
use crate::error::Result;
use crate::evaluate::evaluate;
use crate::results::{EpochRecord, Metrics, RunRecord};

/// Independent random streams of a run, all derived from its seed.
pub struct RunRngs {
    /// Parameter initialisation seed.
    pub init_seed: u64,
    /// Mini-batch order.
    pub data: ChaCha8Rng,
    /// Method randomness (MT-COOL's noise, PCGrad's order, GradDrop's draws).
    pub method: ChaCha8Rng,
    /// Diagnostics (the flatness probe's noise), apart from training.
    pub diagnostics: ChaCha8Rng,
}

impl RunRngs {
    /// The streams of the run with `seed`.
    pub fn new(seed: u64) -> Self {
        let stream = |s: u64| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(s);
            rng
        };
        let mut init = stream(0);
        Self {
            init_seed: rand::RngCore::next_u64(&mut init),
            data: stream(1),
            method: stream(2),
            diagnostics: stream(3),
        }
    }
}

/// Builds the network a method needs for these tasks.
pub fn build_model(
    kind: MethodKind,
    tasks: &[TaskTensors],
    device: &Device,
    init_seed: u64,
    ops: Ops,
) -> Result<LeNetMt> {
    let classes: Vec<usize> = tasks.iter().map(|t| t.num_classes).collect();
    Ok(LeNetMt::new(device, kind.sharing(), &classes, init_seed)?.with_ops(ops.into()))
}

/// Trains `kind` with `seed` on `tasks` and evaluates it on the test splits after the last
/// epoch. `bar` (if any) advances once per iteration.
pub fn train_run(
    kind: MethodKind,
    seed: u64,
    settings: &RunSettings,
    tasks: &[TaskTensors],
    device: &Device,
    fingerprint: &str,
    bar: Option<&ProgressBar>,
) -> Result<RunRecord> {
    let start = Instant::now();
    let mut rngs = RunRngs::new(seed);
    let model = build_model(kind, tasks, device, rngs.init_seed, settings.ops)?;
    let mut method = mtcool_optim::build(kind, &model, &settings.method_options())?;
    let mut samplers: Vec<Sampler> = tasks.iter().map(|t| Sampler::new(t.train.len)).collect();
    let iterations = iterations_per_epoch(tasks, settings.batch_size);
    let mut history = Vec::with_capacity(settings.epochs);
    let diagnostics = &settings.diagnostics;
    let probes = probe_batches(tasks, diagnostics.probe_size)?;
    let mut best: Option<(f64, usize, Vec<Tensor>)> = None;
    let all_params = model.all_params();
    let mut images = 0usize;
    let mut train_seconds = 0.0;
    for epoch in 0..settings.epochs {
        method.begin_epoch(epoch);
        for s in &mut samplers {
            s.reshuffle(&mut rngs.data);
        }
        let epoch_start = Instant::now();
        let mut loss_sums = vec![0.0; tasks.len()];
        let mut clamp_sums = vec![0.0; tasks.len()];
        let mut clamp_counts = vec![0usize; tasks.len()];
        for _ in 0..iterations {
            if crate::interrupt::requested() {
                return Err(crate::error::TrainError::Interrupted);
            }
            let mut batches = Vec::with_capacity(tasks.len());
            for (t, task) in tasks.iter().enumerate() {
                let indices = samplers[t].next_batch(settings.batch_size, &mut rngs.data);
                images += indices.len();
                let (input, target) = task.train.batch(indices)?;
                batches.push(TaskBatch { input, target });
            }
            let report = method.step(&model, &batches, &mut rngs.method)?;
            for (t, loss) in report.losses.iter().enumerate() {
                loss_sums[t] += loss;
            }
            for (t, c) in report.clamped_fraction.iter().enumerate() {
                if let Some(c) = c {
                    clamp_sums[t] += c;
                    clamp_counts[t] += 1;
                }
            }
            if let Some(bar) = bar {
                bar.inc(1);
            }
        }
        let seconds = epoch_start.elapsed().as_secs_f64();
        train_seconds += seconds;
        let mut record = EpochRecord {
            epoch: epoch + 1,
            seconds,
            train_loss: BTreeMap::new(),
            val: Metrics::new(),
            clamped_fraction: BTreeMap::new(),
            gradient_cosine: BTreeMap::new(),
        };
        if diagnostics.gradient_conflict {
            for (a, b, cos) in gradient_cosines(&model, &probes)?.unwrap_or_default() {
                record
                    .gradient_cosine
                    .insert(format!("{}~{}", tasks[a].name, tasks[b].name), cos);
            }
        }
        for (t, task) in tasks.iter().enumerate() {
            record
                .train_loss
                .insert(task.name.clone(), loss_sums[t] / iterations.max(1) as f64);
            if clamp_counts[t] > 0 {
                record
                    .clamped_fraction
                    .insert(task.name.clone(), clamp_sums[t] / clamp_counts[t] as f64);
            }
            if task.val.len > 0 {
                let e = evaluate(&model, t, &task.val)?;
                record.val.insert(format!("{}/loss", task.name), e.loss);
                record
                    .val
                    .insert(format!("{}/accuracy", task.name), e.accuracy);
            }
        }
        let summary = describe_epoch(&record, tasks);
        tracing::info!(
            "{kind} seed {seed} epoch {}/{}: {summary}",
            epoch + 1,
            settings.epochs
        );
        if let Some(bar) = bar {
            bar.set_message(summary);
        }
        let val_loss: f64 = record
            .val
            .iter()
            .filter(|(k, _)| k.ends_with("/loss"))
            .map(|(_, v)| v)
            .sum();
        history.push(record);
        if let Some(patience) = settings.early_stopping_patience {
            if best.as_ref().is_none_or(|(b, _, _)| val_loss < *b) {
                let snapshot = all_params
                    .iter()
                    .map(|v| v.as_tensor().copy())
                    .collect::<candle_core::Result<Vec<_>>>()?;
                best = Some((val_loss, epoch, snapshot));
            } else if best.as_ref().is_some_and(|(_, e, _)| epoch - e >= patience) {
                tracing::info!(
                    "{kind} seed {seed}: validation loss has not improved for {patience} epochs; \
                     stopping after epoch {}",
                    epoch + 1
                );
                break;
            }
        }
    }
    let best_epoch = match best {
        Some((_, epoch, snapshot)) => {
            for (var, value) in all_params.iter().zip(&snapshot) {
                var.set(value)?;
            }
            Some(epoch + 1)
        }
        None => None,
    };
    let mut metrics = Metrics::new();
    for (t, task) in tasks.iter().enumerate() {
        metrics.insert(
            format!("{}/accuracy", task.name),
            evaluate(&model, t, &task.test)?.accuracy,
        );
    }
    let names: Vec<String> = tasks.iter().map(|t| t.name.clone()).collect();
    let flatness = flatness(&model, &names, &probes, diagnostics, &mut rngs.diagnostics)?;
    Ok(RunRecord {
        method: kind.name().to_string(),
        seed,
        seconds: start.elapsed().as_secs_f64(),
        images_per_second: if train_seconds > 0.0 {
            images as f64 / train_seconds
        } else {
            0.0
        },
        metrics,
        params: model.param_count(),
        fingerprint: fingerprint.to_string(),
        epochs: history.len(),
        history,
        best_epoch,
        flatness,
    })
}

fn describe_epoch(record: &EpochRecord, tasks: &[TaskTensors]) -> String {
    let mut parts = Vec::new();
    for task in tasks {
        let loss = record
            .train_loss
            .get(&task.name)
            .copied()
            .unwrap_or(f64::NAN);
        let mut part = format!("{} loss {loss:.4}", task.name);
        if let Some(acc) = record.val.get(&format!("{}/accuracy", task.name)) {
            part.push_str(&format!(" val {:.2}%", 100.0 * acc));
        }
        if let Some(c) = record.clamped_fraction.get(&task.name) {
            part.push_str(&format!(" clamped {:.2e}", c));
        }
        parts.push(part);
    }
    parts.join(", ")
}
