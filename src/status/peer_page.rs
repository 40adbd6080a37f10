//! `portal peer add --page`: a device's .conf offered as a QR code on the
//! status page, at /peer/NAME, for LAN users to scan. Kept in the run dir
//! (mode 0600), shown once: the first fetch takes the file away, and an
//! offer nobody fetched is deleted after OFFER_SECS.

use crate::state;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

pub const OFFER_SECS: u64 = 15 * 60;
const DIR: &str = "peer-pages";

/// Names that are safe as a file name and a URL path segment.
pub fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && !n.starts_with('.')
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn file(run_dir: &Path, name: &str) -> PathBuf {
    run_dir.join(DIR).join(format!("{name}.conf"))
}

/// Stores the offer; returns its file.
pub fn offer(run_dir: &Path, name: &str, conf: &str) -> Result<PathBuf, String> {
    if !valid_name(name) {
        return Err(format!(
            "--page: `{name}` cannot be a page name (use a-z, A-Z, 0-9, -, _ and .)"
        ));
    }
    let dir = run_dir.join(DIR);
    fs::create_dir_all(&dir)
        .and_then(|_| fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)))
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let f = file(run_dir, name);
    state::write_atomic_mode(&f, conf.as_bytes(), 0o600)?;
    Ok(f)
}

fn expired(modified: SystemTime, now: SystemTime) -> bool {
    now.duration_since(modified).unwrap_or(Duration::ZERO) > Duration::from_secs(OFFER_SECS)
}

/// Takes the offer for `name` away (it is deleted whatever happens) and
/// returns it if it has not expired. Two requests at once: one gets it.
pub fn take(run_dir: &Path, name: &str, now: SystemTime) -> Option<String> {
    // 32 bits: the EdgeRouter X (32-bit MIPS) has no 64-bit atomics.
    static N: AtomicU32 = AtomicU32::new(0);
    if !valid_name(name) {
        return None;
    }
    let f = file(run_dir, name);
    let claimed = f.with_extension(format!(
        "taken-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    fs::rename(&f, &claimed).ok()?;
    let modified = fs::metadata(&claimed).and_then(|m| m.modified()).ok();
    let text = fs::read_to_string(&claimed).ok();
    let _ = fs::remove_file(&claimed);
    text.filter(|_| modified.is_some_and(|m| !expired(m, now)))
}

/// Deletes the offers that have expired.
pub fn sweep(run_dir: &Path, now: SystemTime) {
    let Ok(entries) = fs::read_dir(run_dir.join(DIR)) else {
        return;
    };
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|m| expired(m, now));
        if old {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// The page: the QR code of the device's .conf, and nothing else secret.
pub fn html(name: &str, conf: &str) -> String {
    let qr = crate::qr::encode(conf.as_bytes())
        .map(|q| crate::qr::svg(&q, 6))
        .unwrap_or_else(|e| format!("<p>{e}</p>"));
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>WireGuard: {name}</title>\
         <meta name=\"viewport\" content=\"width=device-width\"></head>\
         <body style=\"font-family:sans-serif;text-align:center\"><h1>{name}</h1>\
         <p>Scan with the WireGuard app (+, Scan from QR code). This page is shown once: \
         reloading it shows nothing.</p>{qr}</body></html>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(t: &str) -> crate::testdir::TestDir {
        crate::testdir::TestDir::new(&format!("peer-page-{t}"))
    }

    #[test]
    fn shown_once_then_gone() {
        let guard = dir("once");
        let d = guard.path();
        let f = offer(d, "phone", "[Interface]\n").unwrap();
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let now = SystemTime::now();
        assert_eq!(take(d, "phone", now).as_deref(), Some("[Interface]\n"));
        assert!(take(d, "phone", now).is_none());
        assert!(!f.exists());
        assert_eq!(fs::read_dir(d.join(DIR)).unwrap().count(), 0);
    }

    #[test]
    fn expired_offers_are_not_shown_and_are_swept() {
        let guard = dir("expiry");
        let d = guard.path();
        let f = offer(d, "a", "x").unwrap();
        let later = SystemTime::now() + Duration::from_secs(OFFER_SECS + 5);
        sweep(d, SystemTime::now());
        assert!(f.exists());
        sweep(d, later);
        assert!(!f.exists());
        offer(d, "b", "y").unwrap();
        assert!(take(d, "b", later).is_none());
        assert!(!file(d, "b").exists());
    }

    #[test]
    fn names_cannot_leave_the_directory() {
        for bad in ["", "../x", "a/b", ".hidden", "a b"] {
            assert!(!valid_name(bad), "{bad}");
            assert!(take(Path::new("/tmp"), bad, SystemTime::now()).is_none());
        }
        assert!(offer(Path::new("/tmp"), "../etc", "x").is_err());
    }

    #[test]
    fn page_is_the_qr_only() {
        let h = html("phone", "[Interface]\nPrivateKey = SECRET\n");
        assert!(h.contains("<svg"));
        assert!(!h.contains("SECRET"));
    }
}
