//! One training run: a method, a seed, the epoch loop and the final evaluation.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor};
use indicatif::ProgressBar;
use mtcool_models::{
    LeNetMt, MultiTaskModel, PsiNet, PsiNetConfig, PsiTask, TaskHead, UNetConfig, UNetMt,
};
use mtcool_optim::{Method, MethodKind, TaskBatch};
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
use crate::resume::{self, BestEpoch, RunIdentity, RunProgress};
use crate::tracking::Tracking;

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
        Arch::MultiLenet => {
            if shape != [1, 28, 28] || kinds.iter().any(|k| !matches!(k, TaskKind::Class { .. })) {
                return Err(unfit(format!(
                    "MultiLeNet needs 1×28×28 images and class tasks, got {shape:?}"
                )));
            }
            let classes: Vec<usize> = kinds
                .iter()
                .map(|k| match k {
                    TaskKind::Class { classes } => *classes,
                    _ => 0,
                })
                .collect();
            Box::new(LeNetMt::multi_lenet(device, sharing, &classes, init_seed)?.with_ops(ops))
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
    /// Where to save the trained model (and, every `checkpoint_every` epochs, the state to
    /// resume from).
    pub checkpoint: Option<&'a CheckpointTarget>,
    /// Where to write the run's TensorBoard log and `history.csv` (none: not tracked).
    pub tracking: Option<&'a Path>,
}

/// What one epoch works with.
struct EpochContext<'a> {
    dataset: &'a Dataset,
    settings: &'a RunSettings,
    probes: &'a [(Tensor, Tensor)],
    bar: Option<&'a ProgressBar>,
}

/// Trains `kind` with `seed` on `dataset` and evaluates it on the test splits after the last
/// epoch (or the best one, with early stopping), saving the tested model where `outputs` says.
/// A run that finds its resume file (`outputs.checkpoint`) goes on from its last saved epoch.
pub fn train_run(
    method_spec: &MethodSpec,
    seed: u64,
    settings: &RunSettings,
    dataset: &Dataset,
    device: &Device,
    outputs: RunOutputs<'_>,
) -> Result<RunRecord> {
    let start = Instant::now();
    let label = &method_spec.label;
    let run = RunIdentity {
        fingerprint: outputs.fingerprint,
        method: label,
        seed,
    };
    let (mut model, mut method, mut progress) = start_run(
        method_spec.kind,
        settings,
        dataset,
        device,
        run,
        outputs.checkpoint,
    )?;
    let mut tracking = Tracking::start(
        outputs.tracking,
        &describe_run(label, seed, settings),
        &progress.history,
    );
    let iterations = iterations_per_epoch(dataset, settings.batch_size);
    if let Some(bar) = outputs.bar {
        bar.set_position((progress.history.len() * iterations) as u64);
    }
    let probes = probe_batches(dataset, settings.diagnostics.probe_size)?;
    let context = EpochContext {
        dataset,
        settings,
        probes: &probes,
        bar: outputs.bar,
    };
    while progress.history.len() < settings.epochs {
        let epoch = progress.history.len();
        method.begin_epoch(epoch);
        let lr_factor = settings.lr_schedule.factor(epoch, settings.epochs);
        method.set_lr_scale(lr_factor);
        let mut record = train_epoch(&context, model.as_mut(), method.as_mut(), &mut progress)?;
        record.learning_rate = Some(settings.optimizer_config().lr() * lr_factor);
        validate(&context, model.as_ref(), &mut record)?;
        let summary = describe_epoch(&record, &dataset.task_names());
        tracing::info!(
            "{label} seed {seed} epoch {}/{}: {summary}",
            epoch + 1,
            settings.epochs
        );
        if let Some(bar) = outputs.bar {
            bar.set_message(summary);
        }
        let stop = keep_epoch(&mut progress, record, settings, model.as_ref())?;
        tracking.epoch(&progress.history);
        if stop {
            tracing::info!(
                "{label} seed {seed}: validation loss has not improved for {} epochs; \
                 stopping after epoch {}",
                settings.early_stopping_patience.unwrap_or_default(),
                epoch + 1
            );
            break;
        }
        let every = settings.checkpoint_every;
        let done = progress.history.len();
        if let Some(target) = outputs.checkpoint.filter(|_| every > 0) {
            if done % every == 0 && done < settings.epochs {
                resume::save(
                    &target.resume_path(),
                    model.as_ref(),
                    method.as_ref(),
                    &mut progress,
                    run,
                )?;
            }
        }
    }
    let mut record = finish_run(
        model.as_mut(),
        dataset,
        settings,
        progress,
        outputs.checkpoint,
        &probes,
    )?;
    record.method = label.clone();
    record.seed = seed;
    record.seconds = start.elapsed().as_secs_f64();
    record.fingerprint = outputs.fingerprint.to_string();
    tracking.finish(&record);
    Ok(record)
}

/// The run's settings as the TensorBoard log shows them.
fn describe_run(label: &str, seed: u64, settings: &RunSettings) -> String {
    let settings = serde_json::to_string_pretty(settings).unwrap_or_default();
    format!("method {label}, seed {seed}\n{settings}")
}

type Started = (Box<dyn MultiTaskModel>, Box<dyn Method>, RunProgress);

/// A fresh model, method and progress for the run, or those of its resume file if it has one
/// that fits (one that does not is reported and the run starts afresh).
fn start_run(
    kind: MethodKind,
    settings: &RunSettings,
    dataset: &Dataset,
    device: &Device,
    run: RunIdentity<'_>,
    target: Option<&CheckpointTarget>,
) -> Result<Started> {
    let lens: Vec<usize> = match &dataset.patches {
        Some(p) => vec![p.per_epoch; dataset.tasks.len()],
        None => dataset.tasks.iter().map(|t| t.train.len).collect(),
    };
    let fresh = || -> Result<Started> {
        let rngs = RunRngs::new(run.seed);
        let model = build_model(kind, dataset, &settings.model, device, rngs.init_seed)?;
        let method = mtcool_optim::build(kind, model.as_ref(), &settings.method_options())?;
        let progress = RunProgress {
            rngs,
            samplers: lens.iter().map(|&n| Sampler::new(n)).collect(),
            history: Vec::with_capacity(settings.epochs),
            best: None,
            images: 0,
            train_seconds: 0.0,
        };
        Ok((model, method, progress))
    };
    let (model, mut method, progress) = fresh()?;
    let Some(target) = target else {
        return Ok((model, method, progress));
    };
    let path = target.resume_path();
    match resume::load(&path, model.as_ref(), method.as_mut(), run, &lens) {
        Ok(Some(resumed)) => {
            tracing::info!(
                "{} seed {}: resumed at epoch {} from {}",
                run.method,
                run.seed,
                resumed.history.len() + 1,
                path.display()
            );
            Ok((model, method, resumed))
        }
        Ok(None) => Ok((model, method, progress)),
        Err(e) => {
            tracing::warn!("cannot resume: {e}; starting the run from epoch 1");
            fresh()
        }
    }
}

/// One pass of training iterations; the record holds the training losses and clamp fractions.
fn train_epoch(
    context: &EpochContext<'_>,
    model: &mut dyn MultiTaskModel,
    method: &mut dyn Method,
    progress: &mut RunProgress,
) -> Result<EpochRecord> {
    let EpochContext {
        dataset, settings, ..
    } = *context;
    let n_tasks = dataset.tasks.len();
    let rngs = &mut progress.rngs;
    let patches = dataset.epoch_patches(&mut rngs.data)?;
    let train: Vec<&SplitTensors> = match &patches {
        Some(p) => p.iter().collect(),
        None => dataset.tasks.iter().map(|t| &t.train).collect(),
    };
    for s in &mut progress.samplers {
        s.reshuffle(&mut rngs.data);
    }
    model.set_training(true);
    let epoch_start = Instant::now();
    let iterations = iterations_per_epoch(dataset, settings.batch_size);
    let mut loss_sums = vec![0.0; n_tasks];
    let mut clamps = vec![(0.0, 0usize); n_tasks];
    let mut weights = WeightSums::new(n_tasks);
    for _ in 0..iterations {
        if crate::interrupt::requested() {
            return Err(TrainError::Interrupted);
        }
        let (batches, seen) = draw_batches(
            dataset,
            &train,
            &mut progress.samplers,
            settings.batch_size,
            &mut rngs.data,
            settings.horizontal_flip.then_some(&mut rngs.augment),
        )?;
        progress.images += seen;
        let report = method.step(&*model, &batches, &mut rngs.method)?;
        for (t, loss) in report.losses.iter().enumerate() {
            loss_sums[t] += loss;
        }
        for (t, c) in report.clamped_fraction.iter().enumerate() {
            if let Some(c) = c {
                clamps[t].0 += c;
                clamps[t].1 += 1;
            }
        }
        weights.add(report.task_weights.as_deref());
        if let Some(bar) = context.bar {
            bar.inc(1);
        }
    }
    let seconds = epoch_start.elapsed().as_secs_f64();
    progress.train_seconds += seconds;
    model.set_training(false);
    let mut record = EpochRecord {
        epoch: progress.history.len() + 1,
        seconds,
        train_loss: BTreeMap::new(),
        val: Metrics::new(),
        clamped_fraction: BTreeMap::new(),
        gradient_cosine: BTreeMap::new(),
        task_weights: weights.means(dataset.tasks.iter().map(|t| t.name.as_str())),
        learning_rate: None,
    };
    for (t, task) in dataset.tasks.iter().enumerate() {
        record
            .train_loss
            .insert(task.name.clone(), loss_sums[t] / iterations.max(1) as f64);
        if clamps[t].1 > 0 {
            record
                .clamped_fraction
                .insert(task.name.clone(), clamps[t].0 / clamps[t].1 as f64);
        }
    }
    Ok(record)
}

/// Running sums of the task weights the steps reported.
struct WeightSums {
    sums: Vec<f64>,
    steps: usize,
}

impl WeightSums {
    fn new(tasks: usize) -> Self {
        Self {
            sums: vec![0.0; tasks],
            steps: 0,
        }
    }

    /// Adds one step's weights (steps without weights, or with another count, are skipped).
    fn add(&mut self, weights: Option<&[f64]>) {
        if let Some(w) = weights.filter(|w| w.len() == self.sums.len()) {
            self.sums.iter_mut().zip(w).for_each(|(s, w)| *s += w);
            self.steps += 1;
        }
    }

    /// The mean weight per task, keyed by task name (empty when no step had weights).
    fn means<'a>(&self, names: impl Iterator<Item = &'a str>) -> BTreeMap<String, f64> {
        if self.steps == 0 {
            return BTreeMap::new();
        }
        names
            .zip(&self.sums)
            .map(|(n, s)| (n.to_string(), s / self.steps as f64))
            .collect()
    }
}

/// Adds the validation metrics and the gradient diagnostics of the epoch to `record`.
fn validate(
    context: &EpochContext<'_>,
    model: &dyn MultiTaskModel,
    record: &mut EpochRecord,
) -> Result<()> {
    let EpochContext {
        dataset,
        settings,
        probes,
        ..
    } = *context;
    let tasks = &dataset.tasks;
    if settings.diagnostics.gradient_conflict {
        for (a, b, cos) in gradient_cosines(model, probes)?.unwrap_or_default() {
            record
                .gradient_cosine
                .insert(format!("{}~{}", tasks[a].name, tasks[b].name), cos);
        }
    }
    for (t, task) in tasks.iter().enumerate() {
        if task.val.len > 0 {
            for (metric, value) in evaluate(model, dataset, t, &task.val)? {
                record.val.insert(format!("{}/{metric}", task.name), value);
            }
        }
    }
    Ok(())
}

/// Adds `record` to the history and, with early stopping, keeps the best epoch's weights
/// (parameters and buffers: BatchNorm's running statistics too). True when training stops.
fn keep_epoch(
    progress: &mut RunProgress,
    record: EpochRecord,
    settings: &RunSettings,
    model: &dyn MultiTaskModel,
) -> Result<bool> {
    let val_loss: f64 = record
        .val
        .iter()
        .filter(|(k, _)| k.ends_with("/loss"))
        .map(|(_, v)| v)
        .sum();
    let epoch = progress.history.len();
    progress.history.push(record);
    let Some(patience) = settings.early_stopping_patience else {
        return Ok(false);
    };
    match &progress.best {
        Some(best) if val_loss >= best.val_loss => Ok(epoch - best.epoch >= patience),
        _ => {
            let weights = mtcool_models::checkpoint::model_tensors(model, Path::new("best epoch"))?;
            progress.best = Some(BestEpoch {
                val_loss,
                epoch,
                weights,
            });
            Ok(false)
        }
    }
}

/// Restores the best epoch (early stopping), saves the checkpoints and scores the test split.
/// The record's identity (method, seed, time, fingerprint) is left for the caller.
fn finish_run(
    model: &mut dyn MultiTaskModel,
    dataset: &Dataset,
    settings: &RunSettings,
    mut progress: RunProgress,
    checkpoint: Option<&CheckpointTarget>,
    probes: &[(Tensor, Tensor)],
) -> Result<RunRecord> {
    let epochs = progress.history.len();
    let best_epoch = match progress.best.take() {
        Some(best) => {
            if let Some(target) = checkpoint {
                target.save(&*model, &target.last_path(), epochs)?;
            }
            mtcool_models::checkpoint::set_model(&*model, &best.weights, Path::new("best epoch"))?;
            Some(best.epoch + 1)
        }
        None => None,
    };
    model.set_training(false);
    if let Some(target) = checkpoint {
        target.save(&*model, &target.path, best_epoch.unwrap_or(epochs))?;
    }
    let metrics = split_metrics(&*model, dataset, |t| &t.test)?;
    let names = dataset.task_names();
    let flatness = flatness(
        &*model,
        &names,
        probes,
        &settings.diagnostics,
        &mut progress.rngs.diagnostics,
    )?;
    let train_seconds = progress.train_seconds;
    Ok(RunRecord {
        method: String::new(),
        seed: 0,
        seconds: 0.0,
        images_per_second: if train_seconds > 0.0 {
            progress.images as f64 / train_seconds
        } else {
            0.0
        },
        metrics,
        params: model.param_count(),
        fingerprint: String::new(),
        epochs,
        history: progress.history,
        best_epoch,
        flatness,
        device: String::new(),
        settings_fingerprint: String::new(),
        finished_unix: 0.0,
        checkpoint: checkpoint
            .and_then(|t| t.path.file_name().map(|n| n.to_string_lossy().into_owned())),
    })
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
