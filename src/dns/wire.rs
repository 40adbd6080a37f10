//! The little of DNS's wire format a forwarder reads (RFC 1035 4.1): the
//! header and the one question. What follows the question is walked only
//! by the cache (records.rs), to find and age TTLs.

pub const HEADER_LEN: usize = 12;
/// RFC 1035 2.3.4: a name is at most 255 bytes on the wire.
const MAX_NAME: usize = 255;

pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NXDOMAIN: u8 = 3;
pub const RCODE_NOTIMP: u8 = 4;
pub const RCODE_REFUSED: u8 = 5;
pub const OPCODE_QUERY: u8 = 0;

// Header flags (RFC 1035 4.1.1; AD and CD: RFC 4035 3.2).
const QR: u16 = 0x8000;
pub const AA: u16 = 0x0400;
pub const TC: u16 = 0x0200;
pub const RD: u16 = 0x0100;
const RA: u16 = 0x0080;
pub const AD: u16 = 0x0020;
pub const CD: u16 = 0x0010;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    pub flags: u16,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

impl Header {
    pub fn parse(b: &[u8]) -> Option<Header> {
        let w = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        (b.len() >= HEADER_LEN).then(|| Header {
            id: w(0),
            flags: w(2),
            qdcount: w(4),
            ancount: w(6),
            nscount: w(8),
            arcount: w(10),
        })
    }

    pub fn is_response(&self) -> bool {
        self.flags & QR != 0
    }

    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xf) as u8
    }

    pub fn rcode(&self) -> u8 {
        (self.flags & 0xf) as u8
    }
}

/// The question: where it ends in the message, and what it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The name in wire form (labels, the root's 0 included), lower case.
    pub name: Vec<u8>,
    pub qtype: u16,
    pub qclass: u16,
    /// Offset just past the question in the message.
    pub end: usize,
}

/// The question that follows the header. Compression pointers are refused:
/// the first name of a message has nothing earlier to point to.
pub fn question(b: &[u8]) -> Option<Question> {
    let mut i = HEADER_LEN;
    let mut name = Vec::new();
    loop {
        let len = *b.get(i)? as usize;
        if len & 0xc0 != 0 {
            return None; // a pointer or a reserved label type
        }
        name.extend(b.get(i..=i + len)?.iter().map(u8::to_ascii_lowercase));
        i += 1 + len;
        if name.len() > MAX_NAME {
            return None;
        }
        if len == 0 {
            break;
        }
    }
    let t = b.get(i..i + 4)?;
    Some(Question {
        name,
        qtype: u16::from_be_bytes([t[0], t[1]]),
        qclass: u16::from_be_bytes([t[2], t[3]]),
        end: i + 4,
    })
}

/// `msg` with its transaction ID replaced.
pub fn with_id(msg: &[u8], id: u16) -> Vec<u8> {
    let mut out = msg.to_vec();
    out[..2].copy_from_slice(&id.to_be_bytes());
    out
}

/// An error answer to `query` (whose header is `h`): the same ID, opcode
/// and RD, the question echoed when there is one (`question_end`).
pub fn error_reply(query: &[u8], h: &Header, question_end: Option<usize>, rcode: u8) -> Vec<u8> {
    let flags = QR | (h.flags & (0x7800 | RD)) | RA | rcode as u16;
    let mut out = Vec::with_capacity(question_end.unwrap_or(HEADER_LEN));
    out.extend_from_slice(&h.id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&(question_end.is_some() as u16).to_be_bytes());
    out.extend_from_slice(&[0; 6]);
    if let Some(end) = question_end {
        out.extend_from_slice(&query[HEADER_LEN..end]);
    }
    out
}

/// A query as a client sends it, for tests and benchmarks: ID, RD set,
/// one question for `name` (dotted) of `qtype`, class IN.
pub fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&RD.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.extend_from_slice(&[0, (qtype >> 8) as u8, qtype as u8, 0, 1]);
    out
}

/// The answer a resolver would give to `q` (a query from `query`): the
/// question echoed, one A record 192.0.2.1 by a pointer to it.
pub fn answer(q: &[u8]) -> Vec<u8> {
    let end = question(q).map(|x| x.end).unwrap_or(q.len());
    let mut out = q[..end].to_vec();
    out[2] |= 0x80; // QR
    out[3] |= 0x80; // RA
    out[6..8].copy_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
    out
}
