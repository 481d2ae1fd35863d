//! A grid as a SLURM job array: `<exp>/slurm/array.sbatch` runs one pending run per array
//! task (`mtcool train … --run-index I`), and `<exp>/slurm/merge.sbatch`, submitted with
//! `--dependency=afterany:<array>`, rebuilds the summary, table and figures
//! (`mtcool report …`) from whatever run files exist. Runs with a result file are left out, so
//! resubmitting after some tasks failed submits only those.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Result, TrainError};
use crate::grid::claim::{lock_path, read_owner, staleness};
use crate::grid::{check_writable, GridPlan, GridRequest};

/// How to write the scripts.
#[derive(Debug, Clone)]
pub struct SlurmSettings {
    /// The `mtcool` executable the tasks run (on a file system the nodes share).
    pub binary: PathBuf,
    /// Extra `#SBATCH` options, e.g. `--partition=gpu`, `--time=02:00:00`.
    pub options: Vec<String>,
}

/// The scripts written for one grid.
#[derive(Debug, Clone)]
pub struct SlurmScripts {
    /// `<exp>/slurm/array.sbatch`.
    pub array: PathBuf,
    /// `<exp>/slurm/merge.sbatch`.
    pub merge: PathBuf,
    /// The grid's run indices the array tasks train, in task order.
    pub runs: Vec<usize>,
    /// Runs of the grid in all.
    pub total: usize,
    /// Where the tasks' logs go.
    pub logs: PathBuf,
}

/// Job ids of a submitted grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// The array job.
    pub array: String,
    /// The merge job.
    pub merge: String,
}

/// Writes the array and merge scripts of `request`'s pending runs (those without a result
/// file, and not being trained by a live process).
pub fn write_scripts(request: &GridRequest, settings: &SlurmSettings) -> Result<SlurmScripts> {
    let plan = GridPlan::new(request)?;
    check_writable(&plan.exp_dir)?;
    let runs: Vec<usize> = plan
        .pending()
        .into_iter()
        .filter(|&index| {
            let lock = lock_path(&plan.runs[index].path);
            read_owner(&lock).is_none_or(|owner| staleness(&lock, &owner).is_some())
        })
        .collect();
    let dir = plan.exp_dir.join("slurm");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| TrainError::io(&logs, e))?;
    let mut grid_args = request.run_args()?;
    let gpu = request.device.is_cuda();
    grid_args.extend(["--device".into(), if gpu { "cuda" } else { "cpu" }.into()]);
    let binary = std::path::absolute(&settings.binary).unwrap_or(settings.binary.clone());
    let name = &plan.config.name;
    let array = dir.join("array.sbatch");
    let merge = dir.join("merge.sbatch");
    let array_text = array_script(
        name,
        &runs,
        plan.runs.len(),
        &binary,
        &grid_args,
        gpu,
        settings,
        &logs,
    );
    let merge_text = merge_script(name, &binary, &grid_args, settings, &logs);
    crate::results::write_atomic(&array, array_text.as_bytes())?;
    crate::results::write_atomic(&merge, merge_text.as_bytes())?;
    Ok(SlurmScripts {
        array,
        merge,
        runs,
        total: plan.runs.len(),
        logs,
    })
}

/// Quotes a word for the shell.
fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,".contains(c))
    {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

fn command_line(binary: &Path, subcommand: &str, args: &[String]) -> String {
    let mut words = vec![quote(&binary.display().to_string()), subcommand.to_string()];
    words.extend(args.iter().map(|a| quote(a)));
    words.join(" ")
}

fn is_gpu_option(option: &str) -> bool {
    ["--gres", "--gpus", "-G"]
        .iter()
        .any(|p| option.starts_with(p))
}

#[allow(clippy::too_many_arguments)]
fn array_script(
    name: &str,
    runs: &[usize],
    total: usize,
    binary: &Path,
    grid_args: &[String],
    gpu: bool,
    settings: &SlurmSettings,
    logs: &Path,
) -> String {
    let mut s = String::from("#!/bin/bash\n");
    s += &format!(
        "# mtcool grid `{name}`: {} pending run(s) of {total}, one array task each.\n\
         # Submit by hand:  job=$(sbatch --parsable array.sbatch) && \
         sbatch --dependency=afterany:${{job%%;*}} merge.sbatch\n",
        runs.len()
    );
    s += &format!("#SBATCH --job-name=mtcool-{name}\n");
    s += &format!("#SBATCH --array=0-{}\n", runs.len().saturating_sub(1));
    s += "#SBATCH --ntasks=1\n";
    s += &format!(
        "#SBATCH --output={}\n",
        quote(&logs.join("run-%A_%a.out").display().to_string())
    );
    if gpu && !settings.options.iter().any(|o| is_gpu_option(o)) {
        s += "#SBATCH --gres=gpu:1\n";
    }
    for option in &settings.options {
        s += &format!("#SBATCH {option}\n");
    }
    s += "set -euo pipefail\n";
    let list: Vec<String> = runs.iter().map(usize::to_string).collect();
    s += &format!(
        "# array task -> run index of the grid\nruns=({})\n",
        list.join(" ")
    );
    s += "run=${runs[$SLURM_ARRAY_TASK_ID]}\n";
    s += "if [ -n \"${SLURM_CPUS_PER_TASK:-}\" ]; then export RAYON_NUM_THREADS=\"$SLURM_CPUS_PER_TASK\"; fi\n";
    s += &format!(
        "exec {} --run-index \"$run\"\n",
        command_line(binary, "train", grid_args)
    );
    s
}

fn merge_script(
    name: &str,
    binary: &Path,
    grid_args: &[String],
    settings: &SlurmSettings,
    logs: &Path,
) -> String {
    let mut s = String::from("#!/bin/bash\n");
    s += &format!(
        "# mtcool grid `{name}`: rebuilds summary.json, table.md and the figures from the run \
         files,\n# after the array (submitted with --dependency=afterany:<array job>).\n"
    );
    s += &format!("#SBATCH --job-name=mtcool-{name}-merge\n");
    s += "#SBATCH --ntasks=1\n";
    s += &format!(
        "#SBATCH --output={}\n",
        quote(&logs.join("merge-%j.out").display().to_string())
    );
    for option in settings.options.iter().filter(|o| !is_gpu_option(o)) {
        s += &format!("#SBATCH {option}\n");
    }
    s += "set -euo pipefail\n";
    s += &format!("exec {}\n", command_line(binary, "report", grid_args));
    s
}

/// Submits the array, then the merge job depending on it (`afterany`).
///
/// # Errors
/// `sbatch` is missing, or rejects a script (its message is included).
pub fn submit(scripts: &SlurmScripts) -> Result<Submitted> {
    let array = sbatch(&scripts.array, &[])?;
    let merge = sbatch(&scripts.merge, &[format!("--dependency=afterany:{array}")])?;
    Ok(Submitted { array, merge })
}

fn sbatch(script: &Path, extra: &[String]) -> Result<String> {
    let fail = |problem: String| TrainError::Config {
        path: script.to_path_buf(),
        problem,
    };
    let output = Command::new("sbatch")
        .arg("--parsable")
        .args(extra)
        .arg(script)
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                fail(
                    "`sbatch` is not on PATH: submit from a SLURM login node, or use \
                      --slurm-dry-run to write the scripts only"
                        .into(),
                )
            } else {
                fail(format!("could not run sbatch ({e})"))
            }
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let reason = stderr
            .lines()
            .chain(stdout.lines())
            .find(|l| !l.trim().is_empty());
        return Err(fail(format!(
            "sbatch rejected it: {}",
            reason.unwrap_or("no message").trim()
        )));
    }
    // `--parsable` prints `id` or `id;cluster`.
    match stdout.trim().split(';').next() {
        Some(id) if !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()) => Ok(id.to_string()),
        _ => Err(fail(format!(
            "sbatch printed no job id (`{}`)",
            stdout.trim()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_the_shell() {
        assert_eq!(quote("--epochs"), "--epochs");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(
            quote("joint,mtcool[noise_bound = 0.05]"),
            "'joint,mtcool[noise_bound = 0.05]'"
        );
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn the_array_maps_tasks_to_pending_runs_and_asks_for_a_gpu() {
        let settings = SlurmSettings {
            binary: "/opt/mtcool".into(),
            options: vec!["--partition=gpu".into()],
        };
        let args = vec!["--config".to_string(), "/x/mnist.toml".to_string()];
        let text = array_script(
            "mnist",
            &[1, 4],
            6,
            Path::new("/opt/mtcool"),
            &args,
            true,
            &settings,
            Path::new("/r/logs"),
        );
        assert!(text.contains("#SBATCH --array=0-1\n"), "{text}");
        assert!(text.contains("runs=(1 4)\n"), "{text}");
        assert!(
            text.contains("#SBATCH --gres=gpu:1\n#SBATCH --partition=gpu\n"),
            "{text}"
        );
        assert!(
            text.contains("exec /opt/mtcool train --config /x/mnist.toml --run-index \"$run\""),
            "{text}"
        );
        let own_gres = SlurmSettings {
            options: vec!["--gres=gpu:a100:1".into()],
            ..settings.clone()
        };
        let text = array_script(
            "mnist",
            &[0],
            1,
            Path::new("/m"),
            &args,
            true,
            &own_gres,
            Path::new("/l"),
        );
        assert_eq!(text.matches("--gres").count(), 1, "{text}");
        let merge = merge_script("mnist", Path::new("/m"), &args, &own_gres, Path::new("/l"));
        assert!(
            !merge.contains("--gres") && merge.contains("exec /m report --config"),
            "{merge}"
        );
    }
}
