//! Psi-Net: the multi-task U-Net of the UCL report on Oxford-IIIT Pet (paper-results B).
//!
//! One encoder (widths 64-128-256-512-1024 by default: bottom 1024 × 16 × 16 at 256 × 256
//! input), a U-Net decoder per dense task (foreground segmentation, image reconstruction) and
//! dense heads 128-64-k on the globally average-pooled bottom for vector tasks (species
//! classification, head bounding box). Any subset of the tasks, in any order; depth 4, or 3
//! for the report's "less depth" ablation ([`PsiNetConfig::with_depth`]).
//!
//! The report hard-shares the encoder ([`Sharing::Shared`]); [`Sharing::Independent`] and
//! [`Sharing::Partitioned`] come from the same code ([`UNetMt`] underneath).
//!
//! ```
//! # fn main() -> candle_core::Result<()> {
//! use candle_core::{Device, Tensor};
//! use mtcool_models::{MultiTaskModel, PsiNet, PsiNetConfig, Sharing, SliceView};
//! let config = PsiNetConfig::all_tasks().with_widths(&[4, 8, 16, 32, 64]);
//! let net = PsiNet::new(&Device::Cpu, Sharing::Shared, config, 0)?;
//! let x = Tensor::rand(0f32, 1f32, (2, 3, 32, 32), &Device::Cpu)?;
//! let out = net.forward_tasks(&x, &SliceView::all())?;
//! let dims: Vec<&[usize]> = out.iter().map(|t| t.dims()).collect();
//! // segmentation (1 logit: BCE), species (1 logit: BCE), box (4), reconstruction (RGB)
//! assert_eq!(dims, [&[2, 1, 32, 32][..], &[2, 1], &[2, 4], &[2, 3, 32, 32]]);
//! # Ok(()) }
//! ```

use candle_core::{Device, Result, Tensor, Var};
use candle_nn::VarMap;

use crate::model::{MultiTaskModel, Sharing};
use crate::ops::OpsBackend;
use crate::partitioned::SliceView;
use crate::unet::{TaskHead, UNetConfig, UNetMt};

/// One of Psi-Net's tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsiTask {
    /// Foreground segmentation → `(N, classes, H, W)` logits (1 for the report's BCE loss).
    Segmentation {
        /// Output channels.
        classes: usize,
    },
    /// Species classification → `(N, classes)` logits (1 for the report's BCE loss: cat/dog).
    Classification {
        /// Number of logits.
        classes: usize,
    },
    /// Head bounding-box regression → `(N, 4)`.
    BoundingBox,
    /// Image reconstruction → `(N, channels, H, W)`.
    Reconstruction {
        /// Output channels (3 for RGB).
        channels: usize,
    },
}

impl PsiTask {
    /// Short task name, as in result files: `seg`, `cls`, `box`, `rec`.
    pub fn name(&self) -> &'static str {
        match self {
            PsiTask::Segmentation { .. } => "seg",
            PsiTask::Classification { .. } => "cls",
            PsiTask::BoundingBox => "box",
            PsiTask::Reconstruction { .. } => "rec",
        }
    }

    fn head(&self) -> TaskHead {
        match *self {
            PsiTask::Segmentation { classes } => TaskHead::Segmentation { classes },
            PsiTask::Classification { classes } => TaskHead::Dense { outputs: classes },
            PsiTask::BoundingBox => TaskHead::Dense { outputs: 4 },
            PsiTask::Reconstruction { channels } => TaskHead::Reconstruction { channels },
        }
    }
}

/// Shape of a [`PsiNet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsiNetConfig {
    /// Channels of the input images.
    pub in_channels: usize,
    /// Encoder widths `w_0..w_depth` (depth `widths.len() − 1`).
    pub widths: Vec<usize>,
    /// The tasks, in task order.
    pub tasks: Vec<PsiTask>,
    /// Hidden widths of the vector heads.
    pub dense_hidden: Vec<usize>,
}

impl PsiNetConfig {
    /// The report's widths: bottom 1024 channels, depth 4.
    pub const DEFAULT_WIDTHS: [usize; 5] = [64, 128, 256, 512, 1024];

    /// RGB input, default widths, dense heads 128-64, the given tasks.
    pub fn new(tasks: Vec<PsiTask>) -> Self {
        Self {
            in_channels: 3,
            widths: Self::DEFAULT_WIDTHS.to_vec(),
            tasks,
            dense_hidden: UNetConfig::DEFAULT_DENSE_HIDDEN.to_vec(),
        }
    }

    /// The report's full model: segmentation (1 logit), species (1 logit), box (4),
    /// reconstruction (3 channels), in that order (the result files' `seg`, `cls`, `box`, `rec`).
    pub fn all_tasks() -> Self {
        Self::new(vec![
            PsiTask::Segmentation { classes: 1 },
            PsiTask::Classification { classes: 1 },
            PsiTask::BoundingBox,
            PsiTask::Reconstruction { channels: 3 },
        ])
    }

    /// The same configuration with encoder widths `widths`.
    pub fn with_widths(mut self, widths: &[usize]) -> Self {
        self.widths = widths.to_vec();
        self
    }

    /// The same configuration with `depth` down-sampling levels: the first `depth + 1` of the
    /// current widths (`with_depth(3)` on the defaults gives 64-128-256-512, bottom 512), or,
    /// deeper than listed, the widths continued by doubling the last one.
    pub fn with_depth(mut self, depth: usize) -> Self {
        self.widths.truncate(depth + 1);
        while let (true, Some(&last)) = (self.widths.len() < depth + 1, self.widths.last()) {
            self.widths.push(last.saturating_mul(2));
        }
        self
    }

    /// Number of down-sampling levels.
    pub fn depth(&self) -> usize {
        self.widths.len().saturating_sub(1)
    }

    /// The equivalent U-Net configuration.
    pub fn to_unet(&self) -> UNetConfig {
        UNetConfig {
            in_channels: self.in_channels,
            widths: self.widths.clone(),
            heads: self.tasks.iter().map(PsiTask::head).collect(),
            dense_hidden: self.dense_hidden.clone(),
            guided_hidden: UNetConfig::DEFAULT_GUIDED_HIDDEN,
        }
    }
}

/// Psi-Net in one of the three sharing modes (parameter names as in [`UNetMt`]).
#[derive(Debug, Clone)]
pub struct PsiNet {
    tasks: Vec<PsiTask>,
    net: UNetMt,
}

impl PsiNet {
    /// Builds the network; the initial weights are drawn from a generator seeded with `seed`.
    pub fn new(device: &Device, sharing: Sharing, config: PsiNetConfig, seed: u64) -> Result<Self> {
        if config.widths.len() < 2 {
            crate::fail!(
                "Psi-Net: depth must be at least 1 (widths {:?})",
                config.widths
            );
        }
        let net = UNetMt::build("Psi-Net", device, sharing, config.to_unet(), seed)?;
        Ok(Self {
            tasks: config.tasks,
            net,
        })
    }

    /// The same network computing convolutions and pooling with `ops` (default: fast).
    pub fn with_ops(self, ops: OpsBackend) -> Self {
        Self {
            net: self.net.with_ops(ops),
            ..self
        }
    }

    /// The tasks, in task order.
    pub fn tasks(&self) -> &[PsiTask] {
        &self.tasks
    }

    /// The U-Net underneath.
    pub fn unet(&self) -> &UNetMt {
        &self.net
    }

    /// See [`UNetMt::check_input`].
    pub fn check_input(&self, x: &Tensor) -> Result<()> {
        self.net.check_input(x)
    }
}

impl MultiTaskModel for PsiNet {
    fn num_tasks(&self) -> usize {
        self.net.num_tasks()
    }

    fn sharing(&self) -> Sharing {
        self.net.sharing()
    }

    fn forward_task(&self, x: &Tensor, task: usize, view: &SliceView) -> Result<Tensor> {
        self.net.forward_task(x, task, view)
    }

    fn forward_tasks(&self, x: &Tensor, view: &SliceView) -> Result<Vec<Tensor>> {
        self.net.forward_tasks(x, view)
    }

    fn encode(&self, x: &Tensor, view: &SliceView) -> Result<Option<Vec<Tensor>>> {
        self.net.encode(x, view)
    }

    fn decode(&self, features: &[Tensor], task: usize, view: &SliceView) -> Result<Tensor> {
        self.net.decode(features, task, view)
    }

    fn encoder_params(&self, task: usize) -> Vec<Var> {
        self.net.encoder_params(task)
    }

    fn perturbable_params(&self, task: usize) -> Vec<Var> {
        self.net.perturbable_params(task)
    }

    fn head_params(&self, task: usize) -> Vec<Var> {
        self.net.head_params(task)
    }

    fn shared_params(&self) -> Vec<Var> {
        self.net.shared_params()
    }

    fn vars(&self) -> &VarMap {
        self.net.vars()
    }

    fn buffers(&self) -> Option<&VarMap> {
        self.net.buffers()
    }

    fn set_training(&mut self, training: bool) {
        self.net.set_training(training);
    }

    fn is_training(&self) -> bool {
        self.net.is_training()
    }
}
