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
    Undecodable,
    NoMessageType,
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
    let msg = Message::decode(&mut Decoder::new(bytes)).map_err(|_| Drop::Undecodable)?;
    match msg.opts().msg_type() {
        None => Err(Drop::NoMessageType),
        Some(_) => Ok(msg),
    }
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

/// The client's hardware address (validated to 6 bytes by `parse`).
pub fn mac(msg: &Message) -> [u8; 6] {
    let mut m = [0u8; 6];
    m.copy_from_slice(&msg.chaddr()[..6]);
    m
}

pub fn mac_text(mac: &[u8]) -> String {
    let parts: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}
