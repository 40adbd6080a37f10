//! Private keys: read from files that only their owner can read, held in a
//! type that never prints its bytes, and generated with `portal keygen`.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use wireguard_control::Key;

/// A private key. Debug and Display show `<redacted>`, so it cannot leak
/// into logs or error messages by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKey(Key);

impl PrivateKey {
    pub fn key(&self) -> &Key {
        &self.0
    }

    pub fn public_base64(&self) -> String {
        self.0.get_public().to_base64()
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Reads a private key file, refusing one that group or others can access
/// or that someone other than root (or the user running Portal) owns.
/// Errors name the file, never its content.
pub fn load_private_key(path: &Path) -> Result<PrivateKey, String> {
    let shown = path.display();
    let meta = fs::metadata(path).map_err(|e| format!("cannot read key file {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("key file {shown} is not a regular file"));
    }
    // Root on the router; whoever runs Portal on a workstation (`check`).
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(format!(
            "key file {shown} is owned by uid {}, not by root; run: chown root {shown}",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "key file {shown} is accessible by group/others (mode {mode:04o}); run: chmod 600 {shown}"
        ));
    }
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read key file {shown}: {e}"))?;
    Key::from_base64(text.trim()).map(PrivateKey).map_err(|_| {
        format!("key file {shown} does not hold a WireGuard private key (base64 of 32 bytes)")
    })
}

/// A preshared key's fingerprint: the Curve25519 public key of its bytes,
/// one-way like any public key, so it can be compared and even printed
/// without revealing the key. None for the all-zero key (WireGuard's "no
/// preshared key").
pub fn psk_fingerprint(k: &Key) -> Option<String> {
    (*k.as_bytes() != [0u8; 32]).then(|| k.get_public().to_base64())
}

/// Writes a new private key (mode 0600, created exclusively: an existing key
/// is never overwritten) and returns the public key.
pub fn generate(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let key = Key::generate_private();
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {shown}: {e}"))?;
    // The umask cannot widen 0600, but a pre-set default ACL could: make sure.
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .and_then(|_| writeln!(f, "{}", key.to_base64()))
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("cannot write {shown}: {e}"))?;
    Ok(key.get_public().to_base64())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key path in a scratch directory that the returned guard removes.
    fn tmp(name: &str) -> (crate::testdir::TestDir, std::path::PathBuf) {
        let dir = crate::testdir::TestDir::new(&format!("keys-{name}"));
        let key = dir.path().join("k.key");
        (dir, key)
    }

    #[test]
    fn generated_key_loads_and_matches_public() {
        let (_dir, p) = tmp("gen");
        let public = generate(&p).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        let k = load_private_key(&p).unwrap();
        assert_eq!(k.public_base64(), public);
        assert_eq!(format!("{k:?}"), "<redacted>");
        // Never overwrite an existing key.
        assert!(generate(&p).is_err());
    }

    #[test]
    fn refuses_readable_key_and_names_it() {
        let (_dir, p) = tmp("mode");
        generate(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_private_key(&p).unwrap_err();
        assert!(err.contains(&p.display().to_string()), "{err}");
        assert!(err.contains("0644"), "{err}");
    }

    #[test]
    fn refuses_a_key_owned_by_someone_else() {
        let (_dir, p) = tmp("owner");
        generate(&p).unwrap();
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
            let err = load_private_key(&p).unwrap_err();
            assert!(err.contains("owned by uid 65534"), "{err}");
        }
    }

    #[test]
    fn refuses_garbage_without_echoing_it() {
        let (_dir, p) = tmp("garbage");
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
            .unwrap()
            .write_all(b"SECRETSECRET\n")
            .unwrap();
        let err = load_private_key(&p).unwrap_err();
        assert!(!err.contains("SECRET"), "{err}");
    }
}
