//! The LAN DHCP servers as running things: one thread per LAN, each with a
//! UDP socket bound to its interface. The socket layer only moves bytes;
//! every decision is `server::handle`'s.

use super::lease::LeaseTable;
use super::ratelimit::{LogBudget, RateLimit};
use super::server::{handle, Dest};
use super::store::LeaseStore;
use super::wire::{encode, mac, parse_request};
use crate::core::model::{DhcpServer, Model, WanMode};
use crate::log;
use crate::worker::{Worker, WorkerSet};
use dhcproto::v4::Message;
use nix::sys::socket::{self, setsockopt, sockopt, MsgFlags, SockType};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Requests handled per fsync at most: bounds the delay of the first reply
/// while letting one fsync cover a burst (scripts/bench-dhcp prints the
/// delays perfdhcp sees).
const BATCH: usize = 64;
/// Room for the requests that arrive during an fsync (the default buffer
/// holds about 200 small datagrams).
const RECV_BUFFER: usize = 4 << 20;
const SERVER_PORT: u16 = 67;
const CLIENT_PORT: u16 = 68;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Spec {
    lan: String,
    interface: String,
    /// See `sock::ifindex`: a new index means a new server.
    ifindex: Option<u32>,
    cfg: DhcpServer,
    dir: PathBuf,
}

/// The running servers, kept equal to the model by `sync`.
#[derive(Default)]
pub struct Servers(WorkerSet<Spec>);

impl Servers {
    /// `wan_dns`: the DNS servers of the WAN's DHCP lease, for LANs that
    /// hand out the WAN's (a static WAN's are in the model already).
    pub fn sync(&mut self, m: &Model, dir: &Path, wan_dns: &[Ipv4Addr]) {
        let wanted: BTreeMap<String, Spec> = m
            .lans
            .iter()
            .filter_map(|l| {
                let ifindex = crate::sock::lan_ifindex(m, &l.interface)?;
                let mut cfg = l.dhcp.clone()?;
                if cfg.dns_from_wan && matches!(m.wan.mode, WanMode::Dhcp { .. }) {
                    cfg.dns = wan_dns.to_vec();
                }
                let spec = Spec {
                    lan: l.name.clone(),
                    interface: l.interface.clone(),
                    ifindex,
                    cfg,
                    dir: dir.to_path_buf(),
                };
                Some((l.name.clone(), spec))
            })
            .collect();
        self.0.sync(wanted, |spec| {
            let s = spec.clone();
            Worker::spawn(format!("dhcp {}", s.lan), move |stop| serve(&s, stop))
        });
    }

    pub fn tell_all_to_stop(&self) {
        self.0.tell_all_to_stop();
    }

    pub fn stop_all(&mut self) {
        self.0.stop_all();
    }
}

/// A UDP socket on `port` that sees only `interface`'s traffic.
pub fn bind(interface: &str, port: u16) -> Result<UdpSocket, String> {
    let err = |what: &str, e: nix::Error| format!("{interface}: {what}: {e}");
    // One server per LAN on port 67: each socket sees only its interface.
    let fd = crate::sock::on_device(SockType::Datagram, interface)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(|e| err("SO_REUSEADDR", e))?;
    setsockopt(&fd, sockopt::Broadcast, &true).map_err(|e| err("SO_BROADCAST", e))?;
    // FORCE passes net.core.rmem_max with CAP_NET_ADMIN; without it, the max.
    if setsockopt(&fd, sockopt::RcvBufForce, &RECV_BUFFER).is_err() {
        let _ = setsockopt(&fd, sockopt::RcvBuf, &RECV_BUFFER);
    }
    let any = socket::SockaddrIn::new(0, 0, 0, 0, port);
    socket::bind(fd.as_raw_fd(), &any).map_err(|e| err(&format!("bind port {port}"), e))?;
    let sock = UdpSocket::from(fd);
    // How often an idle server looks at its stop flag.
    sock.set_read_timeout(Some(Duration::from_millis(250)))
        .map_err(|e| format!("{interface}: {e}"))?;
    Ok(sock)
}

/// One LAN's server state between datagrams.
struct Serving<'a> {
    spec: &'a Spec,
    table: LeaseTable,
    store: LeaseStore,
    limit: RateLimit,
    budget: LogBudget,
    /// Replies of the current batch that wait for its fsync (ACKs of new
    /// or renewed leases). The others (OFFERs, NAKs, INFORM ACKs) leave at
    /// once: holding them too made each batch's replies one burst, more
    /// than a client's receive buffer takes.
    durable_replies: Vec<(Message, Dest)>,
    sock: &'a UdpSocket,
}

fn serve(spec: &Spec, stop: &AtomicBool) -> Result<(), String> {
    let (store, table) = LeaseStore::open(&spec.dir, &spec.lan, spec.cfg.pool_start)?;
    let sock = bind(&spec.interface, SERVER_PORT)?;
    log::info(&format!(
        "dhcp {}: serving on {} ({}..{}, {} lease(s) on record)",
        spec.lan,
        spec.interface,
        spec.cfg.pool_start,
        spec.cfg.pool_end,
        table.len()
    ));
    let mut s = Serving {
        spec,
        table,
        store,
        limit: RateLimit::default(),
        budget: LogBudget::default(),
        durable_replies: Vec::with_capacity(BATCH),
        sock: &sock,
    };
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::Relaxed) {
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => return Err(format!("{}: receive: {e}", spec.interface)),
        };
        let ms = crate::clock::unix_ms();
        let secs = ms / 1000;
        s.take(&buf[..n], secs, ms);
        // Drain what else is queued (at most BATCH requests), so one fsync
        // covers the batch.
        for _ in 1..BATCH {
            match socket::recv(sock.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(n) => s.take(&buf[..n], secs, ms),
                Err(_) => break,
            }
        }
        let durable = s.store.commit(&s.table);
        if let Err(e) = &durable {
            log::error(&format!(
                "dhcp {}: leases not saved, ACKs held back: {e}",
                spec.lan
            ));
        }
        if durable.is_ok() {
            for (msg, dest) in std::mem::take(&mut s.durable_replies) {
                s.reply(&msg, dest);
            }
        }
        s.durable_replies.clear();
    }
    log::info(&format!("dhcp {}: stopped", spec.lan));
    Ok(())
}

impl Serving<'_> {
    /// One datagram: parse, rate-limit, decide, apply, queue the reply.
    fn take(&mut self, bytes: &[u8], secs: u64, ms: u64) {
        let Ok(req) = parse_request(bytes) else {
            return;
        };
        if !self.limit.allow(mac(&req), ms) {
            return;
        }
        let out = handle(&self.spec.cfg, &self.table, &req, secs);
        if let Some(line) = &out.log {
            let lan = &self.spec.lan;
            let (now_ok, held) = self.budget.allow(ms);
            if let Some(n) = held {
                log::info(&format!("dhcp {lan}: ({n} more events not logged)"));
            }
            if now_ok {
                log::info(&format!("dhcp {lan}: {line}"));
            }
        }
        let needs_disk = out.changes.iter().any(|c| c.durable());
        self.store.record(&out.changes);
        for c in out.changes {
            self.table.apply(c);
        }
        match out.reply {
            Some((msg, dest)) if needs_disk => self.durable_replies.push((msg, dest)),
            Some((msg, dest)) => self.reply(&msg, dest),
            None => {}
        }
    }

    fn reply(&self, msg: &Message, dest: Dest) {
        if let Err(e) = send(self.sock, &self.spec.interface, msg, dest) {
            log::warn(&format!("dhcp {}: reply to {dest:?}: {e}", self.spec.lan));
        }
    }
}

fn send(sock: &UdpSocket, interface: &str, msg: &Message, dest: Dest) -> Result<(), String> {
    let bytes = encode(msg);
    let to = match dest {
        Dest::Broadcast => SocketAddrV4::new(Ipv4Addr::BROADCAST, CLIENT_PORT),
        Dest::Client(ip) => SocketAddrV4::new(ip, CLIENT_PORT),
        Dest::Relay(ip) => SocketAddrV4::new(ip, SERVER_PORT),
        Dest::Hardware(ip, mac) => {
            // The client cannot answer ARP before it has the address: tell
            // the kernel its MAC, as dnsmasq does, or fall back to broadcast.
            match set_neighbour(sock, interface, ip, mac) {
                Ok(()) => SocketAddrV4::new(ip, CLIENT_PORT),
                Err(_) => SocketAddrV4::new(Ipv4Addr::BROADCAST, CLIENT_PORT),
            }
        }
    };
    sock.send_to(&bytes, to)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn set_neighbour(
    sock: &UdpSocket,
    interface: &str,
    ip: Ipv4Addr,
    mac: [u8; 6],
) -> Result<(), String> {
    // SAFETY: arpreq is plain old data; all-zero is a valid value.
    let mut req: libc::arpreq = unsafe { std::mem::zeroed() };
    let pa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in fits in sockaddr (both 16 bytes).
    req.arp_pa = unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(pa) };
    req.arp_ha.sa_family = libc::ARPHRD_ETHER;
    for (d, s) in req.arp_ha.sa_data.iter_mut().zip(mac) {
        *d = s as libc::c_char;
    }
    req.arp_flags = libc::ATF_COM;
    for (d, s) in req.arp_dev.iter_mut().zip(interface.bytes().take(15)) {
        *d = s as libc::c_char;
    }
    // SAFETY: a valid socket and a fully initialised arpreq.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSARP as _, &req) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().to_string())
    }
}
