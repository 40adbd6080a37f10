//! The agent's own counters since it started, for the status page and
//! /metrics. Process-wide because restarts happen in several places (DHCP
//! threads, wireguard-go children) and each only needs to add one.
//! A mutex per counter, not an AtomicU64: 32-bit MIPS (the EdgeRouter X)
//! has no 64-bit atomics, and these change a few times a second at most.

use crate::status::Counters;
use crate::worker::lock;
use std::sync::Mutex;

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
