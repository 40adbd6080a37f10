//! The "where do I exit" probe: a plain-HTTP GET through each portal's
//! WireGuard device (SO_BINDTODEVICE), whose answer is the address the
//! server saw. The socket work is at the edge (`fetch`); reading the answer
//! is pure (`parse_answer`).

use super::collect::{ProbeOutcome, Shared};
use crate::core::model::status_page::Probe;
use crate::worker::{lock, Worker};
use nix::sys::socket::{self, setsockopt, sockopt, SockType, SockaddrIn};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(5);
/// An address fits in far less; a bigger answer is not a probe server's.
const MAX_ANSWER: u64 = 4096;

/// The answer's body, if it is a 200 whose first word is an IP address.
pub fn parse_answer(raw: &[u8]) -> Result<String, String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .or_else(|| text.split_once("\n\n"))
        .ok_or("no complete HTTP answer")?;
    let status = head.lines().next().unwrap_or_default();
    let code = status.split_whitespace().nth(1).unwrap_or_default();
    if !status.starts_with("HTTP/1.") || code != "200" {
        return Err(format!("answered `{}`", status.trim()));
    }
    let word = body.split_whitespace().next().unwrap_or_default();
    word.parse::<IpAddr>()
        .map(|a| a.to_string())
        .map_err(|_| "the answer is not an IP address".to_string())
}

/// GET `probe`'s URL out of `device`, so that it leaves through that portal
/// whatever the routing tables say for the router's own traffic.
pub fn fetch(probe: &Probe, device: &str) -> Result<String, String> {
    let addr = (probe.host.as_str(), probe.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", probe.host))?
        .find_map(|a| match a {
            SocketAddr::V4(v4) => Some(v4),
            SocketAddr::V6(_) => None,
        })
        .ok_or_else(|| format!("{} has no IPv4 address", probe.host))?;
    let fd = crate::sock::on_device(SockType::Stream, device)?;
    // Linux bounds connect() by the send timeout too.
    let tv = nix::sys::time::TimeVal::new(TIMEOUT.as_secs() as _, 0);
    setsockopt(&fd, sockopt::SendTimeout, &tv).map_err(|e| format!("SO_SNDTIMEO: {e}"))?;
    setsockopt(&fd, sockopt::ReceiveTimeout, &tv).map_err(|e| format!("SO_RCVTIMEO: {e}"))?;
    socket::connect(fd.as_raw_fd(), &SockaddrIn::from(addr)).map_err(|e| match e {
        nix::Error::EINPROGRESS | nix::Error::EAGAIN => {
            format!(
                "no answer from {addr} through {device} within {} s",
                TIMEOUT.as_secs()
            )
        }
        e => format!("cannot connect to {addr} through {device}: {e}"),
    })?;
    let mut stream = TcpStream::from(fd);
    let request = format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: portal/{}\r\nConnection: close\r\n\r\n",
        probe.path,
        probe.host,
        env!("CARGO_PKG_VERSION")
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("sending to {addr}: {e}"))?;
    let mut raw = Vec::new();
    stream
        .take(MAX_ANSWER)
        .read_to_end(&mut raw)
        .map_err(|e| format!("reading from {addr}: {e}"))?;
    parse_answer(&raw)
}

/// Probes every portal at the configured interval and records the outcome
/// in the shared view, until stopped. The model is read from the view each
/// round, so a config change needs no restart.
pub fn start(shared: Shared) -> Worker {
    Worker::spawn("exit probe".into(), move |stop: &AtomicBool| {
        let mut next: std::collections::BTreeMap<String, u64> = Default::default();
        while !stop.load(Ordering::Relaxed) {
            let model = lock(&shared).model.clone();
            let now = crate::clock::unix_ms() / 1000;
            if let Some(m) = model {
                if let Some(probe) = m.status_page.as_ref().and_then(|p| p.probe.as_ref()) {
                    // Portals that carry LANs: the others route nothing of
                    // ours. In parallel, so one dead tunnel delays no other.
                    let due: Vec<_> = m
                        .portals
                        .iter()
                        .filter(|p| m.lans_via(&p.name).next().is_some())
                        .filter(|p| next.get(&p.name).is_none_or(|t| *t <= now))
                        .collect();
                    std::thread::scope(|scope| {
                        for p in &due {
                            let shared = &shared;
                            scope.spawn(move || {
                                let result = fetch(probe, &p.interface);
                                let at = crate::clock::unix_ms() / 1000;
                                record(shared, &p.name, probe.url(), at, result);
                            });
                        }
                    });
                    let at = crate::clock::unix_ms() / 1000;
                    for p in due {
                        next.insert(p.name.clone(), at + u64::from(probe.interval_secs));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        Ok(())
    })
}

/// Stores an outcome, logging only when it changes (a new exit address, or
/// a new error), not every round.
fn record(shared: &Shared, portal: &str, url: String, at: u64, result: Result<String, String>) {
    let mut v = lock(shared);
    let before = v.probes.get(portal).map(|o| o.result.clone());
    if before.as_ref() != Some(&result) {
        match &result {
            Ok(a) => crate::log::info(&format!("portal {portal} exits as {a} (probe {url})")),
            Err(e) => crate::log::warn(&format!("portal {portal}: exit probe failed: {e}")),
        }
    }
    v.probes
        .insert(portal.to_string(), ProbeOutcome { url, at, result });
}

#[cfg(test)]
mod tests {
    use super::parse_answer;

    #[test]
    fn answers() {
        let ok = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n198.51.100.3\n";
        assert_eq!(parse_answer(ok).unwrap(), "198.51.100.3");
        let lf = b"HTTP/1.1 200 OK\nServer: x\n\n 2001:db8::1 extra\n";
        assert_eq!(parse_answer(lf).unwrap(), "2001:db8::1");
        assert!(parse_answer(b"HTTP/1.1 404 Not Found\r\n\r\n198.51.100.3")
            .unwrap_err()
            .contains("404"));
        assert!(parse_answer(b"HTTP/1.1 200 OK\r\n\r\n<html>hi</html>")
            .unwrap_err()
            .contains("not an IP"));
        assert!(parse_answer(b"HTTP/1.1 200 OK\r\nContent-").is_err());
        assert!(parse_answer(b"SSH-2.0-OpenSSH\r\n\r\n1.2.3.4").is_err());
    }
}
