//! How one training step turns task losses into parameter updates.
//!
//! Every method implements [`Method`]; [`build`] makes one from its [`MethodKind`] and
//! configuration. Methods see networks only through `mtcool_models::MultiTaskModel`, so any
//! method runs with any architecture.
//!
//! - [`Joint`]: Σ_t L_t (the Joint baseline; on an independent model, the Independent one);
//! - [`MtCool`]: MT-COOL and its ablations (w/o Reg, Vanilla);
//! - [`methods`]: one file per baseline method: the loss weightings ([`WeightedLoss`]: fixed, uncertainty, DWA, FAMO, RLW,
//!   GLS, STCH; one backward pass) and the gradient aggregators ([`GradientMethod`]: MGDA,
//!   PCGrad, CAGrad, IMTL, Nash-MTL, Aligned-MTL, UPGrad, DualProj, FairGrad, ConFIG, GradVac,
//!   GradNorm, ExcessMTL, DB-MTL, MoCo; one backward pass per task), the three-sample methods
//!   ([`sampled_method`]: SDMGrad, MoDo), plus GradDrop;
//! - [`aggregators`]: their maths as pure functions of the task-gradient Gramian (each
//!   re-exported from its method's file);
//! - [`Optimizer`]: SGD with momentum and weight decay, or Adam; [`LrSchedule`] scales its
//!   rate per epoch.
//!
//! Every step reports the task weights it applied ([`StepReport::task_weights`]).
//!
//! # Adding a method
//!
//! 1. Its file, `methods/<name>.rs` (and a `pub mod` line in `methods/mod.rs`): its config
//!    (serde, `Default` = the authors' setting), its rule as a pure function of the Gramian
//!    or the losses, its [`Aggregator`] or [`Weighting`], and unit tests beside them. A
//!    Gramian rule is also re-exported in `aggregators/mod.rs`.
//! 2. One line in the [`registry`]: variant, name, sharing, whether it needs per-task
//!    gradients, its config field and type, and how to build it. [`MethodKind`] (with `ALL`
//!    and parsing), [`BaselineConfig`] (`[baselines.<name>]`), [`build`], grid-row variants
//!    (`<name>[key = value]`) and the options part of run fingerprints
//!    ([`registry::options_json`]) follow from it.
//! 3. A row in `docs/baselines.md` and, if it trains MNIST well, in `experiments/mnist.toml`.
//!
//! The tests that loop over `MethodKind::ALL` (every method lowers the losses, resumes bit
//! for bit, is deterministic) then cover it; Gramian rules also belong in
//! `tests/aggregator_properties.rs`.

pub mod adam;
pub mod aggregators;
pub mod error;
pub mod gradient_method;
mod gradients;
pub mod joint;
pub mod loss;
pub mod method;
pub mod methods;
pub mod mtcool;
pub mod optimizer;
pub mod registry;
pub mod sampled_method;
pub mod schedule;
pub mod sgd;
pub mod state;
pub mod weighting_method;

pub use adam::AdamConfig;
pub use error::{OptimError, Result};
pub use gradient_method::{Aggregator, Combination, GradientMethod, Space};
pub use joint::Joint;
pub use method::{Method, MethodKind, StepReport, TaskBatch};
pub use mtcool::{Alternation, MtCool, MtCoolConfig, NoiseScale, Variant};
pub use optimizer::{Optimizer, OptimizerConfig, OptimizerKind};
pub use registry::BaselineConfig;
pub use schedule::LrSchedule;
pub use sgd::SgdConfig;
pub use state::{MethodState, VarNames};
pub use weighting_method::{WeightedLoss, Weighting};

use mtcool_models::MultiTaskModel;

/// Options of every method, as an experiment config gives them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MethodOptions {
    /// The optimiser and its hyper-parameters (all methods).
    pub optimizer: OptimizerConfig,
    /// MT-COOL and its ablations.
    pub mtcool: MtCoolConfig,
    /// The baselines.
    pub baselines: BaselineConfig,
}

/// Creates the method `kind` for `model` (whose sharing must be `kind.sharing()`).
pub fn build(
    kind: MethodKind,
    model: &dyn MultiTaskModel,
    options: &MethodOptions,
) -> Result<Box<dyn Method>> {
    if model.sharing() != kind.sharing() {
        return Err(OptimError::Config {
            method: kind.name().into(),
            problem: format!(
                "needs a {} model, got a {} one",
                kind.sharing(),
                model.sharing()
            ),
        });
    }
    registry::build_kind(kind, model, options)
}
