//! The forwarder's core: `step(event, now) -> actions`, no sockets.
//!
//! A client's query goes to an upstream under a fresh random transaction ID
//! (a LAN client's ID is predictable; ours must not be, or an off-path
//! attacker could forge answers). A reply is taken only if its ID is
//! pending, it came from an upstream that query was sent to (address and
//! port) and its question is the query's; anything else is dropped. No
//! answer within `attempt_ms`, or a send that fails (the tunnel is down:
//! the kill switch makes it unreachable), moves the query to the next
//! upstream; when none is left, or at `deadline_ms`, the client gets
//! SERVFAIL. The pending table is bounded: per client and in all.
//! With a cache (`with_cache`), a query it can answer never leaves, and an
//! upstream's reply is offered to it on the way back (src/dns/cache.rs).

use super::cache::{Cache, Key, Lookup};
use super::wire::{
    error_reply, question, with_id, Header, OPCODE_QUERY, RCODE_FORMERR, RCODE_NOTIMP,
    RCODE_REFUSED, RCODE_SERVFAIL,
};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wait this long for one upstream before trying the next.
    pub attempt_ms: u64,
    /// Answer SERVFAIL at the latest this long after the query (stub
    /// resolvers give up after about 5 s: they should hear why).
    pub deadline_ms: u64,
    /// Queries waiting for upstreams, all clients together; when full, the
    /// oldest is answered SERVFAIL to make room.
    pub max_pending: usize,
    /// Queries waiting per client address; beyond, REFUSED (one client
    /// cannot push the others' queries out).
    pub max_per_client: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            attempt_ms: 2000,
            deadline_ms: 4000,
            max_pending: 1024,
            max_per_client: 256,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// A datagram from a LAN client.
    Query { from: SocketAddr, bytes: &'a [u8] },
    /// A datagram on the upstream socket.
    Reply { from: SocketAddr, bytes: &'a [u8] },
    /// Sending `Forward { id }` failed (no route, the tunnel is down...).
    SendFailed { id: u16, error: String },
    /// Time passed: timeouts.
    Tick,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send `bytes` to a client.
    Answer { to: SocketAddr, bytes: Vec<u8> },
    /// Send `bytes` (a query under ID `id`) to an upstream.
    Forward {
        to: SocketAddr,
        id: u16,
        bytes: Vec<u8>,
    },
    /// A line for the log: upstreams stopped or started answering.
    Log(String),
}

/// What happened to queries since start, for the log and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub queries: u64,
    pub answered: u64,
    pub servfail: u64,
    pub formerr: u64,
    pub refused: u64,
    /// Client retransmissions of a query already pending.
    pub duplicates: u64,
    /// Upstream datagrams that matched no pending query.
    pub junk: u64,
    /// Pending queries pushed out by newer ones (table full).
    pub evicted: u64,
    /// Answered from the cache (not counted in `answered`, which are the
    /// upstreams' answers).
    pub cache_hits: u64,
    /// Queries the cache could have answered but did not have.
    pub cache_misses: u64,
}

struct Pending {
    client: SocketAddr,
    client_id: u16,
    query: Vec<u8>,
    header: Header,
    question: super::wire::Question,
    /// Indices into `upstreams`, in the order tried; the last is current.
    tried: Vec<usize>,
    started: u64,
    sent: u64,
    seq: u64,
    last_error: Option<String>,
    /// Where the answer goes in the cache, if it may.
    cache_key: Option<Key>,
}

pub struct Forwarder {
    limits: Limits,
    upstreams: Vec<SocketAddr>,
    /// Where the next query goes first: the upstream that answered last.
    preferred: usize,
    pending: HashMap<u16, Pending>,
    /// (client, client's ID) -> our ID: a retransmission is not a new query.
    by_client: HashMap<(SocketAddr, u16), u16>,
    per_client: HashMap<IpAddr, usize>,
    /// Arrival order -> our ID, for evicting the oldest.
    order: BTreeMap<u64, u16>,
    seq: u64,
    /// The last query ended with no upstream answering; logged once.
    failing: bool,
    /// None: no cache (0 entries).
    cache: Option<Cache>,
    pub stats: Stats,
}

impl Forwarder {
    pub fn new(upstreams: Vec<SocketAddr>, limits: Limits) -> Forwarder {
        Forwarder {
            limits,
            upstreams,
            preferred: 0,
            pending: HashMap::new(),
            by_client: HashMap::new(),
            per_client: HashMap::new(),
            order: BTreeMap::new(),
            seq: 0,
            failing: false,
            cache: None,
            stats: Stats::default(),
        }
    }

    /// With an answer cache of at most `entries` (0: none).
    pub fn with_cache(mut self, entries: usize) -> Forwarder {
        self.cache = (entries > 0).then(|| Cache::new(entries));
        self
    }

    /// Answers in the cache now.
    pub fn cached(&self) -> usize {
        self.cache.as_ref().map_or(0, Cache::len)
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// When `Tick` has something to do next, if anything is pending.
    pub fn next_deadline(&self) -> Option<u64> {
        self.pending.values().map(|p| self.due(p)).min()
    }

    fn due(&self, p: &Pending) -> u64 {
        (p.sent + self.limits.attempt_ms).min(p.started + self.limits.deadline_ms)
    }

    /// One event at `now` (milliseconds, monotonic). `random` gives fresh
    /// transaction IDs (the service reads the kernel's random source).
    pub fn step(&mut self, event: Event, now: u64, random: &mut dyn FnMut() -> u16) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Query { from, bytes } => self.query(from, bytes, now, random, &mut out),
            Event::Reply { from, bytes } => self.reply(from, bytes, now, &mut out),
            Event::SendFailed { id, error } => {
                if let Some(p) = self.pending.get_mut(&id) {
                    p.last_error = Some(error);
                    self.advance(id, now, &mut out);
                }
            }
            Event::Tick => {
                let due: Vec<u16> = self
                    .pending
                    .iter()
                    .filter(|(_, p)| self.due(p) <= now)
                    .map(|(id, _)| *id)
                    .collect();
                for id in due {
                    self.advance(id, now, &mut out);
                }
            }
        }
        out
    }

    fn query(
        &mut self,
        from: SocketAddr,
        bytes: &[u8],
        now: u64,
        random: &mut dyn FnMut() -> u16,
        out: &mut Vec<Action>,
    ) {
        // Too short to answer, or an answer itself (never answer answers:
        // two forwarders would loop): dropped.
        let Some(h) = Header::parse(bytes) else {
            return;
        };
        if h.is_response() {
            return;
        }
        self.stats.queries += 1;
        let error = |rcode, q: Option<usize>| Action::Answer {
            to: from,
            bytes: error_reply(bytes, &h, q, rcode),
        };
        if h.opcode() != OPCODE_QUERY {
            self.stats.refused += 1;
            return out.push(error(RCODE_NOTIMP, None));
        }
        // One question, no answers or authority; additional records (EDNS)
        // pass through.
        let q = match question(bytes) {
            Some(q) if h.qdcount == 1 && h.ancount == 0 && h.nscount == 0 => q,
            _ => {
                self.stats.formerr += 1;
                return out.push(error(RCODE_FORMERR, None));
            }
        };
        if self.by_client.contains_key(&(from, h.id)) {
            self.stats.duplicates += 1;
            return;
        }
        let lookup = self.cache.as_ref().and_then(|_| Lookup::of(bytes, &h, &q));
        if let (Some(c), Some(l)) = (self.cache.as_mut(), &lookup) {
            if let Some(reply) = c.answer(l, bytes, &q, h.id, now) {
                self.stats.cache_hits += 1;
                return out.push(Action::Answer {
                    to: from,
                    bytes: reply,
                });
            }
            self.stats.cache_misses += 1;
        }
        if self.upstreams.is_empty() {
            self.stats.servfail += 1;
            return out.push(error(RCODE_SERVFAIL, Some(q.end)));
        }
        if self.per_client.get(&from.ip()).copied().unwrap_or(0) >= self.limits.max_per_client {
            self.stats.refused += 1;
            return out.push(error(RCODE_REFUSED, Some(q.end)));
        }
        while self.pending.len() >= self.limits.max_pending.max(1) {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.stats.evicted += 1;
            self.finish_servfail(oldest, out);
        }
        let id = loop {
            let id = random();
            if !self.pending.contains_key(&id) {
                break id;
            }
        };
        let first = self.preferred % self.upstreams.len();
        self.seq += 1;
        self.by_client.insert((from, h.id), id);
        *self.per_client.entry(from.ip()).or_default() += 1;
        self.order.insert(self.seq, id);
        self.pending.insert(
            id,
            Pending {
                client: from,
                client_id: h.id,
                query: bytes.to_vec(),
                header: h,
                question: q,
                tried: vec![first],
                started: now,
                sent: now,
                seq: self.seq,
                last_error: None,
                cache_key: lookup.map(|l| l.key),
            },
        );
        out.push(self.forward(id));
    }

    fn forward(&self, id: u16) -> Action {
        let p = &self.pending[&id];
        let to = self.upstreams[*p.tried.last().unwrap_or(&0)];
        Action::Forward {
            to,
            id,
            bytes: with_id(&p.query, id),
        }
    }

    fn reply(&mut self, from: SocketAddr, bytes: &[u8], now: u64, out: &mut Vec<Action>) {
        let Some(h) = Header::parse(bytes) else {
            self.stats.junk += 1;
            return;
        };
        let matches = self.pending.get(&h.id).is_some_and(|p| {
            h.is_response()
                && p.tried.iter().any(|i| self.upstreams[*i] == from)
                && h.qdcount == 1
                && question(bytes).is_some_and(|q| {
                    (&q.name, q.qtype, q.qclass)
                        == (&p.question.name, p.question.qtype, p.question.qclass)
                })
        });
        if !matches {
            self.stats.junk += 1;
            return;
        }
        let Some(upstream) = self.upstreams.iter().position(|u| *u == from) else {
            return;
        };
        if h.rcode() == RCODE_REFUSED {
            // This server will not serve us (an ACL): another one may.
            if let Some(p) = self.pending.get_mut(&h.id) {
                if p.tried.len() < self.upstreams.len() {
                    p.last_error = Some(format!("{from} refused"));
                    return self.advance(h.id, now, out);
                }
            }
        }
        self.preferred = upstream;
        if self.failing {
            self.failing = false;
            out.push(Action::Log(format!("upstream {from} answers again")));
        }
        if let Some(p) = self.remove(h.id) {
            self.stats.answered += 1;
            if let (Some(c), Some(key)) = (self.cache.as_mut(), p.cache_key) {
                // Not every reply may be kept; those are just passed on.
                let _ = c.store(key, bytes, now);
            }
            out.push(Action::Answer {
                to: p.client,
                bytes: with_id(bytes, p.client_id),
            });
        }
    }

    /// The current attempt of `id` failed or timed out: the next upstream,
    /// or SERVFAIL when none is left or the deadline has passed.
    fn advance(&mut self, id: u16, now: u64, out: &mut Vec<Action>) {
        let n = self.upstreams.len();
        let Some(p) = self.pending.get_mut(&id) else {
            return;
        };
        let last = *p.tried.last().unwrap_or(&0);
        let next = (last + 1) % n;
        if p.tried.len() < n && now < p.started + self.limits.deadline_ms {
            p.tried.push(next);
            p.sent = now;
            // Start the next queries with the one that seems alive.
            self.preferred = next;
            out.push(self.forward(id));
            return;
        }
        if !self.failing {
            self.failing = true;
            let why = p.last_error.clone().unwrap_or_else(|| "no answer".into());
            let servers: Vec<String> = self.upstreams.iter().map(|u| u.to_string()).collect();
            out.push(Action::Log(format!(
                "no upstream answered ({}): {why}; answering SERVFAIL",
                servers.join(", ")
            )));
        }
        self.finish_servfail(id, out);
    }

    fn finish_servfail(&mut self, id: u16, out: &mut Vec<Action>) {
        if let Some(p) = self.remove(id) {
            self.stats.servfail += 1;
            out.push(Action::Answer {
                to: p.client,
                bytes: error_reply(&p.query, &p.header, Some(p.question.end), RCODE_SERVFAIL),
            });
        }
    }

    fn remove(&mut self, id: u16) -> Option<Pending> {
        let p = self.pending.remove(&id)?;
        self.by_client.remove(&(p.client, p.client_id));
        self.order.remove(&p.seq);
        if let Some(n) = self.per_client.get_mut(&p.client.ip()) {
            *n -= 1;
            if *n == 0 {
                self.per_client.remove(&p.client.ip());
            }
        }
        Some(p)
    }
}
