//! The forwarder's answer cache: one per forwarder (per LAN), so LANs with
//! different exits never share answers, and a new forwarder (new upstreams,
//! new source address, new exit) starts empty.
//!
//! What is kept (RFC 1035 7.4, 2181 5.2 and 8, 2308): NOERROR replies with
//! answers, for their smallest TTL (at most a day); NXDOMAIN and NODATA for
//! the SOA's MINIMUM or its own TTL, whichever is smaller (at most 5 min),
//! and not at all without an SOA. Never: other rcodes (SERVFAIL, REFUSED),
//! truncated replies, a TTL of 0, a reply whose records do not walk cleanly
//! or that has an extended rcode.
//!
//! Which queries use it: ordinary recursive ones (RD set). Bypassed, each
//! for a reason: CD set (the client validates DNSSEC itself and asked for
//! data our upstream might have rejected: it must not be served to others,
//! nor a checked answer to it), RD clear (the client wants the upstream's
//! own data, not ours), ANY/AXFR/IXFR, and EDNS options other than COOKIE
//! and PADDING (client subnet would make an answer client-specific). The
//! key holds, besides the question, the EDNS, DO and AD bits: those change
//! what the upstream puts in a reply.
//!
//! A hit is the stored reply with the client's ID and question bytes (its
//! letter case) and every TTL lowered by the time spent here. EDNS options
//! are per hop: the upstream's OPT record is stored without them and put
//! back (size and DO only) for a client that sent EDNS. A hit larger than
//! the client can take over UDP is not served: the query goes upstream.

use super::records::{self, Record, TYPE_OPT, TYPE_SOA};
use super::wire::{
    question, Header, Question, AA, AD, CD, HEADER_LEN, OPCODE_QUERY, RCODE_NXDOMAIN, RD, TC,
};
use std::collections::{BTreeMap, HashMap};

/// `lans.L.dns.cache`'s default (the model owns config defaults).
pub use crate::core::model::dns::DEFAULT_CACHE_ENTRIES as DEFAULT_ENTRIES;
/// Positive answers are kept at most a day (RFC 8767's default cap).
pub const MAX_POSITIVE_SECS: u32 = 86_400;
/// Negative answers at most 5 minutes (RFC 2308 suggests 1-3 hours; a
/// router's users want a new name to work soon after it is created).
pub const MAX_NEGATIVE_SECS: u32 = 300;
/// Larger replies are passed on but not kept; with the byte budget below
/// the cache's memory stays within about `entries` KiB.
const MAX_REPLY: usize = 4096;
const BYTES_PER_ENTRY: usize = 1024;
const EDNS_DO: u32 = 0x8000;
/// A client without EDNS takes 512 bytes over UDP (RFC 1035 4.2.1).
const PLAIN_UDP: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// Wire form, lower case (`wire::question` lowers it).
    name: Vec<u8>,
    qtype: u16,
    qclass: u16,
    /// EDNS, DO and AD of the query: bits 0, 1, 2.
    variant: u8,
}

/// A query the cache may answer: its key and how large a UDP reply the
/// client takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub key: Key,
    max_len: usize,
}

impl Lookup {
    /// None when the query bypasses the cache (see the module's comment).
    pub fn of(query: &[u8], h: &Header, q: &Question) -> Option<Lookup> {
        if h.flags & RD == 0 || h.flags & CD != 0 || matches!(q.qtype, 251..=252 | 255) {
            return None;
        }
        if h.ancount != 0 || h.nscount != 0 || h.arcount > 1 {
            return None;
        }
        let recs = records::walk(query, q.end, [0, 0, h.arcount])?;
        let mut variant = ((h.flags & AD != 0) as u8) << 2;
        let mut max_len = PLAIN_UDP;
        if let Some(opt) = recs.first() {
            if opt.rtype != TYPE_OPT || query[opt.start] != 0 || opt.ttl & 0x00ff_0000 != 0 {
                return None; // not EDNS version 0 (TSIG, another version...)
            }
            if !only_hop_options(&query[opt.rdata.clone()]) {
                return None;
            }
            variant |= 1 | ((opt.ttl & EDNS_DO != 0) as u8) << 1;
            max_len = (opt.class as usize).max(PLAIN_UDP);
        }
        Some(Lookup {
            key: Key {
                name: q.name.clone(),
                qtype: q.qtype,
                qclass: q.qclass,
                variant,
            },
            max_len,
        })
    }
}

/// EDNS options that concern only this hop: COOKIE (10) and PADDING (12).
fn only_hop_options(mut rdata: &[u8]) -> bool {
    while rdata.len() >= 4 {
        let code = u16::from_be_bytes([rdata[0], rdata[1]]);
        let len = u16::from_be_bytes([rdata[2], rdata[3]]) as usize;
        if !matches!(code, 10 | 12) || rdata.len() < 4 + len {
            return false;
        }
        rdata = &rdata[4 + len..];
    }
    rdata.is_empty()
}

/// A reply ready to be kept: ID 0, AA clear (our copy is not
/// authoritative), no OPT record, TTLs capped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    msg: Vec<u8>,
    /// Offsets of the TTL fields in `msg`.
    ttls: Vec<usize>,
    /// The upstream's OPT: payload size and the DO flag.
    opt: Option<(u16, u32)>,
    /// Seconds to keep it.
    pub lifetime: u32,
    pub negative: bool,
}

/// RFC 2181 8: a TTL with the top bit set is 0.
fn ttl_of(r: &Record) -> u32 {
    if r.ttl > i32::MAX as u32 {
        0
    } else {
        r.ttl
    }
}

/// Whether and how `reply` can be kept; the error says why not.
pub fn prepare(reply: &[u8]) -> Result<Prepared, &'static str> {
    let h = Header::parse(reply).ok_or("short")?;
    if !h.is_response() || h.opcode() != OPCODE_QUERY || h.qdcount != 1 {
        return Err("not an answer to a standard query");
    }
    if h.flags & TC != 0 {
        return Err("truncated");
    }
    if h.rcode() != 0 && h.rcode() != RCODE_NXDOMAIN {
        return Err("rcode");
    }
    if reply.len() > MAX_REPLY {
        return Err("large");
    }
    let q = question(reply).ok_or("malformed question")?;
    let mut recs =
        records::walk(reply, q.end, [h.ancount, h.nscount, h.arcount]).ok_or("malformed")?;
    let mut end = reply.len();
    let mut opt = None;
    let mut arcount = h.arcount;
    if let Some(i) = recs.iter().position(|r| r.rtype == TYPE_OPT) {
        let r = recs.remove(i);
        // Only the last record can be cut without moving what pointers
        // point to; an extended rcode (BADVERS...) is an error answer.
        let last = r.section == 2 && r.rdata.end == reply.len() && reply[r.start] == 0;
        if !last || recs.iter().any(|x| x.rtype == TYPE_OPT) || r.ttl >> 24 != 0 {
            return Err("OPT record");
        }
        opt = Some((r.class, r.ttl & EDNS_DO));
        end = r.start;
        arcount -= 1;
    }
    let negative = h.rcode() == RCODE_NXDOMAIN || h.ancount == 0;
    let smallest = recs.iter().map(ttl_of).min();
    let lifetime = if negative {
        let soa = recs
            .iter()
            .find(|r| r.section == 1 && r.rtype == TYPE_SOA)
            .ok_or("negative without SOA")?;
        let minimum = records::soa_minimum(reply, soa).ok_or("malformed SOA")?;
        minimum.min(smallest.unwrap_or(0)).min(MAX_NEGATIVE_SECS)
    } else {
        smallest.unwrap_or(0).min(MAX_POSITIVE_SECS)
    };
    if lifetime == 0 {
        return Err("TTL 0");
    }
    let cap = if negative {
        lifetime
    } else {
        MAX_POSITIVE_SECS
    };
    let mut msg = reply[..end].to_vec();
    msg[..2].copy_from_slice(&[0, 0]);
    let flags = h.flags & !AA;
    msg[2..4].copy_from_slice(&flags.to_be_bytes());
    msg[10..12].copy_from_slice(&arcount.to_be_bytes());
    for r in &recs {
        msg[r.ttl_at..r.ttl_at + 4].copy_from_slice(&ttl_of(r).min(cap).to_be_bytes());
    }
    Ok(Prepared {
        msg,
        ttls: recs.iter().map(|r| r.ttl_at).collect(),
        opt,
        lifetime,
        negative,
    })
}

struct Entry {
    p: Prepared,
    stored_ms: u64,
    expires_ms: u64,
    /// Its place in `Cache::order`.
    used: u64,
}

/// At most `capacity` replies and `capacity` KiB; the least recently used
/// goes first. Expired entries go when they are next asked for or pushed
/// out by newer ones.
pub struct Cache {
    capacity: usize,
    entries: HashMap<Key, Entry>,
    order: BTreeMap<u64, Key>,
    tick: u64,
    bytes: usize,
}

impl Cache {
    pub fn new(capacity: usize) -> Cache {
        Cache {
            capacity,
            entries: HashMap::new(),
            order: BTreeMap::new(),
            tick: 0,
            bytes: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The answer to `query` (question `q`, ID `id`) at `now` (ms), if kept.
    pub fn answer(
        &mut self,
        l: &Lookup,
        query: &[u8],
        q: &Question,
        id: u16,
        now: u64,
    ) -> Option<Vec<u8>> {
        let e = self.entries.get(&l.key)?;
        if now >= e.expires_ms {
            self.remove(&l.key);
            return None;
        }
        let p = &e.p;
        if p.msg.len() < q.end {
            return None; // cannot be: the same question has the same length
        }
        let aged = ((now - e.stored_ms) / 1000) as u32;
        let mut out = Vec::with_capacity(p.msg.len() + 11);
        out.extend_from_slice(&p.msg);
        out[..2].copy_from_slice(&id.to_be_bytes());
        out[HEADER_LEN..q.end].copy_from_slice(&query[HEADER_LEN..q.end]);
        for &at in &p.ttls {
            let t = u32::from_be_bytes([out[at], out[at + 1], out[at + 2], out[at + 3]]);
            out[at..at + 4].copy_from_slice(&t.saturating_sub(aged).to_be_bytes());
        }
        if let Some((size, flags)) = p.opt.filter(|_| l.key.variant & 1 != 0) {
            out.extend_from_slice(&[0, 0, TYPE_OPT as u8]);
            out.extend_from_slice(&size.to_be_bytes());
            out.extend_from_slice(&flags.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
            let ar = u16::from_be_bytes([out[10], out[11]]) + 1;
            out[10..12].copy_from_slice(&ar.to_be_bytes());
        }
        if out.len() > l.max_len {
            return None;
        }
        self.touch(&l.key);
        Some(out)
    }

    /// Keeps `reply` for `key` if it may be kept (`prepare`).
    pub fn store(&mut self, key: Key, reply: &[u8], now: u64) -> Result<u32, &'static str> {
        let p = prepare(reply)?;
        let budget = self.capacity * BYTES_PER_ENTRY;
        if self.capacity == 0 || p.msg.len() > budget {
            return Err("no room");
        }
        self.remove(&key);
        while self.entries.len() >= self.capacity || self.bytes + p.msg.len() > budget {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.remove(&oldest);
        }
        let lifetime = p.lifetime;
        self.tick += 1;
        self.bytes += p.msg.len();
        self.order.insert(self.tick, key.clone());
        self.entries.insert(
            key,
            Entry {
                p,
                stored_ms: now,
                expires_ms: now + u64::from(lifetime) * 1000,
                used: self.tick,
            },
        );
        Ok(lifetime)
    }

    fn touch(&mut self, key: &Key) {
        self.tick += 1;
        if let Some(e) = self.entries.get_mut(key) {
            if let Some(k) = self.order.remove(&e.used) {
                self.order.insert(self.tick, k);
            }
            e.used = self.tick;
        }
    }

    fn remove(&mut self, key: &Key) {
        if let Some(e) = self.entries.remove(key) {
            self.order.remove(&e.used);
            self.bytes -= e.p.msg.len();
        }
    }
}
