//! Walks the resource records after the question (RFC 1035 4.1.3): where
//! each one's TTL is and what its type and data are. The cache needs this
//! to age TTLs and to find the SOA of a negative answer; anything that does
//! not add up exactly (a label past the end, a pointer forwards, trailing
//! bytes) makes the whole walk fail, and such a reply is not cached.

use super::wire::HEADER_LEN;
use std::ops::Range;

pub const TYPE_SOA: u16 = 6;
/// EDNS's pseudo-record (RFC 6891): its "TTL" holds flags, not a time.
pub const TYPE_OPT: u16 = 41;
/// RFC 1035 2.3.4.
const MAX_NAME: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// 0 answer, 1 authority, 2 additional.
    pub section: u8,
    /// Offset of the record's owner name (its first byte).
    pub start: usize,
    pub rtype: u16,
    pub class: u16,
    /// Offset of the 4-byte TTL field.
    pub ttl_at: usize,
    pub ttl: u32,
    pub rdata: Range<usize>,
}

/// The offset just past the name at `i`. A compression pointer ends a
/// name; it must point backwards, into the message past the header.
pub fn skip_name(msg: &[u8], mut i: usize) -> Option<usize> {
    let start = i;
    let mut total = 0;
    loop {
        let len = *msg.get(i)? as usize;
        match len & 0xc0 {
            0 if len == 0 => return Some(i + 1),
            0 => {
                total += len + 1;
                i += 1 + len;
                if total > MAX_NAME || i > msg.len() {
                    return None;
                }
            }
            0xc0 => {
                let to = (len & 0x3f) << 8 | *msg.get(i + 1)? as usize;
                return (HEADER_LEN..start).contains(&to).then_some(i + 2);
            }
            _ => return None, // 0x40/0x80: reserved label types
        }
    }
}

/// Every record of `msg` after the question (which ends at `from`), per
/// the header's counts; None unless they end exactly at the message's end.
pub fn walk(msg: &[u8], from: usize, counts: [u16; 3]) -> Option<Vec<Record>> {
    let total: usize = counts.iter().map(|c| *c as usize).sum();
    // Each record takes at least 11 bytes: a bogus count cannot make us
    // allocate much.
    let mut out = Vec::with_capacity(total.min(msg.len() / 11));
    let mut i = from;
    for (section, n) in counts.iter().enumerate() {
        for _ in 0..*n {
            let start = i;
            i = skip_name(msg, i)?;
            let f = msg.get(i..i + 10)?;
            let rdlen = u16::from_be_bytes([f[8], f[9]]) as usize;
            let rdata = i + 10..i + 10 + rdlen;
            if rdata.end > msg.len() {
                return None;
            }
            out.push(Record {
                section: section as u8,
                start,
                rtype: u16::from_be_bytes([f[0], f[1]]),
                class: u16::from_be_bytes([f[2], f[3]]),
                ttl_at: i + 4,
                ttl: u32::from_be_bytes([f[4], f[5], f[6], f[7]]),
                rdata: rdata.clone(),
            });
            i = rdata.end;
        }
    }
    (i == msg.len()).then_some(out)
}

/// An SOA's MINIMUM (RFC 2308: the TTL of negative answers), checked by
/// walking its two names: the 5 numbers must fill the rest exactly.
pub fn soa_minimum(msg: &[u8], r: &Record) -> Option<u32> {
    // The names may point anywhere earlier; a name inside rdata is read
    // against the whole message, bounded by the record's end.
    let within = &msg[..r.rdata.end];
    let i = skip_name(within, r.rdata.start)?;
    let i = skip_name(within, i)?;
    if i + 20 != r.rdata.end {
        return None;
    }
    let m = &msg[i + 16..i + 20];
    Some(u32::from_be_bytes([m[0], m[1], m[2], m[3]]))
}
