//! Process set-up shared by the binaries (`mtcool`, `cargo xtask`).

use std::io::IsTerminal;
use std::sync::OnceLock;

/// `RAYON_NUM_THREADS` as the user set it, before [`init`] filled it in.
static USER_THREADS: OnceLock<Option<usize>> = OnceLock::new();

fn threads_from_env() -> Option<usize> {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
}

/// The thread count the user asked for with `RAYON_NUM_THREADS`, if any (a grid's workers
/// then each get that many; otherwise they share the cores).
pub fn user_threads() -> Option<usize> {
    match USER_THREADS.get() {
        Some(user) => *user,
        None => threads_from_env(),
    }
}

/// Prepares a command-line process: fixes the thread count, installs the log subscriber and
/// the Ctrl-C handler ([`crate::interrupt`]).
///
/// candle re-reads the CPU count on every matmul unless `RAYON_NUM_THREADS` is set, so it is
/// set once here, before any thread starts, to the machine's parallelism (an explicit value is
/// kept). Logs go to stderr at `info` unless `RUST_LOG` says otherwise.
pub fn init() {
    let _ = USER_THREADS.set(threads_from_env());
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(|| crate::progress::LogWriter)
        .with_filter_reloading();
    let handle = builder.reload_handle();
    if builder.try_init().is_ok() && std::env::var_os("RUST_LOG").is_none() {
        let _ = QUIETEN.set(Box::new(move || {
            let _ = handle.modify(|f| *f = tracing_subscriber::EnvFilter::new("warn"));
        }));
    }
    crate::interrupt::install();
    keep_freed_memory();
}

/// Tells mimalloc (the binaries' allocator) never to return freed memory to the OS, unless
/// `MIMALLOC_PURGE_DELAY` says otherwise.
///
/// A training step frees and reallocates the same large activation buffers every iteration.
/// With mimalloc's default (purge after 1 s) the pages of a buffer go back to the OS between
/// two uses and are faulted in and zeroed again: about a fifth of a U-Net-MT bench run on 2 cores
/// (`docs/benchmarks.md`, "Profile"). Kept, they cost only the peak memory of one step, which the process
/// needs anyway. Without mimalloc as the global allocator the call changes nothing.
fn keep_freed_memory() {
    // `mi_option_purge_delay` in mimalloc.h (v2 and v3); libmimalloc-sys 0.1.49 names the
    // options on either side of it (14, 16) but not this one.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's integer options; it takes no pointers and may be
        // called at any time.
        #[allow(unsafe_code)]
        unsafe {
            libmimalloc_sys::mi_option_set(PURGE_DELAY, -1);
        }
    }
}

/// Lowers the log level of [`init`]'s subscriber to warnings (unless `RUST_LOG` was set).
static QUIETEN: OnceLock<Box<dyn Fn() + Send + Sync>> = OnceLock::new();

/// `--quiet`: only warnings and errors from here on, and no progress bars or progress lines.
pub fn set_quiet() {
    crate::progress::set_quiet();
    if let Some(quieten) = QUIETEN.get() {
        quieten();
    }
}
