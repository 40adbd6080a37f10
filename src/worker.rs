//! Supervised threads: a body that is restarted with backoff when it fails,
//! and stops when told to (DHCP servers, the WAN client, the status page).

use crate::log;
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
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

/// Named workers kept equal to a wanted set of specs (one DHCP server per
/// LAN, one status-page listener per LAN): `sync` replaces a worker whose
/// spec changed or that ended, starts the missing, stops the unwanted.
pub struct WorkerSet<S> {
    running: BTreeMap<String, (S, Worker)>,
}

impl<S> Default for WorkerSet<S> {
    fn default() -> Self {
        WorkerSet {
            running: BTreeMap::new(),
        }
    }
}

impl<S: PartialEq> WorkerSet<S> {
    pub fn sync(&mut self, wanted: BTreeMap<String, S>, start: impl Fn(&S) -> Worker) {
        let stale: Vec<String> = self
            .running
            .iter()
            .filter(|(name, (spec, w))| wanted.get(*name) != Some(spec) || w.is_finished())
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            if let Some((_, w)) = self.running.remove(&name) {
                w.stop();
            }
        }
        for (name, spec) in wanted {
            if let Entry::Vacant(slot) = self.running.entry(name) {
                let w = start(&spec);
                slot.insert((spec, w));
            }
        }
    }

    /// Tells every worker to stop without waiting (`stop_all` waits).
    pub fn tell_all_to_stop(&self) {
        for (_, w) in self.running.values() {
            w.tell_to_stop();
        }
    }

    /// Stops every worker: all are told first, then waited for, so that
    /// stopping takes as long as the slowest, not the sum.
    pub fn stop_all(&mut self) {
        self.tell_all_to_stop();
        for (_, (_, w)) in std::mem::take(&mut self.running) {
            w.stop();
        }
    }
}

/// A mutex's guard even if a thread panicked while holding it: the data
/// shared here (views, caches, counters) stays usable after a panic.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
