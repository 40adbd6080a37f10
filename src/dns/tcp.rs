//! DNS over TCP on the router's LAN address (RFC 7766): what clients use
//! when an answer is truncated over UDP. A thread per connection (at most
//! `MAX_CONNECTIONS`), each query relayed over a TCP connection to the
//! upstreams in order, from the same source address as UDP (the tunnel's,
//! so the kill switch holds here too). The checks are UDP's: a malformed
//! query gets FORMERR, an answer must carry the query's ID and question,
//! and when no upstream answers the client gets SERVFAIL.

use super::service::PORT;
use super::wire::{error_reply, question, Header, RCODE_FORMERR, RCODE_SERVFAIL};
use crate::log;
use nix::sys::socket::{self, setsockopt, sockopt, SockType};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const MAX_CONNECTIONS: usize = 32;
/// An idle client connection is closed after this (RFC 7766 6.2.3).
const IDLE: Duration = Duration::from_secs(10);
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

pub fn listen(interface: &str, at: Ipv4Addr) -> Result<TcpListener, String> {
    let err = |what: &str, e: nix::Error| format!("{interface}: {what}: {e}");
    let fd = crate::sock::on_device(SockType::Stream, interface)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(|e| err("SO_REUSEADDR", e))?;
    setsockopt(&fd, sockopt::IpFreebind, &true).map_err(|e| err("IP_FREEBIND", e))?;
    let addr = socket::SockaddrIn::from(SocketAddrV4::new(at, PORT));
    socket::bind(fd.as_raw_fd(), &addr).map_err(|e| err(&format!("bind tcp {at}:{PORT}"), e))?;
    socket::listen(&fd, socket::Backlog::new(16).map_err(|e| err("listen", e))?)
        .map_err(|e| err("listen", e))?;
    let l = TcpListener::from(fd);
    l.set_nonblocking(true).map_err(|e| e.to_string())?;
    Ok(l)
}

/// Takes what the listener has queued; each connection in its own thread.
pub fn accept(
    l: &TcpListener,
    upstreams: &Arc<Vec<Ipv4Addr>>,
    source: Option<Ipv4Addr>,
    open: &Arc<AtomicUsize>,
    stop: &Arc<AtomicBool>,
) {
    while let Ok((stream, _)) = l.accept() {
        if open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            continue; // dropped: closed at once
        }
        open.fetch_add(1, Ordering::Relaxed);
        let (up, open, stop) = (upstreams.clone(), open.clone(), stop.clone());
        std::thread::spawn(move || {
            let _ = serve(stream, &up, source, &stop);
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

fn read_msg(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut msg)?;
    Ok(msg)
}

fn write_msg(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<()> {
    let mut out = (msg.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(msg);
    s.write_all(&out)
}

fn serve(
    mut client: TcpStream,
    upstreams: &[Ipv4Addr],
    source: Option<Ipv4Addr>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(IDLE))?;
    client.set_write_timeout(Some(IDLE))?;
    while !stop.load(Ordering::Relaxed) {
        let q = read_msg(&mut client)?;
        let Some(h) = Header::parse(&q).filter(|h| !h.is_response()) else {
            return Ok(());
        };
        let answer = match question(&q).filter(|_| h.qdcount == 1) {
            None => error_reply(&q, &h, None, RCODE_FORMERR),
            Some(qn) => upstreams
                .iter()
                .find_map(|u| ask(*u, source, &q, &qn).ok())
                .unwrap_or_else(|| error_reply(&q, &h, Some(qn.end), RCODE_SERVFAIL)),
        };
        write_msg(&mut client, &answer)?;
    }
    Ok(())
}

/// One query over a new TCP connection to `upstream`, from `source`.
fn ask(
    upstream: Ipv4Addr,
    source: Option<Ipv4Addr>,
    q: &[u8],
    qn: &super::wire::Question,
) -> Result<Vec<u8>, String> {
    let fd = socket::socket(
        socket::AddressFamily::Inet,
        SockType::Stream,
        socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| e.to_string())?;
    if let Some(src) = source {
        socket::bind(
            fd.as_raw_fd(),
            &socket::SockaddrIn::from(SocketAddrV4::new(src, 0)),
        )
        .map_err(|e| format!("bind {src}: {e}"))?;
    }
    // Linux bounds connect() by the send timeout.
    let tv = nix::sys::time::TimeVal::new(UPSTREAM_TIMEOUT.as_secs() as _, 0);
    setsockopt(&fd, sockopt::SendTimeout, &tv).map_err(|e| e.to_string())?;
    setsockopt(&fd, sockopt::ReceiveTimeout, &tv).map_err(|e| e.to_string())?;
    let to = SocketAddrV4::new(upstream, PORT);
    socket::connect(fd.as_raw_fd(), &socket::SockaddrIn::from(to))
        .map_err(|e| format!("connect {to}: {e}"))?;
    let mut s = TcpStream::from(fd);
    write_msg(&mut s, q).map_err(|e| e.to_string())?;
    let r = read_msg(&mut s).map_err(|e| e.to_string())?;
    let h = Header::parse(&r).ok_or("short answer")?;
    let same = question(&r)
        .is_some_and(|a| (a.name, a.qtype, a.qclass) == (qn.name.clone(), qn.qtype, qn.qclass));
    if !h.is_response() || Some(h.id) != Header::parse(q).map(|x| x.id) || !same {
        log::warn(&format!(
            "dns: a TCP answer from {to} does not match its query"
        ));
        return Err("mismatch".into());
    }
    Ok(r)
}
