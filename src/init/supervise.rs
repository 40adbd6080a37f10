//! Which services should run, which are running, and when a crashed one is
//! started again: pure bookkeeping (no fork, no signals), so that restart
//! backoff and shutdown order are tested without processes. Times are
//! milliseconds on a monotonic clock.

/// First restart delay; doubled after each quick crash up to MAX_BACKOFF.
pub const FIRST_BACKOFF_MS: u64 = 1_000;
pub const MAX_BACKOFF_MS: u64 = 60_000;
/// A service that ran this long before exiting is restarted at once again
/// (the crash was not a crash loop).
pub const HEALTHY_AFTER_MS: u64 = 60_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Start when the clock reaches `at`.
    Waiting {
        at: u64,
    },
    Running {
        pid: i32,
        since: u64,
    },
    /// Shutting down: not restarted any more.
    Stopped,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub state: State,
    /// The delay before the next restart after a quick exit.
    backoff: u64,
    pub restarts: u32,
}

/// What happened when a process ended, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// A service ended; it starts again in `restart_in` ms (None: shutting down).
    Service {
        name: String,
        ran_ms: u64,
        restart_in: Option<u64>,
        restarts: u32,
    },
    /// Not ours: an orphan that was re-parented to PID 1, now reaped.
    Orphan,
}

#[derive(Debug, Default)]
pub struct Supervisor {
    pub services: Vec<Service>,
    /// Set by `shutdown`: nothing starts or restarts any more.
    stopping: bool,
}

impl Supervisor {
    /// All services start at once, in the given order.
    pub fn new(names: &[String]) -> Supervisor {
        Supervisor {
            services: names
                .iter()
                .map(|n| Service {
                    name: n.clone(),
                    state: State::Waiting { at: 0 },
                    backoff: FIRST_BACKOFF_MS,
                    restarts: 0,
                })
                .collect(),
            stopping: false,
        }
    }

    /// Indices of the services to start now, in order.
    pub fn due(&self, now: u64) -> Vec<usize> {
        self.services
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s.state, State::Waiting { at } if at <= now))
            .map(|(i, _)| i)
            .collect()
    }

    pub fn started(&mut self, i: usize, pid: i32, now: u64) {
        if let Some(s) = self.services.get_mut(i) {
            s.state = State::Running { pid, since: now };
        }
    }

    /// A start that failed (exec error): treated as an immediate exit.
    pub fn start_failed(&mut self, i: usize, now: u64) -> Option<Exit> {
        let stopping = self.stopping;
        let s = self.services.get_mut(i)?;
        Some(schedule_restart(s, 0, now, stopping))
    }

    /// `pid` was reaped.
    pub fn exited(&mut self, pid: i32, now: u64) -> Exit {
        let Some(s) = self
            .services
            .iter_mut()
            .find(|s| matches!(s.state, State::Running { pid: p, .. } if p == pid))
        else {
            return Exit::Orphan;
        };
        let since = match s.state {
            State::Running { since, .. } => since,
            _ => now,
        };
        schedule_restart(s, now.saturating_sub(since), now, self.stopping)
    }

    /// When the supervisor next has something to do (a restart), if ever.
    pub fn next_due(&self) -> Option<u64> {
        self.services
            .iter()
            .filter_map(|s| match s.state {
                State::Waiting { at } => Some(at),
                _ => None,
            })
            .min()
    }

    /// Shutdown: nothing restarts from now on. Returns the running
    /// services' (name, pid) in reverse start order (the last started is
    /// stopped first), which is the order to stop them in.
    pub fn shutdown(&mut self) -> Vec<(String, i32)> {
        let mut running = Vec::new();
        for s in self.services.iter_mut().rev() {
            if let State::Running { pid, .. } = s.state {
                running.push((s.name.clone(), pid));
            }
        }
        // Running entries keep their pid until reaped (for the log); the
        // rest can never start again.
        self.stopping = true;
        for s in &mut self.services {
            if !matches!(s.state, State::Running { .. }) {
                s.state = State::Stopped;
            }
        }
        running
    }

    pub fn is_running(&self, pid: i32) -> bool {
        self.services
            .iter()
            .any(|s| matches!(s.state, State::Running { pid: p, .. } if p == pid))
    }

    pub fn running(&self) -> usize {
        self.services
            .iter()
            .filter(|s| matches!(s.state, State::Running { .. }))
            .count()
    }
}

fn schedule_restart(s: &mut Service, ran_ms: u64, now: u64, stopping: bool) -> Exit {
    if stopping {
        s.state = State::Stopped;
        return Exit::Service {
            name: s.name.clone(),
            ran_ms,
            restart_in: None,
            restarts: s.restarts,
        };
    }
    if ran_ms >= HEALTHY_AFTER_MS {
        s.backoff = FIRST_BACKOFF_MS;
    }
    let delay = s.backoff;
    s.backoff = (s.backoff * 2).min(MAX_BACKOFF_MS);
    s.restarts += 1;
    s.state = State::Waiting { at: now + delay };
    Exit::Service {
        name: s.name.clone(),
        ran_ms,
        restart_in: Some(delay),
        restarts: s.restarts,
    }
}

#[cfg(test)]
mod tests;
