//! Batched route writer: many RTM_NEWROUTE/RTM_DELROUTE messages per
//! sendmsg on a raw rtnetlink socket, every message acknowledged, and each
//! refusal named by its route. One `ip route` process per route costs a
//! fork and a round trip each; `ip -batch` a round trip each; this writes
//! CHUNK routes per round trip.
//!
//! The encoder is pure (unit-tested); `write` is the socket edge.

use super::error::errno_gone;
use super::nftables::wire::{
    attrs, messages, Attrs, NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP,
    NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use super::nlsock::{NlSocket, NETLINK_CAP_ACK, NETLINK_GET_STRICT_CHK};
use crate::core::cidr::Cidr;
use crate::core::desired::{Route, RouteKind, PROTO};
use crate::core::diff::batch::{RouteBatch, RouteOp};
use nix::errno::Errno;
use nix::sys::socket::SockProtocol;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const RTM_DELROUTE: u16 = 25;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_EXCL: u16 = 0x200;
const RT_TABLE_MAIN: u8 = 254;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_TABLE: u16 = 15;
const RTN_UNICAST: u8 = 1;
const RTN_UNREACHABLE: u8 = 7;
const RTN_THROW: u8 = 9;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
/// In a deletion: any scope.
const RT_SCOPE_NOWHERE: u8 = 255;
/// Messages per send: their acknowledgements (one small skb each) must fit
/// the receive buffer, or the kernel drops them.
const CHUNK: usize = 1024;
const CHUNK_SMALL_RCVBUF: usize = 128;
const RCVBUF: usize = 8 << 20;

/// Refusals a report lists by name; the rest are counted.
const NAMED_ERRORS: usize = 3;

/// What a batch did.
#[derive(Debug, Default)]
pub struct Written {
    pub ok: usize,
    /// Deletions of routes that were not there (any more): done.
    pub gone: usize,
    /// One line per refused route: its command and the kernel's reason.
    pub errors: Vec<String>,
    pub messages: usize,
    pub sends: usize,
    pub bytes: usize,
    pub elapsed: Duration,
}

impl Written {
    /// The log line: how many, how fast, in how many round trips.
    pub fn summary(&self, b: &RouteBatch) -> String {
        let verb = match b.op {
            RouteOp::Add => "added",
            RouteOp::Replace => "replaced",
            RouteOp::Del => "deleted",
        };
        let gone = match self.gone {
            0 => String::new(),
            n => format!(", {n} already gone"),
        };
        format!(
            "routes: {} {verb}{gone}, {} refused, of {} in {} ms ({} messages in {} sends, {} bytes)",
            self.ok,
            self.errors.len(),
            b.routes.len(),
            self.elapsed.as_millis(),
            self.messages,
            self.sends,
            self.bytes
        )
    }

    /// The refusals as one error naming the first few routes, or Ok.
    pub fn outcome(&self, total: usize) -> Result<(), String> {
        if self.errors.is_empty() {
            return Ok(());
        }
        let mut e = format!(
            "{} of {total} route(s) refused: {}",
            self.errors.len(),
            self.errors[..self.errors.len().min(NAMED_ERRORS)].join("; ")
        );
        if self.errors.len() > NAMED_ERRORS {
            e.push_str(&format!("; and {} more", self.errors.len() - NAMED_ERRORS));
        }
        Err(e)
    }
}

/// Whether the route goes through an interface the kernel no longer has.
fn device_gone(r: &Route, ifindex: &dyn Fn(&str) -> Option<u32>) -> bool {
    match &r.kind {
        RouteKind::Dev(d) | RouteKind::Via(_, d) => ifindex(d).is_none(),
        RouteKind::Unreachable | RouteKind::Throw => false,
    }
}

/// Appends one route message with sequence number `seq`.
pub fn encode(
    buf: &mut Vec<u8>,
    op: RouteOp,
    r: &Route,
    seq: u32,
    ifindex: &dyn Fn(&str) -> Option<u32>,
) -> Result<(), String> {
    let IpAddr::V4(dst) = r.dst.addr else {
        return Err("IPv6 routes are not supported yet".into());
    };
    let (ty, flags) = match op {
        RouteOp::Add => (
            RTM_NEWROUTE,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        ),
        RouteOp::Replace => (
            RTM_NEWROUTE,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        ),
        RouteOp::Del => (RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK),
    };
    let dev = |d: &str| ifindex(d).ok_or_else(|| format!("interface {d} does not exist"));
    let (rtype, scope, oif, gateway) = match &r.kind {
        RouteKind::Unreachable => (RTN_UNREACHABLE, RT_SCOPE_UNIVERSE, None, None),
        RouteKind::Throw => (RTN_THROW, RT_SCOPE_UNIVERSE, None, None),
        RouteKind::Dev(d) => (RTN_UNICAST, RT_SCOPE_LINK, Some(dev(d)?), None),
        RouteKind::Via(IpAddr::V4(gw), d) => {
            (RTN_UNICAST, RT_SCOPE_UNIVERSE, Some(dev(d)?), Some(*gw))
        }
        RouteKind::Via(IpAddr::V6(_), _) => {
            return Err("IPv6 gateways are not supported yet".into())
        }
    };
    let scope = if op == RouteOp::Del {
        RT_SCOPE_NOWHERE
    } else {
        scope
    };
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]); // length, filled in below
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
    let table8 = u8::try_from(r.table).unwrap_or(0);
    buf.extend_from_slice(&[
        libc::AF_INET as u8,
        r.dst.len,
        0, // src_len
        0, // tos
        table8,
        PROTO,
        scope,
        rtype,
    ]);
    buf.extend_from_slice(&0u32.to_ne_bytes()); // rtm_flags
    let mut a = Attrs::new(buf);
    a.bytes(RTA_TABLE, &r.table.to_ne_bytes());
    if r.dst.len > 0 {
        a.bytes(RTA_DST, &dst.octets());
    }
    if r.metric != 0 {
        a.bytes(RTA_PRIORITY, &r.metric.to_ne_bytes());
    }
    if let Some(i) = oif {
        a.bytes(RTA_OIF, &i.to_ne_bytes());
    }
    if let Some(gw) = gateway {
        a.bytes(RTA_GATEWAY, &gw.octets());
    }
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    Ok(())
}

/// The errno of an NLMSG_ERROR payload (0: acknowledged).
fn ack_errno(payload: &[u8]) -> i32 {
    payload
        .get(..4)
        .map(|b| -i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(libc::EPROTO)
}

/// Writes the batch: CHUNK messages per send, then their acknowledgements.
/// Refused routes are listed in `errors`; the others are written.
pub fn write(b: &RouteBatch) -> Result<Written, String> {
    let started = Instant::now();
    let mut ifindex: BTreeMap<String, Option<u32>> = BTreeMap::new();
    for r in &b.routes {
        if let RouteKind::Dev(d) | RouteKind::Via(_, d) = &r.kind {
            ifindex
                .entry(d.clone())
                .or_insert_with(|| nix::net::if_::if_nametoindex(d.as_str()).ok());
        }
    }
    let lookup = |d: &str| ifindex.get(d).copied().flatten();
    let (nl, chunk) = open()?;
    let mut w = Written::default();
    let mut buf = Vec::with_capacity(chunk * 64);
    let mut rbuf = vec![0u8; 256 * 1024];
    for (c, routes) in b.routes.chunks(chunk).enumerate() {
        buf.clear();
        // seq = index in the batch + 1, so an ack names its route.
        let base = c * chunk;
        let mut pending = 0;
        for (i, r) in routes.iter().enumerate() {
            // A route through an interface that is gone went with it.
            if b.op == RouteOp::Del && device_gone(r, &lookup) {
                w.gone += 1;
                continue;
            }
            match encode(&mut buf, b.op, r, (base + i + 1) as u32, &lookup) {
                Ok(()) => pending += 1,
                Err(e) => w.errors.push(format!("{}: {e}", b.command(r))),
            }
        }
        if pending == 0 {
            continue;
        }
        nl.send(&buf)?;
        w.sends += 1;
        w.messages += pending;
        w.bytes += buf.len();
        while pending > 0 {
            let n = nl
                .recv(&mut rbuf)
                .map_err(|e| format!("{e} ({pending} acknowledgement(s) missing)"))?;
            for m in messages(&rbuf[..n]) {
                if m.ty != NLMSG_ERROR {
                    continue;
                }
                pending -= 1;
                match ack_errno(m.payload) {
                    0 => w.ok += 1,
                    errno if b.op == RouteOp::Del && errno_gone(Errno::from_raw(errno)) => {
                        w.gone += 1
                    }
                    errno => {
                        let what = (m.seq as usize)
                            .checked_sub(1)
                            .and_then(|i| b.routes.get(i))
                            .map(|r| b.command(r))
                            .unwrap_or_else(|| format!("message {}", m.seq));
                        w.errors
                            .push(format!("{what}: {}", Errno::from_raw(errno).desc()));
                    }
                }
            }
        }
    }
    w.elapsed = started.elapsed();
    Ok(w)
}

/// Portal's IPv4 routes (protocol PROTO), all tables. The kernel filters by
/// protocol (strict dump checking), so other routes are not even sent; the
/// messages are decoded here, without building a generic message per route.
pub fn dump(dev: &dyn Fn(u32) -> String) -> Result<Vec<Route>, String> {
    dump_where(0, PROTO, dev)
}

/// The main table's IPv4 routes that are not Portal's, of the kinds Portal
/// writes: a route the host already has (its distribution's or UniFi's
/// default route) is adopted or replaced by the diff, never re-added.
pub fn dump_main_others(dev: &dyn Fn(u32) -> String) -> Result<Vec<Route>, String> {
    dump_where(RT_TABLE_MAIN, 0, dev)
}

/// Routes of `table` (0: all) and protocol `proto` (0: any other than
/// Portal's; PROTO: Portal's only).
fn dump_where(table: u8, proto: u8, dev: &dyn Fn(u32) -> String) -> Result<Vec<Route>, String> {
    let (nl, _) = open()?;
    // Without strict checking the kernel ignores the protocol filter and
    // sends every route: `decode` filters again.
    nl.enable(NETLINK_GET_STRICT_CHK);
    // A change during the dump marks it interrupted: read it again.
    'again: for _ in 0..5 {
        let mut req = Vec::with_capacity(28);
        req.extend_from_slice(&28u32.to_ne_bytes());
        req.extend_from_slice(&RTM_GETROUTE.to_ne_bytes());
        req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        req.extend_from_slice(&1u32.to_ne_bytes());
        req.extend_from_slice(&0u32.to_ne_bytes());
        req.extend_from_slice(&[libc::AF_INET as u8, 0, 0, 0, table, proto, 0, 0]);
        req.extend_from_slice(&0u32.to_ne_bytes());
        nl.send(&req)?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = nl.recv(&mut buf)?;
            for m in messages(&buf[..n]) {
                if m.flags & NLM_F_DUMP_INTR != 0 {
                    continue 'again;
                }
                match m.ty {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        return Err(
                            nl.error("listing routes", Errno::from_raw(ack_errno(m.payload)))
                        )
                    }
                    RTM_NEWROUTE => out.extend(decode_where(m.payload, proto, dev)),
                    _ => {}
                }
            }
        }
    }
    Err("route netlink: the routes kept changing while they were read".into())
}

/// One RTM_NEWROUTE payload -> a Portal route, if it is one of ours and of
/// a kind Portal writes.
pub fn decode(p: &[u8], dev: &dyn Fn(u32) -> String) -> Option<Route> {
    decode_where(p, PROTO, dev)
}

/// [`decode`] of a route of protocol `want`; 0: of any protocol but PROTO.
fn decode_where(p: &[u8], want: u8, dev: &dyn Fn(u32) -> String) -> Option<Route> {
    let h = p.get(..12)?;
    let (family, dst_len, table8, proto, rtype) = (h[0], h[1], h[4], h[5], h[7]);
    let wanted = if want == 0 {
        proto != PROTO
    } else {
        proto == want
    };
    if family != libc::AF_INET as u8 || !wanted {
        return None;
    }
    let mut table = u32::from(table8);
    let mut dst = [0u8; 4];
    let (mut gateway, mut oif, mut metric) = (None, None, 0);
    for a in attrs(&p[12..]) {
        let u32v = || {
            a.data
                .get(..4)
                .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        };
        let ip4 = || a.data.get(..4).map(|b| [b[0], b[1], b[2], b[3]]);
        match a.ty {
            RTA_TABLE => table = u32v()?,
            RTA_DST => dst = ip4()?,
            RTA_GATEWAY => gateway = Some(IpAddr::from(ip4()?)),
            RTA_OIF => oif = u32v(),
            RTA_PRIORITY => metric = u32v()?,
            _ => {}
        }
    }
    let kind = match (rtype, gateway, oif) {
        (RTN_UNREACHABLE, _, _) => RouteKind::Unreachable,
        (RTN_THROW, _, _) => RouteKind::Throw,
        (RTN_UNICAST, Some(gw), Some(i)) => RouteKind::Via(gw, dev(i)),
        (RTN_UNICAST, None, Some(i)) => RouteKind::Dev(dev(i)),
        _ => return None,
    };
    Some(Route {
        table,
        dst: Cidr::new(IpAddr::from(dst), dst_len)?,
        kind,
        metric,
    })
}

/// A raw rtnetlink socket with room for a chunk's acknowledgements, and the
/// chunk size that room allows.
fn open() -> Result<(NlSocket, usize), String> {
    let nl = NlSocket::open("route netlink", SockProtocol::NetlinkRoute, RCVBUF)?;
    // Without it each acknowledgement carries the whole request back.
    nl.enable(NETLINK_CAP_ACK);
    let chunk = if nl.rcvbuf_forced {
        CHUNK
    } else {
        CHUNK_SMALL_RCVBUF
    };
    Ok((nl, chunk))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::cidr::Cidr;

    fn route(kind: RouteKind, metric: u32) -> Route {
        Route {
            table: 52000,
            dst: Cidr::v4([192, 0, 2, 0], 24),
            kind,
            metric,
        }
    }

    #[test]
    fn a_throw_route_as_ip_route_encodes_it() {
        let mut b = Vec::new();
        encode(
            &mut b,
            RouteOp::Add,
            &route(RouteKind::Throw, 0),
            7,
            &|_| None,
        )
        .unwrap();
        // nlmsghdr: len 44, RTM_NEWROUTE, REQUEST|ACK|EXCL|CREATE, seq 7, pid 0
        assert_eq!(&b[0..4], &44u32.to_ne_bytes());
        assert_eq!(&b[4..6], &24u16.to_ne_bytes());
        assert_eq!(&b[6..8], &0x605u16.to_ne_bytes());
        assert_eq!(&b[8..12], &7u32.to_ne_bytes());
        // rtmsg: inet /24, table in RTA_TABLE (> 255), proto 52, universe, throw
        assert_eq!(&b[16..24], &[2, 24, 0, 0, 0, 52, 0, 9]);
        // RTA_TABLE 52000, RTA_DST 192.0.2.0
        assert_eq!(&b[28..32], &[8, 0, 15, 0]);
        assert_eq!(&b[32..36], &52000u32.to_ne_bytes());
        assert_eq!(&b[36..44], &[8, 0, 1, 0, 192, 0, 2, 0]);
    }

    #[test]
    fn dev_routes_name_their_device_and_deletions_match_any_scope() {
        let idx = |d: &str| (d == "wg0").then_some(5);
        let mut b = Vec::new();
        let r = route(RouteKind::Dev("wg0".into()), 4000);
        encode(&mut b, RouteOp::Del, &r, 1, &idx).unwrap();
        assert_eq!(&b[4..6], &25u16.to_ne_bytes());
        assert_eq!(&b[6..8], &0x5u16.to_ne_bytes());
        assert_eq!(&b[16..24], &[2, 24, 0, 0, 0, 52, 255, 1]);
        // ... RTA_PRIORITY 4000, RTA_OIF 5
        assert_eq!(&b[44..52], &[8, 0, 6, 0, 0xa0, 0x0f, 0, 0]);
        assert_eq!(&b[52..60], &[8, 0, 4, 0, 5, 0, 0, 0]);
        let e = encode(
            &mut b,
            RouteOp::Add,
            &route(RouteKind::Dev("gone".into()), 0),
            2,
            &idx,
        );
        assert_eq!(e, Err("interface gone does not exist".into()));
    }

    #[test]
    fn a_dumped_route_decodes_as_it_was_encoded() {
        let idx = |d: &str| (d == "wg0").then_some(5);
        let name = |i: u32| format!("if{i}");
        for (r, want) in [
            (route(RouteKind::Throw, 0), route(RouteKind::Throw, 0)),
            (
                route(RouteKind::Unreachable, 4000),
                route(RouteKind::Unreachable, 4000),
            ),
            (
                route(RouteKind::Dev("wg0".into()), 0),
                route(RouteKind::Dev("if5".into()), 0),
            ),
            (
                Route {
                    table: 254,
                    dst: Cidr::default_for(false),
                    ..route(RouteKind::Via([10, 0, 0, 1].into(), "wg0".into()), 0)
                },
                Route {
                    table: 254,
                    dst: Cidr::default_for(false),
                    ..route(RouteKind::Via([10, 0, 0, 1].into(), "if5".into()), 0)
                },
            ),
        ] {
            let mut b = Vec::new();
            encode(&mut b, RouteOp::Add, &r, 1, &idx).unwrap();
            assert_eq!(decode(&b[16..], &name), Some(want));
        }
        // Not ours: another protocol.
        let mut b = Vec::new();
        encode(&mut b, RouteOp::Add, &route(RouteKind::Throw, 0), 1, &idx).unwrap();
        b[21] = 4;
        assert_eq!(decode(&b[16..], &name), None);
    }

    #[test]
    fn acks_and_refusals() {
        assert_eq!(ack_errno(&0i32.to_ne_bytes()), 0);
        assert_eq!(ack_errno(&(-libc::EEXIST).to_ne_bytes()), libc::EEXIST);
        assert_eq!(ack_errno(&[]), libc::EPROTO);
    }
}
