//! Log lines a person can follow: UTC time, level, message, on stderr.
//! Nothing here formats keys: secrets are kept out by type (keys.rs).

fn stamp() -> String {
    let secs = crate::clock::unix_ms() / 1000;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    format!("{h:02}:{m:02}:{s:02}Z")
}

pub fn info(msg: &str) {
    eprintln!("{} portal: {msg}", stamp());
}

pub fn warn(msg: &str) {
    eprintln!("{} portal: warning: {msg}", stamp());
}

pub fn error(msg: &str) {
    eprintln!("{} portal: error: {msg}", stamp());
}
