//! WireGuard devices through wireguard-control: the kernel module over
//! generic netlink, or wireguard-go (userspace) over its UAPI socket when
//! the kernel has no WireGuard.

use crate::core::cidr::Cidr;
use crate::core::desired::WgPeer;
use crate::core::diff::{ObservedPeer, ObservedWg};
use crate::keys;
use std::fs;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wireguard_control::{Backend, Device, DeviceUpdate, InterfaceName, Key, PeerConfigBuilder};

/// wireguard-go's socket directory: fixed by wireguard-go, global to the
/// host (not per network namespace), so interface names must be unique.
pub const UAPI_DIR: &str = "/var/run/wireguard";

fn backend(userspace: bool) -> Backend {
    if userspace {
        Backend::Userspace
    } else {
        Backend::Kernel
    }
}

fn ifname(name: &str) -> Result<InterfaceName, String> {
    name.parse()
        .map_err(|_| format!("`{name}` is not a valid interface name"))
}

/// Reads device `name` from the kernel or from wireguard-go (refusing a
/// wireguard-go socket that belongs to another network namespace).
fn read(name: &str, userspace: bool) -> Result<Device, String> {
    if userspace {
        check_socket_owner(name)?;
    }
    Device::get(&ifname(name)?, backend(userspace))
        .map_err(|e| format!("cannot read WireGuard device {name}: {e}"))
}

/// A handshake older than this means the peer is not answering: WireGuard
/// renews sessions every 120 s and retries a handshake every 5 s, so a
/// working peer's latest handshake is never older than about 125 s.
pub const STALE_SECS: u64 = 135;

pub fn observe(name: &str, userspace: bool) -> Result<ObservedWg, String> {
    let dev = read(name, userspace)?;
    Ok(ObservedWg {
        public_key: dev.public_key.map(|k| k.to_base64()),
        listen_port: dev.listen_port.unwrap_or(0),
        peers: dev
            .peers
            .into_iter()
            .map(|p| ObservedPeer {
                public_key: p.config.public_key.to_base64(),
                endpoint: p.config.endpoint,
                allowed_ips: p
                    .config
                    .allowed_ips
                    .iter()
                    .filter_map(|a| Cidr::new(a.address, a.cidr))
                    .collect(),
                persistent_keepalive: p.config.persistent_keepalive_interval.filter(|k| *k > 0),
                handshake_recent: p
                    .stats
                    .last_handshake_time
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age.as_secs() <= STALE_SECS),
                endpoint_written: None,
                preshared_key_id: p
                    .config
                    .preshared_key
                    .as_ref()
                    .and_then(keys::psk_fingerprint),
            })
            .collect(),
    })
}

/// Starts wireguard-go for `name` in the foreground (so its PID is ours to
/// supervise) and waits until its UAPI socket answers.
pub fn start_userspace(name: &str, run_dir: &Path) -> Result<Child, String> {
    fs::create_dir_all(UAPI_DIR).map_err(|e| format!("cannot create {UAPI_DIR}: {e}"))?;
    // A socket left by a killed wireguard-go would make the new one fail.
    let sock = socket_path(name);
    if sock.exists() && UnixStream::connect(&sock).is_err() {
        let _ = fs::remove_file(&sock);
    }
    check_socket_owner(name)?;
    let log_path = run_dir.join(format!("wireguard-go-{name}.log"));
    let log = fs::File::create(&log_path)
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let mut child = Command::new("wireguard-go")
        .args(["-f", name])
        .env("LOG_LEVEL", "error")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start wireguard-go (is it installed?): {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if observe(name, true).is_ok() {
            return Ok(child);
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = fs::read_to_string(&log_path).unwrap_or_default();
            return Err(format!(
                "wireguard-go {name} exited ({status}): {}",
                log.trim()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(format!(
        "wireguard-go {name} did not open its control socket within 5 s"
    ))
}

/// wireguard-go's sockets are global to the host: a socket of the same name
/// may belong to a wireguard-go in another network namespace. Talking to it
/// would configure someone else's device, so refuse.
fn check_socket_owner(name: &str) -> Result<(), String> {
    let Some(pid) = userspace_pid(name) else {
        return Ok(());
    };
    let ns = |p: &str| fs::read_link(format!("/proc/{p}/ns/net")).ok();
    // Unreadable (a process with more privileges than ours): cannot tell.
    let (theirs, ours) = (ns(&pid.to_string()), ns("self"));
    if theirs.is_some() && theirs != ours {
        return Err(format!(
            "{} belongs to a wireguard-go (pid {pid}) in another network namespace; \
             interface names of wireguard-go devices must be unique on the host",
            socket_path(name).display()
        ));
    }
    Ok(())
}

pub fn socket_path(name: &str) -> PathBuf {
    Path::new(UAPI_DIR).join(format!("{name}.sock"))
}

/// The PID of the wireguard-go serving `name`, from its socket's peer
/// credentials: exact, even for a wireguard-go another agent started.
pub fn userspace_pid(name: &str) -> Option<i32> {
    let stream = UnixStream::connect(socket_path(name)).ok()?;
    let cred =
        nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials).ok()?;
    Some(cred.pid())
}

/// Writes a WgSet change. The private key is read from its file here, at the
/// last moment, and goes nowhere but the device.
pub fn set(
    name: &str,
    userspace: bool,
    private_key_file: Option<&Path>,
    listen_port: Option<u16>,
    peers: &[WgPeer],
    remove_peers: &[String],
) -> Result<(), String> {
    let mut update = DeviceUpdate::new();
    if let Some(path) = private_key_file {
        let key = keys::load_private_key(path)?;
        update = update.set_private_key(key.key().clone());
    }
    if let Some(port) = listen_port {
        update = update.set_listen_port(port);
    }
    for p in peers {
        let key = Key::from_base64(&p.public_key)
            .map_err(|_| format!("bad peer key {}", p.public_key))?;
        let mut b = PeerConfigBuilder::new(&key)
            .replace_allowed_ips()
            .set_persistent_keepalive_interval(p.persistent_keepalive.unwrap_or(0));
        for a in &p.allowed_ips {
            b = b.add_allowed_ip(a.addr, a.len);
        }
        // Always written, so that a key removed from the config goes too.
        b = match &p.preshared_key_file {
            Some(path) => b.set_preshared_key(keys::load_private_key(path)?.key().clone()),
            None => b.unset_preshared_key(),
        };
        if let Some(e) = p.endpoint_addr {
            b = b.set_endpoint(e);
        }
        update = update.add_peer(b);
    }
    for k in remove_peers {
        let key = Key::from_base64(k).map_err(|_| format!("bad peer key {k}"))?;
        update = update.remove_peer_by_key(&key);
    }
    let backend = backend(userspace);
    update
        .apply(&ifname(name)?, backend)
        .map_err(|e| format!("cannot configure WireGuard device {name}: {e}"))
}

/// A device's live figures for the status page.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceStats {
    /// wireguard-go (a tun device) rather than the kernel module.
    pub userspace: bool,
    pub public_key: Option<String>,
    pub listen_port: Option<u16>,
    pub peers: Vec<PeerStats>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PeerStats {
    pub public_key: String,
    /// Where the peer is now (WireGuard roams), not only where it was configured.
    pub endpoint: Option<std::net::SocketAddr>,
    /// Unix seconds, as `wg show latest-handshakes` prints them.
    pub latest_handshake: Option<u64>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// Reads `name`'s figures, from the kernel module or wireguard-go, whichever
/// runs it (a tun device, with `tun_flags` in sysfs, is wireguard-go's).
pub fn stats(name: &str) -> Result<DeviceStats, String> {
    let userspace = Path::new("/sys/class/net")
        .join(name)
        .join("tun_flags")
        .exists();
    let dev = read(name, userspace)?;
    Ok(DeviceStats {
        userspace,
        public_key: dev.public_key.map(|k| k.to_base64()),
        listen_port: dev.listen_port,
        peers: dev
            .peers
            .into_iter()
            .map(|p| PeerStats {
                public_key: p.config.public_key.to_base64(),
                endpoint: p.config.endpoint,
                latest_handshake: p
                    .stats
                    .last_handshake_time
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs())
                    .filter(|s| *s > 0),
                rx_bytes: p.stats.rx_bytes,
                tx_bytes: p.stats.tx_bytes,
            })
            .collect(),
    })
}
