//! The cache through the forwarder's core, without sockets: replies built
//! record by record (compression pointers, SOA, OPT) as resolvers send them.

use super::cache::{prepare, MAX_NEGATIVE_SECS, MAX_POSITIVE_SECS};
use super::forwarder::{Action, Event, Forwarder, Limits};
use super::records;
use super::wire::{self, query, Header};
use std::net::SocketAddr;

const A: u16 = 1;
const CNAME: u16 = 5;
const SOA: u16 = 6;
const NXDOMAIN: u8 = 3;
/// A compression pointer to the question's name (offset 12).
const QNAME: [u8; 2] = [0xc0, 12];

fn up() -> SocketAddr {
    "10.64.0.1:53".parse().unwrap()
}

fn client(port: u16) -> SocketAddr {
    format!("192.168.10.10:{port}").parse().unwrap()
}

fn rr(name: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
    let mut out = name.to_vec();
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(rdata);
    out
}

fn a(ttl: u32) -> Vec<u8> {
    rr(&QNAME, A, ttl, &[192, 0, 2, 1])
}

/// The zone's SOA (owner: the question's name), its names compressed.
fn soa(ttl: u32, minimum: u32) -> Vec<u8> {
    let mut rdata = vec![2, b'n', b's', 0xc0, 12]; // ns.<qname>
    rdata.extend_from_slice(&QNAME); // rname: a pointer
    for v in [2024u32, 7200, 900, 1_209_600, minimum] {
        rdata.extend_from_slice(&v.to_be_bytes());
    }
    rr(&QNAME, SOA, ttl, &rdata)
}

/// An EDNS OPT record: payload size, DO flag, options.
fn opt(size: u16, dnssec_ok: bool, options: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 41];
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(&(if dnssec_ok { 0x8000u32 } else { 0 }).to_be_bytes());
    out.extend_from_slice(&(options.len() as u16).to_be_bytes());
    out.extend_from_slice(options);
    out
}

/// The reply to `q` (as sent upstream): flags QR RA + `rcode`, sections.
fn reply(q: &[u8], rcode: u8, sections: [&[Vec<u8>]; 3]) -> Vec<u8> {
    let end = wire::question(q).unwrap().end;
    let mut out = q[..end].to_vec();
    out[2] |= 0x80 | 0x04; // QR, AA
    out[3] = 0x80 | rcode; // RA
    for (i, s) in sections.iter().enumerate() {
        out[6 + 2 * i..8 + 2 * i].copy_from_slice(&(s.len() as u16).to_be_bytes());
        for r in s.iter() {
            out.extend_from_slice(r);
        }
    }
    out
}

fn with_opt(mut q: Vec<u8>, o: &[u8]) -> Vec<u8> {
    q[11] += 1;
    q.extend_from_slice(o);
    q
}

struct T {
    f: Forwarder,
    id: u16,
}

enum Got {
    Forwarded(Vec<u8>),
    Answered(Vec<u8>),
}

impl T {
    fn new(entries: usize) -> T {
        T {
            f: Forwarder::new(vec![up()], Limits::default()).with_cache(entries),
            id: 0x7000,
        }
    }

    fn step(&mut self, e: Event, now: u64) -> Vec<Action> {
        let id = &mut self.id;
        self.f.step(e, now, &mut || {
            *id += 1;
            *id
        })
    }

    fn ask(&mut self, port: u16, q: &[u8], now_s: u64) -> Got {
        let a = self.step(
            Event::Query {
                from: client(port),
                bytes: q,
            },
            now_s * 1000,
        );
        match a.as_slice() {
            [Action::Forward { bytes, .. }] => Got::Forwarded(bytes.clone()),
            [Action::Answer { to, bytes }] => {
                assert_eq!(*to, client(port));
                Got::Answered(bytes.clone())
            }
            other => panic!("{other:?}"),
        }
    }

    /// Asks; expects it forwarded and answers it with `make(sent)`.
    fn resolve(&mut self, port: u16, q: &[u8], now_s: u64, make: impl Fn(&[u8]) -> Vec<u8>) {
        let Got::Forwarded(sent) = self.ask(port, q, now_s) else {
            panic!("expected a forward");
        };
        let a = self.step(
            Event::Reply {
                from: up(),
                bytes: &make(&sent),
            },
            now_s * 1000,
        );
        assert!(matches!(a.as_slice(), [Action::Answer { .. }]), "{a:?}");
    }

    fn hit(&mut self, port: u16, q: &[u8], now_s: u64) -> Vec<u8> {
        match self.ask(port, q, now_s) {
            Got::Answered(b) => b,
            Got::Forwarded(_) => panic!("expected a hit at {now_s} s"),
        }
    }

    fn misses(&mut self, port: u16, q: &[u8], now_s: u64) -> bool {
        matches!(self.ask(port, q, now_s), Got::Forwarded(_))
    }
}

/// The TTLs of every record but OPT, in order.
fn ttls(msg: &[u8]) -> Vec<u32> {
    let h = Header::parse(msg).unwrap();
    let end = wire::question(msg).unwrap().end;
    records::walk(msg, end, [h.ancount, h.nscount, h.arcount])
        .expect("the answer walks")
        .iter()
        .filter(|r| r.rtype != records::TYPE_OPT)
        .map(|r| r.ttl)
        .collect()
}

#[test]
fn a_repeated_query_is_answered_from_the_cache_with_ttls_aged() {
    let mut t = T::new(100);
    let q = query(0x1111, "example.org", A);
    t.resolve(1000, &q, 0, |s| {
        reply(s, 0, [&[a(60)], &[rr(&QNAME, 2, 3600, &[0])], &[]])
    });
    assert_eq!(t.f.cached(), 1);
    // Another client, another ID, the name in other case, 10.4 s later.
    let q2 = query(0x2222, "EXAMPLE.Org", A);
    let r = t.hit(2000, &q2, 10);
    let h = Header::parse(&r).unwrap();
    assert_eq!(h.id, 0x2222);
    assert!(h.is_response() && h.rcode() == 0);
    assert_eq!(h.flags & 0x0400, 0, "AA is not claimed for a copy");
    assert_eq!(
        &r[12..25],
        &q2[12..25],
        "the client's question bytes, its case"
    );
    assert_eq!(ttls(&r), vec![50, 3590]);
    assert_eq!(
        &r[r.len() - 3..],
        &[0, 1, 0],
        "the NS record's rdata is intact"
    );
    let s = t.f.stats;
    assert_eq!((s.cache_hits, s.cache_misses, s.answered), (1, 1, 1));
    // The upstream saw one query; at 60 s the answer has expired.
    assert!(t.misses(3000, &q2, 60));
    assert_eq!(t.f.stats.cache_misses, 2);
}

#[test]
fn expiry_is_the_smallest_ttl_and_positive_answers_are_capped_at_a_day() {
    let mut t = T::new(100);
    let q = query(1, "example.org", A);
    t.resolve(1000, &q, 0, |s| {
        reply(s, 0, [&[a(604_800), a(30)], &[], &[]])
    });
    assert_eq!(ttls(&t.hit(1000, &q, 29)), vec![MAX_POSITIVE_SECS - 29, 1]);
    assert!(t.misses(1000, &q, 30));
}

#[test]
fn nxdomain_and_nodata_are_kept_for_the_soa_minimum() {
    let mut t = T::new(100);
    let q = query(1, "nope.example.org", A);
    // SOA TTL 3600, MINIMUM 30: the smaller one.
    t.resolve(1000, &q, 0, |s| {
        reply(s, NXDOMAIN, [&[], &[soa(3600, 30)], &[]])
    });
    let r = t.hit(1001, &q, 12);
    assert_eq!(Header::parse(&r).unwrap().rcode(), NXDOMAIN);
    assert_eq!(
        ttls(&r),
        vec![18],
        "the SOA's TTL is the negative TTL, aged"
    );
    assert!(t.misses(1002, &q, 30));
    // NODATA (NOERROR, no answer), MINIMUM larger than the SOA's TTL; and
    // a day-long MINIMUM is cut to 5 minutes.
    let q = query(1, "v6only.example.org", A);
    t.resolve(1000, &q, 0, |s| reply(s, 0, [&[], &[soa(20, 600)], &[]]));
    assert_eq!(ttls(&t.hit(1001, &q, 5)), vec![15]);
    let q = query(1, "long.example.org", A);
    t.resolve(1000, &q, 0, |s| {
        reply(s, NXDOMAIN, [&[], &[soa(86_400, 86_400)], &[]])
    });
    assert_eq!(ttls(&t.hit(1001, &q, 0)), vec![MAX_NEGATIVE_SECS]);
    assert!(t.misses(1001, &q, MAX_NEGATIVE_SECS as u64));
}

#[test]
fn a_negative_answer_without_soa_is_not_kept() {
    let mut t = T::new(100);
    let q = query(1, "nope.example.org", A);
    t.resolve(1000, &q, 0, |s| reply(s, NXDOMAIN, [&[], &[], &[]]));
    assert_eq!(t.f.cached(), 0);
    assert!(t.misses(1000, &q, 1));
    assert_eq!(
        prepare(&reply(&q, NXDOMAIN, [&[], &[], &[]])),
        Err("negative without SOA")
    );
}

#[test]
fn servfail_refused_truncated_and_ttl_0_are_never_kept() {
    let q = query(1, "example.org", A);
    let servfail = reply(&q, wire::RCODE_SERVFAIL, [&[], &[soa(60, 60)], &[]]);
    let refused = reply(&q, wire::RCODE_REFUSED, [&[a(60)], &[], &[]]);
    let mut tc = reply(&q, 0, [&[a(60)], &[], &[]]);
    tc[2] |= 0x02;
    let zero = reply(&q, 0, [&[a(60), a(0)], &[], &[]]);
    let top_bit = reply(&q, 0, [&[a(0x8000_0000)], &[], &[]]);
    let mut notify = reply(&q, 0, [&[a(60)], &[], &[]]);
    notify[2] |= 4 << 3;
    assert_eq!(prepare(&servfail), Err("rcode"));
    assert_eq!(prepare(&refused), Err("rcode"));
    assert_eq!(prepare(&tc), Err("truncated"));
    assert_eq!(prepare(&zero), Err("TTL 0"));
    assert_eq!(
        prepare(&top_bit),
        Err("TTL 0"),
        "RFC 2181 8: the top bit means 0"
    );
    assert_eq!(prepare(&notify), Err("not an answer to a standard query"));
    // Through the forwarder: each passed on, nothing kept.
    let mut t = T::new(100);
    for (i, r) in [servfail, tc, zero].iter().enumerate() {
        t.resolve(1000 + i as u16, &q, 0, |s| {
            wire::with_id(r, Header::parse(s).unwrap().id)
        });
    }
    assert_eq!(t.f.cached(), 0);
}

#[test]
fn compression_pointers_are_walked_and_every_ttl_aged() {
    let mut t = T::new(100);
    let q = query(1, "www.example.org", A);
    // www.example.org CNAME edge.example.org (rdata "edge" + pointer to
    // "example.org" inside the question), then an A record whose owner is
    // a pointer to that rdata, an NS in authority owned by "example.org",
    // glue in additional owned by a pointer into the NS rdata.
    t.resolve(1000, &q, 0, |s| {
        let cname_rdata_at = s.len() + 2 + 10;
        let ns_owner = [0xc0, 16]; // "example.org" within the question
        let rdata_len = 2 + 10 + 7 + 2 + 10 + 4; // answer CNAME + A
        let ns_rdata_at = s.len() + rdata_len + 2 + 10;
        reply(
            s,
            0,
            [
                &[
                    rr(&QNAME, CNAME, 300, &[4, b'e', b'd', b'g', b'e', 0xc0, 16]),
                    rr(&[0xc0, cname_rdata_at as u8], A, 120, &[192, 0, 2, 7]),
                ],
                &[rr(&ns_owner, 2, 3600, &[2, b'n', b's', 0xc0, 16])],
                &[rr(&[0xc0, ns_rdata_at as u8], A, 3600, &[192, 0, 2, 53])],
            ],
        )
    });
    assert_eq!(t.f.cached(), 1);
    let r = t.hit(1000, &q, 100);
    assert_eq!(ttls(&r), vec![200, 20, 3500, 3500]);
    assert!(
        t.misses(1000, &q, 120),
        "the smallest TTL (120 s) bounds it"
    );
}

#[test]
fn a_malformed_reply_is_passed_on_but_not_kept() {
    let q = query(1, "example.org", A);
    let good = reply(&q, 0, [&[a(60)], &[], &[]]);
    let mut trailing = good.clone();
    trailing.push(0);
    let mut short_rdata = good.clone();
    short_rdata.pop();
    let mut count = good.clone();
    count[7] = 2;
    let mut forward_ptr = good.clone();
    let at = wire::question(&good).unwrap().end;
    forward_ptr[at + 1] = 200; // owner: a pointer past itself
    let mut reserved = good.clone();
    reserved[at] = 0x80;
    let soa_bad = {
        let mut s = soa(60, 60);
        s.truncate(s.len() - 4); // MINIMUM cut off, the names and 16 bytes left
        s[11] -= 4; // rdlength (after owner, type, class, TTL) matches it
        reply(&q, NXDOMAIN, [&[], &[s], &[]])
    };
    for (what, bad) in [
        ("trailing", &trailing),
        ("short", &short_rdata),
        ("count", &count),
        ("pointer", &forward_ptr),
        ("reserved", &reserved),
    ] {
        assert_eq!(prepare(bad), Err("malformed"), "{what}");
    }
    assert_eq!(prepare(&soa_bad), Err("malformed SOA"));
    let mut t = T::new(100);
    for (i, r) in [&trailing, &count, &forward_ptr].iter().enumerate() {
        t.resolve(1000 + i as u16, &q, 0, |s| {
            wire::with_id(r, Header::parse(s).unwrap().id)
        });
    }
    assert_eq!(t.f.cached(), 0);
    assert!(prepare(&good).is_ok());
}

#[test]
fn the_number_of_entries_is_bounded_least_recently_used_first() {
    let mut t = T::new(2);
    let names = ["a.org", "b.org", "c.org"];
    let q = |n: &str| query(1, n, A);
    t.resolve(1, &q(names[0]), 0, |s| reply(s, 0, [&[a(600)], &[], &[]]));
    t.resolve(1, &q(names[1]), 0, |s| reply(s, 0, [&[a(600)], &[], &[]]));
    t.hit(1, &q(names[0]), 1); // a.org used: b.org is now the oldest
    t.resolve(1, &q(names[2]), 2, |s| reply(s, 0, [&[a(600)], &[], &[]]));
    assert_eq!(t.f.cached(), 2);
    t.hit(1, &q(names[0]), 3);
    t.hit(1, &q(names[2]), 3);
    assert!(t.misses(1, &q(names[1]), 3));
    // No cache at all with 0 entries: nothing counted.
    let mut off = T::new(0);
    off.resolve(1, &q(names[0]), 0, |s| reply(s, 0, [&[a(600)], &[], &[]]));
    assert!(off.misses(2, &q(names[0]), 1));
    assert_eq!((off.f.stats.cache_hits, off.f.stats.cache_misses), (0, 0));
}

#[test]
fn cd_rd_clear_and_any_bypass_the_cache() {
    let mut t = T::new(100);
    let mut cd = query(1, "example.org", A);
    cd[3] |= 0x10;
    let mut no_rd = query(1, "example.org", A);
    no_rd[2] &= !0x01;
    let any = query(1, "example.org", 255);
    for (i, q) in [&cd, &no_rd, &any].into_iter().enumerate() {
        let port = 1000 + 2 * i as u16;
        t.resolve(port, q, 0, |s| reply(s, 0, [&[a(600)], &[], &[]]));
        assert!(t.misses(port + 1, q, 1));
    }
    assert_eq!(t.f.cached(), 0);
    assert_eq!((t.f.stats.cache_hits, t.f.stats.cache_misses), (0, 0));
}

#[test]
fn edns_options_are_per_hop_and_edns_clients_have_their_own_entries() {
    let mut t = T::new(100);
    let cookie = [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
    let q = with_opt(query(1, "example.org", A), &opt(1232, false, &cookie));
    let server_cookie = [0, 10, 0, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9, 9, 9, 9, 9];
    t.resolve(1000, &q, 0, |s| {
        reply(s, 0, [&[a(600)], &[], &[opt(4096, false, &server_cookie)]])
    });
    let r = t.hit(1001, &q, 1);
    let h = Header::parse(&r).unwrap();
    assert_eq!(h.arcount, 1);
    assert_eq!(
        &r[r.len() - 11..],
        &opt(4096, false, &[])[..],
        "OPT without the cookie"
    );
    // A client without EDNS (or with DO) is another entry; the plain one
    // gets no OPT record.
    let plain = query(2, "example.org", A);
    t.resolve(1002, &plain, 2, |s| reply(s, 0, [&[a(600)], &[], &[]]));
    let r = t.hit(1003, &plain, 3);
    assert_eq!(Header::parse(&r).unwrap().arcount, 0);
    let dnssec = with_opt(query(3, "example.org", A), &opt(1232, true, &[]));
    assert!(t.misses(1004, &dnssec, 3));
    // Client subnet (option 8) would make the answer client-specific.
    let ecs = with_opt(query(4, "example.org", A), &opt(1232, false, &[0, 8, 0, 0]));
    t.resolve(1005, &ecs, 4, |s| reply(s, 0, [&[a(600)], &[], &[]]));
    assert!(t.misses(1005, &ecs, 5));
    assert_eq!(t.f.cached(), 2);
}

#[test]
fn a_hit_larger_than_the_client_takes_goes_upstream() {
    let mut t = T::new(100);
    let big = with_opt(query(1, "example.org", A), &opt(4096, false, &[]));
    let many: Vec<Vec<u8>> = (0..40).map(|_| a(600)).collect();
    t.resolve(1000, &big, 0, |s| {
        reply(s, 0, [&many, &[], &[opt(4096, false, &[])]])
    });
    assert!(t.hit(1000, &big, 1).len() > 512);
    // The same key (EDNS, no DO), a client that takes only 512 bytes.
    let small = with_opt(query(2, "example.org", A), &opt(512, false, &[]));
    assert!(t.misses(1001, &small, 1));
}

#[test]
fn an_opt_record_before_others_or_an_extended_rcode_is_not_kept() {
    let q = query(1, "example.org", A);
    let mut badvers = opt(1232, false, &[]);
    badvers[5] = 1; // extended rcode
    assert_eq!(
        prepare(&reply(&q, 0, [&[a(60)], &[], &[badvers]])),
        Err("OPT record")
    );
    assert_eq!(
        prepare(&reply(
            &q,
            0,
            [&[a(60)], &[], &[opt(1232, false, &[]), a(60)]]
        )),
        Err("OPT record")
    );
}
