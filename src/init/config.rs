//! `/etc/portal/init.json`: the board's facts for PID 1, written by the
//! firmware builder (firmware/), not by the router's user: what to mount,
//! which kernel modules to load, which services to run.

use serde::Deserialize;
use std::path::PathBuf;

pub const DEFAULT_PATH: &str = "/etc/portal/init.json";

#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InitConfig {
    #[serde(default)]
    pub hostname: Option<String>,
    /// Mounted in order at boot, unmounted in reverse at shutdown; a target
    /// that is already a mount point is left alone.
    #[serde(default = "default_mounts")]
    pub mounts: Vec<Mount>,
    /// Module files in load order (dependencies first), absolute or
    /// relative to /lib/modules/RELEASE/.
    #[serde(default)]
    pub modules: Vec<String>,
    /// Network interfaces renamed before the modules load. On the
    /// EdgeRouter X the SoC's Ethernet comes up as `eth0`; renamed, the
    /// switch driver (a module) can give its ports the names on the case.
    #[serde(default)]
    pub rename_links: Vec<RenameLink>,
    /// A WireGuard private key to create on first boot (mode 0600); its
    /// public key is printed on the console.
    #[serde(default)]
    pub first_boot_key: Option<PathBuf>,
    /// Started in order, restarted with backoff, stopped in reverse order.
    #[serde(default)]
    pub services: Vec<ServiceSpec>,
    /// Seconds a service gets between SIGTERM and SIGKILL at shutdown.
    #[serde(default = "default_stop_timeout")]
    pub stop_timeout_secs: u64,
    /// Set in a boot initramfs: after the mounts and modules, mount the
    /// root named by the kernel command line (`root=`) and exec its init.
    #[serde(default)]
    pub switch_root: Option<SwitchRoot>,
    /// Set on the installed (A/B) form: report the slot on each boot, and
    /// confirm or roll back a slot booted once after `portal upgrade`.
    #[serde(default)]
    pub slots: Option<SlotsConfig>,
}

#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RenameLink {
    pub from: String,
    pub to: String,
}

pub use crate::upgrade::trial::SlotsConfig;

#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SwitchRoot {
    /// The init to exec on the new root.
    #[serde(default = "default_root_init")]
    pub init: PathBuf,
    /// How long the root device may take to appear (its driver probes
    /// after the module load).
    #[serde(default = "default_root_wait")]
    pub wait_secs: u64,
}

fn default_root_init() -> PathBuf {
    PathBuf::from("/init")
}

fn default_root_wait() -> u64 {
    10
}

#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    pub source: String,
    pub target: PathBuf,
    pub fstype: String,
    /// File-system specific options (`mode=0755`, ...).
    #[serde(default)]
    pub options: Option<String>,
    /// Mount read-only.
    #[serde(default)]
    pub read_only: bool,
    /// Boot goes on if this mount fails (logged): a router without its
    /// data partition should still route and show why on its console.
    #[serde(default)]
    pub optional: bool,
}

#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub name: String,
    pub argv: Vec<String>,
    /// stdin/stdout/stderr on /dev/console (a shell for the operator).
    #[serde(default)]
    pub console: bool,
}

fn default_stop_timeout() -> u64 {
    5
}

fn pseudo(source: &str, target: &str, fstype: &str, options: Option<&str>) -> Mount {
    Mount {
        source: source.into(),
        target: target.into(),
        fstype: fstype.into(),
        options: options.map(str::to_string),
        read_only: false,
        optional: false,
    }
}

/// What every Linux system needs before anything else runs.
pub fn default_mounts() -> Vec<Mount> {
    vec![
        pseudo("proc", "/proc", "proc", None),
        pseudo("sysfs", "/sys", "sysfs", None),
        pseudo("devtmpfs", "/dev", "devtmpfs", Some("mode=0755")),
        pseudo(
            "devpts",
            "/dev/pts",
            "devpts",
            Some("gid=5,mode=0620,ptmxmode=0666"),
        ),
        pseudo("tmpfs", "/run", "tmpfs", Some("mode=0755,nosuid,nodev")),
        pseudo("tmpfs", "/tmp", "tmpfs", Some("mode=1777,nosuid,nodev")),
    ]
}

impl Default for InitConfig {
    fn default() -> Self {
        InitConfig {
            hostname: None,
            mounts: default_mounts(),
            modules: Vec::new(),
            rename_links: Vec::new(),
            first_boot_key: None,
            services: Vec::new(),
            stop_timeout_secs: default_stop_timeout(),
            switch_root: None,
            slots: None,
        }
    }
}

pub fn parse(text: &str) -> Result<InitConfig, String> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let c: InitConfig =
        serde_path_to_error::deserialize(de).map_err(|e| format!("{}: {}", e.path(), e.inner()))?;
    for (i, r) in c.rename_links.iter().enumerate() {
        for (field, name) in [("from", &r.from), ("to", &r.to)] {
            if let Err(why) = crate::core::model::check_ifname(name) {
                return Err(format!("rename_links[{i}].{field}: {why}"));
            }
        }
    }
    for (i, s) in c.services.iter().enumerate() {
        if s.argv.is_empty() {
            return Err(format!("services[{i}].argv: empty"));
        }
        if c.services[..i].iter().any(|o| o.name == s.name) {
            return Err(format!("services[{i}].name: `{}` twice", s.name));
        }
    }
    Ok(c)
}

/// Mount points in /proc/self/mountinfo (field 5, octal escapes undone).
pub fn mount_points(mountinfo: &str) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_octal)
        .collect()
}

fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_services() {
        let c =
            parse(r#"{ "services": [ { "name": "agent", "argv": ["/sbin/portal", "agent"] } ] }"#)
                .unwrap();
        assert_eq!(c.mounts, default_mounts());
        assert_eq!(c.stop_timeout_secs, 5);
        assert_eq!(c.services[0].name, "agent");
        assert!(parse(r#"{ "services": [ { "name": "a", "argv": [] } ] }"#)
            .unwrap_err()
            .contains("services[0].argv"));
        assert!(parse(
            r#"{ "services": [ { "name": "a", "argv": ["x"] }, { "name": "a", "argv": ["y"] } ] }"#
        )
        .unwrap_err()
        .contains("twice"));
        let s = parse(r#"{ "switch_root": {} }"#)
            .unwrap()
            .switch_root
            .unwrap();
        assert_eq!((s.init.to_str(), s.wait_secs), (Some("/init"), 10));
        assert!(parse(r#"{ "mounts": [ { "source": "x" } ] }"#)
            .unwrap_err()
            .contains("mounts[0]"));
    }

    #[test]
    fn rename_links() {
        let c = parse(r#"{ "rename_links": [ { "from": "eth0", "to": "dsa" } ] }"#).unwrap();
        assert_eq!(
            (
                c.rename_links[0].from.as_str(),
                c.rename_links[0].to.as_str()
            ),
            ("eth0", "dsa")
        );
        for (bad, why) in [
            ("", "empty"),
            ("a-name-too-long-16", "Linux allows 15"),
            ("lan 1", "not a valid"),
            ("eth0:1", "not a valid"),
            ("..", "not a valid"),
        ] {
            let text = format!(r#"{{ "rename_links": [ {{ "from": "eth0", "to": "{bad}" }} ] }}"#);
            let e = parse(&text).unwrap_err();
            assert!(
                e.contains("rename_links[0].to") && e.contains(why),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn mountinfo() {
        let t = "22 1 0:21 / /proc rw,nosuid - proc proc rw\n\
                 30 22 0:25 / /mnt/with\\040space rw - tmpfs tmpfs rw\n";
        assert_eq!(mount_points(t), vec!["/proc", "/mnt/with space"]);
    }
}
