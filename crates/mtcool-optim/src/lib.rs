//! How one training step turns task losses into parameter updates.
//!
//! Every method implements [`Method`]; [`build`] makes one from its [`MethodKind`] and
//! configuration. Methods see networks only through `mtcool_models::MultiTaskModel`, so any
//! method runs with any architecture.
//!
//! - [`Joint`]: Σ_t L_t (the Joint baseline; on an independent model, the Independent one);
//! - [`MtCool`]: MT-COOL and its ablations (w/o Reg, Vanilla);
//! - [`baselines`]: the loss weightings ([`WeightedLoss`]: fixed, uncertainty, DWA, FAMO, RLW,
//!   GLS, STCH; one backward pass) and the gradient aggregators ([`GradientMethod`]: MGDA,
//!   PCGrad, CAGrad, IMTL, Nash-MTL, Aligned-MTL, UPGrad, DualProj, FairGrad, ConFIG, GradVac;
//!   one backward pass per task), plus GradDrop;
//! - [`aggregators`]: their maths as pure functions of the task-gradient Gramian;
//! - [`Optimizer`]: SGD with momentum and weight decay, or Adam; [`LrSchedule`] scales its
//!   rate per epoch.
//!
//! Every step reports the task weights it applied ([`StepReport::task_weights`]).
//!
//! # Adding a method
//!
//! Today a method touches several places (the single registry the crate is moving to does
//! not exist yet):
//!
//! 1. its maths, if it has any worth testing alone, as a pure function in
//!    `aggregators/<name>.rs` (Gramian or loss values in, weights out), with unit tests;
//! 2. its config (serde, the authors' defaults) and its [`Aggregator`] or [`Weighting`] in
//!    `baselines/<name>.rs`, and a field for the config in [`BaselineConfig`];
//! 3. a [`MethodKind`] variant, its entry in `MethodKind::ALL`, `name`, and
//!    `per_task_gradients` / `has_options` where they apply, and an arm in [`build`];
//! 4. its options in `mtcool-train`'s `RunSettings::fingerprint_json`;
//! 5. a row in `docs/baselines.md` and, if it trains MNIST well, in `experiments/mnist.toml`.
//!
//! The tests that loop over `MethodKind::ALL` (every method lowers the losses, resumes bit
//! for bit, is deterministic) then cover it; Gramian rules also belong in
//! `tests/aggregator_properties.rs`.

pub mod adam;
pub mod aggregators;
pub mod baselines;
pub mod error;
pub mod gradient_method;
mod gradients;
pub mod joint;
pub mod loss;
pub mod method;
pub mod mtcool;
pub mod optimizer;
pub mod schedule;
pub mod sgd;
pub mod state;
pub mod weighting_method;

pub use adam::AdamConfig;
pub use baselines::BaselineConfig;
pub use error::{OptimError, Result};
pub use gradient_method::{Aggregator, Combination, GradientMethod, Space};
pub use joint::Joint;
pub use method::{Method, MethodKind, StepReport, TaskBatch};
pub use mtcool::{MtCool, MtCoolConfig, Variant};
pub use optimizer::{Optimizer, OptimizerConfig, OptimizerKind};
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
    use baselines::*;
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
    let opt = options.optimizer;
    let b = &options.baselines;
    let tasks = model.num_tasks();
    let device = baselines::model_device(model);
    Ok(match kind {
        MethodKind::Joint | MethodKind::Independent => {
            Box::new(Joint::new(kind.name(), model, opt))
        }
        MethodKind::Vanilla => Box::new(MtCool::new(model, Variant::Vanilla, options.mtcool, opt)?),
        MethodKind::WoReg => Box::new(MtCool::new(
            model,
            Variant::WithoutReg,
            options.mtcool,
            opt,
        )?),
        MethodKind::MtCool => Box::new(MtCool::new(model, Variant::Full, options.mtcool, opt)?),
        MethodKind::Fixed => Box::new(WeightedLoss::new(
            fixed::Fixed::new(&b.fixed, tasks)?,
            model,
            opt,
        )),
        MethodKind::Uncertainty => Box::new(WeightedLoss::new(
            uncertainty::Uncertainty::new(&b.uncertainty, tasks, &device)?,
            model,
            opt,
        )),
        MethodKind::Dwa => Box::new(WeightedLoss::new(dwa::Dwa::new(&b.dwa, tasks), model, opt)),
        MethodKind::Famo => Box::new(WeightedLoss::new(
            famo::Famo::new(&b.famo, tasks),
            model,
            opt,
        )),
        MethodKind::Mgda => Box::new(GradientMethod::new(mgda::Mgda::new(&b.mgda), model, opt)),
        MethodKind::PcGrad => Box::new(GradientMethod::new(pcgrad::PcGrad, model, opt)),
        MethodKind::CaGrad => Box::new(GradientMethod::new(
            cagrad::CaGrad::new(&b.cagrad)?,
            model,
            opt,
        )),
        MethodKind::Imtl => Box::new(GradientMethod::new(
            imtl::Imtl::new(&b.imtl, tasks, &device)?,
            model,
            opt,
        )),
        MethodKind::NashMtl => Box::new(GradientMethod::new(
            nash::NashMtl::new(&b.nash_mtl)?,
            model,
            opt,
        )),
        MethodKind::AlignedMtl => Box::new(GradientMethod::new(
            aligned::AlignedMtl::new(&b.aligned_mtl, tasks)?,
            model,
            opt,
        )),
        MethodKind::GradDrop => Box::new(graddrop::GradDrop::new(&b.graddrop, model, opt)?),
        MethodKind::Rlw => Box::new(WeightedLoss::new(rlw::Rlw::new(tasks), model, opt)),
        MethodKind::Gls => Box::new(WeightedLoss::new(gls::Gls, model, opt)),
        MethodKind::Stch => Box::new(WeightedLoss::new(
            stch::Stch::new(&b.stch, tasks)?,
            model,
            opt,
        )),
        MethodKind::ConFig => Box::new(GradientMethod::new(con_fig::ConFig, model, opt)),
        MethodKind::GradVac => Box::new(GradientMethod::new(
            gradvac::GradVac::new(&b.gradvac, tasks)?,
            model,
            opt,
        )),
        MethodKind::UpGrad => Box::new(GradientMethod::new(
            upgrad::DualCone::new(upgrad::DualConeRule::UpGrad, &b.upgrad)?,
            model,
            opt,
        )),
        MethodKind::DualProj => Box::new(GradientMethod::new(
            upgrad::DualCone::new(upgrad::DualConeRule::DualProj, &b.dualproj)?,
            model,
            opt,
        )),
        MethodKind::FairGrad => Box::new(GradientMethod::new(
            fairgrad::FairGrad::new(&b.fairgrad)?,
            model,
            opt,
        )),
    })
}
