//! `cargo xtask reproduce … --slurm`: writes the grid's job array and merge job
//! (`mtcool_train::slurm`), builds the `mtcool` binary they run, and submits them with
//! `sbatch` (or, with `--slurm-dry-run`, prints them).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};
use mtcool_train::slurm::{submit, write_scripts, SlurmSettings};
use mtcool_train::GridRequest;

/// The SLURM options of `reproduce`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Args {
    /// Submit the grid as a SLURM job array (one task per pending run) plus a merge job
    /// that writes the report when the array ends.
    #[arg(long)]
    slurm: bool,
    /// Write the scripts and print them, without submitting.
    #[arg(long)]
    slurm_dry_run: bool,
    /// An extra `#SBATCH` option for every task, e.g. `--slurm-option=--partition=gpu`
    /// (repeatable). GPU grids ask for `--gres=gpu:1` per task unless one is given here.
    #[arg(
        long = "slurm-option",
        value_name = "OPTION",
        allow_hyphen_values = true
    )]
    options: Vec<String>,
    /// The `mtcool` executable the tasks run (default: built here, next to this program;
    /// give a CUDA build for GPU grids).
    #[arg(long, value_name = "FILE")]
    slurm_binary: Option<PathBuf>,
}

impl Args {
    /// Whether the grid goes to SLURM.
    pub fn enabled(&self) -> bool {
        self.slurm || self.slurm_dry_run
    }
}

/// Writes the scripts of one grid and submits them (or prints them).
pub fn submit_grid(request: &GridRequest, args: &Args) -> Result<()> {
    let binary = match &args.slurm_binary {
        Some(b) if b.is_file() => b.clone(),
        Some(b) => bail!("{}: --slurm-binary is not a file", b.display()),
        None => build_mtcool()?,
    };
    let settings = SlurmSettings {
        binary,
        options: args.options.clone(),
    };
    let scripts = write_scripts(request, &settings)?;
    if scripts.runs.is_empty() {
        println!(
            "{}: all {} run(s) have results; nothing to submit (rebuild the report with \
             `cargo xtask report`)",
            request.config.name, scripts.total
        );
        return Ok(());
    }
    println!(
        "wrote {} ({} task(s) for the {} pending run(s) of {}) and {}",
        scripts.array.display(),
        scripts.runs.len(),
        scripts.runs.len(),
        scripts.total,
        scripts.merge.display()
    );
    if args.slurm_dry_run {
        for path in [&scripts.array, &scripts.merge] {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read it back", path.display()))?;
            println!("\n# ---- {} ----\n{text}", path.display());
        }
        println!("dry run: nothing submitted");
        return Ok(());
    }
    let ids = submit(&scripts)?;
    println!(
        "submitted array job {} and merge job {} (runs after the array ends)\n\
         follow: squeue -j {},{}   logs: {}\n\
         the report is written to {} when the merge job ends; resubmitting the same command \
         submits only runs without results",
        ids.array,
        ids.merge,
        ids.array,
        ids.merge,
        scripts.logs.display(),
        request.out_dir.join(&request.config.name).display()
    );
    Ok(())
}

/// Builds `mtcool` with this program's features and returns its path (beside this program).
fn build_mtcool() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating this program")?;
    let Some(dir) = exe.parent() else {
        bail!("{}: no folder", exe.display());
    };
    let mut features = Vec::new();
    if cfg!(feature = "hdf5") {
        features.push("hdf5");
    }
    if cfg!(feature = "cuda") {
        features.push("cuda");
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--release", "-p", "mtcool"])
        .current_dir(crate::workspace_root());
    if !features.is_empty() {
        command.args(["--features", &features.join(",")]);
    }
    let status = command
        .status()
        .context("running cargo to build the mtcool binary for the SLURM tasks")?;
    if !status.success() {
        bail!("building mtcool for the SLURM tasks failed (pass --slurm-binary FILE instead)");
    }
    let binary = dir.join(format!("mtcool{}", std::env::consts::EXE_SUFFIX));
    if !binary.is_file() {
        bail!(
            "{}: not found after the build (pass --slurm-binary FILE)",
            binary.display()
        );
    }
    Ok(binary)
}
