//! Every method but Joint and MT-COOL, one file each: its serde config (whose `Default` is
//! the authors' setting), its rule as pure `f64` maths on the task-gradient Gramian or the
//! losses (unit-tested alone), and its adapter to the training step, one of two skeletons:
//!
//! - loss weightings ([`crate::weighting_method::Weighting`], one backward pass):
//!   [`fixed`], [`uncertainty`], [`dwa`], [`famo`], [`rlw`], [`gls`], [`stch`];
//! - gradient aggregators ([`crate::gradient_method::Aggregator`], one backward pass per
//!   task): [`mgda`], [`pcgrad`], [`cagrad`], [`imtl`], [`nash`], [`aligned`], [`upgrad`]
//!   (whose adapter also serves [`dualproj`]; both project onto the cone of [`dual_cone`]),
//!   [`fairgrad`], [`con_fig`], [`gradvac`], [`gradnorm`] (learned loss scales from the
//!   gradient norms), [`excess_mtl`], [`db_mtl`] and [`moco`] (the last three keep
//!   per-task statistics of the gradients between steps);
//! - three-sample methods ([`crate::sampled_method::SampledRule`]): [`sdmgrad`], [`modo`];
//! - [`graddrop`], which masks the gradient w.r.t. the shared representation element-wise.
//!
//! Each is listed once in the [`registry`](crate::registry). The pure rules are also
//! reachable as [`crate::aggregators`]`::<name>`; the update rules and defaults follow
//! `docs/baselines.md`.

pub mod aligned;
pub mod cagrad;
pub mod con_fig;
pub mod db_mtl;
pub mod dual_cone;
pub mod dualproj;
pub mod dwa;
pub mod excess_mtl;
pub mod fairgrad;
pub mod famo;
pub mod fixed;
pub mod gls;
pub mod graddrop;
pub mod gradnorm;
pub mod gradvac;
pub mod imtl;
pub mod mgda;
pub mod moco;
pub mod modo;
pub mod nash;
pub mod pcgrad;
pub mod rlw;
pub mod sdmgrad;
pub mod stch;
pub mod uncertainty;
pub mod upgrad;

/// Fails unless a resume file saved `saved` values of `what` for the `tasks` tasks of this
/// run.
pub(crate) fn check_saved_len(
    method: &'static str,
    what: &str,
    saved: usize,
    tasks: usize,
) -> crate::Result<()> {
    if saved == tasks {
        return Ok(());
    }
    Err(crate::aggregators::fail(
        method,
        format!("the resume state has {saved} {what} for {tasks} tasks"),
    ))
}

/// The device of a model's parameters.
pub(crate) fn model_device(model: &dyn mtcool_models::MultiTaskModel) -> candle_core::Device {
    model
        .all_params()
        .first()
        .map_or(candle_core::Device::Cpu, |v| v.device().clone())
}

/// One weight per task from `weights`, or `default` for every task when it is empty.
pub(crate) fn per_task(
    method: &str,
    what: &str,
    weights: &[f64],
    tasks: usize,
    default: f64,
) -> crate::Result<Vec<f64>> {
    if weights.is_empty() {
        return Ok(vec![default; tasks]);
    }
    if weights.len() != tasks || weights.iter().any(|w| !w.is_finite()) {
        return Err(crate::OptimError::Config {
            method: method.into(),
            problem: format!("{what} needs {tasks} finite numbers, got {weights:?}"),
        });
    }
    Ok(weights.to_vec())
}
