//! Progress display: a bar for the grid (runs finished / total, elapsed, ETA) and one per
//! running run (iterations, speed, ETA), drawn only when stderr is a terminal. Elsewhere (CI,
//! SLURM logs, a pipe) each finished run logs one plain line with the same counts instead;
//! `--quiet` ([`set_quiet`]) shows neither. Log lines written meanwhile go through
//! [`LogWriter`], which lifts the bars out of the way so that lines and bars do not mix.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Set by `--quiet`: no bars and no progress lines.
static QUIET: AtomicBool = AtomicBool::new(false);

/// No bars and no progress lines from here on.
pub fn set_quiet() {
    QUIET.store(true, Ordering::Relaxed);
}

fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The progress bars of a grid.
#[derive(Debug, Clone)]
pub struct Progress {
    bars: MultiProgress,
    grid: ProgressBar,
    /// Whether the bars are drawn (else finished runs are logged as lines).
    drawn: bool,
    started: Instant,
    /// Runs counted as done when the grid started (reused results): not in the ETA's rate.
    reused: u64,
}

impl Progress {
    /// Bars for a grid of `runs` runs; hidden when stderr is not a terminal.
    pub fn new(runs: usize) -> Self {
        let drawn = std::io::stderr().is_terminal() && !quiet();
        let target = if drawn {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bars = MultiProgress::with_draw_target(target);
        let grid = bars.add(ProgressBar::new(runs as u64));
        grid.set_style(
            ProgressStyle::with_template("grid  [{bar:30.green/white}] {pos}/{len} runs  {msg}  elapsed {elapsed}, ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        grid.enable_steady_tick(Duration::from_millis(500));
        if let Ok(mut active) = ACTIVE.lock() {
            *active = Some(bars.clone());
        }
        Self {
            bars,
            grid,
            drawn,
            started: Instant::now(),
            reused: 0,
        }
    }

    /// Counts `runs` already finished before the grid started (reused result files).
    pub fn reused(&mut self, runs: usize) {
        self.reused += runs as u64;
        self.grid.inc(runs as u64);
    }

    /// A bar for one run of `steps` iterations.
    pub fn run_bar(&self, label: &str, steps: usize) -> ProgressBar {
        let bar = self.bars.add(ProgressBar::new(steps as u64));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>20} [{bar:30.cyan/blue}] {pos}/{len} it  {msg}  {per_sec}, ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(label.to_string());
        bar
    }

    /// Marks one run finished (or skipped); without bars, logs the grid's progress as a line.
    pub fn run_done(&self, message: &str) {
        self.grid.set_message(message.to_string());
        self.grid.inc(1);
        if !self.drawn && !quiet() {
            tracing::info!("{}", self.line());
        }
    }

    /// `grid: 5/32 runs done, 2m 10s elapsed, ETA 11m 42s`: the ETA from the rate of the runs
    /// done since the grid started (reused ones left out).
    fn line(&self) -> String {
        let done = self.grid.position();
        let total = self.grid.length().unwrap_or(done);
        let elapsed = self.started.elapsed();
        let fresh = done.saturating_sub(self.reused);
        let eta = if fresh == 0 {
            "ETA unknown".to_string()
        } else {
            let per_run = elapsed.as_secs_f64() / fresh as f64;
            let left = Duration::from_secs_f64(per_run * total.saturating_sub(done) as f64);
            format!("ETA {}", clock(left))
        };
        format!(
            "grid: {done}/{total} runs done, {} elapsed, {eta}",
            clock(elapsed)
        )
    }

    /// Removes the bars.
    pub fn finish(&self) {
        self.grid.finish_and_clear();
        let _ = self.bars.clear();
        if let Ok(mut active) = ACTIVE.lock() {
            *active = None;
        }
    }
}

/// `1h 02m`, `3m 05s`, `12s`.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, m, _) => format!("{h}h {m:02}m"),
    }
}

/// The bars on screen, if any (log lines are written around them).
static ACTIVE: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// Standard error for log lines: with bars on screen, each write hides them, writes, and
/// draws them again.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bars = ACTIVE.lock().ok().and_then(|a| a.clone());
        match bars {
            Some(bars) => bars.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_and_line() {
        assert_eq!(clock(Duration::from_secs(12)), "12s");
        assert_eq!(clock(Duration::from_secs(185)), "3m 05s");
        assert_eq!(clock(Duration::from_secs(3720)), "1h 02m");
        let mut progress = Progress::new(4);
        progress.reused(1);
        assert_eq!(
            progress.line(),
            "grid: 1/4 runs done, 0s elapsed, ETA unknown"
        );
        progress.grid.inc(1);
        assert!(progress
            .line()
            .starts_with("grid: 2/4 runs done, 0s elapsed, ETA "));
        progress.finish();
    }
}
