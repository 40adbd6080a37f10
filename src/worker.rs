//! Supervised threads: a body that is restarted with backoff when it fails,
//! and stops when told to (DHCP servers, the WAN client, the status page).

use crate::log;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A supervised thread that can be told to stop: `body` runs until it
/// returns Ok or the stop flag is set, restarted with backoff on errors.
pub struct Worker {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Worker {
    pub fn spawn<F>(label: String, mut body: F) -> Worker
    where
        F: FnMut(&AtomicBool) -> Result<(), String> + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || supervise(&label, &flag, || body(&flag)));
        Worker { stop, thread }
    }

    /// Ended on its own (it only does when told to stop, or on a panic).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Sets the stop flag without waiting: `stop` then waits.
    pub fn tell_to_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// Runs `body` until it returns Ok or `stop` is set, restarting it with
/// backoff when it fails (interface missing, disk error). Each failure is
/// logged with `label`.
fn supervise(label: &str, stop: &AtomicBool, mut body: impl FnMut() -> Result<(), String>) {
    let mut backoff = Duration::from_secs(1);
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        match body() {
            Ok(()) => return,
            Err(e) => {
                if started.elapsed() > Duration::from_secs(60) {
                    backoff = Duration::from_secs(1);
                }
                crate::counters::add(&crate::counters::RESTARTS, 1);
                log::error(&format!(
                    "{label}: {e}; retrying in {} s",
                    backoff.as_secs()
                ));
                let until = Instant::now() + backoff;
                while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}
