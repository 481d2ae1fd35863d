//! Training and orchestration for mtcool: experiment configs, the epoch loop, evaluation,
//! the resumable experiment grid and its results files.
//!
//! Data flows config → [`data`] (files to device tensors) → `mtcool-models` → `mtcool-optim`
//! → [`evaluate`] (through `mtcool-metrics`) → [`results`].

pub mod augment;
pub mod checkpoint;
pub mod cli;
pub mod command;
pub mod config;
pub mod data;
pub mod diagnostics;
pub mod error;
pub mod evaluate;
pub mod grid;
pub mod interrupt;
pub mod predict;
pub mod progress;
pub mod results;
pub mod resume;
pub mod run;
pub mod slurm;
pub mod table;
pub mod tracking;

pub use config::{ExperimentConfig, Overrides, RunSettings};
pub use error::{Result, TrainError};
pub use grid::{
    parse_device, parse_devices, run_grid, run_one, GridPlan, GridReport, GridRequest, Parallel,
    RunOutcome, WorkerCommand,
};
pub use mtcool_optim::MethodKind;
