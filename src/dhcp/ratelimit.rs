//! Per-MAC token buckets: one chatty or hostile client cannot take the
//! server's CPU or fill its log. (It cannot take the pool either: a client
//! holds at most one address, see `LeaseTable`.)

use std::collections::HashMap;

/// Packets a client may send at once: a DORA with retries fits easily.
pub const BURST: u32 = 16;
/// Sustained packets per second per client.
pub const PER_SECOND: u32 = 4;
/// Clients remembered before idle buckets are swept.
const MAX_CLIENTS: usize = 8192;

#[derive(Debug, Default)]
pub struct RateLimit {
    /// MAC -> (tokens in thousandths, last refill in ms).
    buckets: HashMap<[u8; 6], (u64, u64)>,
    pub dropped: u64,
}

impl RateLimit {
    /// Takes a token for `mac` at `now_ms`; false means drop the packet.
    pub fn allow(&mut self, mac: [u8; 6], now_ms: u64) -> bool {
        let full = BURST as u64 * 1000;
        if self.buckets.len() >= MAX_CLIENTS && !self.buckets.contains_key(&mac) {
            self.sweep(now_ms);
        }
        let (tokens, last) = self.buckets.entry(mac).or_insert((full, now_ms));
        let refill = now_ms.saturating_sub(*last) * PER_SECOND as u64;
        *tokens = (*tokens + refill).min(full);
        *last = now_ms;
        if *tokens >= 1000 {
            *tokens -= 1000;
            true
        } else {
            self.dropped += 1;
            false
        }
    }

    /// Forgets buckets that have refilled completely: they behave as new.
    fn sweep(&mut self, now_ms: u64) {
        let full = BURST as u64 * 1000;
        self.buckets.retain(|_, (tokens, last)| {
            *tokens + now_ms.saturating_sub(*last) * (PER_SECOND as u64) < full
        });
        if self.buckets.len() >= MAX_CLIENTS {
            // A flood of distinct MACs: start over rather than grow.
            self.buckets.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let mut r = RateLimit::default();
        let mac = [2, 0, 0, 0, 0, 1];
        let passed = (0..100).filter(|_| r.allow(mac, 1000)).count();
        assert_eq!(passed, BURST as usize);
        assert_eq!(r.dropped, 100 - BURST as u64);
        // One second later, PER_SECOND more.
        let passed = (0..100).filter(|_| r.allow(mac, 2000)).count();
        assert_eq!(passed, PER_SECOND as usize);
        // Another client is unaffected.
        assert!(r.allow([2, 0, 0, 0, 0, 2], 2000));
    }

    #[test]
    fn many_distinct_clients_do_not_grow_memory_without_bound() {
        let mut r = RateLimit::default();
        for i in 0..(3 * MAX_CLIENTS as u32) {
            let b = i.to_be_bytes();
            assert!(r.allow([2, 0, b[0], b[1], b[2], b[3]], 5000));
        }
        assert!(r.buckets.len() <= MAX_CLIENTS);
    }
}

/// Log lines per second before the rest are only counted: a flood of
/// clients must not turn into a flood of log lines.
pub const LOG_LINES_PER_SECOND: u32 = 20;

#[derive(Debug, Default)]
pub struct LogBudget {
    second: u64,
    used: u32,
    suppressed: u64,
}

impl LogBudget {
    /// Whether a line may be logged at `now_ms`. When a new second begins,
    /// also returns how many lines the previous ones held back.
    pub fn allow(&mut self, now_ms: u64) -> (bool, Option<u64>) {
        let second = now_ms / 1000;
        let mut held = None;
        if second != self.second {
            self.second = second;
            self.used = 0;
            held = Some(std::mem::take(&mut self.suppressed)).filter(|n| *n > 0);
        }
        if self.used < LOG_LINES_PER_SECOND {
            self.used += 1;
            (true, held)
        } else {
            self.suppressed += 1;
            (false, held)
        }
    }
}

#[cfg(test)]
mod log_tests {
    use super::*;

    #[test]
    fn log_lines_beyond_the_budget_are_counted_and_reported_once() {
        let mut b = LogBudget::default();
        let allowed = (0..100).filter(|_| b.allow(5_000).0).count();
        assert_eq!(allowed, LOG_LINES_PER_SECOND as usize);
        assert_eq!(
            b.allow(6_000),
            (true, Some(100 - LOG_LINES_PER_SECOND as u64))
        );
        assert_eq!(b.allow(6_001), (true, None));
    }
}
