//! U-Net-MT: the multi-task U-Net of MT-COOL's REFUGE and HRF-AV experiments (paper Tables 2
//! and 3), and the engine behind [`crate::PsiNet`].
//!
//! Encoder (partitioned, shared or one per task, by [`Sharing`]): `depth` down blocks
//! (`down1..down{depth}`, each a [`ConvBlock`] followed by 2×2 max pooling) and a `bottom`
//! block; widths `w_0..w_depth` (default 16-32-64-128-256: depth 4, bottom 256 channels). Each
//! task has its own head reading the *whole* concatenated encoder features:
//!
//! - [`TaskHead::Segmentation`] / [`TaskHead::Reconstruction`]: a U-Net decoder
//!   (`up{depth}..up1`, each an [`UpBlock`] taking the skip connection of its level, then a 1×1
//!   convolution) → `(N, k, H, W)`;
//! - [`TaskHead::GuidedClassification`] (REFUGE's glaucoma classifier): the softmax of a
//!   segmentation task's output, average-pooled to the bottom's resolution, concatenated with
//!   the bottom features → conv 3×3-BN-ReLU → global average pooling → linear → `(N, k)`;
//! - [`TaskHead::Dense`]: global average pooling of the bottom → fully connected layers
//!   (default 128-64, ReLU) → `(N, k)`.
//!
//! In [`Sharing::Independent`] mode every task has its own encoder; a guided classifier then
//! reads the segmentation of the segmentation task's own network (so a task-view pass of the
//! classifier runs that network too, read-only, and in training mode moves its BatchNorm
//! running statistics).
//!
//! Inputs are `(N, C_in, H, W)` with `H` and `W` multiples of `2^depth`. Outputs are logits
//! (or raw values for reconstruction and regression).
//!
//! BatchNorm makes the forward pass depend on the mode: models start in training mode (batch
//! statistics, running statistics updated); [`MultiTaskModel::set_training`]`(false)` switches
//! to evaluation mode (running statistics).
//!
//! ```
//! # fn main() -> candle_core::Result<()> {
//! use candle_core::{Device, Tensor};
//! use mtcool_models::{MultiTaskModel, Sharing, SliceView, UNetConfig, UNetMt};
//! // REFUGE layout, small widths: cup/disc segmentation (3 classes) + glaucoma (2 classes)
//! let config = UNetConfig::seg_cls(3, 2).with_widths(&[4, 8, 16, 32, 64]);
//! let mut net = UNetMt::new(&Device::Cpu, Sharing::Partitioned, config, 0)?;
//! let x = Tensor::rand(0f32, 1f32, (2, 3, 32, 32), &Device::Cpu)?;
//! assert_eq!(net.forward_task(&x, 0, &SliceView::all())?.dims(), &[2, 3, 32, 32]);
//! assert_eq!(net.forward_task(&x, 1, &SliceView::all())?.dims(), &[2, 2]);
//! net.set_training(false);
//! let bad = Tensor::zeros((2, 3, 40, 40), candle_core::DType::F32, &Device::Cpu)?;
//! assert!(net.forward_task(&bad, 0, &SliceView::all()).is_err()); // 40 is not a multiple of 16
//! # Ok(()) }
//! ```

use candle_core::{Device, Result, Tensor, Var};
use candle_nn::VarMap;

use crate::model::{MultiTaskModel, Sharing};
use crate::ops::{self, OpsBackend};
use crate::partitioned::{
    ConvBlock, ConvBnRelu, Owner, PartitionedConv2d, PartitionedLinear, SliceView, UpBlock,
};
use crate::ParamBuilder;

/// What one task's head computes from the encoder's features.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskHead {
    /// A U-Net decoder with skip connections → `(N, classes, H, W)` logits.
    Segmentation {
        /// Number of classes (output channels).
        classes: usize,
    },
    /// A U-Net decoder → `(N, channels, H, W)` raw values (image reconstruction).
    Reconstruction {
        /// Number of output channels.
        channels: usize,
    },
    /// A classifier reading the softmax of segmentation task `seg_task` together with the
    /// bottom features → `(N, classes)` logits (REFUGE's glaucoma head).
    GuidedClassification {
        /// Number of classes.
        classes: usize,
        /// The segmentation task whose output the classifier reads.
        seg_task: usize,
    },
    /// Global average pooling of the bottom features → fully connected layers →
    /// `(N, outputs)` (classification logits or box regression).
    Dense {
        /// Number of outputs.
        outputs: usize,
    },
}

impl TaskHead {
    /// Whether the output is a map `(N, k, H, W)` (otherwise a vector `(N, k)`).
    pub fn is_dense_prediction(&self) -> bool {
        matches!(
            self,
            TaskHead::Segmentation { .. } | TaskHead::Reconstruction { .. }
        )
    }

    /// `k`: the number of output channels or values.
    pub fn outputs(&self) -> usize {
        match *self {
            TaskHead::Segmentation { classes } | TaskHead::GuidedClassification { classes, .. } => {
                classes
            }
            TaskHead::Reconstruction { channels } => channels,
            TaskHead::Dense { outputs } => outputs,
        }
    }
}

/// Shape of a [`UNetMt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UNetConfig {
    /// Channels of the input images.
    pub in_channels: usize,
    /// Encoder widths `w_0..w_depth`: `depth = widths.len() − 1` down blocks, then the bottom.
    pub widths: Vec<usize>,
    /// One head per task, in task order.
    pub heads: Vec<TaskHead>,
    /// Hidden widths of [`TaskHead::Dense`] heads.
    pub dense_hidden: Vec<usize>,
    /// Channels of the convolution in [`TaskHead::GuidedClassification`] heads.
    pub guided_hidden: usize,
}

impl UNetConfig {
    /// The paper's U-Net widths (HRF-AV): bottom 256 channels, depth 4.
    pub const DEFAULT_WIDTHS: [usize; 5] = [16, 32, 64, 128, 256];
    /// Hidden widths of dense heads (the UCL report's 128-64-k).
    pub const DEFAULT_DENSE_HIDDEN: [usize; 2] = [128, 64];
    /// Default channels of the guided classifier's convolution.
    pub const DEFAULT_GUIDED_HIDDEN: usize = 64;

    /// RGB input, default widths, the given heads.
    pub fn new(heads: Vec<TaskHead>) -> Self {
        Self {
            in_channels: 3,
            widths: Self::DEFAULT_WIDTHS.to_vec(),
            heads,
            dense_hidden: Self::DEFAULT_DENSE_HIDDEN.to_vec(),
            guided_hidden: Self::DEFAULT_GUIDED_HIDDEN,
        }
    }

    /// One segmentation task per entry of `classes` (HRF-AV: `&[2, 3]`, vessel and
    /// artery/vein).
    pub fn seg_seg(classes: &[usize]) -> Self {
        Self::new(
            classes
                .iter()
                .map(|&classes| TaskHead::Segmentation { classes })
                .collect(),
        )
    }

    /// Task 0 segments (`seg_classes`), task 1 classifies from task 0's softmax and the bottom
    /// features (`cls_classes`); REFUGE: `seg_cls(3, 2)`.
    pub fn seg_cls(seg_classes: usize, cls_classes: usize) -> Self {
        Self::new(vec![
            TaskHead::Segmentation {
                classes: seg_classes,
            },
            TaskHead::GuidedClassification {
                classes: cls_classes,
                seg_task: 0,
            },
        ])
    }

    /// The same configuration with encoder widths `widths` (depth `widths.len() − 1`).
    pub fn with_widths(mut self, widths: &[usize]) -> Self {
        self.widths = widths.to_vec();
        self
    }

    /// The same configuration for images with `channels` channels.
    pub fn with_in_channels(mut self, channels: usize) -> Self {
        self.in_channels = channels;
        self
    }

    /// Number of down-sampling levels.
    pub fn depth(&self) -> usize {
        self.widths.len().saturating_sub(1)
    }

    /// Fails with a one-line message unless the configuration describes a network.
    pub fn validate(&self, sharing: Sharing) -> Result<()> {
        let n = self.heads.len();
        if n == 0 {
            crate::fail!("the network needs at least one task head");
        }
        if self.in_channels == 0 {
            crate::fail!("in_channels must be at least 1");
        }
        if self.widths.len() < 2 || self.widths.contains(&0) {
            crate::fail!(
                "widths must list at least two positive widths (depth ≥ 1), got {:?}",
                self.widths
            );
        }
        if sharing == Sharing::Partitioned {
            if let Some(&w) = self.widths.iter().find(|&&w| w < n) {
                crate::fail!(
                    "a partitioned encoder cannot split width {w} between {n} tasks (widths {:?})",
                    self.widths
                );
            }
        }
        if self.dense_hidden.contains(&0) || self.guided_hidden == 0 {
            crate::fail!("hidden widths must be positive");
        }
        for (t, head) in self.heads.iter().enumerate() {
            if head.outputs() == 0 {
                crate::fail!("task {t}: {head:?} has no outputs");
            }
            if let TaskHead::GuidedClassification { seg_task, .. } = *head {
                match self.heads.get(seg_task) {
                    Some(TaskHead::Segmentation { .. }) if seg_task != t => {}
                    _ => crate::fail!(
                        "task {t}: a guided classifier must read a segmentation task, but task \
                         {seg_task} is {:?}",
                        self.heads.get(seg_task)
                    ),
                }
            }
        }
        Ok(())
    }
}

/// Features of one encoder pass: the output of every down block, then the bottom's.
#[derive(Debug, Clone)]
struct Features {
    skips: Vec<Tensor>,
    bottom: Tensor,
}

/// The down path and bottom, partitioned between `owners`.
#[derive(Debug, Clone)]
struct Encoder {
    downs: Vec<ConvBlock>,
    bottom: ConvBlock,
    ops: OpsBackend,
}

impl Encoder {
    fn new(
        pb: &ParamBuilder,
        in_channels: usize,
        widths: &[usize],
        owners: &[Owner],
    ) -> Result<Self> {
        let depth = widths.len() - 1;
        let mut downs = Vec::with_capacity(depth);
        let mut c = in_channels;
        for (l, &w) in widths[..depth].iter().enumerate() {
            downs.push(ConvBlock::new(
                &pb.pp(format!("down{}", l + 1)),
                c,
                w,
                owners,
            )?);
            c = w;
        }
        let bottom = ConvBlock::new(&pb.pp("bottom"), c, widths[depth], owners)?;
        Ok(Self {
            downs,
            bottom,
            ops: OpsBackend::default(),
        })
    }

    fn with_ops(self, ops: OpsBackend) -> Self {
        Self {
            downs: self.downs.into_iter().map(|b| b.with_ops(ops)).collect(),
            bottom: self.bottom.with_ops(ops),
            ops,
        }
    }

    fn forward(&self, x: &Tensor, view: &SliceView, train: bool) -> Result<Features> {
        let mut skips = Vec::with_capacity(self.downs.len());
        let mut x = x.clone();
        for block in &self.downs {
            let y = block.forward(&x, view, train)?;
            x = ops::max_pool2d(&y, 2, self.ops)?;
            skips.push(y);
        }
        let bottom = self.bottom.forward(&x, view, train)?;
        Ok(Features { skips, bottom })
    }

    fn blocks(&self) -> impl Iterator<Item = &ConvBlock> {
        self.downs.iter().chain(std::iter::once(&self.bottom))
    }

    fn params_of(&self, owner: Owner) -> Vec<Var> {
        self.blocks().flat_map(|b| b.params_of(owner)).collect()
    }

    fn conv_params_of(&self, owner: Owner) -> Vec<Var> {
        self.blocks()
            .flat_map(|b| b.conv_params_of(owner))
            .collect()
    }
}

/// A U-Net decoder owned by one task.
#[derive(Debug, Clone)]
struct Decoder {
    /// `ups[l]` produces level `l` (resolution `H / 2^l`).
    ups: Vec<UpBlock>,
    out: PartitionedConv2d,
}

impl Decoder {
    fn new(pb: &ParamBuilder, widths: &[usize], outputs: usize, owner: Owner) -> Result<Self> {
        let depth = widths.len() - 1;
        let ups = (0..depth)
            .map(|l| {
                UpBlock::new(
                    &pb.pp(format!("up{}", l + 1)),
                    widths[l + 1],
                    widths[l],
                    widths[l],
                    &[owner],
                )
            })
            .collect::<Result<_>>()?;
        let out = PartitionedConv2d::new_sliced(&pb.pp("out"), widths[0], outputs, 1, 0, &[owner])?;
        Ok(Self { ups, out })
    }

    fn with_ops(self, ops: OpsBackend) -> Self {
        Self {
            ups: self.ups.into_iter().map(|u| u.with_ops(ops)).collect(),
            out: self.out.with_ops(ops),
        }
    }

    fn forward(&self, f: &Features, view: &SliceView, train: bool) -> Result<Tensor> {
        let mut x = f.bottom.clone();
        for (up, skip) in self.ups.iter().zip(&f.skips).rev() {
            x = up.forward(&x, skip, view, train)?;
        }
        self.out.forward(&x, view)
    }

    fn params_of(&self, owner: Owner) -> Vec<Var> {
        let mut vars: Vec<Var> = self.ups.iter().flat_map(|u| u.params_of(owner)).collect();
        vars.extend(self.out.params_of(owner));
        vars
    }
}

/// Global average pooling → linear layers with ReLU between them.
#[derive(Debug, Clone)]
struct DenseHead {
    layers: Vec<PartitionedLinear>,
}

impl DenseHead {
    fn new(
        pb: &ParamBuilder,
        in_features: usize,
        hidden: &[usize],
        outputs: usize,
        owner: Owner,
    ) -> Result<Self> {
        let mut layers = Vec::with_capacity(hidden.len() + 1);
        let mut c = in_features;
        for (i, &h) in hidden.iter().chain(std::iter::once(&outputs)).enumerate() {
            layers.push(PartitionedLinear::new_sliced(
                &pb.pp(format!("fc{}", i + 1)),
                c,
                h,
                &[owner],
            )?);
            c = h;
        }
        Ok(Self { layers })
    }

    fn forward(&self, bottom: &Tensor, view: &SliceView) -> Result<Tensor> {
        let mut x = bottom.mean((2, 3))?;
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(&x, view)?;
            if i < last {
                x = x.relu()?;
            }
        }
        Ok(x)
    }

    fn params_of(&self, owner: Owner) -> Vec<Var> {
        self.layers
            .iter()
            .flat_map(|l| l.params_of(owner))
            .collect()
    }
}

/// Classifier over a segmentation's softmax and the bottom features (REFUGE).
#[derive(Debug, Clone)]
struct GuidedClassifier {
    seg_task: usize,
    /// Down-sampling factor from the input to the bottom (`2^depth`).
    scale: usize,
    conv: ConvBnRelu,
    fc: PartitionedLinear,
}

impl GuidedClassifier {
    #[allow(clippy::too_many_arguments)]
    fn new(
        pb: &ParamBuilder,
        bottom_channels: usize,
        seg_classes: usize,
        hidden: usize,
        classes: usize,
        seg_task: usize,
        scale: usize,
        owner: Owner,
    ) -> Result<Self> {
        Ok(Self {
            seg_task,
            scale,
            conv: ConvBnRelu::new(
                &pb.pp("conv"),
                &pb.pp("bn"),
                bottom_channels + seg_classes,
                hidden,
                &[owner],
            )?,
            fc: PartitionedLinear::new_sliced(&pb.pp("fc"), hidden, classes, &[owner])?,
        })
    }

    fn with_ops(self, ops: OpsBackend) -> Self {
        Self {
            conv: self.conv.with_ops(ops),
            ..self
        }
    }

    fn forward(
        &self,
        bottom: &Tensor,
        seg_logits: &Tensor,
        view: &SliceView,
        train: bool,
    ) -> Result<Tensor> {
        let probs = candle_nn::ops::softmax(seg_logits, 1)?;
        let pooled = ops::avg_pool(&probs, self.scale)?;
        let joined = Tensor::cat(&[bottom, &pooled], 1)?;
        let y = self.conv.forward(&joined, view, train)?;
        self.fc.forward(&y.mean((2, 3))?, view)
    }

    fn params_of(&self, owner: Owner) -> Vec<Var> {
        let mut vars = self.conv.params_of(owner);
        vars.extend(self.fc.params_of(owner));
        vars
    }
}

/// One task's head.
#[derive(Debug, Clone)]
enum Head {
    Decoder(Decoder),
    Dense(DenseHead),
    Guided(GuidedClassifier),
}

impl Head {
    fn params_of(&self, owner: Owner) -> Vec<Var> {
        match self {
            Head::Decoder(d) => d.params_of(owner),
            Head::Dense(d) => d.params_of(owner),
            Head::Guided(g) => g.params_of(owner),
        }
    }

    fn with_ops(self, ops: OpsBackend) -> Self {
        match self {
            Head::Decoder(d) => Head::Decoder(d.with_ops(ops)),
            Head::Dense(d) => Head::Dense(d),
            Head::Guided(g) => Head::Guided(g.with_ops(ops)),
        }
    }
}

/// Multi-task U-Net in one of the three sharing modes.
///
/// Parameter names: `encoder.down{l}.conv{1,2}|bn{1,2}.<owner>.<tensor>`,
/// `encoder.bottom...` (independent: `net{t}.encoder...`), `decoder.task{t}.up{l}.upconv|upbn|
/// conv{1,2}|bn{1,2}.task{t}.<tensor>`, `decoder.task{t}.out...`, `head.task{t}.fc{i}...` and
/// `head.task{t}.conv|bn|fc...`.
#[derive(Clone)]
pub struct UNetMt {
    name: &'static str,
    config: UNetConfig,
    sharing: Sharing,
    /// One encoder, or one per task when independent.
    encoders: Vec<Encoder>,
    heads: Vec<Head>,
    vars: VarMap,
    buffers: VarMap,
    training: bool,
}

impl std::fmt::Debug for UNetMt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(self.name)
            .field("config", &self.config)
            .field("sharing", &self.sharing)
            .field("training", &self.training)
            .finish_non_exhaustive()
    }
}

impl UNetMt {
    /// Builds the network; the initial weights are drawn from a generator seeded with `seed`.
    /// For one seed, the partitioned and the shared network start as the same function.
    pub fn new(device: &Device, sharing: Sharing, config: UNetConfig, seed: u64) -> Result<Self> {
        Self::build("U-Net-MT", device, sharing, config, seed)
    }

    /// [`Self::new`] with `name` in error messages (Psi-Net is built here too).
    pub(crate) fn build(
        name: &'static str,
        device: &Device,
        sharing: Sharing,
        config: UNetConfig,
        seed: u64,
    ) -> Result<Self> {
        config
            .validate(sharing)
            .map_err(|e| candle_core::Error::Msg(format!("{name}: {e}")))?;
        let vars = VarMap::new();
        let pb = ParamBuilder::new(vars.clone(), device, seed);
        let n = config.heads.len();
        let (c_in, widths) = (config.in_channels, &config.widths[..]);
        let encoders = match sharing {
            Sharing::Partitioned => {
                vec![Encoder::new(
                    &pb.pp("encoder"),
                    c_in,
                    widths,
                    &Owner::partition(n),
                )?]
            }
            Sharing::Shared => vec![Encoder::new(
                &pb.pp("encoder"),
                c_in,
                widths,
                &[Owner::Shared],
            )?],
            Sharing::Independent => (0..n)
                .map(|t| {
                    Encoder::new(
                        &pb.pp(format!("net{t}")).pp("encoder"),
                        c_in,
                        widths,
                        &[Owner::Task(t)],
                    )
                })
                .collect::<Result<_>>()?,
        };
        let depth = config.depth();
        let bottom = widths[depth];
        let heads = config
            .heads
            .iter()
            .enumerate()
            .map(|(t, head)| {
                let owner = Owner::Task(t);
                Ok(match *head {
                    TaskHead::Segmentation { classes: k }
                    | TaskHead::Reconstruction { channels: k } => {
                        Head::Decoder(Decoder::new(&pb.pp("decoder"), widths, k, owner)?)
                    }
                    TaskHead::Dense { outputs } => Head::Dense(DenseHead::new(
                        &pb.pp("head"),
                        bottom,
                        &config.dense_hidden,
                        outputs,
                        owner,
                    )?),
                    TaskHead::GuidedClassification { classes, seg_task } => {
                        Head::Guided(GuidedClassifier::new(
                            &pb.pp("head"),
                            bottom,
                            config.heads[seg_task].outputs(),
                            config.guided_hidden,
                            classes,
                            seg_task,
                            1 << depth,
                            owner,
                        )?)
                    }
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            name,
            buffers: pb.buffers().clone(),
            config,
            sharing,
            encoders,
            heads,
            vars,
            training: true,
        })
    }

    /// The same network computing convolutions and pooling with `ops` (default: fast).
    pub fn with_ops(mut self, ops: OpsBackend) -> Self {
        self.encoders = self.encoders.into_iter().map(|e| e.with_ops(ops)).collect();
        self.heads = self.heads.into_iter().map(|h| h.with_ops(ops)).collect();
        self
    }

    /// The configuration the network was built from.
    pub fn config(&self) -> &UNetConfig {
        &self.config
    }

    /// Task `task`'s head.
    pub fn head(&self, task: usize) -> Option<&TaskHead> {
        self.config.heads.get(task)
    }

    /// Fails with a one-line message unless `x` is `(N, C_in, H, W)` with `H` and `W` positive
    /// multiples of `2^depth`.
    pub fn check_input(&self, x: &Tensor) -> Result<()> {
        let name = self.name;
        let dims = x.dims();
        let &[_, c, h, w] = dims else {
            crate::fail!("{name}: expected an (N, C, H, W) batch, got shape {dims:?}")
        };
        if c != self.config.in_channels {
            crate::fail!(
                "{name}: expected {} input channels, got {c} (shape {dims:?})",
                self.config.in_channels
            );
        }
        let depth = self.config.depth();
        let m = 1usize << depth;
        if h == 0 || w == 0 || h % m != 0 || w % m != 0 {
            crate::fail!(
                "{name}: input size {h}×{w} is not a multiple of 2^{depth} = {m} (the network \
                 down-samples {depth} times); crop or pad the images"
            );
        }
        Ok(())
    }

    fn check_task(&self, task: usize) -> Result<()> {
        if task >= self.heads.len() {
            crate::fail!(
                "{}: task {task} out of range: the model has {} tasks",
                self.name,
                self.heads.len()
            );
        }
        Ok(())
    }

    fn encoder_index(&self, task: usize) -> usize {
        match self.sharing {
            Sharing::Independent => task,
            _ => 0,
        }
    }

    /// The outputs of `tasks`, each encoder and head computed at most once.
    fn run(&self, x: &Tensor, view: &SliceView, tasks: &[usize]) -> Result<Vec<Tensor>> {
        self.check_input(x)?;
        for &t in tasks {
            self.check_task(t)?;
        }
        let mut features = vec![None; self.encoders.len()];
        let mut outputs = vec![None; self.heads.len()];
        tasks
            .iter()
            .map(|&t| self.output(Some(x), view, t, &mut features, &mut outputs))
            .collect()
    }

    /// Task `task`'s output, computing (and caching) the encoder features it needs from `x`
    /// unless `features` holds them already.
    fn output(
        &self,
        x: Option<&Tensor>,
        view: &SliceView,
        task: usize,
        features: &mut [Option<Features>],
        outputs: &mut [Option<Tensor>],
    ) -> Result<Tensor> {
        if let Some(y) = &outputs[task] {
            return Ok(y.clone());
        }
        let e = self.encoder_index(task);
        let f = match &features[e] {
            Some(f) => f.clone(),
            None => {
                let Some(x) = x else {
                    crate::fail!("{}: no features for task {task}'s encoder", self.name)
                };
                let f = self.encoders[e].forward(x, view, self.training)?;
                features[e] = Some(f.clone());
                f
            }
        };
        let y = match &self.heads[task] {
            Head::Decoder(d) => d.forward(&f, view, self.training)?,
            Head::Dense(d) => d.forward(&f.bottom, view)?,
            Head::Guided(g) => {
                let seg = self.output(x, view, g.seg_task, features, outputs)?;
                g.forward(&f.bottom, &seg, view, self.training)?
            }
        };
        outputs[task] = Some(y.clone());
        Ok(y)
    }
}

impl MultiTaskModel for UNetMt {
    fn num_tasks(&self) -> usize {
        self.heads.len()
    }

    fn sharing(&self) -> Sharing {
        self.sharing
    }

    /// Task `task`'s output; a guided classifier also runs the segmentation head it reads.
    fn forward_task(&self, x: &Tensor, task: usize, view: &SliceView) -> Result<Tensor> {
        let mut out = self.run(x, view, &[task])?;
        out.pop()
            .ok_or_else(|| candle_core::Error::Msg(format!("{}: no output", self.name)))
    }

    /// Every task's output from one encoder pass (per encoder when independent).
    fn forward_tasks(&self, x: &Tensor, view: &SliceView) -> Result<Vec<Tensor>> {
        let tasks: Vec<usize> = (0..self.heads.len()).collect();
        self.run(x, view, &tasks)
    }

    /// The encoder's features: the `depth` skip connections (full resolution first), then the
    /// bottom; `None` when independent.
    fn encode(&self, x: &Tensor, view: &SliceView) -> Result<Option<Vec<Tensor>>> {
        if self.sharing == Sharing::Independent {
            return Ok(None);
        }
        self.check_input(x)?;
        let f = self.encoders[0].forward(x, view, self.training)?;
        let mut out = f.skips;
        out.push(f.bottom);
        Ok(Some(out))
    }

    /// Task `task`'s head on features from [`MultiTaskModel::encode`] (a guided classifier also
    /// runs the segmentation head it reads).
    fn decode(&self, features: &[Tensor], task: usize, view: &SliceView) -> Result<Tensor> {
        self.check_task(task)?;
        let depth = self.config.depth();
        if self.sharing == Sharing::Independent || features.len() != depth + 1 {
            crate::fail!(
                "{}: decode takes the {} tensors of one shared encoder pass, got {} (sharing {})",
                self.name,
                depth + 1,
                features.len(),
                self.sharing
            );
        }
        let f = Features {
            skips: features[..depth].to_vec(),
            bottom: features[depth].clone(),
        };
        let mut cache = vec![Some(f)];
        let mut outputs = vec![None; self.heads.len()];
        self.output(None, view, task, &mut cache, &mut outputs)
    }

    fn encoder_params(&self, task: usize) -> Vec<Var> {
        match self.sharing {
            Sharing::Shared => Vec::new(),
            _ => self
                .encoders
                .get(self.encoder_index(task))
                .map(|e| e.params_of(Owner::Task(task)))
                .unwrap_or_default(),
        }
    }

    /// θ_t without the BatchNorm affine parameters.
    fn perturbable_params(&self, task: usize) -> Vec<Var> {
        match self.sharing {
            Sharing::Shared => Vec::new(),
            _ => self
                .encoders
                .get(self.encoder_index(task))
                .map(|e| e.conv_params_of(Owner::Task(task)))
                .unwrap_or_default(),
        }
    }

    fn head_params(&self, task: usize) -> Vec<Var> {
        self.heads
            .get(task)
            .map(|h| h.params_of(Owner::Task(task)))
            .unwrap_or_default()
    }

    /// The hard-shared encoder (also a "partitioned" encoder of a single task, whose one
    /// slice is shared).
    fn shared_params(&self) -> Vec<Var> {
        match self.sharing {
            Sharing::Independent => Vec::new(),
            _ => self.encoders[0].params_of(Owner::Shared),
        }
    }

    fn vars(&self) -> &VarMap {
        &self.vars
    }

    fn buffers(&self) -> Option<&VarMap> {
        Some(&self.buffers)
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    fn is_training(&self) -> bool {
        self.training
    }
}
