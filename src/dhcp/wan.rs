//! The WAN DHCP client as a running thing: sockets, clock, link state and
//! the lease file around the pure `client::Client`. The lease reaches the
//! agent through a watch channel; the agent's next pass applies it by diff
//! (address, default route), so nothing here touches routes or addresses.
//!
//! Receiving uses a packet socket with a BPF filter (UDP to port 68): an
//! interface without an address cannot receive the server's replies through
//! the IP stack, and strict rp_filter would drop them anyway. Sending uses
//! an ordinary UDP socket on port 68, which can broadcast from 0.0.0.0.

use super::client::{Action, Client, Event, Identity, WanLease};
use super::service::bind;
use super::wire::{encode, parse_reply, udp_in_ipv4};
use crate::clock::unix_ms as now_ms;
use crate::log;
use crate::state::write_json_atomic;
use crate::worker::Worker;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;

const LEASE_FILE: &str = "wan-lease.json";

/// The lease remembered on disk, if any (for INIT-REBOOT, and for a one-shot
/// `apply` that must not remove the agent's WAN address).
pub fn remembered(state_dir: &Path) -> Option<WanLease> {
    let bytes = std::fs::read(state_dir.join(LEASE_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub struct WanClient {
    pub interface: String,
    hostname: Option<String>,
    rx: watch::Receiver<Option<WanLease>>,
    worker: Worker,
}

impl WanClient {
    pub fn start(interface: &str, hostname: Option<String>, state_dir: &Path) -> WanClient {
        // A valid remembered lease stays in force while it is confirmed, so
        // an agent restart does not take the WAN down and up again.
        let (tx, rx) = watch::channel(remembered_valid(state_dir));
        let (iface, host, dir) = (
            interface.to_string(),
            hostname.clone(),
            state_dir.to_path_buf(),
        );
        let worker = Worker::spawn("wan dhcp".into(), move |stop| {
            run(&iface, &host, &dir, &tx, stop)
        });
        WanClient {
            interface: interface.to_string(),
            hostname,
            rx,
            worker,
        }
    }

    /// Whether this client already serves `interface` as `hostname`.
    pub fn serves(&self, interface: &str, hostname: &Option<String>) -> bool {
        self.interface == interface && self.hostname == *hostname && !self.worker.is_finished()
    }

    pub fn lease(&self) -> Option<WanLease> {
        self.rx.borrow().clone()
    }

    /// A receiver that wakes when the lease changes.
    pub fn watch(&self) -> watch::Receiver<Option<WanLease>> {
        self.rx.clone()
    }

    pub fn tell_to_stop(&self) {
        self.worker.tell_to_stop();
    }

    pub fn stop(self) {
        self.worker.stop();
    }
}

fn unexpired(l: Option<WanLease>) -> Option<WanLease> {
    l.filter(|l| l.expires_at() > now_ms())
}

/// The remembered lease if it has not expired: still ours to use.
pub fn remembered_valid(state_dir: &Path) -> Option<WanLease> {
    unexpired(remembered(state_dir))
}

fn sys(interface: &str, what: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/class/net/{interface}/{what}"))
        .ok()
        .map(|s| s.trim().to_string())
}

fn read_mac(interface: &str) -> Result<[u8; 6], String> {
    let text =
        sys(interface, "address").ok_or_else(|| format!("{interface}: no such interface"))?;
    crate::core::model::dhcp::parse_mac(&text).map_err(|e| format!("{interface}: {e}"))
}

/// Link carrier; an interface that is administratively down has none.
pub fn carrier(interface: &str) -> bool {
    sys(interface, "carrier").as_deref() == Some("1")
}

/// A packet socket on `interface` that receives only IPv4 UDP to port 68.
fn packet_socket(interface: &str) -> Result<OwnedFd, String> {
    let ifindex =
        nix::net::if_::if_nametoindex(interface).map_err(|e| format!("{interface}: {e}"))?;
    let proto = (libc::ETH_P_IP as u16).to_be();
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            proto as libc::c_int,
        )
    };
    if fd < 0 {
        return Err(format!(
            "{interface}: packet socket: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: fd is a new, valid descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // Classic BPF over the IP header: UDP, not a fragment, dst port 68.
    let mut code = [
        bpf(0x30, 0, 0, 9),      // ldb [9]           protocol
        bpf(0x15, 0, 6, 17),     // jeq #17 ? next : drop
        bpf(0x28, 0, 0, 6),      // ldh [6]           flags, fragment offset
        bpf(0x45, 4, 0, 0x1fff), // jset #0x1fff ? drop : next
        bpf(0xb1, 0, 0, 0),      // ldxb 4*([0]&0xf)  IP header length
        bpf(0x48, 0, 0, 2),      // ldh [x+2]         UDP destination port
        bpf(0x15, 0, 1, 68),     // jeq #68 ? accept : drop
        bpf(0x06, 0, 0, 0xffff), // ret #65535        accept
        bpf(0x06, 0, 0, 0),      // ret #0            drop
    ];
    let prog = libc::sock_fprog {
        len: code.len() as u16,
        filter: code.as_mut_ptr(),
    };
    // SAFETY: prog points at code, alive for the call; sizes match.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            &prog as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(format!(
            "{interface}: BPF filter: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: zeroed sockaddr_ll is valid; the fields set are plain data.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: sll is a valid sockaddr_ll of the size given.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sll as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(format!(
            "{interface}: bind packet socket: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(fd)
}

fn bpf(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

fn run(
    interface: &str,
    hostname: &Option<String>,
    state_dir: &Path,
    tx: &watch::Sender<Option<WanLease>>,
    stop: &AtomicBool,
) -> Result<(), String> {
    let id = Identity {
        mac: read_mac(interface)?,
        hostname: hostname.clone(),
    };
    let udp = bind(interface, 68)?;
    udp.set_nonblocking(true)
        .map_err(|e| format!("{interface}: {e}"))?;
    let pkt = packet_socket(interface)?;
    let lease_path = state_dir.join(LEASE_FILE);
    let mut client = match remembered_valid(state_dir) {
        Some(l) if tx.borrow().as_ref() == Some(&l) => Client::resume(l),
        other => Client::new(other.or_else(|| remembered(state_dir))),
    };
    let mut link = carrier(interface);
    log::info(&format!(
        "wan dhcp: client on {interface} ({}), link {}",
        super::wire::mac_text(&id.mac),
        if link { "up" } else { "down" }
    ));
    let mut io = Io {
        udp: &udp,
        tx,
        lease_path: &lease_path,
    };
    io.act(client.step(&id, Event::Start, now_ms(), crate::random::u32()));
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let wait = client.next_at.saturating_sub(now_ms()).clamp(1, 1000);
        let mut fds = [
            PollFd::new(pkt.as_fd(), PollFlags::POLLIN),
            PollFd::new(udp.as_fd(), PollFlags::POLLIN),
        ];
        match poll(
            &mut fds,
            PollTimeout::try_from(wait as i32).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        let ready = |f: &PollFd| f.revents().is_some_and(|r| r.contains(PollFlags::POLLIN));
        let (pkt_ready, udp_ready) = (ready(&fds[0]), ready(&fds[1]));
        if pkt_ready {
            // SAFETY: buf is valid for its length; pkt is an open socket.
            let n = unsafe {
                libc::recv(
                    pkt.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n > 0 {
                if let Some((_, 67, 68, payload)) = udp_in_ipv4(&buf[..n as usize]) {
                    if let Ok(msg) = parse_reply(payload) {
                        io.act(client.step(
                            &id,
                            Event::Packet(msg),
                            now_ms(),
                            crate::random::u32(),
                        ));
                    }
                }
            }
        }
        if udp_ready {
            // Replies are read from the packet socket; this copy is dropped.
            while udp.recv(&mut buf).is_ok() {}
        }
        let now_link = carrier(interface);
        if now_link != link {
            link = now_link;
            let ev = if link { Event::LinkUp } else { Event::LinkDown };
            io.act(client.step(&id, ev, now_ms(), crate::random::u32()));
        }
        if link && now_ms() >= client.next_at {
            io.act(client.step(&id, Event::Timeout, now_ms(), crate::random::u32()));
        }
    }
    Ok(())
}

struct Io<'a> {
    udp: &'a UdpSocket,
    tx: &'a watch::Sender<Option<WanLease>>,
    lease_path: &'a PathBuf,
}

impl Io<'_> {
    fn act(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Broadcast(m) => self.send(&m, Ipv4Addr::BROADCAST),
                Action::Unicast(m, to) => self.send(&m, to),
                Action::Configure(l) => {
                    // On disk first: a restart must find the lease it uses.
                    if let Err(e) = write_json_atomic(self.lease_path, &l) {
                        log::warn(&format!("wan dhcp: {e}"));
                    }
                    self.tx.send_replace(Some(l));
                }
                Action::Deconfigure => {
                    let _ = std::fs::remove_file(self.lease_path);
                    self.tx.send_replace(None);
                }
                Action::Log(line) => log::info(&format!("wan dhcp: {line}")),
            }
        }
    }

    fn send(&self, m: &dhcproto::v4::Message, to: Ipv4Addr) {
        if let Err(e) = self.udp.send_to(&encode(m), SocketAddrV4::new(to, 67)) {
            log::warn(&format!("wan dhcp: send to {to}: {e}"));
        }
    }
}
