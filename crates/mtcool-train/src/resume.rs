//! Resuming inside a run. Every `training.checkpoint_every` epochs a run writes
//! `runs/<run>-resume.safetensors`: the model's parameters and buffers (`model/…`), the
//! method's state (`method/…`: optimiser moments, learned loss scales), the best epoch's
//! weights under early stopping (`best/…`), each task sampler's order (`sampler/<t>`) and, in
//! the header, the history so far, the RNG streams' positions and the method's plain values.
//! A rerun of the same run (same fingerprint, method and seed) starts after the last saved
//! epoch and ends with the numbers of an uninterrupted run, bit for bit; the file is removed
//! once the run's result is written.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use mtcool_models::{checkpoint, MultiTaskModel};
use mtcool_optim::{Method, MethodState};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::Sampler;
use crate::error::{Result, TrainError};
use crate::results::EpochRecord;
use crate::run::RunRngs;

/// The metadata key holding [`ResumeMeta`] as JSON.
const RESUME_KEY: &str = "mtcool-resume";

/// The best epoch so far under early stopping: its summed validation loss, its index and its
/// weights (parameters and buffers, by name, on the host).
#[derive(Debug, Clone)]
pub struct BestEpoch {
    /// Summed validation loss.
    pub val_loss: f64,
    /// 0-based epoch.
    pub epoch: usize,
    /// The model's tensors after that epoch.
    pub weights: BTreeMap<String, Tensor>,
}

/// A run between two epochs: what the next epoch depends on besides the model and method.
pub struct RunProgress {
    /// The run's random streams.
    pub rngs: RunRngs,
    /// One mini-batch sampler per task.
    pub samplers: Vec<Sampler>,
    /// The finished epochs.
    pub history: Vec<EpochRecord>,
    /// The best epoch so far (early stopping only).
    pub best: Option<BestEpoch>,
    /// Training images seen.
    pub images: usize,
    /// Seconds spent in training iterations.
    pub train_seconds: f64,
}

/// Which run a resume file belongs to.
#[derive(Debug, Clone, Copy)]
pub struct RunIdentity<'a> {
    /// The run's settings fingerprint.
    pub fingerprint: &'a str,
    /// The grid row.
    pub method: &'a str,
    /// The seed.
    pub seed: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct ResumeMeta {
    fingerprint: String,
    method: String,
    seed: u64,
    history: Vec<EpochRecord>,
    best: Option<(f64, usize)>,
    images: usize,
    train_seconds: f64,
    /// Word positions of the data, method, diagnostics and augmentation streams (decimal).
    rng_words: [String; 4],
    sampler_positions: Vec<usize>,
    method_values: BTreeMap<String, serde_json::Value>,
}

fn problem(path: &Path, problem: impl Into<String>) -> TrainError {
    TrainError::Results {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

fn streams(rngs: &mut RunRngs) -> [&mut ChaCha8Rng; 4] {
    [
        &mut rngs.data,
        &mut rngs.method,
        &mut rngs.diagnostics,
        &mut rngs.augment,
    ]
}

/// Writes the state of `run` after its last finished epoch to `path`, atomically.
pub fn save(
    path: &Path,
    model: &dyn MultiTaskModel,
    method: &dyn Method,
    progress: &mut RunProgress,
    run: RunIdentity<'_>,
) -> Result<()> {
    let mut tensors = BTreeMap::new();
    for (name, t) in checkpoint::model_tensors(model, path)? {
        tensors.insert(format!("model/{name}"), t);
    }
    let state = method.state(model)?;
    for (name, t) in state.tensors() {
        tensors.insert(format!("method/{name}"), checkpoint::host_copy(t, path)?);
    }
    if let Some(best) = &progress.best {
        for (name, t) in &best.weights {
            tensors.insert(format!("best/{name}"), t.clone());
        }
    }
    for (t, sampler) in progress.samplers.iter().enumerate() {
        let order = sampler.state().0.to_vec();
        let len = order.len();
        tensors.insert(
            format!("sampler/{t}"),
            Tensor::from_vec(order, len, &Device::Cpu)?,
        );
    }
    let meta = ResumeMeta {
        fingerprint: run.fingerprint.to_string(),
        method: run.method.to_string(),
        seed: run.seed,
        history: progress.history.clone(),
        best: progress.best.as_ref().map(|b| (b.val_loss, b.epoch)),
        images: progress.images,
        train_seconds: progress.train_seconds,
        rng_words: streams(&mut progress.rngs).map(|r| r.get_word_pos().to_string()),
        sampler_positions: progress.samplers.iter().map(|s| s.state().1).collect(),
        method_values: state.values().clone(),
    };
    let text = serde_json::to_string(&meta).map_err(|e| problem(path, e.to_string()))?;
    let header = BTreeMap::from([(RESUME_KEY.to_string(), text)]);
    checkpoint::write_tensors(path, tensors, &header)?;
    Ok(())
}

/// The tensors under `prefix/`, with the prefix taken off.
fn under(tensors: &BTreeMap<String, Tensor>, prefix: &str) -> BTreeMap<String, Tensor> {
    let head = format!("{prefix}/");
    tensors
        .iter()
        .filter_map(|(n, t)| n.strip_prefix(&head).map(|n| (n.to_string(), t.clone())))
        .collect()
}

/// Restores `model`, `method` and the run's progress from the resume file at `path`, written
/// by the same run (`run`) with samplers over `sampler_lens` samples. `Ok(None)` when there is
/// no such file; an error when it exists but does not fit (then `model` and `method` may be
/// half restored: build them anew).
pub fn load(
    path: &Path,
    model: &dyn MultiTaskModel,
    method: &mut dyn Method,
    run: RunIdentity<'_>,
    sampler_lens: &[usize],
) -> Result<Option<RunProgress>> {
    if !path.exists() {
        return Ok(None);
    }
    let device = model
        .all_params()
        .first()
        .map_or(Device::Cpu, |v| v.device().clone());
    let (tensors, header) = checkpoint::read_tensors(path, &device)?;
    let text = header
        .get(RESUME_KEY)
        .ok_or_else(|| problem(path, format!("no `{RESUME_KEY}` metadata")))?;
    let meta: ResumeMeta =
        serde_json::from_str(text).map_err(|e| problem(path, format!("unreadable ({e})")))?;
    if meta.fingerprint != run.fingerprint || meta.method != run.method || meta.seed != run.seed {
        return Err(problem(
            path,
            "written by a run of other settings, method or seed",
        ));
    }
    let samplers = restore_samplers(path, &tensors, &meta, sampler_lens)?;
    let mut rngs = RunRngs::new(run.seed);
    for (rng, word) in streams(&mut rngs).into_iter().zip(&meta.rng_words) {
        let word: u128 = word
            .parse()
            .map_err(|_| problem(path, format!("bad RNG position `{word}`")))?;
        rng.set_word_pos(word);
    }
    let best = match meta.best {
        Some((val_loss, epoch)) => Some(BestEpoch {
            val_loss,
            epoch,
            weights: under(&tensors, "best")
                .into_iter()
                .map(|(n, t)| Ok((n, t.to_device(&Device::Cpu)?)))
                .collect::<Result<_>>()?,
        }),
        None => None,
    };
    checkpoint::set_model(model, &under(&tensors, "model"), path)?;
    method.restore(
        model,
        &MethodState::from_parts(under(&tensors, "method"), meta.method_values),
    )?;
    Ok(Some(RunProgress {
        rngs,
        samplers,
        history: meta.history,
        best,
        images: meta.images,
        train_seconds: meta.train_seconds,
    }))
}

fn restore_samplers(
    path: &Path,
    tensors: &BTreeMap<String, Tensor>,
    meta: &ResumeMeta,
    lens: &[usize],
) -> Result<Vec<Sampler>> {
    if meta.sampler_positions.len() != lens.len() {
        return Err(problem(path, "written for another number of tasks"));
    }
    lens.iter()
        .zip(&meta.sampler_positions)
        .enumerate()
        .map(|(t, (&len, &position))| {
            let order = tensors
                .get(&format!("sampler/{t}"))
                .ok_or_else(|| problem(path, format!("sampler {t} is missing")))?
                .to_dtype(DType::U32)?
                .to_vec1::<u32>()?;
            Sampler::restored(len, order, position)
                .ok_or_else(|| problem(path, format!("sampler {t} is of another training set")))
        })
        .collect()
}
