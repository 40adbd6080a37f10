//! From a boot initramfs to the real root: find the root partition the
//! boot loader named on the kernel command line (`root=PARTLABEL=...`, so
//! that slot A and slot B differ only in their boot entry), mount it
//! read-only, move the pseudo file systems into it, free the initramfs and
//! exec the root's own init, still as PID 1.
//!
//! Device names in `root=` and in init.json's mounts may be a path
//! (`/dev/vda2`) or `PARTLABEL=NAME`, the GPT partition's name, resolved
//! through sysfs (no udev in the firmware).

use nix::mount::MsFlags;
use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

/// What the kernel command line says about the root file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootArgs {
    pub device: String,
    pub fstype: String,
    pub read_only: bool,
}

/// `root=`, `rootfstype=` and `ro`/`rw` from /proc/cmdline. The root is
/// read-only unless `rw` is given: the A/B slots are images, never edited.
pub fn parse_cmdline(cmdline: &str) -> Option<RootArgs> {
    let mut device = None;
    let mut fstype = None;
    let mut read_only = true;
    for word in cmdline.split_whitespace() {
        if let Some(v) = word.strip_prefix("root=") {
            device = Some(v.to_string());
        } else if let Some(v) = word.strip_prefix("rootfstype=") {
            fstype = Some(v.to_string());
        } else if word == "rw" {
            read_only = false;
        } else if word == "ro" {
            read_only = true;
        }
    }
    Some(RootArgs {
        device: device.filter(|d| !d.is_empty())?,
        fstype: fstype.unwrap_or_else(|| "squashfs".into()),
        read_only,
    })
}

pub use crate::blockdev::{is_device, resolve, resolve_with, wait_for};

const NEW_ROOT: &str = "/newroot";
/// Mounted by the boot stage, moved as they are into the real root.
const CARRIED: [&str; 4] = ["/dev", "/proc", "/sys", "/run"];

/// Mounts the root and execs `init` on it. Returns only on failure, with
/// the reason; the caller goes on with the initramfs (a rescue console).
pub fn switch(args: &RootArgs, init: &Path, wait: Duration) -> String {
    match try_switch(args, init, wait) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn try_switch(
    args: &RootArgs,
    init: &Path,
    wait: Duration,
) -> Result<std::convert::Infallible, String> {
    let dev = wait_for(&args.device, wait)
        .ok_or_else(|| format!("root device {} did not appear", args.device))?;
    std::fs::create_dir_all(NEW_ROOT).map_err(|e| format!("{NEW_ROOT}: {e}"))?;
    let mut flags = MsFlags::empty();
    if args.read_only {
        flags |= MsFlags::MS_RDONLY;
    }
    nix::mount::mount(
        Some(&dev),
        NEW_ROOT,
        Some(args.fstype.as_str()),
        flags,
        None::<&str>,
    )
    .map_err(|e| format!("mount {} ({}): {e}", dev.display(), args.fstype))?;
    let target_init = Path::new(NEW_ROOT).join(init.strip_prefix("/").unwrap_or(init));
    if !target_init.exists() {
        let _ = nix::mount::umount(NEW_ROOT);
        return Err(format!("{} has no {}", args.device, init.display()));
    }
    for m in CARRIED {
        let to = Path::new(NEW_ROOT).join(&m[1..]);
        if let Err(e) =
            nix::mount::mount(Some(m), &to, None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        {
            // Not fatal: the new root's init mounts what is missing.
            crate::log::error(&format!("init: cannot move {m} to the new root: {e}"));
        }
    }
    // The initramfs stays in memory until its files are gone.
    let initramfs = std::fs::metadata("/").map(|m| m.dev()).unwrap_or(0);
    let freed = remove_on_device(Path::new("/"), initramfs);
    crate::log::info(&format!(
        "init: root {} ({}, {}) mounted; freed {} kB of initramfs; exec {}",
        dev.display(),
        args.fstype,
        if args.read_only {
            "read-only"
        } else {
            "read-write"
        },
        freed / 1024,
        init.display()
    ));
    std::env::set_current_dir(NEW_ROOT).map_err(|e| format!("chdir {NEW_ROOT}: {e}"))?;
    nix::mount::mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .map_err(|e| format!("move {NEW_ROOT} to /: {e}"))?;
    nix::unistd::chroot(".").map_err(|e| format!("chroot: {e}"))?;
    std::env::set_current_dir("/").map_err(|e| format!("chdir /: {e}"))?;
    let path = CString::new(init.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
    nix::unistd::execv(&path, &[&path]).map_err(|e| format!("exec {}: {e}", init.display()))
}

/// Deletes everything under `dir` that lives on device `dev` (not below
/// other mounts); returns the bytes freed.
fn remove_on_device(dir: &Path, dev: u64) -> u64 {
    let mut freed = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.dev() != dev {
            continue;
        }
        if meta.is_dir() {
            freed += remove_on_device(&path, dev);
            let _ = std::fs::remove_dir(&path);
        } else if std::fs::remove_file(&path).is_ok() {
            freed += meta.len();
        }
    }
    freed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline() {
        let a =
            parse_cmdline("console=ttyS0 root=PARTLABEL=portal-root-a rootfstype=squashfs quiet")
                .unwrap();
        assert_eq!(a.device, "PARTLABEL=portal-root-a");
        assert_eq!(a.fstype, "squashfs");
        assert!(a.read_only);
        let b = parse_cmdline("root=/dev/vda2 rw rootfstype=ext4\n").unwrap();
        assert_eq!(
            (b.device.as_str(), b.fstype.as_str(), b.read_only),
            ("/dev/vda2", "ext4", false)
        );
        assert_eq!(parse_cmdline("console=ttyS0 quiet"), None);
        assert_eq!(parse_cmdline("root= quiet"), None);
    }

    #[test]
    fn partlabel() {
        let disk = "MAJOR=253\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\nDISKSEQ=1\n";
        let a = "MAJOR=253\nMINOR=2\nDEVNAME=vda2\nDEVTYPE=partition\nPARTN=2\nPARTNAME=portal-root-a\n";
        let b = "MAJOR=253\nMINOR=3\nDEVNAME=vda3\nDEVTYPE=partition\nPARTN=3\nPARTNAME=portal-root-b\n";
        let all = [disk, a, b];
        assert_eq!(
            resolve_with("PARTLABEL=portal-root-b", all),
            Some(std::path::PathBuf::from("/dev/vda3"))
        );
        // A label that is a prefix of another does not match it.
        assert_eq!(resolve_with("PARTLABEL=portal-root", all), None);
        assert_eq!(
            resolve_with("/dev/nvme0n1p4", all),
            Some(std::path::PathBuf::from("/dev/nvme0n1p4"))
        );
        assert!(is_device("PARTLABEL=x") && is_device("/dev/vda") && !is_device("tmpfs"));
    }
}
