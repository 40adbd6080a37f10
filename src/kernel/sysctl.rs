//! sysctls through /proc/sys (the `sysctl` command does the same).

use std::fs;
use std::path::PathBuf;

fn path(key: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(key.replace('.', "/"))
}

pub fn read(key: &str) -> Option<String> {
    fs::read_to_string(path(key))
        .ok()
        .map(|s| s.trim().to_string())
}

pub fn write(key: &str, value: &str) -> Result<(), String> {
    fs::write(path(key), value).map_err(|e| format!("cannot set {key}={value}: {e}"))
}
