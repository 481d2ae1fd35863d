//! Experiment configurations: one TOML file per published table, in `experiments/`.
//!
//! Unknown keys are rejected, so a typo is an error rather than a silently ignored setting.
//! Every hyper-parameter has the documented default; a `[quick]` table says how `--quick`
//! shrinks the run, and a `[paper]` table holds the published numbers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mtcool_data::ClassTask;

use crate::diagnostics::DiagnosticsConfig;
use mtcool_optim::{BaselineConfig, MethodKind, MethodOptions, MtCoolConfig, SgdConfig};
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
}

/// Dataset and split.
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
}

fn default_mnist_folder() -> String {
    "mnist".into()
}

fn default_train_size() -> usize {
    mtcool_data::mnist::PAPER_TRAIN_SIZE
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
}

/// Architectures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// LeNet-MT (28 × 28 grey input).
    Lenet,
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
    /// SGD hyper-parameters (one optimiser per task for the alternating methods).
    pub sgd: SgdConfig,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            epochs: 20,
            early_stopping_patience: None,
            batch_size: 64,
            runs: 5,
            seed: 0,
            sgd: SgdConfig::default(),
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
}

impl Default for QuickConfig {
    fn default() -> Self {
        Self {
            epochs: 2,
            runs: 1,
            train_limit: None,
            warmup_epochs: 1,
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
    /// SGD settings.
    pub sgd: SgdConfig,
    /// MT-COOL settings (warm-up adjusted for quick runs).
    pub mtcool: MtCoolConfig,
    /// The baselines' options.
    pub baselines: BaselineConfig,
    /// Diagnostics recorded by each run (not part of result fingerprints).
    pub diagnostics: DiagnosticsConfig,
    /// Convolution and pooling implementation.
    pub ops: Ops,
}

impl RunSettings {
    /// Everything `mtcool_optim::build` needs.
    pub fn method_options(&self) -> MethodOptions {
        MethodOptions {
            sgd: self.sgd,
            mtcool: self.mtcool,
            baselines: self.baselines.clone(),
        }
    }

    /// The options that shape a run of `method`, as JSON (for result fingerprints: changing
    /// one method's options must not invalidate the other methods' runs).
    pub fn fingerprint_json(&self, method: MethodKind) -> String {
        let b = &self.baselines;
        let own = match method {
            MethodKind::Vanilla | MethodKind::WoReg | MethodKind::MtCool => json(&self.mtcool),
            MethodKind::Fixed => json(&b.fixed),
            MethodKind::Uncertainty => json(&b.uncertainty),
            MethodKind::Mgda => json(&b.mgda),
            MethodKind::GradDrop => json(&b.graddrop),
            MethodKind::CaGrad => json(&b.cagrad),
            MethodKind::Dwa => json(&b.dwa),
            MethodKind::Imtl => json(&b.imtl),
            MethodKind::NashMtl => json(&b.nash_mtl),
            MethodKind::AlignedMtl => json(&b.aligned_mtl),
            MethodKind::Famo => json(&b.famo),
            MethodKind::Joint | MethodKind::Independent | MethodKind::PcGrad => String::new(),
        };
        let common = (
            self.quick,
            self.epochs,
            self.early_stopping_patience,
            self.batch_size,
            self.train_limit,
            self.sgd,
            self.ops,
        );
        format!("{}{own}", json(&common))
    }
}

/// Serialises a setting for result fingerprints (every type here serialises infallibly).
pub(crate) fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
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
        self.method_kinds().map_err(|e| fail(e.to_string()))?;
        let t = &self.training;
        if t.epochs == 0 || t.batch_size == 0 || t.runs == 0 {
            return Err(fail(
                "training.epochs, batch_size and runs must be ≥ 1".into(),
            ));
        }
        if t.early_stopping_patience == Some(0) {
            return Err(fail("training.early_stopping_patience must be ≥ 1".into()));
        }
        if self.quick.epochs == 0 || self.quick.runs == 0 {
            return Err(fail("quick.epochs and quick.runs must be ≥ 1".into()));
        }
        let DataConfig::Mnist { tasks, .. } = &self.data;
        let tasks: Vec<ClassTask> = tasks.iter().map(ClassTask::from).collect();
        mtcool_data::tasks::validate_tasks(&tasks).map_err(|e| fail(e.to_string()))?;
        if tasks.iter().flat_map(|t| &t.classes).any(|&c| c > 9) {
            return Err(fail("MNIST classes are 0..=9".into()));
        }
        Ok(())
    }

    /// The grid's methods.
    pub fn method_kinds(&self) -> std::result::Result<Vec<MethodKind>, mtcool_optim::OptimError> {
        self.methods.iter().map(|m| m.parse()).collect()
    }

    /// Task names in order.
    pub fn task_names(&self) -> Vec<String> {
        let DataConfig::Mnist { tasks, .. } = &self.data;
        tasks.iter().map(|t| t.name.clone()).collect()
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
            sgd: t.sgd,
            mtcool,
            baselines: self.baselines.clone(),
            diagnostics: self.diagnostics.clone(),
            ops: overrides.ops.unwrap_or(self.model.ops),
        }
    }

    /// The data folder of this experiment under `data_dir`.
    pub fn data_folder(&self, data_dir: &Path) -> PathBuf {
        let DataConfig::Mnist { folder, .. } = &self.data;
        data_dir.join(folder)
    }
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
