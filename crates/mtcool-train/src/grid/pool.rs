//! The worker processes of `--jobs N`: each trains one run (`train --run-index I --worker`),
//! on a device taken round-robin from `--devices`, with ⌊cores / N⌋ threads unless
//! `RAYON_NUM_THREADS` says otherwise. A worker that crashes or is killed (out of memory)
//! fails its run only.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use indicatif::ProgressBar;

use crate::error::{Result, TrainError};
use crate::progress::Progress;

use super::execute::RunOutcome;
use super::plan::GridPlan;
use super::protocol::WorkerMessage;

/// The program a grid starts as its workers: a binary and the subcommand that trains one run
/// (`mtcool train`, or `xtask train`).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerCommand {
    /// The executable.
    pub program: PathBuf,
    /// Arguments before the run's options (the subcommand).
    pub leading_args: Vec<String>,
}

impl WorkerCommand {
    /// This executable, with `subcommand`.
    pub fn current_exe(subcommand: &str) -> Result<Self> {
        let program =
            std::env::current_exe().map_err(|e| TrainError::io("current executable", e))?;
        Ok(Self {
            program,
            leading_args: vec![subcommand.to_string()],
        })
    }
}

/// Threads each of `jobs` workers gets: `RAYON_NUM_THREADS` as the user set it, else
/// ⌊cores / jobs⌋ (at least one).
pub fn threads_per_worker(jobs: usize) -> usize {
    if let Some(n) = crate::cli::user_threads() {
        return n;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / jobs.max(1)).max(1)
}

struct Active {
    run: usize,
    child: Child,
    slot: usize,
    outcome: Arc<Mutex<Option<RunOutcome>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    bar: ProgressBar,
    log: PathBuf,
}

/// Running workers, at most `jobs` at once.
pub struct WorkerPool {
    command: WorkerCommand,
    run_args: Vec<String>,
    devices: Vec<String>,
    threads: usize,
    slots: Vec<bool>,
    active: Vec<Active>,
}

impl WorkerPool {
    /// A pool of `jobs` workers started as `command` with the grid's options `run_args`.
    pub fn new(
        command: WorkerCommand,
        run_args: Vec<String>,
        devices: Vec<String>,
        jobs: usize,
    ) -> Self {
        Self {
            command,
            run_args,
            devices,
            threads: threads_per_worker(jobs),
            slots: vec![false; jobs.max(1)],
            active: Vec::new(),
        }
    }

    /// Whether another worker may start.
    pub fn has_room(&self) -> bool {
        self.slots.iter().any(|busy| !busy)
    }

    /// Whether no worker runs.
    pub fn is_idle(&self) -> bool {
        self.active.is_empty()
    }

    /// Starts a worker for run `index`.
    pub fn start(&mut self, plan: &GridPlan, index: usize, progress: &Progress) -> Result<()> {
        let Some(slot) = self.slots.iter().position(|busy| !busy) else {
            return Ok(());
        };
        let run = plan.run(index)?;
        let device = &self.devices[slot % self.devices.len()];
        let log = log_path(&plan.exp_dir, &run.path);
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
        }
        let log_file = std::fs::File::create(&log).map_err(|e| TrainError::io(&log, e))?;
        let mut child = Command::new(&self.command.program)
            .args(&self.command.leading_args)
            .args(&self.run_args)
            .args([
                "--run-index",
                &index.to_string(),
                "--device",
                device,
                "--worker",
            ])
            .env("RAYON_NUM_THREADS", self.threads.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(|e| TrainError::io(&self.command.program, e))?;
        let label = plan.label(run);
        tracing::info!(
            "{label}: started in worker {} on {device} ({} thread(s)); log {}",
            slot + 1,
            self.threads,
            log.display()
        );
        let bar = progress.run_bar(&label, 0);
        let outcome = Arc::new(Mutex::new(None));
        let reader = child.stdout.take().map(|stdout| {
            let (bar, outcome) = (bar.clone(), outcome.clone());
            std::thread::spawn(move || read_messages(stdout, &bar, &outcome))
        });
        self.slots[slot] = true;
        self.active.push(Active {
            run: index,
            child,
            slot,
            outcome,
            reader,
            bar,
            log,
        });
        Ok(())
    }

    /// The runs whose workers have exited since the last call, with their outcomes.
    pub fn poll(&mut self) -> Vec<(usize, RunOutcome)> {
        let mut done = Vec::new();
        let mut i = 0;
        while i < self.active.len() {
            match self.active[i].child.try_wait() {
                Ok(None) => i += 1,
                Ok(Some(status)) => {
                    let mut worker = self.active.swap_remove(i);
                    done.push((worker.run, finish(&mut worker, Some(status))));
                    self.slots[worker.slot] = false;
                }
                Err(e) => {
                    let mut worker = self.active.swap_remove(i);
                    let _ = worker.child.kill();
                    let _ = worker.child.wait();
                    if let Ok(mut said) = worker.outcome.lock() {
                        *said = Some(RunOutcome::Failed(format!("lost its worker process: {e}")));
                    }
                    done.push((worker.run, finish(&mut worker, None)));
                    self.slots[worker.slot] = false;
                }
            }
        }
        done
    }
}

/// Follows a worker's messages: progress onto its bar, the outcome into `outcome`.
fn read_messages(
    stdout: std::process::ChildStdout,
    bar: &ProgressBar,
    outcome: &Mutex<Option<RunOutcome>>,
) {
    for line in std::io::BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        match WorkerMessage::parse(&line) {
            Some(WorkerMessage::Progress { pos, len, msg }) => {
                bar.set_length(len);
                bar.set_position(pos);
                bar.set_message(msg);
            }
            Some(WorkerMessage::Outcome(o)) => {
                if let Ok(mut slot) = outcome.lock() {
                    *slot = Some(o);
                }
            }
            None => {}
        }
    }
}

/// The outcome of an exited worker: what it said, else what its exit says.
fn finish(worker: &mut Active, status: Option<std::process::ExitStatus>) -> RunOutcome {
    if let Some(reader) = worker.reader.take() {
        let _ = reader.join();
    }
    worker.bar.finish_and_clear();
    let said = worker.outcome.lock().ok().and_then(|mut o| o.take());
    match (said, status) {
        (Some(outcome), _) => outcome,
        (None, Some(status)) => RunOutcome::Failed(format!(
            "its worker {} without a result ({}); log: {}",
            exit_description(status),
            last_error_line(&worker.log).unwrap_or_else(|| "no error printed".into()),
            worker.log.display()
        )),
        (None, None) => RunOutcome::Failed("its worker was lost".into()),
    }
}

#[cfg(unix)]
fn exit_description(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (_, Some(9)) => "was killed (signal 9: out of memory?)".into(),
        (_, Some(signal)) => format!("was killed by signal {signal}"),
        (Some(code), None) => format!("exited with status {code}"),
        (None, None) => "ended".into(),
    }
}

#[cfg(not(unix))]
fn exit_description(status: std::process::ExitStatus) -> String {
    format!("exited with {status}")
}

/// The last `error:` line of a worker's log, else its last non-empty line.
fn last_error_line(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .rev()
        .find(|l| l.starts_with("error"))
        .or(lines.last())
        .map(|l| l.to_string())
}

/// `<exp>/logs/<run file stem>.log`.
pub fn log_path(exp_dir: &Path, run_file: &Path) -> PathBuf {
    let stem = run_file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    exp_dir.join("logs").join(format!("{stem}.log"))
}
