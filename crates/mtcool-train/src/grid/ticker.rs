//! A background thread that calls a function every period until it is dropped: the
//! heartbeat of a lock file, a worker's progress reports.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Stops (and joins) its thread when dropped.
#[derive(Debug)]
pub struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    /// Calls `tick` every `period` (first after one period) on a thread of its own.
    pub fn start(period: Duration, mut tick: impl FnMut() + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || loop {
                std::thread::park_timeout(period);
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                tick();
            })
        };
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn ticks_until_dropped() {
        let count = Arc::new(AtomicUsize::new(0));
        let ticker = {
            let count = count.clone();
            Ticker::start(Duration::from_millis(5), move || {
                count.fetch_add(1, Ordering::SeqCst);
            })
        };
        std::thread::sleep(Duration::from_millis(60));
        drop(ticker);
        let after = count.load(Ordering::SeqCst);
        assert!(after >= 2, "{after}");
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(count.load(Ordering::SeqCst), after);
    }
}
