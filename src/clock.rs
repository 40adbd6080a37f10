//! Wall-clock time as the protocols store it: Unix milliseconds. (Leases
//! outlive restarts, so they are kept in wall time, not `Instant`s.)

use std::time::{SystemTime, UNIX_EPOCH};

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
