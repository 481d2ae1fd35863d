//! The grid's main loop: start pending runs (in this process, or in up to N workers), collect
//! their outcomes, and wait for the runs other processes are training, taking over those
//! whose process died.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use candle_core::Device;

use crate::error::Result;
use crate::progress::Progress;

use super::claim::{lock_path, read_owner, staleness};
use super::execute::{execute, DataCache, RunOutcome};
use super::plan::GridPlan;
use super::pool::WorkerPool;

/// How often a waiting grid looks at the runs other processes hold.
const WAIT_POLL: Duration = Duration::from_secs(1);
/// How often the loop looks at running workers.
const WORKER_POLL: Duration = Duration::from_millis(100);

/// Where runs are trained.
pub enum Executor {
    /// One at a time, in this process.
    InProcess {
        /// The training device.
        device: Device,
        /// The dataset of the last split read.
        data: DataCache,
        /// Dataset root.
        data_dir: PathBuf,
        /// Iterations of one run (for its bar).
        iterations: usize,
        /// Outcomes not yet collected.
        done: Vec<(usize, RunOutcome)>,
    },
    /// In worker processes.
    Workers(WorkerPool),
}

impl Executor {
    fn has_room(&self) -> bool {
        match self {
            Executor::InProcess { done, .. } => done.is_empty(),
            Executor::Workers(pool) => pool.has_room(),
        }
    }

    fn is_idle(&self) -> bool {
        match self {
            Executor::InProcess { done, .. } => done.is_empty(),
            Executor::Workers(pool) => pool.is_idle(),
        }
    }

    fn start(&mut self, plan: &GridPlan, index: usize, progress: &Progress) -> Result<()> {
        match self {
            Executor::InProcess {
                device,
                data,
                data_dir,
                iterations,
                done,
            } => {
                let run = plan.run(index)?;
                let bar = progress.run_bar(&plan.label(run), *iterations);
                let outcome = execute(plan, run, data_dir, device, data, Some(&bar));
                bar.finish_and_clear();
                done.push((index, outcome?));
                Ok(())
            }
            Executor::Workers(pool) => pool.start(plan, index, progress),
        }
    }

    fn poll(&mut self) -> Vec<(usize, RunOutcome)> {
        match self {
            Executor::InProcess { done, .. } => std::mem::take(done),
            Executor::Workers(pool) => pool.poll(),
        }
    }
}

/// What the loop did.
#[derive(Debug, Default)]
pub struct Tally {
    /// Runs trained by this grid.
    pub trained: usize,
    /// Runs finished by other processes meanwhile.
    pub picked_up: usize,
    /// `label: reason` per failed run.
    pub failures: Vec<String>,
    /// Whether Ctrl-C stopped the grid.
    pub interrupted: bool,
    /// Per row, training images/s of each run trained now.
    pub throughput: Vec<(String, Vec<f64>)>,
}

/// Trains `pending` (run indices) with `executor`.
pub fn schedule(
    plan: &GridPlan,
    pending: Vec<usize>,
    mut executor: Executor,
    progress: &Progress,
) -> Result<Tally> {
    let mut queue: VecDeque<usize> = plan.training_order(pending).into();
    let mut held: Vec<usize> = Vec::new();
    let mut tally = Tally::default();
    let mut announced_wait = false;
    loop {
        if crate::interrupt::requested() {
            tally.interrupted = true;
            queue.clear();
        }
        while executor.has_room() && !tally.interrupted {
            let Some(index) = queue.pop_front() else {
                break;
            };
            executor.start(plan, index, progress)?;
        }
        for (index, outcome) in executor.poll() {
            tally.record(plan, index, outcome, &mut held, progress);
        }
        if !(queue.is_empty() && executor.is_idle()) {
            if matches!(executor, Executor::Workers(_)) {
                std::thread::sleep(WORKER_POLL);
            }
            continue;
        }
        if held.is_empty() || tally.interrupted {
            break;
        }
        if !announced_wait {
            tracing::info!(
                "waiting for {} run(s) that other processes are training",
                held.len()
            );
            announced_wait = true;
        }
        tally.recheck_held(plan, &mut held, &mut queue, progress);
        if queue.is_empty() && !held.is_empty() {
            std::thread::sleep(WAIT_POLL);
        }
    }
    Ok(tally)
}

impl Tally {
    fn record(
        &mut self,
        plan: &GridPlan,
        index: usize,
        outcome: RunOutcome,
        held: &mut Vec<usize>,
        progress: &Progress,
    ) {
        let run = &plan.runs[index];
        let label = plan.label(run);
        match outcome {
            RunOutcome::Trained => match plan.finished(run) {
                Some(record) => {
                    tracing::info!(
                        "{label}: {} in {:.0} s ({:.0} images/s)",
                        describe_metrics(&record.metrics),
                        record.seconds,
                        record.images_per_second
                    );
                    let row = &plan.methods[run.method].label;
                    match self.throughput.iter_mut().find(|(n, _)| n == row) {
                        Some((_, v)) => v.push(record.images_per_second),
                        None => self
                            .throughput
                            .push((row.clone(), vec![record.images_per_second])),
                    }
                    self.trained += 1;
                    progress.run_done(&label);
                }
                None => self.fail(
                    &label,
                    "its result file is missing after training",
                    progress,
                ),
            },
            RunOutcome::Finished => {
                self.picked_up += 1;
                progress.run_done(&format!("{label} (finished elsewhere)"));
            }
            RunOutcome::HeldBy(owner) => {
                tracing::info!("{label}: being trained by {owner}; its result will be picked up");
                held.push(index);
            }
            RunOutcome::Failed(reason) => self.fail(&label, &reason, progress),
            RunOutcome::Interrupted => {
                tracing::warn!("{label}: interrupted; this run is not saved");
                self.interrupted = true;
            }
        }
    }

    fn fail(&mut self, label: &str, reason: &str, progress: &Progress) {
        tracing::error!("{label} failed: {reason}");
        self.failures.push(format!("{label}: {reason}"));
        progress.run_done(&format!("{label} failed"));
    }

    /// Picks up held runs that finished; queues those whose holder died (the claim takes the
    /// stale lock over); fails those released without a result.
    fn recheck_held(
        &mut self,
        plan: &GridPlan,
        held: &mut Vec<usize>,
        queue: &mut VecDeque<usize>,
        progress: &Progress,
    ) {
        held.retain(|&index| {
            let run = &plan.runs[index];
            let lock = lock_path(&run.path);
            // The lock first: a holder writes its result before it removes its lock.
            match read_owner(&lock) {
                Some(owner) => {
                    if staleness(&lock, &owner).is_some() {
                        queue.push_back(index);
                        return false;
                    }
                    true
                }
                None => {
                    if plan.finished(run).is_some() {
                        self.record(plan, index, RunOutcome::Finished, &mut Vec::new(), progress);
                    } else {
                        let reason = "another process was training it and stopped without a \
                                      result (see that process's log; rerun to train it here)";
                        self.fail(&plan.label(run), reason, progress);
                    }
                    false
                }
            }
        });
    }
}

/// `even/accuracy 99.10%, odd/accuracy 98.90%` (losses and errors raw).
fn describe_metrics(metrics: &crate::results::Metrics) -> String {
    metrics
        .iter()
        .map(|(k, v)| {
            if crate::table::higher_is_better(k) {
                format!("{k} {:.2}%", 100.0 * v)
            } else {
                format!("{k} {v:.4}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}
