//! The dns check's queries as datagrams: one connected UDP socket per
//! query, from the chosen source address, three tries within the
//! timeout. A connected socket hears an ICMP error as the next recv's
//! error. All of a run's queries go out at once (a thread each), so the
//! check costs one timeout at most.

use super::dns::{Answer, Ask, DnsProbe, Target, QUERY_NAME};
use super::dns::{FORWARDER_TIMEOUT_MS, UPSTREAM_TIMEOUT_MS};
use crate::dns::wire::{self, Header};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

/// DNS query type A.
const TYPE_A: u16 = 1;
/// Opcode STATUS (RFC 1035 4.1.1: 2) in the header's flags byte.
const OPCODE_STATUS_BITS: u8 = 2 << 3;

pub fn run(asks: Vec<Ask>) -> Vec<DnsProbe> {
    std::thread::scope(|s| {
        let running: Vec<_> = asks
            .into_iter()
            .map(|ask| {
                s.spawn(move || {
                    let answer = query(&ask);
                    DnsProbe { ask, answer }
                })
            })
            .collect();
        running.into_iter().filter_map(|h| h.join().ok()).collect()
    })
}

/// Not bound to a device, even for a forwarder: a datagram to one of the
/// router's own addresses is delivered as arriving on that address's device
/// (the forwarder's socket is bound to it), but the ICMP port unreachable
/// that answers it arrives on `lo`, where a socket bound to the LAN's device
/// would not hear it.
fn socket(ask: &Ask) -> Result<UdpSocket, String> {
    let src = SocketAddrV4::new(ask.src.unwrap_or(Ipv4Addr::UNSPECIFIED), 0);
    UdpSocket::bind(src).map_err(|e| format!("bind {src}: {e}"))
}

pub fn query(ask: &Ask) -> Answer {
    query_port(ask, 53)
}

/// `query` to another port than 53 (tests).
pub fn query_port(ask: &Ask, port: u16) -> Answer {
    let id = crate::random::u16();
    let mut msg = wire::query(id, QUERY_NAME, TYPE_A);
    let timeout = Duration::from_millis(match ask.target {
        Target::Forwarder => {
            msg[2] |= OPCODE_STATUS_BITS;
            FORWARDER_TIMEOUT_MS
        }
        Target::Upstream => UPSTREAM_TIMEOUT_MS,
    });
    let sock = match socket(ask) {
        Ok(s) => s,
        Err(e) => return Answer::NotSent(e),
    };
    if let Err(e) = sock.connect(SocketAddrV4::new(ask.server, port)) {
        return Answer::NotSent(e.to_string());
    }
    let started = Instant::now();
    let deadline = started + timeout;
    let mut buf = [0u8; 1500];
    for try_no in 1..=3u32 {
        if let Err(e) = sock.send(&msg) {
            return Answer::NotSent(e.to_string());
        }
        let try_end = (started + timeout * try_no / 3).min(deadline);
        loop {
            let left = try_end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if sock.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match sock.recv(&mut buf) {
                Ok(n) => {
                    // Ours: the same ID, a response. Anything else is skipped.
                    if let Some(h) = Header::parse(&buf[..n]).filter(|h| h.id == id) {
                        if h.is_response() {
                            return Answer::Reply {
                                rcode: h.rcode(),
                                ms: started.elapsed().as_millis() as u64,
                            };
                        }
                    }
                }
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => return Answer::NoListener,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(e) => return Answer::Icmp(e.to_string()),
            }
        }
    }
    Answer::Timeout {
        ms: started.elapsed().as_millis() as u64,
    }
}
