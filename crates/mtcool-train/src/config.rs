//! Experiment configurations: one TOML file per published table, in `experiments/`.
//!
//! Unknown keys are rejected, so a typo is an error rather than a silently ignored setting.
//! Every hyper-parameter has the documented default; a `[quick]` table says how `--quick`
//! shrinks the run, and a `[paper]` table holds the published numbers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mtcool_data::ClassTask;

use crate::diagnostics::DiagnosticsConfig;
use mtcool_optim::registry::OptionsAt;
use mtcool_optim::{
    AdamConfig, BaselineConfig, LrSchedule, MethodKind, MethodOptions, MtCoolConfig,
    OptimizerConfig, OptimizerKind, SgdConfig,
};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// A whole experiment: data, model, training schedule, methods and reference numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Experiment name (`mnist`), used for the results folder.
    pub name: String,
    /// One line describing the experiment.
    #[serde(default)]
    pub description: String,
    /// Which dataset and split.
    pub data: DataConfig,
    /// Which network.
    pub model: ModelConfig,
    /// Schedule and optimiser.
    pub training: TrainingConfig,
    /// Methods of the grid, in table order.
    pub methods: Vec<String>,
    /// MT-COOL's hyper-parameters (also used by its ablations).
    #[serde(default)]
    pub mtcool: MtCoolConfig,
    /// The baselines' options (`[baselines.mgda]`, `[baselines.cagrad]`, …).
    #[serde(default)]
    pub baselines: BaselineConfig,
    /// Gradient-conflict log and flatness probe.
    #[serde(default)]
    pub diagnostics: DiagnosticsConfig,
    /// How `--quick` shrinks the experiment.
    #[serde(default)]
    pub quick: QuickConfig,
    /// The published numbers.
    #[serde(default)]
    pub paper: PaperTable,
    /// A study's comparisons (`[study]`): `table.md` then pairs every row with a reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub study: Option<StudyConfig>,
}

/// `[study]`: each row is compared seed by seed with the `reference` method's row under the
/// same training keys (`epochs`, `lr_schedule`, `batch_size`, `optimizer`), else with the plain
/// reference row ([`crate::table::paired_rows`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudyConfig {
    /// The method rows are compared with, e.g. `joint`.
    pub reference: String,
}

/// Dataset and split. Each variant reads the provider's files from `<data>/<folder>`
/// (`../docs/datasets.md` says where users obtain them; `cargo xtask data synth` writes
/// look-alikes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "dataset", rename_all = "kebab-case")]
pub enum DataConfig {
    /// An MNIST-format folder `<data>/<folder>` split into tasks by class.
    Mnist {
        /// Folder under the data directory (`mnist`).
        #[serde(default = "default_mnist_folder")]
        folder: String,
        /// The first `train_size` training images train; the rest validate.
        #[serde(default = "default_train_size")]
        train_size: usize,
        /// The tasks and their classes.
        tasks: Vec<TaskSpec>,
    },
    /// Fashion-MNIST (the same IDX files, gzipped) split into tasks by class.
    FashionMnist {
        /// Folder under the data directory (`fashion-mnist`).
        #[serde(default = "default_fashion_folder")]
        folder: String,
        /// The first `train_size` training images train; the rest validate.
        #[serde(default = "default_train_size")]
        train_size: usize,
        /// The tasks and their classes.
        tasks: Vec<TaskSpec>,
    },
    /// OrganCMNIST (`<folder>/organcmnist.npz`, MedMNIST v2) split into tasks by class, with
    /// the file's own train / val / test splits.
    Organcmnist {
        /// Folder under the data directory (`organcmnist`).
        #[serde(default = "default_organ_folder")]
        folder: String,
        /// Use only the first this many training images (before the task split).
        #[serde(default)]
        train_limit: Option<usize>,
        /// The tasks and their classes (0..=10).
        tasks: Vec<TaskSpec>,
    },
    /// Two items per image, tasks `left` and `right` (10 classes each): MultiMNIST and its
    /// Fashion variants, as `cargo xtask data multimnist` (…) writes them.
    Multi {
        /// Folder under the data directory (`multimnist`, `multifashion` or
        /// `multi-fashion-mnist`).
        folder: String,
        /// The first `train_size` training images train; the rest validate.
        #[serde(default = "default_train_size")]
        train_size: usize,
    },
    /// REFUGE 2018: cup/disc segmentation (`seg`) and glaucoma classification (`cls`).
    Refuge {
        /// Folder under the data directory (`refuge`).
        #[serde(default = "default_refuge_folder")]
        folder: String,
        /// Training images drawn from the pooled releases (paper: 800).
        #[serde(default = "default_refuge_train")]
        train: usize,
        /// Validation images (0: final-epoch rule, as the paper).
        #[serde(default)]
        val: usize,
        /// Test images (paper: 400).
        #[serde(default = "default_refuge_test")]
        test: usize,
        /// Side of the square crop around the optic disc, in original pixels.
        #[serde(default = "default_crop")]
        crop_size: u32,
        /// Side the crop is resized to.
        #[serde(default = "default_output")]
        output_size: u32,
    },
    /// HRF-AV: binary vessel (`vessel`) and artery/vein (`av`) segmentation, trained on random
    /// patches, evaluated on whole images by overlapping sliding windows inside the FOV.
    Hrfav {
        /// Folder under the data directory (`hrfav`).
        #[serde(default = "default_hrfav_folder")]
        folder: String,
        /// Training images (paper: 15 of 45; the rest test).
        #[serde(default = "default_hrfav_train")]
        train: usize,
        /// Folder of the A/V colour images beside the HRF folders.
        #[serde(default = "default_av_folder")]
        av_folder: String,
        /// Side of the square training patches and of the evaluation windows.
        #[serde(default = "default_patch")]
        patch_size: usize,
        /// Patches drawn (afresh) per epoch.
        #[serde(default = "default_patches_per_epoch")]
        patches_per_epoch: usize,
        /// Overlap of neighbouring evaluation windows, in pixels.
        #[serde(default = "default_overlap")]
        overlap: usize,
    },
    /// Oxford-IIIT Pet, as the UCL coursework's HDF5 files (cargo feature `hdf5`) or as the
    /// original release (`images/`, `annotations/`; read whichever the folder holds): any
    /// subset of `seg`, `cls`, `box`, `rec`, in the given order.
    Pets {
        /// Folder under the data directory (`pets`).
        #[serde(default = "default_pets_folder")]
        folder: String,
        /// The tasks, in order.
        tasks: Vec<String>,
        /// Use only the first this many samples of each split.
        #[serde(default)]
        limit: Option<usize>,
        /// How the original release is resized, split and labelled (its split is drawn with
        /// the experiment's first seed, the same for every run).
        #[serde(default)]
        release: mtcool_data::pets_release::ReleaseOptions,
    },
}

fn default_mnist_folder() -> String {
    "mnist".into()
}
fn default_fashion_folder() -> String {
    "fashion-mnist".into()
}
fn default_organ_folder() -> String {
    "organcmnist".into()
}
fn default_refuge_folder() -> String {
    "refuge".into()
}
fn default_hrfav_folder() -> String {
    "hrfav".into()
}
fn default_pets_folder() -> String {
    "pets".into()
}
fn default_av_folder() -> String {
    "av".into()
}
fn default_refuge_train() -> usize {
    800
}
fn default_refuge_test() -> usize {
    400
}
fn default_crop() -> u32 {
    512
}
fn default_output() -> u32 {
    256
}
fn default_hrfav_train() -> usize {
    15
}
fn default_patch() -> usize {
    256
}
fn default_patches_per_epoch() -> usize {
    600
}
fn default_overlap() -> usize {
    32
}

fn default_train_size() -> usize {
    mtcool_data::mnist::PAPER_TRAIN_SIZE
}

/// The pets tasks, in the result files' names.
pub const PET_TASKS: [&str; 4] = ["seg", "cls", "box", "rec"];

impl DataConfig {
    /// The folder under the data directory.
    pub fn folder(&self) -> &str {
        match self {
            DataConfig::Mnist { folder, .. }
            | DataConfig::FashionMnist { folder, .. }
            | DataConfig::Organcmnist { folder, .. }
            | DataConfig::Multi { folder, .. }
            | DataConfig::Refuge { folder, .. }
            | DataConfig::Hrfav { folder, .. }
            | DataConfig::Pets { folder, .. } => folder,
        }
    }

    /// Whether the train / test split is drawn with the run's seed (REFUGE, HRF-AV).
    pub fn split_depends_on_seed(&self) -> bool {
        matches!(self, DataConfig::Refuge { .. } | DataConfig::Hrfav { .. })
    }

    /// Whether the tasks predict images (masks, boxes, reconstructions): REFUGE, HRF-AV, pets.
    pub fn is_image_to_image(&self) -> bool {
        matches!(
            self,
            DataConfig::Refuge { .. } | DataConfig::Hrfav { .. } | DataConfig::Pets { .. }
        )
    }

    /// The class tasks of the class-split datasets (`None` for the others).
    pub fn class_tasks(&self) -> Option<&[TaskSpec]> {
        match self {
            DataConfig::Mnist { tasks, .. }
            | DataConfig::FashionMnist { tasks, .. }
            | DataConfig::Organcmnist { tasks, .. } => Some(tasks),
            _ => None,
        }
    }

    /// Task names in order (the result files' `<task>/…` keys).
    pub fn task_names(&self) -> Vec<String> {
        match self {
            DataConfig::Refuge { .. } => vec!["seg".into(), "cls".into()],
            DataConfig::Hrfav { .. } => vec!["vessel".into(), "av".into()],
            DataConfig::Pets { tasks, .. } => tasks.clone(),
            DataConfig::Multi { .. } => vec!["left".into(), "right".into()],
            _ => self
                .class_tasks()
                .unwrap_or_default()
                .iter()
                .map(|t| t.name.clone())
                .collect(),
        }
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if let Some(tasks) = self.class_tasks() {
            let classes: Vec<ClassTask> = tasks.iter().map(ClassTask::from).collect();
            mtcool_data::tasks::validate_tasks(&classes).map_err(|e| e.to_string())?;
            let max = match self {
                DataConfig::Organcmnist { .. } => mtcool_data::organcmnist::CLASSES as u8 - 1,
                _ => 9,
            };
            if classes.iter().flat_map(|t| &t.classes).any(|&c| c > max) {
                return Err(format!("this dataset's classes are 0..={max}"));
            }
        }
        match self {
            DataConfig::Multi { train_size, .. } if *train_size == 0 => {
                return Err("multi: train_size must be ≥ 1".into());
            }
            DataConfig::Pets { tasks, release, .. } => {
                if tasks.is_empty() {
                    return Err("pets needs at least one task".into());
                }
                let f = release.fractions;
                if release.size == 0
                    || f.iter().any(|x| !x.is_finite() || *x < 0.0)
                    || f.iter().sum::<f64>() <= 0.0
                {
                    return Err(format!(
                        "pets: release.size must be ≥ 1 and release.fractions non-negative with \
                         a positive sum, got size {} and fractions {f:?}",
                        release.size
                    ));
                }
                for (i, t) in tasks.iter().enumerate() {
                    if !PET_TASKS.contains(&t.as_str()) {
                        return Err(format!(
                            "unknown pets task `{t}` (known: seg, cls, box, rec)"
                        ));
                    }
                    if tasks[..i].contains(t) {
                        return Err(format!("pets task `{t}` is listed twice"));
                    }
                }
            }
            DataConfig::Refuge {
                train,
                test,
                crop_size,
                output_size,
                ..
            } if *train == 0 || *test == 0 || *crop_size == 0 || *output_size == 0 => {
                return Err("refuge: train, test, crop_size and output_size must be ≥ 1".into());
            }
            DataConfig::Hrfav {
                train,
                patch_size,
                patches_per_epoch,
                overlap,
                ..
            } => {
                if *train == 0 || *patch_size == 0 || *patches_per_epoch == 0 {
                    return Err("hrfav: train, patch_size and patches_per_epoch must be ≥ 1".into());
                }
                if overlap >= patch_size {
                    return Err(format!(
                        "hrfav: overlap {overlap} must be smaller than patch_size {patch_size}"
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// One task of a class split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// Task name, used in metric keys.
    pub name: String,
    /// Original classes of the task, in the order of its labels.
    pub classes: Vec<u8>,
}

impl From<&TaskSpec> for ClassTask {
    fn from(spec: &TaskSpec) -> Self {
        ClassTask {
            name: spec.name.clone(),
            classes: spec.classes.clone(),
        }
    }
}

/// The network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Architecture.
    pub arch: Arch,
    /// Convolution and pooling implementation: `fast` (custom CPU ops) or `candle`.
    #[serde(default)]
    pub ops: Ops,
    /// Encoder widths of `unet` / `psinet` (`w_0..w_depth`); default: the paper's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widths: Option<Vec<usize>>,
    /// Down-sampling levels of `psinet` (the report's depth ablation: 3); default 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<usize>,
}

/// Architectures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// LeNet-MT (28 × 28 grey input; MNIST, Fashion-MNIST, OrganCMNIST).
    Lenet,
    /// U-Net-MT: a partitioned 4-level encoder, one decoder or classifier per task (REFUGE,
    /// HRF-AV).
    Unet,
    /// Psi-Net: one encoder, a U-Net decoder per dense task, dense heads (pets).
    Psinet,
    /// MultiLeNet: LeNet-MT's encoder with two-layer heads (Sener & Koltun; MultiMNIST).
    MultiLenet,
}

/// Which implementation of convolution and pooling the model uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ops {
    /// candle's own `conv2d` / `max_pool2d` (for comparison).
    Candle,
    /// The custom ops of `mtcool_models::ops` (im2col + GEMM, argmax pooling) on the CPU.
    #[default]
    Fast,
}

impl From<Ops> for mtcool_models::ops::OpsBackend {
    fn from(ops: Ops) -> Self {
        match ops {
            Ops::Candle => Self::Candle,
            Ops::Fast => Self::Fast,
        }
    }
}

impl std::str::FromStr for Ops {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "candle" => Ok(Ops::Candle),
            "fast" => Ok(Ops::Fast),
            other => Err(format!("unknown ops `{other}` (expected fast or candle)")),
        }
    }
}

/// Training schedule and optimiser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingConfig {
    /// Epochs per run; test metrics are those after the last epoch unless early stopping is
    /// on.
    pub epochs: usize,
    /// Early stopping: stop once the summed validation loss has not improved for this many
    /// epochs, and test the parameters of the best epoch (the UCL report uses 5). Absent: the
    /// final-epoch rule of the MT-COOL tables.
    pub early_stopping_patience: Option<usize>,
    /// Mini-batch size per task.
    pub batch_size: usize,
    /// Runs (seeds) per method.
    pub runs: usize,
    /// Seed of the first run; run r uses `seed + r`.
    pub seed: u64,
    /// The optimiser of every method (one per task for the alternating methods), unless a
    /// grid row names another (`uncertainty[optimizer = "adam"]`).
    pub optimizer: OptimizerKind,
    /// SGD hyper-parameters.
    pub sgd: SgdConfig,
    /// Adam hyper-parameters.
    pub adam: AdamConfig,
    /// Mirror each training image left-right with probability ½ (masks mirrored and boxes
    /// reflected with it), drawn from the run's own augmentation stream. Image-to-image
    /// datasets only; off by default (the papers name no augmentation).
    pub horizontal_flip: bool,
    /// Save the run's state every this many epochs, so an interrupted run resumes from its
    /// last saved epoch (0: never). Default: every epoch for the image-to-image datasets,
    /// never for the digit and organ ones (their epochs take seconds).
    pub checkpoint_every: Option<usize>,
    /// How the learning rate changes over the epochs (constant unless given), e.g.
    /// `{ kind = "step", every = 30, gamma = 0.5 }` or `{ kind = "cosine" }`.
    pub lr_schedule: LrSchedule,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            epochs: 20,
            early_stopping_patience: None,
            batch_size: 64,
            runs: 5,
            seed: 0,
            optimizer: OptimizerKind::Sgd,
            sgd: SgdConfig::default(),
            adam: AdamConfig::default(),
            horizontal_flip: false,
            checkpoint_every: None,
            lr_schedule: LrSchedule::Constant,
        }
    }
}

/// What `--quick` changes: fewer epochs, images and runs, same code path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuickConfig {
    /// Epochs of a quick run.
    pub epochs: usize,
    /// Runs per method.
    pub runs: usize,
    /// Use only the first this many training images (before the task split).
    pub train_limit: Option<usize>,
    /// MT-COOL warm-up epochs in a quick run.
    pub warmup_epochs: usize,
    /// Keys of `[data]` replaced in a quick run (e.g. smaller crops, fewer images).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<toml::Table>,
    /// Keys of `[model]` replaced in a quick run (e.g. narrower widths).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<toml::Table>,
}

impl Default for QuickConfig {
    fn default() -> Self {
        Self {
            epochs: 2,
            runs: 1,
            train_limit: None,
            warmup_epochs: 1,
            data: None,
            model: None,
        }
    }
}

/// A published number: mean and, where the paper gives one, standard deviation (fractions).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaperValue {
    /// Mean over runs.
    pub mean: f64,
    /// Standard deviation over runs, if published.
    #[serde(default)]
    pub sd: Option<f64>,
}

/// The paper's table: metric keys in column order, and per method its numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaperTable {
    /// Where the numbers come from.
    #[serde(default)]
    pub source: String,
    /// Metric keys (`<task>/<metric>`) in the table's column order.
    #[serde(default)]
    pub metrics: Vec<String>,
    /// Parameter multiple of each method's network (`1×`, `2×`).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Numbers per method and metric key.
    #[serde(default)]
    pub methods: BTreeMap<String, BTreeMap<String, PaperValue>>,
}

/// The settings one run actually uses, after `--quick` and command-line overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// Whether this is a quick run.
    pub quick: bool,
    /// Epochs.
    pub epochs: usize,
    /// Runs per method.
    pub runs: usize,
    /// First seed.
    pub seed: u64,
    /// Early-stopping patience in epochs (`None`: final-epoch rule).
    pub early_stopping_patience: Option<usize>,
    /// Mini-batch size per task.
    pub batch_size: usize,
    /// Training images used (before the task split), if limited.
    pub train_limit: Option<usize>,
    /// Which optimiser.
    pub optimizer: OptimizerKind,
    /// SGD settings.
    pub sgd: SgdConfig,
    /// Adam settings.
    pub adam: AdamConfig,
    /// Random left-right mirroring of training batches.
    pub horizontal_flip: bool,
    /// Epochs between saves of the state to resume from (0: never; not part of fingerprints).
    pub checkpoint_every: usize,
    /// The learning-rate schedule.
    pub lr_schedule: LrSchedule,
    /// MT-COOL settings (warm-up adjusted for quick runs).
    pub mtcool: MtCoolConfig,
    /// The baselines' options.
    pub baselines: BaselineConfig,
    /// Diagnostics recorded by each run (not part of result fingerprints).
    pub diagnostics: DiagnosticsConfig,
    /// The network (with `--ops` applied).
    pub model: ModelConfig,
}

impl RunSettings {
    /// Everything `mtcool_optim::build` needs.
    pub fn method_options(&self) -> MethodOptions {
        MethodOptions {
            optimizer: self.optimizer_config(),
            mtcool: self.mtcool,
            baselines: self.baselines.clone(),
        }
    }

    /// The optimiser with its hyper-parameters.
    pub fn optimizer_config(&self) -> OptimizerConfig {
        match self.optimizer {
            OptimizerKind::Sgd => self.sgd.into(),
            OptimizerKind::Adam => self.adam.into(),
        }
    }

    /// The options that shape a run of `method`, as JSON (for result fingerprints: changing
    /// one method's options must not invalidate the other methods' runs).
    pub fn fingerprint_json(&self, method: MethodKind) -> String {
        let own = mtcool_optim::registry::options_json(method, &self.mtcool, &self.baselines);
        let common = (
            self.quick,
            self.epochs,
            self.early_stopping_patience,
            self.batch_size,
            self.train_limit,
            self.sgd,
            self.model.ops,
        );
        // Runs with SGD and without augmentation keep the fingerprints they had before Adam
        // and flips existed.
        let optimizer = match self.optimizer {
            OptimizerKind::Sgd => String::new(),
            OptimizerKind::Adam => json(&("adam", self.adam)),
        };
        let flip = if self.horizontal_flip { "hflip" } else { "" };
        let schedule = if self.lr_schedule.is_constant() {
            String::new()
        } else {
            json(&self.lr_schedule)
        };
        format!("{}{optimizer}{flip}{schedule}{own}", json(&common))
    }
}

/// Serialises a setting for result fingerprints (every type here serialises infallibly).
pub(crate) fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// One row of a grid: a method, optionally with some of its options replaced, written
/// `mtcool[noise_bound = 0.05]` or `fixed[weights = [1, 1, 0.001]]` (the bracket holds the
/// keys of an inline TOML table over `[mtcool]` or `[baselines.<method>]`). Parameter studies
/// and the weight rows of the pets table are such variants.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodSpec {
    /// The row's name, as written (result keys and files use it).
    pub label: String,
    /// The method.
    pub kind: MethodKind,
    /// Replaced options.
    pub options: toml::Table,
}

impl MethodSpec {
    /// The training keys the row sets ([`ROW_KEYS`]), without the method's own options.
    pub fn training_keys(&self) -> toml::Table {
        self.options
            .iter()
            .filter(|(k, _)| ROW_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The plain method.
    pub fn plain(kind: MethodKind) -> Self {
        Self {
            label: kind.name().to_string(),
            kind,
            options: toml::Table::new(),
        }
    }

    /// A name for files: the label with every character other than letters, digits, `.`, `-`
    /// and `_` replaced by `_`.
    pub fn file_stem(&self) -> String {
        self.label
            .trim()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }
}

/// Splits a `--methods` list at the commas outside brackets:
/// `joint,fixed[weights = [1, 0.5]]` → `joint`, `fixed[weights = [1, 0.5]]`.
pub fn split_method_list(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut current = String::new();
    for c in list.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth <= 0 => {
                out.push(std::mem::take(&mut current).trim().to_string());
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    out.push(current.trim().to_string());
    out.retain(|m| !m.is_empty());
    out
}

impl std::str::FromStr for MethodSpec {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let label = s.trim();
        let (name, options) = match label.split_once('[') {
            Some((name, rest)) => {
                let Some(body) = rest.trim_end().strip_suffix(']') else {
                    return Err(format!("`{label}`: a `[` without its closing `]`"));
                };
                let doc = format!("v = {{ {body} }}");
                let table: toml::Table = toml::from_str(&doc)
                    .map_err(|e| format!("`{label}`: bad options: {}", e.message()))?;
                match table.get("v") {
                    Some(toml::Value::Table(t)) => (name.trim(), t.clone()),
                    _ => return Err(format!("`{label}`: bad options")),
                }
            }
            None => (label, toml::Table::new()),
        };
        let kind: MethodKind = name
            .parse()
            .map_err(|e: mtcool_optim::OptimError| e.to_string())?;
        let method_keys = options.keys().filter(|k| !ROW_KEYS.contains(&k.as_str()));
        if method_keys.count() > 0 && !kind.has_options() {
            return Err(format!("`{label}`: method {kind} has no options"));
        }
        Ok(Self {
            label: label.to_string(),
            kind,
            options,
        })
    }
}

/// Keys a grid row may set for any method (the others are the method's own options):
/// `optimizer = "sgd" | "adam"`, `lr_schedule`, `epochs` and `batch_size`
/// ([`RunSettings::apply_training_keys`]).
pub const ROW_KEYS: [&str; 4] = ["optimizer", "lr_schedule", "epochs", "batch_size"];

impl RunSettings {
    /// The settings of one grid row: its method's options replaced as the row says.
    pub fn for_method(&self, spec: &MethodSpec) -> std::result::Result<RunSettings, String> {
        let mut out = self.clone();
        let fail = |e: String| format!("`{}`: {e}", spec.label);
        let mut options = spec.options.clone();
        out.apply_training_keys(&mut options).map_err(fail)?;
        if options.is_empty() {
            return Ok(out);
        }
        match spec.kind.info().options {
            OptionsAt::MtCool => {
                out.mtcool = merge(&self.mtcool, &options).map_err(fail)?;
            }
            OptionsAt::Nowhere => {
                return Err(fail(format!("method {} has no options", spec.kind)));
            }
            OptionsAt::Baselines => {
                let kind = spec.kind;
                let mut table =
                    toml::Table::try_from(&self.baselines).map_err(|e| e.to_string())?;
                let section = table
                    .entry(kind.name().to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if let toml::Value::Table(t) = section {
                    for (k, v) in &options {
                        t.insert(k.clone(), v.clone());
                    }
                }
                out.baselines = toml::Value::Table(table)
                    .try_into()
                    .map_err(|e: toml::de::Error| fail(e.message().to_string()))?;
            }
        }
        Ok(out)
    }
}

impl RunSettings {
    /// Takes the training keys a grid row may set out of `options`: `optimizer`,
    /// `lr_schedule`, `batch_size`, and `epochs` (ignored in quick runs, which keep
    /// `[quick]`'s epochs).
    fn apply_training_keys(
        &mut self,
        options: &mut toml::Table,
    ) -> std::result::Result<(), String> {
        fn parse<T: serde::de::DeserializeOwned>(
            key: &str,
            value: toml::Value,
        ) -> std::result::Result<T, String> {
            value
                .try_into()
                .map_err(|e: toml::de::Error| format!("{key}: {}", e.message()))
        }
        if let Some(value) = options.remove("optimizer") {
            self.optimizer = parse("optimizer", value)?;
        }
        if let Some(value) = options.remove("lr_schedule") {
            self.lr_schedule = parse("lr_schedule", value)?;
            self.lr_schedule.validate()?;
        }
        if let Some(value) = options.remove("batch_size") {
            self.batch_size = parse("batch_size", value)?;
            if self.batch_size == 0 {
                return Err("batch_size must be ≥ 1".into());
            }
        }
        if let Some(value) = options.remove("epochs") {
            let epochs: usize = parse("epochs", value)?;
            if epochs == 0 {
                return Err("epochs must be ≥ 1".into());
            }
            if !self.quick {
                self.epochs = epochs;
            }
        }
        Ok(())
    }
}

/// Command-line overrides of a configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// `--quick`.
    pub quick: bool,
    /// `--epochs N`.
    pub epochs: Option<usize>,
    /// `--runs N`.
    pub runs: Option<usize>,
    /// `--seed S`.
    pub seed: Option<u64>,
    /// `--ops fast|candle`.
    pub ops: Option<Ops>,
}

impl ExperimentConfig {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        Self::parse(&text, path)
    }

    /// Parses and validates configuration text; `path` is used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let config: ExperimentConfig = toml::from_str(text).map_err(|e| TrainError::Config {
            path: path.to_path_buf(),
            problem: e.message().to_string()
                + &e.span()
                    .map(|s| format!(" (at byte {})", s.start))
                    .unwrap_or_default(),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let fail = |problem: String| TrainError::Config {
            path: path.to_path_buf(),
            problem,
        };
        let specs = self.method_specs().map_err(|e| fail(e.to_string()))?;
        if let Some(study) = &self.study {
            study
                .reference
                .parse::<MethodKind>()
                .map_err(|e| fail(format!("study.reference: {e}")))?;
        }
        let settings = self.settings(&Overrides::default());
        for spec in &specs {
            settings.for_method(spec).map_err(&fail)?;
        }
        let t = &self.training;
        if t.epochs == 0 || t.batch_size == 0 || t.runs == 0 {
            return Err(fail(
                "training.epochs, batch_size and runs must be ≥ 1".into(),
            ));
        }
        t.lr_schedule
            .validate()
            .map_err(|e| fail(format!("training.{e}")))?;
        if t.early_stopping_patience == Some(0) {
            return Err(fail("training.early_stopping_patience must be ≥ 1".into()));
        }
        if self.quick.epochs == 0 || self.quick.runs == 0 {
            return Err(fail("quick.epochs and quick.runs must be ≥ 1".into()));
        }
        self.data.validate().map_err(fail)?;
        if t.horizontal_flip && !self.data.is_image_to_image() {
            return Err(fail(
                "training.horizontal_flip is for the image-to-image datasets (refuge, hrfav, \
                 pets); digits and organ slices are not mirror-symmetric"
                    .into(),
            ));
        }
        let wants = match &self.data {
            DataConfig::Refuge { .. } | DataConfig::Hrfav { .. } => Arch::Unet,
            DataConfig::Pets { .. } => Arch::Psinet,
            DataConfig::Multi { .. } => Arch::MultiLenet,
            _ => Arch::Lenet,
        };
        if self.model.arch != wants {
            return Err(fail(format!(
                "model.arch {:?} does not fit this dataset (expected {:?})",
                self.model.arch, wants
            )));
        }
        if (self.quick.data.is_some() || self.quick.model.is_some()) && !self.quick_table_free() {
            self.resolved(true)
                .and_then(|c| c.validate(path))
                .map_err(|e| fail(format!("[quick] overrides: {e}")))?;
        }
        Ok(())
    }

    fn quick_table_free(&self) -> bool {
        self.quick.data.as_ref().is_none_or(|t| t.is_empty())
            && self.quick.model.as_ref().is_none_or(|t| t.is_empty())
    }

    /// The configuration a run uses: for `quick`, `[quick.data]` and `[quick.model]` replace
    /// the keys they name.
    pub fn resolved(&self, quick: bool) -> Result<ExperimentConfig> {
        if !quick || self.quick_table_free() {
            return Ok(self.clone());
        }
        let problem = |e: String| TrainError::Config {
            path: PathBuf::from(format!("{}.toml", self.name)),
            problem: format!("[quick] overrides: {e}"),
        };
        let mut out = self.clone();
        out.quick.data = None;
        out.quick.model = None;
        if let Some(over) = &self.quick.data {
            out.data = merge(&self.data, over).map_err(problem)?;
        }
        if let Some(over) = &self.quick.model {
            out.model = merge(&self.model, over).map_err(problem)?;
        }
        Ok(out)
    }

    /// The grid's methods.
    pub fn method_kinds(&self) -> Result<Vec<MethodKind>> {
        Ok(self.method_specs()?.into_iter().map(|s| s.kind).collect())
    }

    /// The grid's rows: methods and method variants, in table order.
    pub fn method_specs(&self) -> Result<Vec<MethodSpec>> {
        let specs = self
            .methods
            .iter()
            .map(|m| m.parse::<MethodSpec>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|problem| TrainError::Config {
                path: PathBuf::from(format!("{}.toml", self.name)),
                problem,
            })?;
        for (i, spec) in specs.iter().enumerate() {
            if specs[..i].iter().any(|o| o.label == spec.label) {
                return Err(TrainError::Config {
                    path: PathBuf::from(format!("{}.toml", self.name)),
                    problem: format!("method `{}` is listed twice", spec.label),
                });
            }
        }
        Ok(specs)
    }

    /// The rows named `labels` (`--methods`): a row of the config by its label, or any method
    /// (variant) written out.
    pub fn select_methods(&self, labels: &[String]) -> Result<Vec<MethodSpec>> {
        let own = self.method_specs()?;
        labels
            .iter()
            .map(|l| match own.iter().find(|s| s.label == l.trim()) {
                Some(spec) => Ok(spec.clone()),
                None => l
                    .parse::<MethodSpec>()
                    .map_err(|problem| TrainError::Config {
                        path: "--methods".into(),
                        problem,
                    }),
            })
            .collect()
    }

    /// Task names in order.
    pub fn task_names(&self) -> Vec<String> {
        self.data.task_names()
    }

    /// The settings after `--quick` and overrides.
    pub fn settings(&self, overrides: &Overrides) -> RunSettings {
        let t = &self.training;
        let mut mtcool = self.mtcool;
        let (epochs, runs, train_limit) = if overrides.quick {
            mtcool.warmup_epochs = self.quick.warmup_epochs;
            (self.quick.epochs, self.quick.runs, self.quick.train_limit)
        } else {
            (t.epochs, t.runs, None)
        };
        RunSettings {
            quick: overrides.quick,
            epochs: overrides.epochs.unwrap_or(epochs).max(1),
            runs: overrides.runs.unwrap_or(runs).max(1),
            seed: overrides.seed.unwrap_or(t.seed),
            early_stopping_patience: t.early_stopping_patience,
            batch_size: t.batch_size,
            train_limit,
            optimizer: t.optimizer,
            sgd: t.sgd,
            adam: t.adam,
            horizontal_flip: t.horizontal_flip,
            checkpoint_every: t
                .checkpoint_every
                .unwrap_or(if !self.data.is_image_to_image() { 0 } else { 1 }),
            lr_schedule: t.lr_schedule,
            mtcool,
            baselines: self.baselines.clone(),
            diagnostics: self.diagnostics.clone(),
            model: ModelConfig {
                ops: overrides.ops.unwrap_or(self.model.ops),
                ..self.model.clone()
            },
        }
    }

    /// The data folder of this experiment under `data_dir`.
    pub fn data_folder(&self, data_dir: &Path) -> PathBuf {
        data_dir.join(self.data.folder())
    }
}

/// `base` with the keys of `over` replaced (one level deep), as the same type.
fn merge<T: Serialize + serde::de::DeserializeOwned>(
    base: &T,
    over: &toml::Table,
) -> std::result::Result<T, String> {
    let mut table = toml::Table::try_from(base).map_err(|e| e.to_string())?;
    for (k, v) in over {
        table.insert(k.clone(), v.clone());
    }
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| e.message().to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MINIMAL: &str = r#"
name = "toy"
methods = ["joint", "mtcool"]
[data]
dataset = "mnist"
tasks = [{ name = "even", classes = [0, 2] }, { name = "odd", classes = [1, 3] }]
[model]
arch = "lenet"
[training]
epochs = 3
"#;

    #[test]
    fn defaults_fill_what_is_not_given() {
        let c = ExperimentConfig::parse(MINIMAL, Path::new("toy.toml")).unwrap();
        assert_eq!(c.training.batch_size, 64);
        assert_eq!(c.mtcool, MtCoolConfig::default());
        let s = c.settings(&Overrides {
            quick: true,
            ..Default::default()
        });
        assert_eq!((s.epochs, s.mtcool.warmup_epochs), (2, 1));
    }

    #[test]
    fn unknown_keys_are_rejected_with_the_file_name() {
        let text = MINIMAL.replace("epochs = 3", "epochs = 3\nlearning_rate = 0.1");
        let err = ExperimentConfig::parse(&text, Path::new("toy.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("toy.toml: ") && err.contains("learning_rate"),
            "{err}"
        );
    }

    #[test]
    fn method_variants_replace_their_options() {
        let text = MINIMAL.replace(
            r#"methods = ["joint", "mtcool"]"#,
            r#"methods = ["joint", "mtcool", "mtcool[noise_bound = 0.05, samples = 2]", "cagrad[c = 0.2]"]"#,
        );
        let c = ExperimentConfig::parse(&text, Path::new("toy.toml")).unwrap();
        let specs = c.method_specs().unwrap();
        assert_eq!(specs.len(), 4);
        let base = c.settings(&Overrides::default());
        let swept = base.for_method(&specs[2]).unwrap();
        assert_eq!((swept.mtcool.noise_bound, swept.mtcool.samples), (0.05, 2));
        assert_eq!(swept.mtcool.kl_weight, base.mtcool.kl_weight);
        let cagrad = base.for_method(&specs[3]).unwrap();
        assert_eq!(cagrad.baselines.cagrad.c, 0.2);
        assert_ne!(
            swept.fingerprint_json(specs[2].kind),
            base.fingerprint_json(specs[1].kind)
        );
        assert_eq!(
            specs[2].file_stem(),
            "mtcool_noise_bound___0.05__samples___2_"
        );
    }

    #[test]
    fn rows_may_set_schedule_epochs_and_batch_size() {
        let text = MINIMAL.replace(
            r#"methods = ["joint", "mtcool"]"#,
            r#"methods = ["joint", 'joint[epochs = 50, batch_size = 256, lr_schedule = { kind = "cosine" }]', 'mtcool[lr_schedule = { kind = "step", every = 2, gamma = 0.5 }, noise_bound = 0.1]']"#,
        );
        let c = ExperimentConfig::parse(&text, Path::new("toy.toml")).unwrap();
        let specs = c.method_specs().unwrap();
        let base = c.settings(&Overrides::default());
        assert_eq!(base.lr_schedule, LrSchedule::Constant);
        let long = base.for_method(&specs[1]).unwrap();
        assert_eq!((long.epochs, long.batch_size), (50, 256));
        assert_eq!(long.lr_schedule, LrSchedule::Cosine { min_factor: 0.0 });
        let stepped = base.for_method(&specs[2]).unwrap();
        assert_eq!(stepped.mtcool.noise_bound, 0.1);
        assert!(matches!(
            stepped.lr_schedule,
            LrSchedule::Step { every: 2, .. }
        ));
        // The constant schedule leaves fingerprints as they were before schedules existed.
        let plain = base.fingerprint_json(MethodKind::Joint);
        assert!(
            !plain.contains("constant") && !plain.contains("kind"),
            "{plain}"
        );
        let cosine = LrSchedule::Cosine { min_factor: 0.0 };
        let scheduled = RunSettings {
            lr_schedule: cosine,
            ..base.clone()
        };
        assert_ne!(scheduled.fingerprint_json(MethodKind::Joint), plain);
        // Quick runs keep [quick]'s epochs.
        let quick = c.settings(&Overrides {
            quick: true,
            ..Default::default()
        });
        assert_eq!(quick.for_method(&specs[1]).unwrap().epochs, quick.epochs);
        for bad in [
            "joint[epochs = 0]",
            r#"joint[lr_schedule = { kind = "step", every = 0, gamma = 0.5 }]"#,
            r#"joint[lr_schedule = { kind = "linear" }]"#,
        ] {
            let text = MINIMAL.replace(
                r#"methods = ["joint", "mtcool"]"#,
                &format!("methods = ['{bad}']"),
            );
            let err = ExperimentConfig::parse(&text, Path::new("toy.toml")).unwrap_err();
            assert!(err.to_string().starts_with("toy.toml: "), "{bad}: {err}");
        }
        let text = MINIMAL.replace(
            "epochs = 3",
            "epochs = 3\nlr_schedule = { kind = \"cosine\", min_factor = 1.5 }",
        );
        let err = ExperimentConfig::parse(&text, Path::new("toy.toml")).unwrap_err();
        assert!(err.to_string().contains("min_factor"), "{err}");
    }

    #[test]
    fn bad_pets_release_options_are_rejected() {
        let pets = include_str!("../../../experiments/pets.toml");
        assert!(ExperimentConfig::parse(pets, Path::new("pets.toml")).is_ok());
        for bad in [
            "size = 0",
            "fractions = [0.0, 0.0, 0.0]",
            "border = \"edge\"",
        ] {
            let text = format!("{pets}\n[data.release]\n{bad}\n");
            let err = ExperimentConfig::parse(&text, Path::new("pets.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("pets.toml: "), "{bad}: {err}");
        }
    }

    #[test]
    fn flips_are_refused_for_class_datasets() {
        let text = MINIMAL.replace("epochs = 3", "epochs = 3\nhorizontal_flip = true");
        let err = ExperimentConfig::parse(&text, Path::new("toy.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("horizontal_flip"), "{err}");
    }

    #[test]
    fn a_row_may_name_its_optimizer() {
        let text = MINIMAL.replace(
            r#"methods = ["joint", "mtcool"]"#,
            r#"methods = ["joint", 'joint[optimizer = "adam"]', 'uncertainty[optimizer = "adam", form = "libmtl"]']"#,
        );
        let c = ExperimentConfig::parse(&text, Path::new("toy.toml")).unwrap();
        let specs = c.method_specs().unwrap();
        let base = c.settings(&Overrides::default());
        assert_eq!(base.optimizer, OptimizerKind::Sgd);
        let adam = base.for_method(&specs[1]).unwrap();
        assert_eq!(
            adam.method_options().optimizer,
            OptimizerConfig::Adam(AdamConfig::default())
        );
        assert_ne!(
            adam.fingerprint_json(MethodKind::Joint),
            base.fingerprint_json(MethodKind::Joint)
        );
        let uw = base.for_method(&specs[2]).unwrap();
        assert_eq!(uw.optimizer, OptimizerKind::Adam);
        assert_eq!(
            uw.baselines.uncertainty.form,
            mtcool_optim::methods::uncertainty::UncertaintyForm::Libmtl
        );
    }

    #[test]
    fn method_lists_split_outside_brackets() {
        assert_eq!(
            split_method_list("joint, fixed[weights = [1, 0.5]],mtcool[samples = 2]"),
            ["joint", "fixed[weights = [1, 0.5]]", "mtcool[samples = 2]"]
        );
        assert_eq!(split_method_list("pcgrad,"), ["pcgrad"]);
    }

    #[test]
    fn bad_method_variants_are_rejected() {
        for (bad, expect) in [
            ("mtcool[noise_bond = 0.05]", "noise_bond"),
            ("joint[x = 1]", "has no options"),
            ("mtcool[noise_bound = ]", "bad options"),
            ("mtcool[noise_bound = 0.1", "closing"),
            ("joint[optimizer = 'adagrad']", "optimizer"),
        ] {
            let text = MINIMAL.replace(
                r#"methods = ["joint", "mtcool"]"#,
                &format!(r#"methods = ["joint", "{bad}"]"#),
            );
            let err = ExperimentConfig::parse(&text, Path::new("toy.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expect), "{bad}: {err}");
        }
    }

    #[test]
    fn unknown_methods_are_rejected() {
        let text = MINIMAL.replace("\"mtcool\"", "\"mtcol\"");
        let err = ExperimentConfig::parse(&text, Path::new("toy.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mtcol") && err.contains("known methods"),
            "{err}"
        );
    }
}
