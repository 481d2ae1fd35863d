//! One training run: a method, a seed, the epoch loop and the final evaluation.

use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::{Device, Tensor};
use indicatif::ProgressBar;
use mtcool_models::{
    LeNetMt, MultiTaskModel, PsiNet, PsiNetConfig, PsiTask, TaskHead, UNetConfig, UNetMt,
};
use mtcool_optim::{MethodKind, TaskBatch};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::augment::FlipDraw;
use crate::checkpoint::{split_metrics, CheckpointTarget};
use crate::config::{Arch, MethodSpec, ModelConfig, RunSettings};
use crate::data::{iterations_per_epoch, Dataset, Sampler, SplitTensors, TaskKind};
use crate::diagnostics::{flatness, gradient_cosines, probe_batches};
use crate::error::Result;
use crate::error::TrainError;
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
    /// Augmentation draws (its own stream: turning it on leaves the batch order alone).
    pub augment: ChaCha8Rng,
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
            augment: stream(4),
        }
    }
}

/// Builds the network `model` describes, in the sharing mode method `kind` needs, with heads
/// for the dataset's tasks.
pub fn build_model(
    kind: MethodKind,
    dataset: &Dataset,
    model: &ModelConfig,
    device: &Device,
    init_seed: u64,
) -> Result<Box<dyn MultiTaskModel>> {
    let kinds: Vec<TaskKind> = dataset.tasks.iter().map(|t| t.kind.clone()).collect();
    build_network(
        kind,
        &kinds,
        &dataset.input_shape(),
        model,
        device,
        init_seed,
    )
}

/// Builds the network for tasks of `kinds` on images of `shape` `(C, H, W)`.
pub fn build_network(
    kind: MethodKind,
    kinds: &[TaskKind],
    shape: &[usize],
    model: &ModelConfig,
    device: &Device,
    init_seed: u64,
) -> Result<Box<dyn MultiTaskModel>> {
    let channels = shape.first().copied().unwrap_or(1);
    let unfit = |problem: String| TrainError::Config {
        path: "model".into(),
        problem,
    };
    let sharing = kind.sharing();
    let ops = model.ops.into();
    let built: Box<dyn MultiTaskModel> = match model.arch {
        Arch::Lenet => {
            if shape != [1, 28, 28] {
                return Err(unfit(format!(
                    "LeNet-MT needs 1×28×28 images, got {shape:?}"
                )));
            }
            let classes = kinds
                .iter()
                .map(|k| match k {
                    TaskKind::Class { classes } => Ok(*classes),
                    other => Err(unfit(format!("LeNet-MT cannot learn a {other:?} task"))),
                })
                .collect::<Result<Vec<_>>>()?;
            Box::new(LeNetMt::new(device, sharing, &classes, init_seed)?.with_ops(ops))
        }
        Arch::Unet => {
            let seg_task = kinds
                .iter()
                .position(|k| matches!(k, TaskKind::Mask { .. }));
            let heads = kinds
                .iter()
                .map(|k| match (k, seg_task) {
                    (TaskKind::Mask { classes, .. }, _) => {
                        Ok(TaskHead::Segmentation { classes: *classes })
                    }
                    (TaskKind::Class { classes }, Some(seg_task)) => {
                        Ok(TaskHead::GuidedClassification {
                            classes: *classes,
                            seg_task,
                        })
                    }
                    (TaskKind::Class { classes }, None) => {
                        Ok(TaskHead::Dense { outputs: *classes })
                    }
                    (TaskKind::BoundingBox, _) => Ok(TaskHead::Dense { outputs: 4 }),
                    (TaskKind::Reconstruction { channels }, _) => Ok(TaskHead::Reconstruction {
                        channels: *channels,
                    }),
                })
                .collect::<Result<Vec<_>>>()?;
            let mut config = UNetConfig::new(heads).with_in_channels(channels);
            if let Some(w) = &model.widths {
                config = config.with_widths(w);
            }
            Box::new(UNetMt::new(device, sharing, config, init_seed)?.with_ops(ops))
        }
        Arch::Psinet => {
            let tasks = kinds
                .iter()
                .map(|k| match k {
                    TaskKind::Mask { classes, .. } => PsiTask::Segmentation { classes: *classes },
                    TaskKind::Class { classes } => PsiTask::Classification { classes: *classes },
                    TaskKind::BoundingBox => PsiTask::BoundingBox,
                    TaskKind::Reconstruction { channels } => PsiTask::Reconstruction {
                        channels: *channels,
                    },
                })
                .collect();
            let mut config = PsiNetConfig::new(tasks);
            config.in_channels = channels;
            if let Some(w) = &model.widths {
                config = config.with_widths(w);
            }
            if let Some(d) = model.depth {
                config = config.with_depth(d);
            }
            Box::new(PsiNet::new(device, sharing, config, init_seed)?.with_ops(ops))
        }
    };
    Ok(built)
}

/// One training batch per task. With a shared input, every task gets the same normalised
/// image tensor (so the encoder runs once) and the reconstruction target is that tensor.
fn draw_batches(
    dataset: &Dataset,
    train: &[&SplitTensors],
    samplers: &mut [Sampler],
    batch_size: usize,
    rng: &mut ChaCha8Rng,
    mut flip_rng: Option<&mut ChaCha8Rng>,
) -> Result<(Vec<TaskBatch>, usize)> {
    let mut batches = Vec::with_capacity(train.len());
    let mut images = 0;
    let mut shared: Option<(Vec<u32>, Tensor, Option<FlipDraw>)> = None;
    for (t, split) in train.iter().enumerate() {
        let indices = match (&shared, dataset.shared_input) {
            (Some((indices, _, _)), true) => indices.clone(),
            _ => samplers[t].next_batch(batch_size, rng).to_vec(),
        };
        let (input, flip, target) = match &shared {
            Some((_, input, flip)) if dataset.shared_input => {
                (input.clone(), flip.clone(), split.targets(&indices)?)
            }
            _ => {
                let (raw, target) = split.batch(&indices)?;
                images += indices.len();
                let flip = match flip_rng.as_deref_mut() {
                    Some(r) => Some(FlipDraw::draw(indices.len(), r, raw.device())?),
                    None => None,
                };
                let raw = match &flip {
                    Some(f) => f.images(&raw)?,
                    None => raw,
                };
                let input = dataset.normaliser.apply(&raw)?;
                if dataset.shared_input {
                    shared = Some((indices, input.clone(), flip.clone()));
                }
                (input, flip, target)
            }
        };
        let target = match (target, &flip) {
            (Some(target), Some(f)) => f.target(&dataset.tasks[t].kind, &target)?,
            (Some(target), None) => target,
            (None, _) => input.detach(),
        };
        batches.push(TaskBatch { input, target });
    }
    Ok((batches, images))
}

/// What a run reports and keeps besides its record.
#[derive(Debug, Clone, Copy)]
pub struct RunOutputs<'a> {
    /// Fingerprint of its settings, recorded in the run file.
    pub fingerprint: &'a str,
    /// A bar advanced once per iteration.
    pub bar: Option<&'a ProgressBar>,
    /// Where to save the trained model.
    pub checkpoint: Option<&'a CheckpointTarget>,
}

/// Trains `kind` with `seed` on `dataset` and evaluates it on the test splits after the last
/// epoch (or the best one, with early stopping), saving the tested model where `outputs` says.
pub fn train_run(
    method_spec: &MethodSpec,
    seed: u64,
    settings: &RunSettings,
    dataset: &Dataset,
    device: &Device,
    outputs: RunOutputs<'_>,
) -> Result<RunRecord> {
    let RunOutputs {
        fingerprint,
        bar,
        checkpoint,
    } = outputs;
    let start = Instant::now();
    let kind = method_spec.kind;
    let label = &method_spec.label;
    let mut rngs = RunRngs::new(seed);
    let mut model = build_model(kind, dataset, &settings.model, device, rngs.init_seed)?;
    let mut method = mtcool_optim::build(kind, model.as_ref(), &settings.method_options())?;
    let tasks = &dataset.tasks;
    let n_tasks = tasks.len();
    let mut samplers: Vec<Sampler> = match &dataset.patches {
        Some(p) => vec![Sampler::new(p.per_epoch); n_tasks],
        None => tasks.iter().map(|t| Sampler::new(t.train.len)).collect(),
    };
    let iterations = iterations_per_epoch(dataset, settings.batch_size);
    let mut history = Vec::with_capacity(settings.epochs);
    let diagnostics = &settings.diagnostics;
    let probes = probe_batches(dataset, diagnostics.probe_size)?;
    let mut best: Option<(f64, usize, Vec<Tensor>)> = None;
    // What early stopping snapshots and restores: parameters and buffers (BatchNorm's running
    // statistics), so the best epoch is tested as it was, not with the last epoch's statistics.
    let state = state_vars(model.as_ref());
    let mut images = 0usize;
    let mut train_seconds = 0.0;
    for epoch in 0..settings.epochs {
        method.begin_epoch(epoch);
        let patches = dataset.epoch_patches(&mut rngs.data)?;
        let train: Vec<&SplitTensors> = match &patches {
            Some(p) => p.iter().collect(),
            None => tasks.iter().map(|t| &t.train).collect(),
        };
        for s in &mut samplers {
            s.reshuffle(&mut rngs.data);
        }
        model.set_training(true);
        let epoch_start = Instant::now();
        let mut loss_sums = vec![0.0; n_tasks];
        let mut clamp_sums = vec![0.0; n_tasks];
        let mut clamp_counts = vec![0usize; n_tasks];
        for _ in 0..iterations {
            if crate::interrupt::requested() {
                return Err(TrainError::Interrupted);
            }
            let (batches, seen) = draw_batches(
                dataset,
                &train,
                &mut samplers,
                settings.batch_size,
                &mut rngs.data,
                settings.horizontal_flip.then_some(&mut rngs.augment),
            )?;
            images += seen;
            let report = method.step(model.as_ref(), &batches, &mut rngs.method)?;
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
        model.set_training(false);
        let mut record = EpochRecord {
            epoch: epoch + 1,
            seconds,
            train_loss: BTreeMap::new(),
            val: Metrics::new(),
            clamped_fraction: BTreeMap::new(),
            gradient_cosine: BTreeMap::new(),
        };
        if diagnostics.gradient_conflict {
            for (a, b, cos) in gradient_cosines(model.as_ref(), &probes)?.unwrap_or_default() {
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
                for (metric, value) in evaluate(model.as_ref(), dataset, t, &task.val)? {
                    record.val.insert(format!("{}/{metric}", task.name), value);
                }
            }
        }
        let summary = describe_epoch(&record, &dataset.task_names());
        tracing::info!(
            "{label} seed {seed} epoch {}/{}: {summary}",
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
                let snapshot = state
                    .iter()
                    .map(|v| v.as_tensor().copy())
                    .collect::<candle_core::Result<Vec<_>>>()?;
                best = Some((val_loss, epoch, snapshot));
            } else if best.as_ref().is_some_and(|(_, e, _)| epoch - e >= patience) {
                tracing::info!(
                    "{label} seed {seed}: validation loss has not improved for {patience} epochs; \
                     stopping after epoch {}",
                    epoch + 1
                );
                break;
            }
        }
    }
    let best_epoch = match best {
        Some((_, epoch, snapshot)) => {
            if let Some(target) = checkpoint {
                target.save(model.as_ref(), &target.last_path(), history.len())?;
            }
            for (var, value) in state.iter().zip(&snapshot) {
                var.set(value)?;
            }
            Some(epoch + 1)
        }
        None => None,
    };
    model.set_training(false);
    if let Some(target) = checkpoint {
        let epoch = best_epoch.unwrap_or(history.len());
        target.save(model.as_ref(), &target.path, epoch)?;
    }
    let metrics = split_metrics(model.as_ref(), dataset, |t| &t.test)?;
    let names = dataset.task_names();
    let flatness = flatness(
        model.as_ref(),
        &names,
        &probes,
        diagnostics,
        &mut rngs.diagnostics,
    )?;
    Ok(RunRecord {
        method: label.clone(),
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
        device: String::new(),
        settings_fingerprint: String::new(),
        finished_unix: 0.0,
        checkpoint: checkpoint
            .and_then(|t| t.path.file_name().map(|n| n.to_string_lossy().into_owned())),
    })
}

/// Every variable that makes the model what it is: its parameters, then its buffers.
fn state_vars(model: &dyn MultiTaskModel) -> Vec<candle_core::Var> {
    let mut vars = model.all_params();
    if let Some(buffers) = model.buffers() {
        vars.extend(buffers.all_vars());
    }
    vars
}

fn describe_epoch(record: &EpochRecord, tasks: &[String]) -> String {
    let mut parts = Vec::new();
    for task in tasks {
        let loss = record.train_loss.get(task).copied().unwrap_or(f64::NAN);
        let mut part = format!("{task} loss {loss:.4}");
        if let Some(acc) = record.val.get(&format!("{task}/accuracy")) {
            part.push_str(&format!(" val {:.2}%", 100.0 * acc));
        }
        if let Some(c) = record.clamped_fraction.get(task) {
            part.push_str(&format!(" clamped {:.2e}", c));
        }
        parts.push(part);
    }
    parts.join(", ")
}
