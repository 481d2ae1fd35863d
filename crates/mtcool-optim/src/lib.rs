//! How one training step turns task losses into parameter updates.
//!
//! Every method implements [`Method`]; [`build`] makes one from its [`MethodKind`] and
//! configuration. Methods see networks only through `mtcool_models::MultiTaskModel`, so any
//! method runs with any architecture.
//!
//! - [`Joint`]: Σ_t L_t (the Joint baseline; on an independent model, the Independent one);
//! - [`MtCool`]: MT-COOL and its ablations (w/o Reg, Vanilla);
//! - [`Sgd`]: SGD with momentum and weight decay.

pub mod error;
pub mod joint;
pub mod loss;
pub mod method;
pub mod mtcool;
pub mod sgd;

pub use error::{OptimError, Result};
pub use joint::Joint;
pub use method::{Method, MethodKind, StepReport, TaskBatch};
pub use mtcool::{MtCool, MtCoolConfig, Variant};
pub use sgd::{Sgd, SgdConfig};

use mtcool_models::MultiTaskModel;

/// Creates the method `kind` for `model` (whose sharing must be `kind.sharing()`).
pub fn build(
    kind: MethodKind,
    model: &dyn MultiTaskModel,
    sgd: SgdConfig,
    mtcool: MtCoolConfig,
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
    Ok(match kind {
        MethodKind::Joint | MethodKind::Independent => {
            Box::new(Joint::new(kind.name(), model, sgd))
        }
        MethodKind::Vanilla => Box::new(MtCool::new(model, Variant::Vanilla, mtcool, sgd)?),
        MethodKind::WoReg => Box::new(MtCool::new(model, Variant::WithoutReg, mtcool, sgd)?),
        MethodKind::MtCool => Box::new(MtCool::new(model, Variant::Full, mtcool, sgd)?),
    })
}
