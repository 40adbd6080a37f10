//! The forwarders as running things: one thread per LAN with `dns`, a UDP
//! socket on the router's LAN address (port 53, bound to the interface)
//! and one towards the upstreams, bound to the portal's tunnel address for
//! a LAN via a portal. Every decision is `Forwarder::step`'s.
//!
//! A forwarder is replaced, and so its cache emptied, when anything in its
//! `Spec` changes: upstreams, source address, the exit's peers, the cache
//! size. Its figures are published in a `DnsView` for the status page.

use super::forwarder::{Action, Event, Forwarder, Limits, Stats};
use crate::core::model::Model;
use crate::log;
use crate::worker::{Worker, WorkerSet};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{self, setsockopt, sockopt, SockType};
use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// DNS's port, as the firewall opens it.
pub use crate::core::firewall::DNS_PORT as PORT;
/// How often an idle forwarder looks at its stop flag.
const IDLE: Duration = Duration::from_millis(250);
/// Datagrams read from one socket before looking at the other.
const BURST: usize = 64;
/// Room for a burst of queries (the default holds about 200 datagrams).
const RECV_BUFFER: usize = 1 << 20;
/// How often a busy forwarder publishes its figures.
const PUBLISH: Duration = Duration::from_secs(1);

/// One LAN's forwarder as the status page shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    pub stats: Stats,
    /// Answers in the cache now, and at most (0: no cache).
    pub cached: usize,
    pub cache_size: usize,
}

/// LAN name -> its running forwarder's figures (a mutex: the 32-bit MIPS
/// target has no 64-bit atomics).
pub type DnsView = Arc<Mutex<BTreeMap<String, Figures>>>;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Spec {
    lan: String,
    interface: String,
    /// See `sock::ifindex`: a new index means a new socket.
    ifindex: Option<u32>,
    listen: Ipv4Addr,
    upstreams: Vec<Ipv4Addr>,
    source: Option<Ipv4Addr>,
    /// Via a portal: the public keys of its peers with an endpoint (the
    /// exits, not road-warrior devices). Another exit may answer
    /// differently (geography), so the cache starts over.
    exit: Vec<String>,
    cache: usize,
}

/// For `Spec::exit`: the public keys of the peers with an endpoint of the
/// portal `l` goes through (none for a direct LAN).
fn exit_keys(m: &Model, l: &crate::core::model::Lan) -> Vec<String> {
    let peers = m.via(l).map(|p| p.peers.as_slice()).unwrap_or_default();
    peers
        .iter()
        .filter(|x| x.endpoint.is_some())
        .map(|x| x.public_key.clone())
        .collect()
}

/// The running forwarders, kept equal to the model by `sync`.
#[derive(Default)]
pub struct Servers(WorkerSet<Spec>, DnsView);

impl Servers {
    /// Where the forwarders publish their figures (the status page's).
    pub fn set_view(&mut self, view: DnsView) {
        self.1 = view;
    }

    /// `wan_dns`: the WAN lease's DNS servers, for direct LANs that use
    /// the WAN's (a static WAN's are in the model already).
    pub fn sync(&mut self, m: &Model, wan_dns: &[Ipv4Addr]) {
        let wanted: BTreeMap<String, Spec> = m
            .lans
            .iter()
            .filter_map(|l| {
                let d = l.dns.as_ref()?;
                let ifindex = crate::sock::lan_ifindex(m, &l.interface)?;
                let upstreams = if d.servers_from_wan {
                    wan_dns.to_vec()
                } else {
                    d.servers.clone()
                };
                let spec = Spec {
                    lan: l.name.clone(),
                    interface: l.interface.clone(),
                    ifindex,
                    listen: d.listen,
                    upstreams,
                    source: d.source,
                    exit: exit_keys(m, l),
                    cache: d.cache,
                };
                Some((l.name.clone(), spec))
            })
            .collect();
        let view = &self.1;
        self.0.sync(wanted, |spec| {
            let (s, view) = (spec.clone(), view.clone());
            Worker::spawn(format!("dns {}", s.lan), move |stop| {
                let r = serve(&s, stop, &view);
                crate::worker::lock(&view).remove(&s.lan);
                r
            })
        });
    }

    pub fn tell_all_to_stop(&self) {
        self.0.tell_all_to_stop();
    }

    pub fn stop_all(&mut self) {
        self.0.stop_all();
    }
}

/// The clients' socket: `listen`:53 on `interface` only. IP_FREEBIND lets
/// it bind before the agent's pass has put the address on the interface.
fn bind_lan(interface: &str, listen: Ipv4Addr) -> Result<UdpSocket, String> {
    let err = |what: &str, e: nix::Error| format!("{interface}: {what}: {e}");
    let fd = crate::sock::on_device(SockType::Datagram, interface)?;
    setsockopt(&fd, sockopt::IpFreebind, &true).map_err(|e| err("IP_FREEBIND", e))?;
    if setsockopt(&fd, sockopt::RcvBufForce, &RECV_BUFFER).is_err() {
        let _ = setsockopt(&fd, sockopt::RcvBuf, &RECV_BUFFER);
    }
    let at = socket::SockaddrIn::from(SocketAddrV4::new(listen, PORT));
    socket::bind(fd.as_raw_fd(), &at).map_err(|e| err(&format!("bind {listen}:{PORT}"), e))?;
    let sock = UdpSocket::from(fd);
    sock.set_nonblocking(true)
        .map_err(|e| format!("{interface}: {e}"))?;
    Ok(sock)
}

/// The upstream socket, from `source` (the tunnel address) when given: the
/// kernel picks a random port. Fails while the tunnel address is absent.
fn bind_upstream(source: Option<Ipv4Addr>) -> Result<UdpSocket, String> {
    let from = source.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let sock = UdpSocket::bind((from, 0)).map_err(|e| format!("bind {from}: {e}"))?;
    sock.set_nonblocking(true).map_err(|e| e.to_string())?;
    Ok(sock)
}

/// Transaction IDs from the kernel's random source, 128 at a time.
struct Ids {
    buf: [u8; 256],
    at: usize,
}

impl Ids {
    fn new() -> Ids {
        Ids {
            buf: [0; 256],
            at: 256,
        }
    }

    fn next(&mut self) -> u16 {
        if self.at >= self.buf.len() {
            crate::random::fill(&mut self.buf);
            self.at = 0;
        }
        self.at += 2;
        u16::from_be_bytes([self.buf[self.at - 2], self.buf[self.at - 1]])
    }
}

struct Running<'a> {
    spec: &'a Spec,
    lan: UdpSocket,
    up: Option<UdpSocket>,
    fwd: Forwarder,
    ids: Ids,
    epoch: Instant,
}

fn serve(spec: &Spec, stop: &AtomicBool, view: &DnsView) -> Result<(), String> {
    let lan = bind_lan(&spec.interface, spec.listen)?;
    let tcp = super::tcp::listen(&spec.interface, spec.listen)?;
    let (tcp_upstreams, tcp_open) = (
        Arc::new(spec.upstreams.clone()),
        Arc::new(AtomicUsize::new(0)),
    );
    let tcp_stop = Arc::new(AtomicBool::new(false));
    let upstreams: Vec<SocketAddr> = spec
        .upstreams
        .iter()
        .map(|a| SocketAddr::V4(SocketAddrV4::new(*a, PORT)))
        .collect();
    log_started(spec);
    let mut r = Running {
        spec,
        lan,
        up: None,
        fwd: Forwarder::new(upstreams, Limits::default()).with_cache(spec.cache),
        ids: Ids::new(),
        epoch: Instant::now(),
    };
    let mut buf = vec![0u8; 65535];
    let mut published: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        if published.is_none_or(|t| t.elapsed() >= PUBLISH) {
            r.publish(view);
            published = Some(Instant::now());
        }
        let now = r.now();
        let deadline = r.fwd.next_deadline();
        let wait = deadline
            .map(|d| Duration::from_millis(d.saturating_sub(now)))
            .unwrap_or(IDLE)
            .min(IDLE);
        let Some((lan_ready, up_ready, tcp_ready)) = r.wait(&tcp, wait)? else {
            continue;
        };
        if tcp_ready {
            let (up, open) = (&tcp_upstreams, &tcp_open);
            super::tcp::accept(&tcp, up, spec.source, open, &tcp_stop);
        }
        if lan_ready {
            r.read_queries(&mut buf);
        }
        if up_ready {
            r.read_replies(&mut buf);
        }
        // Timeouts only when one is due: a scan of the pending table.
        if deadline.is_some_and(|d| d <= r.now()) {
            r.step(Event::Tick);
        }
    }
    tcp_stop.store(true, Ordering::Relaxed);
    log_stopped(spec, &r.fwd.stats);
    Ok(())
}

/// The forwarder's start, with its upstreams, source and cache.
fn log_started(spec: &Spec) {
    let names: Vec<String> = spec.upstreams.iter().map(|a| a.to_string()).collect();
    log::info(&format!(
        "dns {}: answering on {}:{PORT} ({}, UDP and TCP), upstream {}{}, cache {}",
        spec.lan,
        spec.listen,
        spec.interface,
        if names.is_empty() {
            "none yet".to_string()
        } else {
            names.join(", ")
        },
        spec.source
            .map(|s| format!(" from {s} (through the tunnel only)"))
            .unwrap_or_default(),
        match spec.cache {
            0 => "off".to_string(),
            n => format!("{n} answers"),
        }
    ));
}

/// The forwarder's stop, with its figures.
fn log_stopped(spec: &Spec, s: &Stats) {
    log::info(&format!(
        "dns {}: stopped ({} queries: {} answered, {} from the cache, {} SERVFAIL, {} FORMERR, {} refused, {} evicted; {} junk replies dropped)",
        spec.lan, s.queries, s.answered, s.cache_hits, s.servfail, s.formerr, s.refused, s.evicted, s.junk
    ));
}

impl Running<'_> {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn publish(&self, view: &DnsView) {
        let f = Figures {
            stats: self.fwd.stats,
            cached: self.fwd.cached(),
            cache_size: self.spec.cache,
        };
        crate::worker::lock(view).insert(self.spec.lan.clone(), f);
    }

    /// Waits up to `wait` for the LAN, upstream and TCP sockets: which are
    /// readable, or None if a signal interrupted the wait.
    fn wait(
        &self,
        tcp: &TcpListener,
        wait: Duration,
    ) -> Result<Option<(bool, bool, bool)>, String> {
        let mut fds = vec![
            PollFd::new(self.lan.as_fd(), PollFlags::POLLIN),
            PollFd::new(tcp.as_fd(), PollFlags::POLLIN),
        ];
        if let Some(up) = &self.up {
            fds.push(PollFd::new(up.as_fd(), PollFlags::POLLIN));
        }
        let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::ZERO);
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => return Ok(None),
            Err(e) => return Err(format!("poll: {e}")),
        }
        let ready = |f: &PollFd| f.revents().is_some_and(|e| !e.is_empty());
        Ok(Some((
            ready(&fds[0]),
            fds.get(2).is_some_and(ready),
            ready(&fds[1]),
        )))
    }

    /// Up to BURST queries from the clients, each run through the core.
    fn read_queries(&mut self, buf: &mut [u8]) {
        for _ in 0..BURST {
            let Ok((n, from)) = self.lan.recv_from(buf) else {
                break;
            };
            self.step(Event::Query {
                from,
                bytes: &buf[..n],
            });
        }
    }

    /// Up to BURST replies from the upstreams, each run through the core.
    fn read_replies(&mut self, buf: &mut [u8]) {
        for _ in 0..BURST {
            let Some(Ok((n, from))) = self.up.as_ref().map(|u| u.recv_from(buf)) else {
                break;
            };
            self.step(Event::Reply {
                from,
                bytes: &buf[..n],
            });
        }
    }

    /// Runs one event through the core and carries out its actions; a
    /// failed send to an upstream is an event of its own.
    fn step(&mut self, event: Event) {
        let now = self.now();
        let ids = &mut self.ids;
        let mut todo: VecDeque<Action> = self.fwd.step(event, now, &mut || ids.next()).into();
        while let Some(a) = todo.pop_front() {
            match a {
                Action::Answer { to, bytes } => {
                    // A client that went away: nothing to do about it.
                    let _ = self.lan.send_to(&bytes, to);
                }
                Action::Forward { to, id, bytes } => {
                    if let Err(error) = self.send_upstream(to, &bytes) {
                        let ids = &mut self.ids;
                        let ev = Event::SendFailed { id, error };
                        todo.extend(self.fwd.step(ev, now, &mut || ids.next()));
                    }
                }
                Action::Log(line) => log::warn(&format!("dns {}: {line}", self.spec.lan)),
            }
        }
    }

    fn send_upstream(&mut self, to: SocketAddr, bytes: &[u8]) -> Result<(), String> {
        if self.up.is_none() {
            self.up = Some(bind_upstream(self.spec.source)?);
        }
        let up = self.up.as_ref().ok_or("no socket")?;
        up.send_to(bytes, to).map(|_| ()).map_err(|e| {
            // Bound to a tunnel address that went away: a new socket once
            // it is back (a socket keeps its address, not the device).
            if self.spec.source.is_some() && e.raw_os_error() != Some(libc::EAGAIN) {
                self.up = None;
            }
            format!("send to {to}: {e}")
        })
    }
}
