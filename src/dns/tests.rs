//! The forwarder without sockets: events in, actions out.

use super::forwarder::{Action, Event, Forwarder, Limits};
use super::wire::{self, answer, query, Header};
use std::net::SocketAddr;

const A: u16 = 1;
const AAAA: u16 = 28;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn up1() -> SocketAddr {
    addr("10.64.0.1:53")
}

fn up2() -> SocketAddr {
    addr("10.64.0.2:53")
}

fn client() -> SocketAddr {
    addr("192.168.10.10:40000")
}

/// A forwarder and a predictable "random" source (tests check that the ID
/// sent upstream is the random one, not the client's).
struct T {
    f: Forwarder,
    next_id: u16,
}

impl T {
    fn new(upstreams: Vec<SocketAddr>) -> T {
        T::with(upstreams, Limits::default())
    }

    fn with(upstreams: Vec<SocketAddr>, limits: Limits) -> T {
        T {
            f: Forwarder::new(upstreams, limits),
            next_id: 0x5000,
        }
    }

    fn step(&mut self, e: Event, now: u64) -> Vec<Action> {
        let id = &mut self.next_id;
        self.f.step(e, now, &mut || {
            *id += 1;
            *id
        })
    }

    fn ask(&mut self, from: SocketAddr, q: &[u8], now: u64) -> Vec<Action> {
        self.step(Event::Query { from, bytes: q }, now)
    }

    fn reply(&mut self, from: SocketAddr, r: &[u8], now: u64) -> Vec<Action> {
        self.step(Event::Reply { from, bytes: r }, now)
    }
}

/// The single Forward in `a`: (upstream, our ID, bytes).
fn forwarded(a: &[Action]) -> (SocketAddr, u16, Vec<u8>) {
    match a {
        [Action::Forward { to, id, bytes }] => (*to, *id, bytes.clone()),
        other => panic!("expected one Forward, got {other:?}"),
    }
}

/// The Answer in `a` (ignoring log lines): (client, bytes).
fn answered(a: &[Action]) -> (SocketAddr, Vec<u8>) {
    let answers: Vec<_> = a
        .iter()
        .filter_map(|x| match x {
            Action::Answer { to, bytes } => Some((*to, bytes.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(answers.len(), 1, "expected one Answer, got {a:?}");
    answers[0].clone()
}

fn rcode(bytes: &[u8]) -> u8 {
    Header::parse(bytes).unwrap().rcode()
}

fn id_of(bytes: &[u8]) -> u16 {
    Header::parse(bytes).unwrap().id
}

fn logs(a: &[Action]) -> Vec<String> {
    a.iter()
        .filter_map(|x| match x {
            Action::Log(l) => Some(l.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn query_forwarded_with_a_fresh_id_and_answer_mapped_back() {
    let mut t = T::new(vec![up1(), up2()]);
    let q = query(0x1234, "Example.ORG", A);
    let (to, id, sent) = forwarded(&t.ask(client(), &q, 0));
    assert_eq!(to, up1());
    assert_ne!(id, 0x1234);
    assert_eq!(id_of(&sent), id);
    assert_eq!(sent[2..], q[2..], "only the ID changes");
    assert_eq!(t.f.pending(), 1);
    let r = answer(&sent);
    let (to, bytes) = answered(&t.reply(up1(), &r, 10));
    assert_eq!(to, client());
    assert_eq!(id_of(&bytes), 0x1234);
    assert_eq!(bytes[2..], r[2..]);
    assert_eq!(t.f.pending(), 0);
    assert_eq!(t.f.stats.answered, 1);
}

#[test]
fn question_case_does_not_matter_but_the_question_does() {
    let mut t = T::new(vec![up1()]);
    let q = query(7, "example.org", A);
    let (_, _, sent) = forwarded(&t.ask(client(), &q, 0));
    // The same question in other case: accepted.
    let mut r = answer(&sent);
    r[13] = b'E';
    assert_eq!(answered(&t.reply(up1(), &r, 1)).0, client());
    // Another name, type or class under the right ID: junk.
    let (_, id, _) = forwarded(&t.ask(client(), &query(8, "example.org", A), 2));
    for other in [
        query(id, "example.net", A),
        query(id, "example.org", AAAA),
        {
            let mut x = query(id, "example.org", A);
            let n = x.len();
            x[n - 1] = 3; // class CH
            x
        },
    ] {
        assert!(t.reply(up1(), &answer(&other), 3).is_empty());
    }
    assert_eq!(t.f.stats.junk, 3);
    assert_eq!(t.f.pending(), 1);
}

#[test]
fn replies_from_elsewhere_or_unknown_ids_or_not_answers_are_dropped() {
    let mut t = T::new(vec![up1(), up2()]);
    let q = query(7, "example.org", A);
    let (_, id, sent) = forwarded(&t.ask(client(), &q, 0));
    let r = answer(&sent);
    // Right ID, wrong source: another host, another port, an upstream not
    // asked yet, the client itself.
    for from in [
        addr("10.64.0.9:53"),
        addr("10.64.0.1:5353"),
        up2(),
        client(),
    ] {
        assert!(t.reply(from, &r, 1).is_empty(), "{from}");
    }
    // Wrong ID.
    assert!(t.reply(up1(), &wire::with_id(&r, id ^ 1), 1).is_empty());
    // Not a response (QR clear): a query echoed back.
    assert!(t.reply(up1(), &sent, 1).is_empty());
    // Short and garbage.
    assert!(t.reply(up1(), &r[..5], 1).is_empty());
    assert!(t.reply(up1(), &r[..20], 1).is_empty());
    assert_eq!(t.f.stats.junk, 8);
    // The real one still gets through.
    assert_eq!(answered(&t.reply(up1(), &r, 2)).0, client());
}

#[test]
fn timeout_tries_the_next_upstream_then_servfail() {
    let mut t = T::new(vec![up1(), up2()]);
    let q = query(9, "example.org", A);
    let (_, id, _) = forwarded(&t.ask(client(), &q, 0));
    assert_eq!(t.f.next_deadline(), Some(2000));
    assert!(t.step(Event::Tick, 1999).is_empty());
    let (to, id2, _) = forwarded(&t.step(Event::Tick, 2000));
    assert_eq!((to, id2), (up2(), id), "same ID, next upstream");
    // Deadline: 4 s after the query, whatever is left.
    let a = t.step(Event::Tick, 4000);
    let (to, bytes) = answered(&a);
    assert_eq!(to, client());
    assert_eq!(rcode(&bytes), wire::RCODE_SERVFAIL);
    assert_eq!(id_of(&bytes), 9);
    assert_eq!(
        wire::question(&bytes).unwrap().name,
        wire::question(&q).unwrap().name
    );
    assert_eq!(logs(&a).len(), 1, "the failure is logged once");
    assert!(logs(&a)[0].contains("no upstream answered"));
    assert_eq!(t.f.pending(), 0);
    assert_eq!(t.f.next_deadline(), None);
}

#[test]
fn a_late_answer_from_the_first_upstream_is_still_taken() {
    let mut t = T::new(vec![up1(), up2()]);
    let (_, _, sent) = forwarded(&t.ask(client(), &query(9, "example.org", A), 0));
    forwarded(&t.step(Event::Tick, 2000));
    assert_eq!(answered(&t.reply(up1(), &answer(&sent), 2500)).0, client());
    // up1 answered last: the next query goes there first.
    assert_eq!(
        forwarded(&t.ask(client(), &query(10, "a.org", A), 2600)).0,
        up1()
    );
}

#[test]
fn the_next_query_starts_at_the_upstream_that_seemed_alive() {
    let mut t = T::new(vec![up1(), up2()]);
    forwarded(&t.ask(client(), &query(1, "a.org", A), 0));
    let (to, _, sent) = forwarded(&t.step(Event::Tick, 2000));
    assert_eq!(to, up2());
    answered(&t.reply(up2(), &answer(&sent), 2100));
    assert_eq!(
        forwarded(&t.ask(client(), &query(2, "b.org", A), 2200)).0,
        up2()
    );
}

#[test]
fn send_failures_answer_servfail_at_once_and_recovery_is_logged() {
    // The tunnel is down: every send fails (unreachable), no waiting.
    let mut t = T::new(vec![up1(), up2()]);
    let (_, id, _) = forwarded(&t.ask(client(), &query(3, "example.org", A), 0));
    let fail = |id| Event::SendFailed {
        id,
        error: "Network is unreachable".into(),
    };
    let (to, id2, _) = forwarded(&t.step(fail(id), 0));
    assert_eq!(to, up2());
    let a = t.step(fail(id2), 0);
    assert_eq!(rcode(&answered(&a).1), wire::RCODE_SERVFAIL);
    assert!(logs(&a)[0].contains("Network is unreachable"), "{a:?}");
    // Still failing: no new log line.
    let (_, id, _) = forwarded(&t.ask(client(), &query(4, "example.org", A), 10));
    let (_, id, _) = forwarded(&t.step(fail(id), 10));
    assert!(logs(&t.step(fail(id), 10)).is_empty());
    // Back: one line saying so.
    let (_, _, sent) = forwarded(&t.ask(client(), &query(5, "example.org", A), 20));
    let a = t.reply(up1(), &answer(&sent), 30);
    assert_eq!(answered(&a).0, client());
    assert!(logs(&a)[0].contains("answers again"));
    // A failed send for an ID that is no longer pending: nothing.
    assert!(t.step(fail(0xffff), 40).is_empty());
}

#[test]
fn refused_moves_on_to_the_next_upstream_unless_it_is_the_last() {
    let mut t = T::new(vec![up1(), up2()]);
    let (_, _, sent) = forwarded(&t.ask(client(), &query(3, "example.org", A), 0));
    let refused = wire::error_reply(
        &sent,
        &Header::parse(&sent).unwrap(),
        wire::question(&sent).map(|q| q.end),
        wire::RCODE_REFUSED,
    );
    let (to, _, _) = forwarded(&t.reply(up1(), &refused, 5));
    assert_eq!(to, up2());
    let (_, bytes) = answered(&t.reply(up2(), &refused, 6));
    assert_eq!(rcode(&bytes), wire::RCODE_REFUSED);
}

#[test]
fn no_upstreams_is_servfail_at_once() {
    // A direct LAN before the WAN lease brought DNS servers.
    let mut t = T::new(vec![]);
    let a = t.ask(client(), &query(3, "example.org", A), 0);
    assert_eq!(rcode(&answered(&a).1), wire::RCODE_SERVFAIL);
}

#[test]
fn malformed_queries() {
    let mut t = T::new(vec![up1()]);
    let q = query(0x4242, "example.org", A);
    // Too short for a header, or an answer: dropped without a word.
    assert!(t.ask(client(), &q[..11], 0).is_empty());
    assert!(t.ask(client(), &answer(&q), 0).is_empty());
    let formerr = |t: &mut T, bytes: &[u8]| {
        let (to, r) = answered(&t.ask(client(), bytes, 0));
        assert_eq!(to, client());
        assert_eq!(rcode(&r), wire::RCODE_FORMERR, "{bytes:?}");
        assert_eq!(id_of(&r), 0x4242);
        let h = Header::parse(&r).unwrap();
        assert!(h.is_response() && h.qdcount == 0 && r.len() == 12);
    };
    // Truncated question.
    formerr(&mut t, &q[..q.len() - 1]);
    formerr(&mut t, &q[..14]);
    // Two questions claimed, one there.
    let mut two = q.clone();
    two[5] = 2;
    formerr(&mut t, &two);
    // No question.
    let mut none = q.clone();
    none[5] = 0;
    formerr(&mut t, &none);
    // An answer record in a query.
    let mut an = q.clone();
    an[7] = 1;
    formerr(&mut t, &an);
    // A compression pointer as the name.
    let mut ptr = q[..12].to_vec();
    ptr.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    formerr(&mut t, &ptr);
    // A label past the end; a name longer than 255 bytes.
    let mut past = q[..12].to_vec();
    past.extend_from_slice(&[40, b'a']);
    formerr(&mut t, &past);
    let long = query(0x4242, &["abcdefghij"; 30].join("."), A);
    formerr(&mut t, &long);
    // Another opcode (NOTIFY = 4): not implemented.
    let mut notify = q.clone();
    notify[2] |= 4 << 3;
    let (_, r) = answered(&t.ask(client(), &notify, 0));
    assert_eq!(rcode(&r), wire::RCODE_NOTIMP);
    assert_eq!(t.f.pending(), 0);
    assert_eq!(t.f.stats.formerr, 8);
    // EDNS (an OPT record in additional) passes through untouched.
    let mut edns = q.clone();
    edns[11] = 1;
    edns.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
    let (_, _, sent) = forwarded(&t.ask(client(), &edns, 0));
    assert_eq!(sent[2..], edns[2..]);
}

#[test]
fn a_retransmitted_query_is_not_forwarded_twice() {
    let mut t = T::new(vec![up1()]);
    let q = query(5, "example.org", A);
    forwarded(&t.ask(client(), &q, 0));
    assert!(t.ask(client(), &q, 500).is_empty());
    assert_eq!(t.f.stats.duplicates, 1);
    // The same ID from another client (or port) is another query.
    forwarded(&t.ask(addr("192.168.10.10:40001"), &q, 600));
    assert_eq!(t.f.pending(), 2);
}

#[test]
fn fresh_ids_never_collide_with_pending_ones() {
    // A "random" source that repeats: the forwarder draws again.
    let mut f = Forwarder::new(vec![up1()], Limits::default());
    let mut seq = [7u16, 7, 7, 8].into_iter();
    let mut ids = vec![];
    for i in 0..2 {
        let a = f.step(
            Event::Query {
                from: client(),
                bytes: &query(i, "example.org", A),
            },
            0,
            &mut || seq.next().unwrap(),
        );
        ids.push(forwarded(&a).1);
    }
    assert_eq!(ids, vec![7, 8]);
}

#[test]
fn the_pending_table_is_bounded() {
    let limits = Limits {
        max_pending: 3,
        max_per_client: 2,
        ..Limits::default()
    };
    let mut t = T::with(vec![up1()], limits);
    let c1 = addr("192.168.10.11:1000");
    let c2 = addr("192.168.10.12:1000");
    let c3 = addr("192.168.10.13:1000");
    forwarded(&t.ask(c1, &query(1, "a.org", A), 0));
    forwarded(&t.ask(c1, &query(2, "b.org", A), 1));
    // Per client: the third from c1 (even from another port) is refused.
    let (to, r) = answered(&t.ask(addr("192.168.10.11:1001"), &query(3, "c.org", A), 2));
    assert_eq!((to.port(), rcode(&r)), (1001, wire::RCODE_REFUSED));
    forwarded(&t.ask(c2, &query(4, "d.org", A), 3));
    assert_eq!(t.f.pending(), 3);
    // Full: the oldest (c1's first) is answered SERVFAIL to make room.
    let a = t.ask(c3, &query(5, "e.org", A), 4);
    assert_eq!(a.len(), 2, "{a:?}");
    match &a[0] {
        Action::Answer { to, bytes } => {
            assert_eq!((*to, id_of(bytes)), (c1, 1));
            assert_eq!(rcode(bytes), wire::RCODE_SERVFAIL);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(a[1], Action::Forward { .. }));
    assert_eq!(t.f.pending(), 3);
    assert_eq!(t.f.stats.evicted, 1);
    // c1 has room again; the table is full, so its own older query goes.
    let a = t.ask(c1, &query(6, "f.org", A), 5);
    assert_eq!(id_of(&answered(&a).1), 2);
    assert_eq!(t.f.pending(), 3);
}

#[test]
fn flood_of_garbage_keeps_state_small() {
    let mut t = T::new(vec![up1()]);
    let mut x: u32 = 1;
    for i in 0..5000u32 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let len = (x % 80) as usize;
        let bytes: Vec<u8> = (0..len).map(|j| (x >> (j % 24)) as u8).collect();
        let _ = t.ask(client(), &bytes, i as u64);
        let _ = t.reply(up1(), &bytes, i as u64);
        let _ = t.step(Event::Tick, i as u64);
    }
    assert!(t.f.pending() <= Limits::default().max_per_client);
}
