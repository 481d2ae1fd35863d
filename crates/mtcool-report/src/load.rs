//! Reading one experiment's results folder: `summary.json` and the run files it lists.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mtcool_train::config::MethodSpec;
use mtcool_train::results::{read_json, run_path, RunRecord, Summary};

use crate::error::{ReportError, Result};

/// The results of one experiment, as the grid wrote them.
#[derive(Debug, Clone)]
pub struct ExperimentResults {
    /// The experiment folder (`<out>/<experiment>`).
    pub dir: PathBuf,
    /// Its `summary.json`.
    pub summary: Summary,
    /// Per method, the run files of the runs the summary lists, by seed.
    pub runs: BTreeMap<String, Vec<RunRecord>>,
    /// Run files the summary lists that are not on disk (their curves are left out).
    pub missing_runs: Vec<PathBuf>,
}

/// The name a grid row's run files carry: the label's file stem for variants such as
/// `mtcool[samples = 2]` (as the grid writes them), else the label.
pub(crate) fn run_stem(method: &str) -> String {
    method
        .parse::<MethodSpec>()
        .map_or_else(|_| method.to_string(), |spec| spec.file_stem())
}

/// Reads `<dir>/summary.json` and every run file it lists.
///
/// # Errors
/// One error naming the file: `summary.json` absent or not a summary, a run file that does not
/// parse, or one whose method or seed is not the one its name says.
pub fn load(dir: &Path) -> Result<ExperimentResults> {
    let summary_path = dir.join("summary.json");
    if !summary_path.is_file() {
        return Err(ReportError::file(
            &summary_path,
            "no such file (run `cargo xtask reproduce` first, or pass an experiment folder)",
        ));
    }
    let summary: Summary = read_json(&summary_path)?;
    let mut runs = BTreeMap::new();
    let mut missing_runs = Vec::new();
    for (method, ms) in &summary.methods {
        let mut records: Vec<RunRecord> = Vec::new();
        for brief in &ms.runs {
            let path = run_path(dir, &run_stem(method), brief.seed, summary.quick);
            if !path.is_file() {
                missing_runs.push(path);
                continue;
            }
            let record: RunRecord = read_json(&path)?;
            if record.method != *method || record.seed != brief.seed {
                return Err(ReportError::file(
                    &path,
                    format!(
                        "holds method `{}` seed {}, but its name says `{method}` seed {}",
                        record.method, record.seed, brief.seed
                    ),
                ));
            }
            records.push(record);
        }
        runs.insert(method.clone(), records);
    }
    Ok(ExperimentResults {
        dir: dir.to_path_buf(),
        summary,
        runs,
        missing_runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_rows_read_the_files_the_grid_writes() {
        assert_eq!(run_stem("joint"), "joint");
        assert_eq!(run_stem("mtcool[samples = 2]"), "mtcool_samples___2_");
        assert_eq!(run_stem("not a method"), "not a method");
    }
}
