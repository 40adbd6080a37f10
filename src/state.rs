//! Small JSON files in the state directory, written atomically (temp file,
//! fsync, rename) so a power cut leaves either the old or the new file.

use crate::desired::Sysctl;
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
    let shown = path.display();
    let tmp = path.with_extension("tmp");
    let mut f =
        fs::File::create(&tmp).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    f.write_all(text)
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    fs::rename(&tmp, path).map_err(|e| format!("cannot rename to {shown}: {e}"))?;
    if let Some(dir) = path.parent() {
        // Make the rename itself durable.
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
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
}
