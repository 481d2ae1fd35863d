//! Checkpoints: every parameter and buffer of a [`MultiTaskModel`] in one safetensors file.
//!
//! Tensor names are the model's own (`encoder.down1.conv1.task0.weight`,
//! `decoder.up2.bn1.task1.running_mean`, ...): parameters from
//! [`MultiTaskModel::vars`], running statistics from [`MultiTaskModel::buffers`].
//!
//! - [`save`] writes atomically (a temporary file in the same folder, synced, then renamed), so
//!   an interrupted run never leaves a half-written checkpoint under the final name.
//! - [`load`] checks the whole file against the model before changing anything: a missing or
//!   unexpected tensor, or one of another shape, is a one-line [`CheckpointError`] naming the
//!   tensor (and both shapes), and the model is left as it was.
//!
//! Unlike candle's `VarMap::save` / `VarMap::load`, which this replaces for models: `load`
//! there memory-maps the file, stops at the first mismatch after having overwritten the
//! variables before it, reports a wrong shape as candle's generic "shape mismatch in set"
//! without the file, and ignores tensors the model lacks; `save` writes in place and panics
//! (inside safetensors' serialisation) where a tensor cannot be copied to the host.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use candle_core::Device;
//! use mtcool_models::{checkpoint, LeNetMt, MultiTaskModel, Sharing};
//! let dir = std::env::temp_dir().join(format!("mtcool-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("lenet.safetensors");
//! let a = LeNetMt::new(&Device::Cpu, Sharing::Partitioned, &[5, 5], 1)?;
//! let b = LeNetMt::new(&Device::Cpu, Sharing::Partitioned, &[5, 5], 2)?;
//! checkpoint::save(&a, &path)?;
//! checkpoint::load(&b, &path)?; // b now holds a's weights
//! let wrong = LeNetMt::new(&Device::Cpu, Sharing::Partitioned, &[5, 4], 0)?;
//! let err = checkpoint::load(&wrong, &path).unwrap_err().to_string();
//! assert!(err.contains("`heads.task1.bias` has shape [5] in the file but [4]"), "{err}");
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::{Device, Tensor, Var};

use crate::model::MultiTaskModel;

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading, writing or renaming the file failed.
    #[error("checkpoint {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a readable safetensors file.
    #[error("checkpoint {path}: not a safetensors checkpoint ({message})")]
    Format {
        /// The file.
        path: PathBuf,
        /// What the safetensors reader said.
        message: String,
    },
    /// The model has a tensor the file lacks.
    #[error("checkpoint {path}: tensor `{name}` is missing (the file was written by a model of another shape)")]
    Missing {
        /// The tensor.
        name: String,
        /// The file.
        path: PathBuf,
    },
    /// The file has a tensor the model lacks.
    #[error("checkpoint {path}: tensor `{name}` does not exist in this model (the file was written by a model of another shape)")]
    Unexpected {
        /// The tensor.
        name: String,
        /// The file.
        path: PathBuf,
    },
    /// A tensor's shape in the file differs from the model's.
    #[error("checkpoint {path}: tensor `{name}` has shape {found:?} in the file but {expected:?} in the model")]
    Shape {
        /// The tensor.
        name: String,
        /// Its shape in the model.
        expected: Vec<usize>,
        /// Its shape in the file.
        found: Vec<usize>,
        /// The file.
        path: PathBuf,
    },
    /// A parameter and a buffer of the model share a name.
    #[error("checkpoint {path}: the model has two tensors named `{name}`")]
    Duplicate {
        /// The tensor.
        name: String,
        /// The file.
        path: PathBuf,
    },
    /// A tensor operation failed (copying to or from the device).
    #[error("checkpoint {path}: {}", first_line(source))]
    Tensor {
        /// The file.
        path: PathBuf,
        /// The candle error.
        source: candle_core::Error,
    },
}

/// The first line of an error's message (candle appends a backtrace when `RUST_BACKTRACE` is
/// set; these errors stay one line).
fn first_line(e: &dyn std::fmt::Display) -> String {
    let text = e.to_string();
    text.lines()
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_string()
}

/// Tensors by name.
pub type NamedTensors = BTreeMap<String, Tensor>;

/// A safetensors header's string metadata.
pub type Metadata = BTreeMap<String, String>;

/// Distinguishes the temporary files of saves running at the same time in one process.
static SAVES: AtomicUsize = AtomicUsize::new(0);

/// Every named tensor of the model: parameters, then buffers (sorted by name).
fn named_vars<M: MultiTaskModel + ?Sized>(
    model: &M,
    path: &Path,
) -> Result<BTreeMap<String, Var>, CheckpointError> {
    let mut all = BTreeMap::new();
    let stores = std::iter::once(model.vars()).chain(model.buffers());
    for store in stores {
        let data = store.data().lock().map_err(|_| CheckpointError::Tensor {
            path: path.to_path_buf(),
            source: candle_core::Error::Msg("parameter store poisoned".into()),
        })?;
        for (name, var) in data.iter() {
            if all.insert(name.clone(), var.clone()).is_some() {
                return Err(CheckpointError::Duplicate {
                    name: name.clone(),
                    path: path.to_path_buf(),
                });
            }
        }
    }
    Ok(all)
}

/// Writes every parameter and buffer of `model` to `path` (safetensors), atomically.
pub fn save<M: MultiTaskModel + ?Sized>(model: &M, path: &Path) -> Result<(), CheckpointError> {
    save_with_metadata(model, path, &BTreeMap::new())
}

/// [`save`], with `metadata` in the file's header (safetensors' `__metadata__` string map:
/// what made the model, for a reader to rebuild it).
pub fn save_with_metadata<M: MultiTaskModel + ?Sized>(
    model: &M,
    path: &Path,
    metadata: &BTreeMap<String, String>,
) -> Result<(), CheckpointError> {
    write_tensors(path, model_tensors(model, path)?, metadata)
}

/// Host copies of every parameter and buffer of `model`, by name (`path` names the file they
/// are for in errors).
pub fn model_tensors<M: MultiTaskModel + ?Sized>(
    model: &M,
    path: &Path,
) -> Result<BTreeMap<String, Tensor>, CheckpointError> {
    let mut tensors = BTreeMap::new();
    for (name, var) in named_vars(model, path)? {
        tensors.insert(name, host_copy(var.as_tensor(), path)?);
    }
    Ok(tensors)
}

/// A contiguous copy of `tensor` on the host, without autograd history, in storage of its own
/// (a variable's later in-place updates do not reach it).
pub fn host_copy(tensor: &Tensor, path: &Path) -> Result<Tensor, CheckpointError> {
    tensor
        .detach()
        .to_device(&Device::Cpu)
        .and_then(|t| t.contiguous())
        .and_then(|t| t.copy())
        .map_err(|source| CheckpointError::Tensor {
            path: path.to_path_buf(),
            source,
        })
}

/// Writes named host tensors and `metadata` to `path` as safetensors, atomically (a temporary
/// file in the same folder, synced, then renamed).
pub fn write_tensors(
    path: &Path,
    tensors: BTreeMap<String, Tensor>,
    metadata: &BTreeMap<String, String>,
) -> Result<(), CheckpointError> {
    let io_err = |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "checkpoint".into());
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(
        ".{file_name}.tmp-{}-{}",
        std::process::id(),
        SAVES.fetch_add(1, Ordering::Relaxed)
    ));
    let info: Option<HashMap<String, String>> = (!metadata.is_empty()).then(|| {
        metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    });
    let bytes = safetensors::serialize(tensors, info).map_err(|e| CheckpointError::Format {
        path: path.to_path_buf(),
        message: first_line(&e),
    })?;
    let written = std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::File::open(&tmp))
        .and_then(|f| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(io_err);
    if written.is_err() {
        // Best effort: the temporary file is ours and useless now.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The metadata of the checkpoint at `path` (empty when it has none).
pub fn read_metadata(path: &Path) -> Result<BTreeMap<String, String>, CheckpointError> {
    let bytes = read_file(path)?;
    header_metadata(&bytes, path)
}

fn read_file(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    std::fs::read(path).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn header_metadata(bytes: &[u8], path: &Path) -> Result<BTreeMap<String, String>, CheckpointError> {
    let (_, header) =
        safetensors::SafeTensors::read_metadata(bytes).map_err(|e| CheckpointError::Format {
            path: path.to_path_buf(),
            message: first_line(&e),
        })?;
    Ok(header
        .metadata()
        .as_ref()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default())
}

/// Every tensor of the safetensors file at `path`, on `device`, and its metadata.
pub fn read_tensors(
    path: &Path,
    device: &Device,
) -> Result<(NamedTensors, Metadata), CheckpointError> {
    let bytes = read_file(path)?;
    let metadata = header_metadata(&bytes, path)?;
    let file = candle_core::safetensors::SliceSafetensors::new(&bytes).map_err(|e| {
        CheckpointError::Format {
            path: path.to_path_buf(),
            message: first_line(&e),
        }
    })?;
    let mut tensors = BTreeMap::new();
    for (name, view) in file.tensors() {
        let value = candle_core::safetensors::Load::load(&view, device).map_err(|source| {
            CheckpointError::Tensor {
                path: path.to_path_buf(),
                source,
            }
        })?;
        tensors.insert(name, value);
    }
    Ok((tensors, metadata))
}

/// Sets every parameter and buffer of `model` from the checkpoint at `path`. The file must hold
/// exactly the model's tensors with the model's shapes; otherwise nothing is changed.
pub fn load<M: MultiTaskModel + ?Sized>(model: &M, path: &Path) -> Result<(), CheckpointError> {
    let device = named_vars(model, path)?
        .values()
        .next()
        .map_or(Device::Cpu, |v| v.device().clone());
    let (tensors, _) = read_tensors(path, &device)?;
    set_model(model, &tensors, path)
}

/// Sets every parameter and buffer of `model` from `tensors` (read from `path`), which must
/// hold exactly the model's tensors with the model's shapes; otherwise nothing is changed.
pub fn set_model<M: MultiTaskModel + ?Sized>(
    model: &M,
    tensors: &BTreeMap<String, Tensor>,
    path: &Path,
) -> Result<(), CheckpointError> {
    let vars = named_vars(model, path)?;
    if let Some(extra) = tensors.keys().find(|n| !vars.contains_key(*n)) {
        return Err(CheckpointError::Unexpected {
            name: extra.clone(),
            path: path.to_path_buf(),
        });
    }
    // Check everything first, so that a bad file leaves the model untouched.
    let mut values = Vec::with_capacity(vars.len());
    for (name, var) in &vars {
        let value = tensors.get(name).ok_or_else(|| CheckpointError::Missing {
            name: name.clone(),
            path: path.to_path_buf(),
        })?;
        if value.dims() != var.dims() {
            return Err(CheckpointError::Shape {
                name: name.clone(),
                expected: var.dims().to_vec(),
                found: value.dims().to_vec(),
                path: path.to_path_buf(),
            });
        }
        let value = value
            .to_device(var.device())
            .and_then(|t| t.to_dtype(var.dtype()))
            .map_err(|source| CheckpointError::Tensor {
                path: path.to_path_buf(),
                source,
            })?;
        values.push((var, value));
    }
    for (var, value) in values {
        var.set(&value).map_err(|source| CheckpointError::Tensor {
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}
