//! Process set-up shared by the binaries (`mtcool`, `cargo xtask`).

use std::io::IsTerminal;

/// Prepares a command-line process: fixes the thread count, installs the log subscriber and
/// the Ctrl-C handler ([`crate::interrupt`]).
///
/// candle re-reads the CPU count on every matmul unless `RAYON_NUM_THREADS` is set, so it is
/// set once here, before any thread starts, to the machine's parallelism (an explicit value is
/// kept). Logs go to stderr at `info` unless `RUST_LOG` says otherwise.
pub fn init() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
    crate::interrupt::install();
}
