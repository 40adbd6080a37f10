//! Bytes <-> messages, with the checks dhcproto leaves to its caller: a
//! packet that is not a well-formed BOOTREQUEST never reaches the handler.

use dhcproto::v4::{Message, MessageType};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};

const MAGIC: [u8; 4] = [99, 130, 83, 99];
/// The fixed BOOTP header, before the magic cookie.
const HEADER: usize = 236;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    Short,
    BadMagic,
    NotRequest,
    NotReply,
    BadHardware,
    /// An option's length runs past the end of the packet.
    BadOptions,
    Undecodable,
    NoMessageType,
}

/// Options 1..=61 (RFC 2132 and 2131) are all a server or a client here
/// needs. Others are left out before dhcproto sees the packet: less parsing
/// exposed to the network, and none of its rarer decoders, some of which
/// assert on lengths a peer controls.
const LAST_KEPT_OPTION: u8 = 61;

/// The packet with its options checked (each length inside the packet)
/// and reduced to the kept ones.
fn sanitize(bytes: &[u8]) -> Result<Vec<u8>, Drop> {
    let start = HEADER + MAGIC.len();
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..start]);
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            0 => i += 1,
            255 => break,
            code => {
                let len = *bytes.get(i + 1).ok_or(Drop::BadOptions)? as usize;
                let end = i + 2 + len;
                if end > bytes.len() {
                    return Err(Drop::BadOptions);
                }
                if code <= LAST_KEPT_OPTION {
                    out.extend_from_slice(&bytes[i..end]);
                }
                i = end;
            }
        }
    }
    out.push(255);
    Ok(out)
}

fn parse(bytes: &[u8], op: u8) -> Result<Message, Drop> {
    if bytes.len() < HEADER + MAGIC.len() {
        return Err(Drop::Short);
    }
    if bytes[HEADER..HEADER + 4] != MAGIC {
        return Err(Drop::BadMagic);
    }
    if bytes[0] != op {
        return Err(if op == 1 {
            Drop::NotRequest
        } else {
            Drop::NotReply
        });
    }
    // Ethernet only (htype 1, hlen 6): leases are keyed by MAC.
    if bytes[1] != 1 || bytes[2] != 6 {
        return Err(Drop::BadHardware);
    }
    let clean = sanitize(bytes)?;
    let msg = Message::decode(&mut Decoder::new(&clean)).map_err(|_| Drop::Undecodable)?;
    match msg.opts().msg_type() {
        None => Err(Drop::NoMessageType),
        Some(_) => Ok(msg),
    }
}

/// A reply from a server to a client.
pub fn parse_reply(bytes: &[u8]) -> Result<Message, Drop> {
    parse(bytes, 2)
}

/// A request from a client (or a relay agent) to a server.
pub fn parse_request(bytes: &[u8]) -> Result<Message, Drop> {
    parse(bytes, 1)
}

pub fn encode(msg: &Message) -> Vec<u8> {
    let mut buf = Vec::with_capacity(320);
    // Encoding into a Vec cannot fail for a message we built.
    let _ = msg.encode(&mut Encoder::new(&mut buf));
    // Some clients ignore replies below the BOOTP minimum of 300 bytes.
    if buf.len() < 300 {
        buf.resize(300, 0);
    }
    buf
}

pub fn message_type(msg: &Message) -> MessageType {
    msg.opts().msg_type().unwrap_or(MessageType::Unknown(0))
}

/// Option 54: which server sent this, or which one the client chose.
pub fn server_id(m: &Message) -> Option<std::net::Ipv4Addr> {
    match m.opts().get(dhcproto::v4::OptionCode::ServerIdentifier) {
        Some(dhcproto::v4::DhcpOption::ServerIdentifier(ip)) => Some(*ip),
        _ => None,
    }
}

/// The client's hardware address (validated to 6 bytes by `parse`).
pub fn mac(msg: &Message) -> [u8; 6] {
    let mut m = [0u8; 6];
    m.copy_from_slice(&msg.chaddr()[..6]);
    m
}

/// The UDP datagram inside an IPv4 packet as a packet socket gives it
/// (from the IP header on): (source address, source port, destination
/// port, payload). None for anything else, fragments included.
pub fn udp_in_ipv4(p: &[u8]) -> Option<(std::net::Ipv4Addr, u16, u16, &[u8])> {
    let ihl = (*p.first()? & 0x0f) as usize * 4;
    if p[0] >> 4 != 4 || ihl < 20 || p.len() < ihl + 8 || p[9] != 17 {
        return None;
    }
    let total = u16::from_be_bytes([p[2], p[3]]) as usize;
    let frag = u16::from_be_bytes([p[6], p[7]]) & 0x3fff; // MF flag + offset
    if frag != 0 || total < ihl + 8 || total > p.len() {
        return None;
    }
    let src = std::net::Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let udp = &p[ihl..total];
    let sport = u16::from_be_bytes([udp[0], udp[1]]);
    let dport = u16::from_be_bytes([udp[2], udp[3]]);
    let len = u16::from_be_bytes([udp[4], udp[5]]) as usize;
    if len < 8 || len > udp.len() {
        return None;
    }
    Some((src, sport, dport, &udp[8..len]))
}

pub fn mac_text(mac: &[u8]) -> String {
    let parts: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::DhcpServer;
    use crate::dhcp::lease::LeaseTable;
    use crate::dhcp::server::handle;
    use dhcproto::v4::{DhcpOption, Flags};
    use std::net::Ipv4Addr;

    fn discover() -> Vec<u8> {
        let mut m = Message::new_with_id(
            7,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &[2, 0, 0, 0, 0, 1],
        );
        m.set_flags(Flags::default());
        m.opts_mut()
            .insert(DhcpOption::MessageType(MessageType::Discover));
        m.opts_mut().insert(DhcpOption::Hostname("box".into()));
        m.opts_mut()
            .insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(
                192, 168, 10, 9,
            )));
        let mut b = Vec::new();
        m.encode(&mut Encoder::new(&mut b)).unwrap();
        b
    }

    #[test]
    fn udp_is_found_in_ipv4_and_everything_else_refused() {
        let mut p = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 198, 51, 100, 1, 255, 255, 255, 255,
        ];
        p.extend_from_slice(&[0, 67, 0, 68, 0, 11, 0, 0, b'a', b'b', b'c']);
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        let (src, sport, dport, payload) = udp_in_ipv4(&p).unwrap();
        assert_eq!(
            (src, sport, dport, payload),
            (Ipv4Addr::new(198, 51, 100, 1), 67, 68, &b"abc"[..])
        );
        // Ethernet padding after the IP packet is ignored.
        let mut padded = p.clone();
        padded.extend_from_slice(&[0; 20]);
        assert_eq!(udp_in_ipv4(&padded).unwrap().3, b"abc");
        let mut tcp = p.clone();
        tcp[9] = 6;
        assert!(udp_in_ipv4(&tcp).is_none());
        let mut frag = p.clone();
        frag[6] = 0x20; // more fragments
        assert!(udp_in_ipv4(&frag).is_none());
        let mut long = p.clone();
        long[25] = 200; // UDP length past the end
        assert!(udp_in_ipv4(&long).is_none());
        assert!(udp_in_ipv4(&p[..25]).is_none());
        assert!(udp_in_ipv4(&[]).is_none());
        let mut v6 = p.clone();
        v6[0] = 0x65;
        assert!(udp_in_ipv4(&v6).is_none());
    }

    #[test]
    fn a_well_formed_discover_parses() {
        let m = parse_request(&discover()).unwrap();
        assert_eq!(message_type(&m), MessageType::Discover);
        assert_eq!(mac(&m), [2, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn malformed_packets_are_dropped_with_a_reason() {
        let good = discover();
        assert_eq!(parse_request(&good[..100]), Err(Drop::Short));
        assert_eq!(parse_request(&[]), Err(Drop::Short));
        let mut b = good.clone();
        b[237] ^= 0xff;
        assert_eq!(parse_request(&b), Err(Drop::BadMagic));
        let mut b = good.clone();
        b[0] = 2;
        assert_eq!(parse_request(&b), Err(Drop::NotRequest));
        let mut b = good.clone();
        b[2] = 200; // huge hlen
        assert_eq!(parse_request(&b), Err(Drop::BadHardware));
        let mut b = good.clone();
        b[1] = 6; // token ring
        assert_eq!(parse_request(&b), Err(Drop::BadHardware));
        // Options only: the message type option (first, code 53) claims
        // more bytes than the packet holds.
        let mut b = good[..240].to_vec();
        b.extend_from_slice(&[53, 200, 1]);
        assert_eq!(parse_request(&b), Err(Drop::BadOptions));
        // A length byte missing at the very end.
        let mut b = good[..240].to_vec();
        b.push(53);
        assert_eq!(parse_request(&b), Err(Drop::BadOptions));
        // Options beyond the kept range are skipped, not parsed.
        let mut b = good[..240].to_vec();
        b.extend_from_slice(&[94, 1, 0, 53, 1, 1, 255]);
        assert_eq!(
            parse_request(&b).map(|m| message_type(&m)),
            Ok(MessageType::Discover)
        );
        // No options at all.
        assert_eq!(parse_request(&good[..240]), Err(Drop::NoMessageType));
    }

    /// Deterministic mutation fuzzing of parse + handle: random byte flips,
    /// truncations and option splices of a valid packet must never panic.
    /// (scripts/fuzz-dhcp runs the coverage-guided version for longer.)
    #[test]
    fn mutated_packets_never_panic() {
        let cfg = DhcpServer {
            router: Ipv4Addr::new(192, 168, 10, 1),
            prefix_len: 24,
            pool_start: Ipv4Addr::new(192, 168, 10, 100),
            pool_end: Ipv4Addr::new(192, 168, 10, 200),
            lease_time: 3600,
            dns: vec![],
            dns_from_wan: false,
            domain: None,
            mtu: None,
            statics: vec![],
        };
        let table = LeaseTable::new(cfg.pool_start);
        let good = discover();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut parsed = 0;
        for _ in 0..50_000 {
            let mut b = good.clone();
            for _ in 0..(next() % 8 + 1) {
                let r = next();
                let i = (r >> 8) as usize % b.len();
                match r % 4 {
                    0 => b[i] = (r >> 32) as u8,
                    1 => b.truncate(i.max(1)),
                    2 => b.insert(i, (r >> 40) as u8),
                    _ => b.extend_from_slice(&[(r >> 16) as u8, (r >> 24) as u8]),
                }
            }
            if let Ok(m) = parse_request(&b) {
                parsed += 1;
                let _ = handle(&cfg, &table, &m, 1_700_000_000);
            }
        }
        assert!(
            parsed > 1000,
            "the mutations should keep many packets parseable"
        );
    }
}
