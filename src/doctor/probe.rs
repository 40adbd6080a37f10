//! The route-back probe: a UDP datagram to a closed port of a host behind
//! the tunnel, from a chosen source address. Any ICMP error that comes back
//! (port unreachable, as Portal's firewall answers UDP from a tunnel; ICMP
//! echo would be dropped there) proves that the other side routes replies
//! to that source. A connected UDP socket reports it as the next recv's
//! error; nothing within the timeout means no way back.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// traceroute's first port: closed on any host that is not a traceroute target.
pub const PORT: u16 = 33434;

/// What came back, or None. Errors on our side (no route, bind refused)
/// are Err: the probe says nothing then.
pub fn udp(src: IpAddr, target: IpAddr, timeout: Duration) -> Result<Option<String>, String> {
    let sock = UdpSocket::bind(SocketAddr::new(src, 0))
        .map_err(|e| format!("cannot bind a probe socket to {src}: {e}"))?;
    sock.connect(SocketAddr::new(target, PORT))
        .map_err(|e| format!("{src} -> {target}: {e}"))?;
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 64];
    // Three tries: a first datagram can be lost to a handshake in progress.
    for _ in 0..3 {
        sock.send(b"portal doctor route-back probe")
            .map_err(|e| format!("{src} -> {target}: not sent: {e}"))?;
        let left = deadline.saturating_duration_since(Instant::now());
        let wait = (timeout / 3).min(left).max(Duration::from_millis(1));
        sock.set_read_timeout(Some(wait))
            .map_err(|e| e.to_string())?;
        match sock.recv(&mut buf) {
            Ok(_) => return Ok(Some("a UDP reply".into())),
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                return Ok(Some("ICMP port unreachable".into()))
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Ok(Some(format!("ICMP error ({e})"))),
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    Ok(None)
}
