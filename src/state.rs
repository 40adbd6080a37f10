//! Small JSON files in the state directory, written atomically (temp file,
//! fsync, rename) so a power cut leaves either the old or the new file.

use crate::core::desired::Sysctl;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

const NFT_FILE: &str = "nft.json";
const SYSCTL_FILE: &str = "sysctl-before.json";

/// The nft ruleset Portal last wrote and the kernel's listing right after.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct NftRecord {
    pub ruleset: String,
    pub listing: String,
}

pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<(), String> {
    let text = serde_json::to_vec_pretty(value).map_err(|e| format!("{}: {e}", path.display()))?;
    write_atomic(path, &text)
}

/// Replaces `path` with `text`: temp file, fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, text: &[u8]) -> Result<(), String> {
    write_atomic_mode(path, text, 0o644)
}

/// [`write_atomic`] with the file's mode (0600 for a file holding a
/// secret: it is never readable by others, not even while written).
pub fn write_atomic_mode(path: &Path, text: &[u8], mode: u32) -> Result<(), String> {
    replace(path, text, Some(mode))
}

/// [`write_atomic`] on a file system without Unix modes (the ESP's FAT,
/// where a chmod the mount options do not allow fails).
pub fn write_atomic_on_fat(path: &Path, text: &[u8]) -> Result<(), String> {
    replace(path, text, None)
}

fn replace(path: &Path, text: &[u8], mode: Option<u32>) -> Result<(), String> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let shown = path.display();
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode.unwrap_or(0o644))
        .open(&tmp)
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    if let Some(mode) = mode {
        // A leftover temp file keeps its old mode: set it.
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    }
    f.write_all(text)
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    fs::rename(&tmp, path).map_err(|e| format!("cannot rename to {shown}: {e}"))?;
    if let Some(dir) = path.parent() {
        // Make the rename itself durable.
        sync_dir(dir);
    }
    Ok(())
}

/// fsync of a directory: what was renamed or created in it stays so.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

pub fn save_nft(dir: &Path, ruleset: &str, listing: &str) -> Result<(), String> {
    write_json_atomic(
        &dir.join(NFT_FILE),
        &NftRecord {
            ruleset: ruleset.to_string(),
            listing: listing.to_string(),
        },
    )
}

pub fn load_nft(dir: &Path) -> Option<NftRecord> {
    read_json(&dir.join(NFT_FILE))
}

pub fn clear_nft(dir: &Path) {
    let _ = fs::remove_file(dir.join(NFT_FILE));
}

/// Records a sysctl's value before Portal's first change to it (later
/// changes keep the first record: that is the value `down` restores).
pub fn remember_sysctl(dir: &Path, key: &str, prior: &str) -> Result<(), String> {
    let path = dir.join(SYSCTL_FILE);
    let mut map: BTreeMap<String, String> = read_json(&path).unwrap_or_default();
    if map.contains_key(key) {
        return Ok(());
    }
    map.insert(key.to_string(), prior.to_string());
    write_json_atomic(&path, &map)
}

pub fn sysctl_priors(dir: &Path) -> Vec<Sysctl> {
    let map: BTreeMap<String, String> = read_json(&dir.join(SYSCTL_FILE)).unwrap_or_default();
    map.into_iter()
        .map(|(key, value)| Sysctl { key, value })
        .collect()
}

pub fn clear_sysctls(dir: &Path) {
    let _ = fs::remove_file(dir.join(SYSCTL_FILE));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_prior_is_the_first_value_seen() {
        let dir = std::env::temp_dir().join(format!("portal-state-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        remember_sysctl(&dir, "net.ipv4.ip_forward", "0").unwrap();
        remember_sysctl(&dir, "net.ipv4.ip_forward", "1").unwrap();
        assert_eq!(
            sysctl_priors(&dir),
            vec![Sysctl {
                key: "net.ipv4.ip_forward".into(),
                value: "0".into()
            }]
        );
        save_nft(&dir, "r", "l").unwrap();
        assert_eq!(load_nft(&dir).unwrap().listing, "l");
        clear_nft(&dir);
        assert!(load_nft(&dir).is_none());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_secret_file_is_never_readable_by_others() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("portal-mode-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hostapd-wlan0.conf");
        // A leftover temp file from a crash, world-readable.
        fs::write(path.with_extension("tmp"), "old").unwrap();
        fs::set_permissions(
            path.with_extension("tmp"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        write_atomic_mode(&path, b"wpa_passphrase=x\n", 0o600).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(fs::read_to_string(&path).unwrap(), "wpa_passphrase=x\n");
        fs::remove_dir_all(&dir).unwrap();
    }
}
