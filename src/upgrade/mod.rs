//! A/B upgrades of the installed (disk) form: `portal upgrade BUNDLE`
//! writes the slot that is not running, asks the boot loader to start it
//! once, and reboots; PID 1 on the new slot makes it the default only when
//! the agent reports a healthy first pass within a deadline. Anything else
//! (a kernel that does not come up, an agent that fails, a hang caught by
//! the deadline) ends in a reboot, and the loader's default is still the
//! old slot: the rollback needs no decision from the failed system.
//!
//! The loader is systemd-boot: its `loader.conf` `default` line names the
//! slot's entry, and the EFI variable `LoaderEntryOneShot` picks an entry
//! for one boot only (systemd-boot deletes it as it reads it).
//!
//! This file is the pure part (slots, loader.conf, the bundle's manifest
//! and tar headers, the boot decision); `write` and `trial` do the I/O.

pub mod trial;
/// Writing a bundle (sha2): only in builds with A/B upgrades.
#[cfg(feature = "upgrade")]
pub mod write;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    A,
    B,
}

impl Slot {
    pub fn name(self) -> &'static str {
        match self {
            Slot::A => "a",
            Slot::B => "b",
        }
    }
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }
    /// The root partition's GPT name.
    pub fn root_label(self) -> String {
        format!("portal-root-{}", self.name())
    }
    /// The loader entry's file name, as loader.conf and the EFI variable name it.
    pub fn entry(self) -> String {
        format!("portal-{}.conf", self.name())
    }
    /// The slot's directory on the ESP (its kernel and boot initramfs).
    pub fn esp_dir(self) -> String {
        format!("portal-{}", self.name())
    }
    fn from_name(s: &str) -> Option<Slot> {
        match s {
            "a" => Some(Slot::A),
            "b" => Some(Slot::B),
            _ => None,
        }
    }
}

/// The slot the kernel was booted from: its `root=PARTLABEL=portal-root-X`.
pub fn booted(cmdline: &str) -> Option<Slot> {
    cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("root=PARTLABEL=portal-root-"))
        .and_then(Slot::from_name)
}

/// The slot loader.conf's `default` line names.
pub fn loader_default(loader_conf: &str) -> Option<Slot> {
    loader_conf.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        (words.next() == Some("default"))
            .then(|| words.next())
            .flatten()
            .and_then(|e| e.strip_prefix("portal-")?.strip_suffix(".conf"))
            .and_then(Slot::from_name)
    })
}

/// loader.conf with its `default` line naming `slot` (added when missing);
/// every other line as it was.
pub fn with_default(loader_conf: &str, slot: Slot) -> String {
    let line = format!("default {}", slot.entry());
    let mut out = Vec::new();
    let mut replaced = false;
    for l in loader_conf.lines() {
        if l.split_whitespace().next() == Some("default") {
            if !replaced {
                out.push(line.clone());
                replaced = true;
            }
        } else {
            out.push(l.to_string());
        }
    }
    if !replaced {
        out.insert(0, line);
    }
    out.join("\n") + "\n"
}

/// What `portal upgrade` leaves in /perm for the next boots to report on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub from: Slot,
    pub to: Slot,
    pub version: String,
}

/// What PID 1 does about upgrades on this boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootState {
    /// Booted the default slot, nothing pending.
    Normal,
    /// Booted a slot that is not the default (the one-shot entry): it must
    /// prove itself healthy before it becomes the default.
    Trial(Slot),
    /// Booted the default slot while an upgrade to the other is recorded:
    /// that slot was tried and did not confirm.
    RolledBack(Pending),
    /// The boot facts are missing (no UEFI variables, no ESP, a root not
    /// named by slot): upgrades are not possible on this boot.
    Unknown(String),
}

pub fn decide(booted: Option<Slot>, default: Option<Slot>, pending: Option<Pending>) -> BootState {
    let (Some(booted), Some(default)) = (booted, default) else {
        return BootState::Unknown(match booted {
            None => "the kernel command line names no slot (root=PARTLABEL=portal-root-X)".into(),
            Some(_) => "loader.conf on the ESP names no slot".into(),
        });
    };
    if booted != default {
        return BootState::Trial(booted);
    }
    match pending {
        Some(p) if p.to != booted => BootState::RolledBack(p),
        _ => BootState::Normal,
    }
}

/// The bundle's first member, `manifest.json`: what the other members must be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub board: String,
    pub version: String,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// The members a bundle carries, each once: the root file system and, for
/// the ESP, the slot's kernel and boot initramfs.
pub const MEMBERS: [&str; 3] = ["root.sqfs", "vmlinuz", "boot.cpio"];

pub fn parse_manifest(text: &str, board: &str) -> Result<Manifest, String> {
    let m: Manifest = serde_json::from_str(text).map_err(|e| format!("manifest.json: {e}"))?;
    if m.board != board {
        return Err(format!(
            "manifest.json: the bundle is for board {:?}, this is {board:?}",
            m.board
        ));
    }
    if m.version.is_empty() || m.version.len() > 100 || m.version.chars().any(char::is_control) {
        return Err("manifest.json: version: 1 to 100 printable characters".into());
    }
    for want in MEMBERS {
        if m.files.iter().filter(|f| f.name == want).count() != 1 {
            return Err(format!("manifest.json: files: needs {want} exactly once"));
        }
    }
    for (i, f) in m.files.iter().enumerate() {
        if !MEMBERS.contains(&f.name.as_str()) {
            return Err(format!(
                "manifest.json: files[{i}].name: unknown member {:?}",
                f.name
            ));
        }
        if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("manifest.json: files[{i}].sha256: 64 hex digits"));
        }
    }
    Ok(m)
}

/// One ustar header block: the member's name and size, or None at the
/// end-of-archive (zero) block. Checks the header checksum.
pub fn tar_header(block: &[u8; 512]) -> Result<Option<(String, u64)>, String> {
    if block.iter().all(|&b| b == 0) {
        return Ok(None);
    }
    let field = |from: usize, len: usize| &block[from..from + len];
    let octal = |bytes: &[u8]| -> Result<u64, String> {
        let text: String = bytes
            .iter()
            .take_while(|&&b| b != 0)
            .map(|&b| b as char)
            .collect();
        u64::from_str_radix(text.trim(), 8).map_err(|_| format!("bad octal field {text:?}"))
    };
    let want = octal(field(148, 8))?;
    let sum: u64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                b as u64
            }
        })
        .sum();
    if sum != want {
        return Err("tar header checksum mismatch (not a bundle, or damaged)".into());
    }
    let typeflag = block[156];
    if typeflag != b'0' && typeflag != 0 {
        return Err(format!(
            "member type {:?}: only plain files belong in a bundle",
            typeflag as char
        ));
    }
    let name: String = field(0, 100)
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect();
    let name = name.trim_start_matches("./").to_string();
    Ok(Some((name, octal(field(124, 12))?)))
}

/// The value of a UEFI string variable as efivarfs takes it: attributes
/// (non-volatile, boot-service and runtime access), then the string in
/// UTF-16LE with a terminating NUL, the form systemd-boot reads.
pub fn efi_string_var(s: &str) -> Vec<u8> {
    let mut v = 7u32.to_le_bytes().to_vec();
    for u in s.encode_utf16().chain(std::iter::once(0)) {
        v.extend_from_slice(&u.to_le_bytes());
    }
    v
}

/// systemd-boot's vendor GUID for its variables.
pub const LOADER_GUID: &str = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
