//! Progress display: a bar for the grid and one per running run, drawn only when stderr is a
//! terminal (logs and CI output stay clean). Log lines written meanwhile go through
//! [`LogWriter`], which lifts the bars out of the way so that lines and bars do not mix.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The progress bars of a grid.
#[derive(Debug, Clone)]
pub struct Progress {
    bars: MultiProgress,
    grid: ProgressBar,
}

impl Progress {
    /// Bars for a grid of `runs` runs; hidden when stderr is not a terminal.
    pub fn new(runs: usize) -> Self {
        let target = if std::io::stderr().is_terminal() {
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
        Self { bars, grid }
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

    /// Marks one run finished (or skipped).
    pub fn run_done(&self, message: &str) {
        self.grid.set_message(message.to_string());
        self.grid.inc(1);
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
