//! The agent's own counters since it started, for the status page and
//! /metrics. Process-wide because restarts happen in several places (DHCP
//! threads, wireguard-go children) and each only needs to add one.
//! A mutex per counter, not an AtomicU64: 32-bit MIPS (the EdgeRouter X)
//! has no 64-bit atomics, and these change a few times a second at most.

use serde::Serialize;
use std::sync::{Mutex, MutexGuard};

/// The counter even if a thread panicked holding it (as worker::lock, which
/// this module cannot use: the worker counts its restarts here).
fn lock(m: &Mutex<u64>) -> MutexGuard<'_, u64> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The agent's own counters since it started.
#[derive(Serialize, Debug, Clone, PartialEq, Default)]
pub struct Counters {
    pub passes: u64,
    pub changes_applied: u64,
    pub apply_errors: u64,
    pub restarts: u64,
}

pub struct Counter(Mutex<u64>);

impl Counter {
    const fn new() -> Counter {
        Counter(Mutex::new(0))
    }

    fn get(&self) -> u64 {
        *lock(&self.0)
    }
}

pub static PASSES: Counter = Counter::new();
pub static CHANGES_APPLIED: Counter = Counter::new();
pub static APPLY_ERRORS: Counter = Counter::new();
/// A supervised child or thread that ended and is started again.
pub static RESTARTS: Counter = Counter::new();

pub fn add(c: &Counter, n: u64) {
    let mut v = lock(&c.0);
    *v = v.saturating_add(n);
}

pub fn snapshot() -> Counters {
    Counters {
        passes: PASSES.get(),
        changes_applied: CHANGES_APPLIED.get(),
        apply_errors: APPLY_ERRORS.get(),
        restarts: RESTARTS.get(),
    }
}
