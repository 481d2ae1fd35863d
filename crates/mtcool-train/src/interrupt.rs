//! Ctrl-C: the first press stops the grid after the current training iteration (finished
//! runs are already on disk, the run in progress is dropped, `summary.json` is written for
//! what finished); a second press quits at once.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Installs the Ctrl-C handler (once per process; later calls do nothing).
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        if REQUESTED.swap(true, Ordering::SeqCst) {
            eprintln!("\ninterrupted again: quitting now");
            std::process::exit(130);
        }
        eprintln!(
            "\ninterrupt: stopping after the current iteration and writing the summary of the \
             finished runs (Ctrl-C again quits at once)"
        );
    });
}

/// Whether the user asked to stop.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Asks the running grid to stop, as Ctrl-C does (for tests and embedding programs).
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Clears a stop request.
pub fn clear() {
    REQUESTED.store(false, Ordering::SeqCst);
}
