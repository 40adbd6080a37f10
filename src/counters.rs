//! The agent's own counters since it started, for the status page and
//! /metrics. Process-wide because restarts happen in several places (DHCP
//! threads, wireguard-go children) and each only needs to add one.

use crate::status::Counters;
use std::sync::atomic::{AtomicU64, Ordering};

pub static PASSES: AtomicU64 = AtomicU64::new(0);
pub static CHANGES_APPLIED: AtomicU64 = AtomicU64::new(0);
pub static APPLY_ERRORS: AtomicU64 = AtomicU64::new(0);
/// A supervised child or thread that ended and is started again.
pub static RESTARTS: AtomicU64 = AtomicU64::new(0);

pub fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

pub fn snapshot() -> Counters {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    Counters {
        passes: get(&PASSES),
        changes_applied: get(&CHANGES_APPLIED),
        apply_errors: get(&APPLY_ERRORS),
        restarts: get(&RESTARTS),
    }
}
