//! `portal upgrade BUNDLE`: the bundle (a tar: manifest.json, then the
//! members it lists) is streamed once. The root image goes straight to the
//! inactive slot's partition and the slot's kernel and boot initramfs to
//! temporary files on the ESP, each hashed on the way; nothing is switched
//! unless every hash matches the manifest and the partition reads back the
//! same. Then the new files take their names, the upgrade is recorded in
//! /perm and the loader is asked to boot the new slot once.
//!
//! BUNDLE may be a file or a block device holding the tar (a USB stick
//! written with dd): the tar's end-of-archive block ends the read.

use super::{
    efi_string_var, hex, parse_manifest, tar_header, Manifest, Pending, Slot, LOADER_GUID,
};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Where the running system keeps what an upgrade touches.
pub struct Paths {
    pub cmdline: PathBuf,
    /// The mounted ESP (loader/loader.conf, portal-X/).
    pub esp: PathBuf,
    pub efivars: PathBuf,
    /// /perm/upgrade.json: the upgrade in progress.
    pub record: PathBuf,
    /// key=value facts of the image (`board=t8pro`), from firmware/build.
    pub board_file: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            cmdline: "/proc/cmdline".into(),
            esp: "/boot".into(),
            efivars: "/sys/firmware/efi/efivars".into(),
            record: "/perm/upgrade.json".into(),
            board_file: "/etc/board".into(),
        }
    }
}

const CHUNK: usize = 1 << 20;
const MANIFEST_MAX: u64 = 64 * 1024;

pub fn run(bundle: &Path, paths: &Paths, say: &mut dyn FnMut(&str)) -> Result<Pending, String> {
    let (from, to, board, device) = check_system(paths, say)?;

    let mut input = File::open(bundle).map_err(|e| format!("{}: {e}", bundle.display()))?;
    let manifest = read_manifest(&mut input, &board)?;
    say(&format!("bundle: {} for {board}", manifest.version));

    let esp_dir = paths.esp.join(to.esp_dir());
    std::fs::create_dir_all(&esp_dir).map_err(|e| format!("{}: {e}", esp_dir.display()))?;
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    let result = write_members(&mut input, &manifest, &device, &esp_dir, &mut staged, say);
    if let Err(e) = result {
        for (temp, _) in &staged {
            let _ = std::fs::remove_file(temp);
        }
        return Err(format!(
            "{e}; nothing switched, slot {} stays the default",
            from.name()
        ));
    }
    for (temp, final_path) in &staged {
        std::fs::rename(temp, final_path).map_err(|e| format!("{}: {e}", final_path.display()))?;
    }
    crate::state::sync_dir(&esp_dir);
    let pending = Pending {
        from,
        to,
        version: manifest.version.clone(),
    };
    crate::state::write_json_atomic(&paths.record, &pending)?;
    set_one_shot(&paths.efivars, to)?;
    say(&format!(
        "slot {} will be booted once; it becomes the default when its agent reports healthy",
        to.name()
    ));
    Ok(pending)
}

/// That this system can be upgraded (booted from a slot, ESP mounted,
/// UEFI): the running slot, the one to write, the board and the
/// partition of the slot to write.
fn check_system(
    paths: &Paths,
    say: &mut dyn FnMut(&str),
) -> Result<(Slot, Slot, String, PathBuf), String> {
    let cmdline = std::fs::read_to_string(&paths.cmdline).unwrap_or_default();
    let from = super::booted(&cmdline).ok_or(
        "this system was not booted from an A/B slot (no root=PARTLABEL=portal-root-X): \
         upgrades need the installed disk form",
    )?;
    let to = from.other();
    let loader_conf = paths.esp.join("loader/loader.conf");
    if !loader_conf.exists() {
        return Err(format!(
            "no {}: the ESP is not mounted on {}",
            loader_conf.display(),
            paths.esp.display()
        ));
    }
    if !paths.efivars.is_dir() {
        return Err(format!(
            "no {}: not booted by UEFI, cannot ask the loader for a one-time boot",
            paths.efivars.display()
        ));
    }
    let board = board_name(&paths.board_file)?;
    let device = crate::blockdev::resolve(&format!("PARTLABEL={}", to.root_label()))
        .ok_or_else(|| format!("no partition named {}", to.root_label()))?;
    say(&format!(
        "running slot {}; writing slot {} ({})",
        from.name(),
        to.name(),
        device.display()
    ));
    Ok((from, to, board, device))
}

/// The bundle's first member, manifest.json, read and checked for `board`.
fn read_manifest(input: &mut File, board: &str) -> Result<Manifest, String> {
    let (name, size) = next_header(input)?.ok_or("the bundle is empty")?;
    if name != "manifest.json" || size > MANIFEST_MAX {
        return Err(format!(
            "the bundle's first member is {name:?} ({size} bytes), not manifest.json"
        ));
    }
    let mut text = vec![0; size as usize];
    input
        .read_exact(&mut text)
        .map_err(|e| format!("manifest.json: {e}"))?;
    skip_padding(input, size)?;
    parse_manifest(&String::from_utf8_lossy(&text), board)
}

/// The members after the manifest, each written and its hash checked
/// against the manifest; ESP files are written to `staged` temporary
/// names. Every member must be there, once.
fn write_members(
    input: &mut File,
    manifest: &Manifest,
    device: &Path,
    esp_dir: &Path,
    staged: &mut Vec<(PathBuf, PathBuf)>,
    say: &mut dyn FnMut(&str),
) -> Result<(), String> {
    let mut seen = Vec::new();
    while let Some((name, size)) = next_header(input)? {
        let entry = manifest
            .files
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| format!("{name:?} is in the bundle but not in its manifest"))?;
        if seen.contains(&name) {
            return Err(format!("{name} is in the bundle twice"));
        }
        if size != entry.size {
            return Err(format!(
                "{name}: {size} bytes, the manifest says {}",
                entry.size
            ));
        }
        let digest = write_member(input, &name, size, device, esp_dir, staged)?;
        skip_padding(input, size)?;
        if digest != entry.sha256.to_ascii_lowercase() {
            return Err(format!(
                "{name}: sha256 {digest}, the manifest says {}",
                entry.sha256
            ));
        }
        say(&format!("{name}: {size} bytes, sha256 matches"));
        seen.push(name);
    }
    if let Some(missing) = super::MEMBERS
        .iter()
        .find(|m| !seen.iter().any(|s| s == *m))
    {
        return Err(format!("the bundle ends without {missing}"));
    }
    Ok(())
}

/// One member: root.sqfs to the partition (and read back), any other to
/// a temporary file on the ESP. Returns its sha256.
fn write_member(
    input: &mut File,
    name: &str,
    size: u64,
    device: &Path,
    esp_dir: &Path,
    staged: &mut Vec<(PathBuf, PathBuf)>,
) -> Result<String, String> {
    if name == "root.sqfs" {
        let digest = write_partition(input, size, device)?;
        // Read back past the page cache's copy of what was written.
        let back = hash_device(device, size)?;
        if back != digest {
            return Err(format!(
                "{}: read back {back}, wrote {digest}",
                device.display()
            ));
        }
        Ok(digest)
    } else {
        let final_path = esp_dir.join(name);
        let temp = esp_dir.join(format!("{name}.new"));
        let digest = write_file(input, size, &temp)?;
        staged.push((temp, final_path));
        Ok(digest)
    }
}

fn board_name(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix("board="))
        .map(str::to_string)
        .ok_or_else(|| format!("{}: no board= line", path.display()))
}

fn next_header(input: &mut File) -> Result<Option<(String, u64)>, String> {
    let mut block = [0u8; 512];
    input
        .read_exact(&mut block)
        .map_err(|e| format!("reading the bundle: {e}"))?;
    tar_header(&block)
}

fn skip_padding(input: &mut File, size: u64) -> Result<(), String> {
    let pad = (512 - size % 512) % 512;
    input
        .seek(SeekFrom::Current(pad as i64))
        .map(drop)
        .map_err(|e| format!("reading the bundle: {e}"))
}

/// Copies `size` bytes from `input` to `out`, hashing them.
fn copy_hashed(input: &mut File, size: u64, out: &mut File, what: &Path) -> Result<String, String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut left = size;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        input
            .read_exact(&mut buf[..n])
            .map_err(|e| format!("reading the bundle: {e}"))?;
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| format!("{}: {e}", what.display()))?;
        left -= n as u64;
    }
    out.sync_all()
        .map_err(|e| format!("{}: {e}", what.display()))?;
    Ok(hex(&hasher.finalize()))
}

fn write_partition(input: &mut File, size: u64, device: &Path) -> Result<String, String> {
    let capacity = device_size(device)?;
    if size > capacity {
        return Err(format!(
            "root.sqfs has {size} bytes, {} holds {capacity}",
            device.display()
        ));
    }
    let mut out = OpenOptions::new()
        .write(true)
        .open(device)
        .map_err(|e| format!("{}: {e}", device.display()))?;
    copy_hashed(input, size, &mut out, device)
}

fn write_file(input: &mut File, size: u64, path: &Path) -> Result<String, String> {
    let mut out = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    copy_hashed(input, size, &mut out, path)
}

/// The partition's size from sysfs (sectors of 512 bytes).
fn device_size(device: &Path) -> Result<u64, String> {
    let name = device
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    std::fs::read_to_string(format!("/sys/class/block/{name}/size"))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(|sectors| sectors * 512)
        .ok_or_else(|| format!("{}: size unknown", device.display()))
}

/// Hashes the first `size` bytes of `device`, read with O_DIRECT so that
/// the bytes come from the disk, not from the cache of what was written.
fn hash_device(device: &Path, size: u64) -> Result<String, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(device)
        .map_err(|e| format!("{}: {e}", device.display()))?;
    // O_DIRECT needs an aligned buffer: a Vec of 4 KiB-aligned blocks.
    #[repr(C, align(4096))]
    struct Block([u8; 4096]);
    let mut blocks: Vec<Block> = (0..CHUNK / 4096).map(|_| Block([0; 4096])).collect();
    // SAFETY: the blocks are contiguous plain bytes, CHUNK long.
    let buf = unsafe { std::slice::from_raw_parts_mut(blocks.as_mut_ptr() as *mut u8, CHUNK) };
    let mut hasher = Sha256::new();
    let mut left = size;
    while left > 0 {
        // Reads stay whole blocks; the tail past `size` is not hashed.
        let want = left.min(CHUNK as u64) as usize;
        let n = f
            .read(&mut buf[..want.div_ceil(4096) * 4096])
            .map_err(|e| format!("{}: {e}", device.display()))?;
        if n == 0 {
            return Err(format!("{}: ends before {size} bytes", device.display()));
        }
        let used = n.min(want);
        hasher.update(&buf[..used]);
        left -= used as u64;
    }
    Ok(hex(&hasher.finalize()))
}

/// LoaderEntryOneShot: systemd-boot boots that entry next, once. An
/// earlier value is replaced; efivarfs marks existing variables immutable,
/// so that flag is cleared first.
fn set_one_shot(efivars: &Path, slot: Slot) -> Result<(), String> {
    let path = efivars.join(format!("LoaderEntryOneShot-{LOADER_GUID}"));
    if path.exists() {
        clear_immutable(&path);
        let _ = std::fs::remove_file(&path);
    }
    // efivarfs takes the whole value in one write.
    let value = efi_string_var(&slot.entry());
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(&value).map_err(|e| {
        format!(
            "cannot set the one-time boot entry ({}): {e}",
            path.display()
        )
    })
}

/// linux/fs.h (not exported by the libc crate).
const FS_IMMUTABLE_FL: libc::c_long = 0x10;

fn clear_immutable(path: &Path) {
    use std::os::fd::AsRawFd;
    let Ok(f) = File::open(path) else { return };
    let mut flags: libc::c_long = 0;
    // SAFETY: FS_IOC_GETFLAGS/SETFLAGS read and write one long through the pointer.
    unsafe {
        if libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS as _, &mut flags) == 0 {
            flags &= !FS_IMMUTABLE_FL;
            libc::ioctl(f.as_raw_fd(), libc::FS_IOC_SETFLAGS as _, &flags);
        }
    }
}
