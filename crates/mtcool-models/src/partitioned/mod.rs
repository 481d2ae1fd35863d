//! Partitioned layers: each layer's output channels split between tasks.
//!
//! Task *i* owns slice *i* of the layer's weight and bias (its own [`Var`]s); the layer's output
//! is the concatenation of all slices' outputs, so every task reads every task's features
//! (MT-COOL's partitioned encoder). With a single [`Owner::Shared`] slice the layer is an
//! ordinary shared layer.
//!
//! A forward pass sees the slices through a [`SliceView`]: which task's slices carry
//! gradients (the others are detached, so `backward` produces gradients for that task only),
//! and optional additive noise on the others (MT-COOL's perturbations).

mod batch_norm;
mod block;
mod conv;
mod linear;

use std::collections::HashMap;

use candle_core::{Result, Tensor, TensorId, Var};

use crate::ParamBuilder;

pub use batch_norm::PartitionedBatchNorm2d;
pub use block::{ConvBlock, ConvBnRelu, UpBlock};
pub use conv::PartitionedConv2d;
pub use linear::PartitionedLinear;

/// Who owns a slice of a partitioned layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Owned by no task: trained by every task's loss (hard sharing).
    Shared,
    /// Owned by task `t`.
    Task(usize),
}

impl Owner {
    /// The owners of an n-way partition (`n = 1` gives one shared slice).
    pub fn partition(n: usize) -> Vec<Owner> {
        if n <= 1 {
            vec![Owner::Shared]
        } else {
            (0..n).map(Owner::Task).collect()
        }
    }

    /// Name of the slice in parameter paths: `shared` or `task{t}`.
    pub fn name(&self) -> String {
        match self {
            Owner::Shared => "shared".into(),
            Owner::Task(t) => format!("task{t}"),
        }
    }
}

/// Additive perturbations of parameters, keyed by the id of the perturbed [`Var`].
pub type NoiseMap = HashMap<TensorId, Tensor>;

/// How a forward pass sees the parameters: which task trains, and which noise others carry.
#[derive(Debug, Clone, Copy, Default)]
pub struct SliceView<'a> {
    active: Option<usize>,
    noise: Option<&'a NoiseMap>,
}

impl<'a> SliceView<'a> {
    /// Every parameter carries gradients (joint training).
    pub fn all() -> Self {
        Self::default()
    }

    /// Only parameters owned by `task` carry gradients; every other one is detached.
    pub fn task(task: usize) -> Self {
        Self {
            active: Some(task),
            noise: None,
        }
    }

    /// The same view with `noise` added to the parameters it has entries for.
    pub fn with_noise(self, noise: &'a NoiseMap) -> Self {
        Self {
            noise: Some(noise),
            ..self
        }
    }

    /// The task whose parameters train, if the view restricts training to one.
    pub fn active(&self) -> Option<usize> {
        self.active
    }

    /// Whether the view adds noise to some parameters (MT-COOL's perturbed passes; BatchNorm
    /// layers update their running statistics only in passes without noise).
    pub fn is_noisy(&self) -> bool {
        self.noise.is_some_and(|n| !n.is_empty())
    }

    /// Whether a parameter owned by `owner` carries gradients in this view.
    pub fn trains(&self, owner: Owner) -> bool {
        match self.active {
            None => true,
            Some(t) => owner == Owner::Task(t),
        }
    }

    /// The tensor a forward pass uses for `var`, owned by `owner`.
    pub fn resolve(&self, owner: Owner, var: &Var) -> Result<Tensor> {
        let base = if self.trains(owner) {
            var.as_tensor().clone()
        } else {
            var.as_tensor().detach()
        };
        match self.noise.and_then(|n| n.get(&var.id())) {
            Some(eps) => base.add(eps),
            None => Ok(base),
        }
    }
}

/// Splits `total` units between `parts` owners as evenly as possible (earlier ones get the
/// remainder).
pub(crate) fn split_sizes(total: usize, parts: usize) -> Vec<usize> {
    (0..parts)
        .map(|i| total / parts + usize::from(i < total % parts))
        .collect()
}

/// One owner's slice of a partitioned layer.
#[derive(Debug, Clone)]
pub(crate) struct Slice {
    pub owner: Owner,
    pub weight: Var,
    pub bias: Var,
}

/// Slices of a layer with weight `(out, rest...)` and bias `(out,)` whose initial values are
/// drawn for the whole layer first (weight, then bias) and then cut along the output dimension:
/// for one seed, every partition of the layer starts as the same function as the shared layer.
/// Parameters are named `<prefix>.<owner>.weight|bias`.
pub(crate) fn slices_from_full(
    pb: &ParamBuilder,
    owners: &[Owner],
    out: usize,
    rest: &[usize],
    bound: f64,
) -> Result<Vec<Slice>> {
    if owners.is_empty() || owners.len() > out {
        crate::fail!(
            "cannot split {out} channels between {} owners",
            owners.len()
        );
    }
    let per_unit: usize = rest.iter().product();
    let weights = pb.draw_uniform("weight", out * per_unit, bound)?;
    let biases = pb.draw_uniform("bias", out, bound)?;
    let mut start = 0;
    owners
        .iter()
        .zip(split_sizes(out, owners.len()))
        .map(|(&owner, c)| {
            let p = pb.pp(owner.name());
            let mut shape = vec![c];
            shape.extend_from_slice(rest);
            let w = weights[start * per_unit..(start + c) * per_unit].to_vec();
            let b = biases[start..start + c].to_vec();
            start += c;
            Ok(Slice {
                owner,
                weight: p.parameter("weight", w, shape.into())?,
                bias: p.parameter("bias", b, c.into())?,
            })
        })
        .collect()
}

/// Concatenates the slices' weights and biases along the output dimension as `view` sees them.
pub(crate) fn materialise(slices: &[Slice], view: &SliceView) -> Result<(Tensor, Tensor)> {
    if let [only] = slices {
        return Ok((
            view.resolve(only.owner, &only.weight)?,
            view.resolve(only.owner, &only.bias)?,
        ));
    }
    let mut weights = Vec::with_capacity(slices.len());
    let mut biases = Vec::with_capacity(slices.len());
    for s in slices {
        weights.push(view.resolve(s.owner, &s.weight)?);
        biases.push(view.resolve(s.owner, &s.bias)?);
    }
    Ok((Tensor::cat(&weights, 0)?, Tensor::cat(&biases, 0)?))
}

/// The parameters of the slices owned by `owner`.
pub(crate) fn owned(slices: &[Slice], owner: Owner) -> Vec<Var> {
    slices
        .iter()
        .filter(|s| s.owner == owner)
        .flat_map(|s| [s.weight.clone(), s.bias.clone()])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_split_evenly() {
        assert_eq!(split_sizes(10, 2), vec![5, 5]);
        assert_eq!(split_sizes(7, 3), vec![3, 2, 2]);
        assert_eq!(split_sizes(5, 1), vec![5]);
    }
}
