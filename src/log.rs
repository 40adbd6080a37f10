//! Log lines a person can follow: UTC time, level, message, on stderr. The
//! newest lines are also kept in memory for the status page.
//! Nothing here formats keys: secrets are kept out by type (keys.rs).

use std::collections::VecDeque;
use std::sync::Mutex;

/// Lines kept for the status page.
pub const RECENT_LINES: usize = 50;

static RECENT: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());

fn stamp() -> String {
    let secs = crate::clock::unix_ms() / 1000;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    format!("{h:02}:{m:02}:{s:02}Z")
}

fn emit(level: &str, msg: &str) {
    let line = format!("{} portal: {level}{msg}", stamp());
    eprintln!("{line}");
    if let Ok(mut r) = RECENT.lock() {
        if r.len() == RECENT_LINES {
            r.pop_front();
        }
        r.push_back(line);
    }
}

pub fn info(msg: &str) {
    emit("", msg);
}

pub fn warn(msg: &str) {
    emit("warning: ", msg);
}

pub fn error(msg: &str) {
    emit("error: ", msg);
}

/// The newest log lines, oldest first.
pub fn recent() -> Vec<String> {
    RECENT
        .lock()
        .map(|r| r.iter().cloned().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_the_newest_lines() {
        for i in 0..super::RECENT_LINES + 5 {
            super::info(&format!("line {i}"));
        }
        let r = super::recent();
        assert_eq!(r.len(), super::RECENT_LINES);
        // Other tests may log in between: look for ours among the newest.
        let newest = format!("line {}", super::RECENT_LINES + 4);
        assert!(r.iter().any(|l| l.ends_with(&newest)));
        assert!(!r.iter().any(|l| l.ends_with(" line 0")));
    }
}
