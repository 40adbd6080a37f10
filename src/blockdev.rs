//! Block devices named as init.json and the upgrade name them: a path, or
//! `PARTLABEL=NAME` (the GPT partition of that name), found through sysfs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A mount source that names a block device (waited for, mounted after
/// the modules are loaded) rather than a pseudo file system.
pub fn is_device(source: &str) -> bool {
    source.starts_with("/dev/") || source.starts_with("PARTLABEL=")
}

/// The device node for `source`, given each block device's sysfs uevent
/// text: `PARTLABEL=NAME` is the partition whose PARTNAME is NAME.
pub fn resolve_with<'a>(
    source: &str,
    uevents: impl IntoIterator<Item = &'a str>,
) -> Option<PathBuf> {
    let Some(label) = source.strip_prefix("PARTLABEL=") else {
        return Some(PathBuf::from(source));
    };
    uevents.into_iter().find_map(|text| {
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
        };
        (field("PARTNAME") == Some(label))
            .then(|| field("DEVNAME"))
            .flatten()
            .map(|d| Path::new("/dev").join(d))
    })
}

/// [`resolve_with`] on the running system; None while the device (or its
/// node) is not there yet.
pub fn resolve(source: &str) -> Option<PathBuf> {
    let uevents: Vec<String> = if source.starts_with("PARTLABEL=") {
        std::fs::read_dir("/sys/class/block")
            .into_iter()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("uevent")).ok())
            .collect()
    } else {
        Vec::new()
    };
    resolve_with(source, uevents.iter().map(String::as_str)).filter(|p| p.exists())
}

/// Waits up to `limit` for `source` to appear.
pub fn wait_for(source: &str, limit: Duration) -> Option<PathBuf> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(p) = resolve(source) {
            return Some(p);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
