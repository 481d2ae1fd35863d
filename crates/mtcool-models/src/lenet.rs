//! LeNet-MT: the multi-task LeNet of MT-COOL's MNIST experiment (paper Table 1).
//!
//! Encoder: conv 1→10 (k5) → max-pool 2 → ReLU → conv 10→20 (k5) → max-pool 2 → ReLU →
//! flatten (320) → linear 320→50 → ReLU. Each task has its own head, linear 50→k_t.
//! Input `(N, 1, 28, 28)`, output of task t `(N, k_t)` logits.
//!
//! [`LeNetMt::multi_lenet`] is Sener & Koltun's MultiLeNet (MultiMNIST): the same encoder,
//! and heads linear 50→50 → ReLU → linear 50→k_t.
//!
//! ```
//! # fn main() -> candle_core::Result<()> {
//! use candle_core::{DType, Device, Tensor};
//! use mtcool_models::{LeNetMt, MultiTaskModel, Sharing, SliceView};
//! let net = LeNetMt::new(&Device::Cpu, Sharing::Partitioned, &[5, 5], 0)?;
//! let x = Tensor::zeros((8, 1, 28, 28), DType::F32, &Device::Cpu)?;
//! assert_eq!(net.forward_task(&x, 1, &SliceView::all())?.dims(), &[8, 5]);
//! assert_eq!(net.param_count(), 21_840);
//! # Ok(()) }
//! ```

use candle_core::{Device, Result, Tensor, Var};
use candle_nn::VarMap;

use crate::model::{MultiTaskModel, Sharing};
use crate::ops::{self, OpsBackend};
use crate::partitioned::{Owner, PartitionedConv2d, PartitionedLinear, SliceView};
use crate::ParamBuilder;

/// The LeNet feature extractor, its layers partitioned between `owners`.
#[derive(Debug, Clone)]
struct Encoder {
    conv1: PartitionedConv2d,
    conv2: PartitionedConv2d,
    fc1: PartitionedLinear,
    ops: OpsBackend,
}

impl Encoder {
    fn new(pb: &ParamBuilder, owners: &[Owner]) -> Result<Self> {
        Ok(Self {
            conv1: PartitionedConv2d::new(&pb.pp("conv1"), 1, 10, 5, 0, owners)?,
            conv2: PartitionedConv2d::new(&pb.pp("conv2"), 10, 20, 5, 0, owners)?,
            fc1: PartitionedLinear::new(&pb.pp("fc1"), 320, 50, owners)?,
            ops: OpsBackend::default(),
        })
    }

    fn with_ops(self, ops: OpsBackend) -> Self {
        Self {
            conv1: self.conv1.with_ops(ops),
            conv2: self.conv2.with_ops(ops),
            ops,
            ..self
        }
    }

    fn forward(&self, x: &Tensor, view: &SliceView) -> Result<Tensor> {
        let x = ops::max_pool2d(&self.conv1.forward(x, view)?, 2, self.ops)?.relu()?;
        let x = ops::max_pool2d(&self.conv2.forward(&x, view)?, 2, self.ops)?.relu()?;
        self.fc1.forward(&x.flatten_from(1)?, view)?.relu()
    }

    fn params_of(&self, owner: Owner) -> Vec<Var> {
        let mut vars = self.conv1.params_of(owner);
        vars.extend(self.conv2.params_of(owner));
        vars.extend(self.fc1.params_of(owner));
        vars
    }
}

/// A task's head: linear 50→k, or (MultiLeNet) linear 50→h → ReLU → linear h→k.
#[derive(Debug, Clone)]
struct Head {
    hidden: Option<PartitionedLinear>,
    out: PartitionedLinear,
}

impl Head {
    fn new(pb: &ParamBuilder, task: usize, classes: usize, hidden: Option<usize>) -> Result<Self> {
        let owner = [Owner::Task(task)];
        let heads = pb.pp("heads");
        Ok(match hidden {
            None => Self {
                hidden: None,
                out: PartitionedLinear::new(&heads, FEATURES, classes, &owner)?,
            },
            Some(h) => Self {
                hidden: Some(PartitionedLinear::new(
                    &heads.pp("hidden"),
                    FEATURES,
                    h,
                    &owner,
                )?),
                out: PartitionedLinear::new(&heads.pp("out"), h, classes, &owner)?,
            },
        })
    }

    fn forward(&self, z: &Tensor, view: &SliceView) -> Result<Tensor> {
        match &self.hidden {
            Some(hidden) => self.out.forward(&hidden.forward(z, view)?.relu()?, view),
            None => self.out.forward(z, view),
        }
    }

    fn params_of(&self, owner: Owner) -> Vec<Var> {
        let mut vars = self
            .hidden
            .as_ref()
            .map(|h| h.params_of(owner))
            .unwrap_or_default();
        vars.extend(self.out.params_of(owner));
        vars
    }
}

/// Multi-task LeNet in one of the three sharing modes.
#[derive(Clone)]
pub struct LeNetMt {
    sharing: Sharing,
    /// One encoder, or one per task when independent.
    encoders: Vec<Encoder>,
    heads: Vec<Head>,
    vars: VarMap,
}

/// Width of the encoder's output.
pub const FEATURES: usize = 50;

impl std::fmt::Debug for LeNetMt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeNetMt")
            .field("sharing", &self.sharing)
            .field("encoders", &self.encoders)
            .field("heads", &self.heads)
            .finish_non_exhaustive()
    }
}

impl LeNetMt {
    /// Builds the network for tasks with `classes[t]` classes each; the initial weights are
    /// drawn from a generator seeded with `seed`.
    pub fn new(device: &Device, sharing: Sharing, classes: &[usize], seed: u64) -> Result<Self> {
        Self::build(device, sharing, classes, None, seed)
    }

    /// MultiLeNet (Sener & Koltun, 2018): LeNet-MT's encoder with heads 50→50 → ReLU → 50→k_t.
    pub fn multi_lenet(
        device: &Device,
        sharing: Sharing,
        classes: &[usize],
        seed: u64,
    ) -> Result<Self> {
        Self::build(device, sharing, classes, Some(FEATURES), seed)
    }

    fn build(
        device: &Device,
        sharing: Sharing,
        classes: &[usize],
        hidden: Option<usize>,
        seed: u64,
    ) -> Result<Self> {
        let vars = VarMap::new();
        let pb = ParamBuilder::new(vars.clone(), device, seed);
        let n = classes.len();
        if n == 0 {
            candle_core::bail!("LeNet-MT needs at least one task");
        }
        let encoders = match sharing {
            Sharing::Partitioned => vec![Encoder::new(&pb.pp("encoder"), &Owner::partition(n))?],
            Sharing::Shared => vec![Encoder::new(&pb.pp("encoder"), &[Owner::Shared])?],
            Sharing::Independent => (0..n)
                .map(|t| Encoder::new(&pb.pp(format!("net{t}")).pp("encoder"), &[Owner::Task(t)]))
                .collect::<Result<_>>()?,
        };
        let heads = classes
            .iter()
            .enumerate()
            .map(|(t, &k)| Head::new(&pb, t, k, hidden))
            .collect::<Result<_>>()?;
        Ok(Self {
            sharing,
            encoders,
            heads,
            vars,
        })
    }

    /// The same network computing convolutions and pooling with `ops` (default: fast).
    pub fn with_ops(mut self, ops: OpsBackend) -> Self {
        self.encoders = self.encoders.into_iter().map(|e| e.with_ops(ops)).collect();
        self
    }

    fn encoder_of(&self, task: usize) -> &Encoder {
        match self.sharing {
            Sharing::Independent => &self.encoders[task],
            _ => &self.encoders[0],
        }
    }

    fn check_task(&self, task: usize) -> Result<()> {
        if task >= self.heads.len() {
            candle_core::bail!(
                "task {task} out of range: the model has {} tasks",
                self.heads.len()
            );
        }
        Ok(())
    }
}

impl MultiTaskModel for LeNetMt {
    fn num_tasks(&self) -> usize {
        self.heads.len()
    }

    fn sharing(&self) -> Sharing {
        self.sharing
    }

    fn forward_task(&self, x: &Tensor, task: usize, view: &SliceView) -> Result<Tensor> {
        self.check_task(task)?;
        let features = self.encoder_of(task).forward(x, view)?;
        self.heads[task].forward(&features, view)
    }

    fn encode(&self, x: &Tensor, view: &SliceView) -> Result<Option<Vec<Tensor>>> {
        if self.sharing == Sharing::Independent {
            return Ok(None);
        }
        Ok(Some(vec![self.encoders[0].forward(x, view)?]))
    }

    fn decode(&self, features: &[Tensor], task: usize, view: &SliceView) -> Result<Tensor> {
        self.check_task(task)?;
        match features {
            [z] if self.sharing != Sharing::Independent => self.heads[task].forward(z, view),
            _ => candle_core::bail!(
                "LeNet-MT decodes one shared feature tensor, got {} (sharing {})",
                features.len(),
                self.sharing
            ),
        }
    }

    fn encoder_params(&self, task: usize) -> Vec<Var> {
        match self.sharing {
            Sharing::Shared => Vec::new(),
            Sharing::Partitioned | Sharing::Independent => self
                .encoders
                .get(if self.sharing == Sharing::Independent {
                    task
                } else {
                    0
                })
                .map(|e| e.params_of(Owner::Task(task)))
                .unwrap_or_default(),
        }
    }

    fn head_params(&self, task: usize) -> Vec<Var> {
        self.heads
            .get(task)
            .map(|h| h.params_of(Owner::Task(task)))
            .unwrap_or_default()
    }

    fn shared_params(&self) -> Vec<Var> {
        match self.sharing {
            // a partitioned encoder of a single task has one shared slice
            Sharing::Independent => Vec::new(),
            _ => self.encoders[0].params_of(Owner::Shared),
        }
    }

    fn vars(&self) -> &VarMap {
        &self.vars
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use candle_core::DType;

    #[test]
    fn parameter_counts_match_the_paper_layout() {
        let dev = Device::Cpu;
        let part = LeNetMt::new(&dev, Sharing::Partitioned, &[5, 5], 0).unwrap();
        let shared = LeNetMt::new(&dev, Sharing::Shared, &[5, 5], 0).unwrap();
        let indep = LeNetMt::new(&dev, Sharing::Independent, &[5, 5], 0).unwrap();
        // conv1 260 + conv2 5,020 + fc1 16,050 + two heads of 255
        assert_eq!(part.param_count(), 21_840);
        assert_eq!(shared.param_count(), 21_840);
        assert_eq!(indep.param_count(), 2 * (21_330 + 255));
        assert_eq!(part.vars().all_vars().len(), part.all_params().len());
    }

    #[test]
    fn multi_lenet_adds_a_hidden_layer_to_each_head() {
        let net = LeNetMt::multi_lenet(&Device::Cpu, Sharing::Partitioned, &[10, 10], 0).unwrap();
        // LeNet-MT's 21,330 encoder parameters, and per head 50·50 + 50 + 50·10 + 10.
        assert_eq!(net.param_count(), 21_330 + 2 * (2_550 + 510));
        assert_eq!(net.head_params(1).len(), 4);
        let names: Vec<String> = net.vars().data().lock().unwrap().keys().cloned().collect();
        assert!(
            names.contains(&"heads.hidden.task1.weight".to_string()),
            "{names:?}"
        );
        let x = Tensor::zeros((3, 1, 28, 28), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(
            net.forward_task(&x, 1, &SliceView::all()).unwrap().dims(),
            &[3, 10]
        );
    }

    #[test]
    fn partition_gives_each_task_half_of_every_layer() {
        let net = LeNetMt::new(&Device::Cpu, Sharing::Partitioned, &[5, 5], 0).unwrap();
        let dims: Vec<Vec<usize>> = net
            .encoder_params(1)
            .iter()
            .map(|v| v.dims().to_vec())
            .collect();
        assert_eq!(
            dims,
            vec![
                vec![5, 1, 5, 5],
                vec![5],
                vec![10, 10, 5, 5],
                vec![10],
                vec![25, 320],
                vec![25]
            ]
        );
        let names: Vec<String> = net.vars().data().lock().unwrap().keys().cloned().collect();
        assert!(
            names.contains(&"encoder.conv2.task1.weight".to_string()),
            "{names:?}"
        );
    }

    #[test]
    fn same_seed_same_weights_and_outputs() {
        let x = Tensor::rand(0f32, 1f32, (2, 1, 28, 28), &Device::Cpu).unwrap();
        let run = |seed| {
            let net = LeNetMt::new(&Device::Cpu, Sharing::Partitioned, &[5, 5], seed).unwrap();
            net.forward_task(&x, 0, &SliceView::all())
                .unwrap()
                .to_vec2::<f32>()
                .unwrap()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }

    #[test]
    fn task_view_detaches_other_tasks() {
        let net = LeNetMt::new(&Device::Cpu, Sharing::Partitioned, &[5, 5], 0).unwrap();
        let x = Tensor::ones((2, 1, 28, 28), DType::F32, &Device::Cpu).unwrap();
        let loss = net
            .forward_task(&x, 0, &SliceView::task(0))
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        assert!(net.task_params(0).iter().all(|v| grads.get(v).is_some()));
        assert!(net.task_params(1).iter().all(|v| grads.get(v).is_none()));
    }
}
