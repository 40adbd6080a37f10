//! The `dns` check: for each LAN with `lans.L.dns`, is its forwarder
//! answering, do its upstreams answer from the address the forwarder asks
//! them from, and does the LAN's DHCP send clients to the forwarder at all.
//!
//! Two kinds of query (dns_probe.rs sends them):
//! - to the forwarder, on the LAN address, a query with opcode STATUS: the
//!   forwarder answers NOTIMP itself, at once, whatever its upstreams do,
//!   so a silence is the forwarder's and not the upstreams' 4 s SERVFAIL;
//! - to each upstream, from the portal's tunnel address (a via-portal LAN:
//!   the forwarder's own source, so the query takes the same rule into the
//!   tunnel) or unbound (a direct LAN), `portal-doctor.invalid. A`. RFC
//!   6761 reserves `.invalid`: a resolver answers NXDOMAIN, often without
//!   asking anyone (so the check measures the way to the resolver, not the
//!   internet behind it), and the query says nothing about the LAN's users.
//!   `. NS` would need the resolver's own upstreams and may be refused by
//!   a forwarding-only resolver.

use super::{Facts, Finding, Severity, HANDSHAKE_STALE_SECS};
use crate::core::model::{Lan, LanRoute, Model};
use crate::dns::wire::{
    RCODE_FORMERR, RCODE_NOTIMP, RCODE_NXDOMAIN, RCODE_REFUSED, RCODE_SERVFAIL,
};
use std::net::Ipv4Addr;

pub const QUERY_NAME: &str = "portal-doctor.invalid";
/// Per query, three tries in all (a first datagram into the tunnel can be
/// lost to a handshake in progress).
pub const FORWARDER_TIMEOUT_MS: u64 = 1500;
/// The forwarder's own wait for one upstream (forwarder.rs `attempt_ms`).
pub const UPSTREAM_TIMEOUT_MS: u64 = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Forwarder,
    Upstream,
}

/// One query to send: to `server`:53 from `src` (None: the kernel's
/// choice: for a forwarder, its own LAN address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub lan: String,
    pub target: Target,
    pub src: Option<Ipv4Addr>,
    pub server: Ipv4Addr,
}

/// What one query got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A reply with our ID, after `ms`.
    Reply { rcode: u8, ms: u64 },
    /// ICMP port unreachable: nothing listens on port 53 there.
    NoListener,
    /// Another ICMP error (host or network unreachable, prohibited).
    Icmp(String),
    /// Nothing within `ms`.
    Timeout { ms: u64 },
    /// Not sent: our side refused (no route, the kill switch, bind failed).
    NotSent(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsProbe {
    pub ask: Ask,
    pub answer: Answer,
}

/// The queries for `m`: per LAN with `dns`, the forwarder, then each
/// upstream known from the model (a direct LAN using the WAN lease's DNS
/// has its upstreams only in the agent: not asked).
pub fn plan(m: &Model) -> Vec<Ask> {
    let mut out = Vec::new();
    for l in &m.lans {
        let Some(d) = &l.dns else { continue };
        out.push(Ask {
            lan: l.name.clone(),
            target: Target::Forwarder,
            src: None,
            server: d.listen,
        });
        for s in &d.servers {
            out.push(Ask {
                lan: l.name.clone(),
                target: Target::Upstream,
                src: d.source,
                server: *s,
            });
        }
    }
    out
}

fn rcode_name(rcode: u8) -> String {
    match rcode {
        0 => "NOERROR".into(),
        RCODE_FORMERR => "FORMERR".into(),
        RCODE_SERVFAIL => "SERVFAIL".into(),
        RCODE_NXDOMAIN => "NXDOMAIN".into(),
        RCODE_NOTIMP => "NOTIMP".into(),
        RCODE_REFUSED => "REFUSED".into(),
        n => format!("rcode {n}"),
    }
}

impl Answer {
    /// Whether an upstream resolves: NXDOMAIN (or NOERROR) for the
    /// reserved name. SERVFAIL and REFUSED are replies that resolve nothing.
    fn resolves(&self) -> bool {
        matches!(self, Answer::Reply { rcode, .. } if *rcode == 0 || *rcode == RCODE_NXDOMAIN)
    }

    fn describe(&self) -> String {
        match self {
            Answer::Reply { rcode, ms } => format!("{} in {ms} ms", rcode_name(*rcode)),
            Answer::NoListener => "ICMP port unreachable (nothing listens on port 53)".into(),
            Answer::Icmp(e) => format!("ICMP error: {e}"),
            Answer::Timeout { ms } => format!("no reply in {ms} ms (3 tries)"),
            Answer::NotSent(e) => format!("not sent: {e}"),
        }
    }
}

impl DnsProbe {
    fn evidence(&self) -> String {
        let from = match (&self.ask.src, self.ask.target) {
            (Some(s), _) => s.to_string(),
            (None, Target::Forwarder) => "the router".into(),
            (None, Target::Upstream) => "the router (its own source)".into(),
        };
        let what = match self.ask.target {
            Target::Forwarder => "opcode STATUS query (the forwarder answers it itself)".into(),
            Target::Upstream => format!("{QUERY_NAME} A"),
        };
        format!(
            "{what}: {from} -> {}:53: {}",
            self.ask.server,
            self.answer.describe()
        )
    }
}

/// A finding of this check.
fn finding(severity: Severity, problem: String) -> Finding {
    super::checks::finding("dns", severity, problem)
}

pub fn check(m: &Model, f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    for l in m.lans.iter().filter(|l| l.dns.is_some()) {
        let mine = |t: Target| {
            f.dns
                .iter()
                .filter(move |p| p.ask.lan == l.name && p.ask.target == t)
        };
        out.extend(mine(Target::Forwarder).filter_map(|p| forwarder(l, p)));
        out.extend(upstreams(m, f, l, mine(Target::Upstream).collect()));
        out.extend(dhcp_bypass(l));
    }
    out
}

fn forwarder(l: &Lan, p: &DnsProbe) -> Option<Finding> {
    if matches!(p.answer, Answer::Reply { .. }) {
        return None;
    }
    let why = match &p.answer {
        Answer::NoListener => {
            "nothing listens there: the agent is not running, or its forwarder stopped"
        }
        Answer::Timeout { .. } => {
            "its socket is there but nothing reads it: the agent is stopped or stuck"
        }
        _ => "the query could not reach it",
    };
    let mut x = finding(
        Severity::Error,
        format!(
            "LAN {}'s DNS forwarder does not answer on {}:53: {why}; the LAN's clients resolve nothing",
            l.name, p.ask.server
        ),
    );
    x.evidence.push(p.evidence());
    x.fix.push(format!(
        "read the agent's log: its lines `dns {}: ...` (the start `dns {}: answering on {}:53`, \
         or the error that stopped the forwarder)",
        l.name, l.name, p.ask.server
    ));
    x.fix.push(
        "check that `portal agent CONFIG` runs (and is not stopped: `ps -o stat= -p PID`); \
         restart it"
            .into(),
    );
    Some(x)
}

/// The age of the freshest handshake of `portal`'s device, if fresh.
fn fresh_handshake(f: &Facts, interface: &str) -> Option<u64> {
    f.device(interface)?
        .peers
        .iter()
        .filter_map(|p| p.latest_handshake)
        .map(|t| f.now.saturating_sub(t))
        .filter(|age| *age <= HANDSHAKE_STALE_SECS)
        .min()
}

fn upstreams(m: &Model, f: &Facts, l: &Lan, probes: Vec<&DnsProbe>) -> Vec<Finding> {
    let failing: Vec<&&DnsProbe> = probes.iter().filter(|p| !p.answer.resolves()).collect();
    if failing.is_empty() {
        return Vec::new();
    }
    let servers_at = servers_origin(l);
    let Some((path, tunnel)) = upstream_path(m, f, l) else {
        return Vec::new();
    };
    let all = failing.len() == probes.len();
    let mut out = Vec::new();
    let fixes = |x: &mut Finding, ps: &[&&DnsProbe]| {
        for p in ps {
            x.fix.push(upstream_fix(p, &servers_at, tunnel.is_some()));
        }
    };
    if all {
        let mut x = finding(
            Severity::Error,
            format!(
                "no upstream resolver of LAN {} answers {path}: every name the LAN's clients \
                 ask fails (SERVFAIL from the forwarder)",
                l.name
            ),
        );
        x.evidence.extend(failing.iter().map(|p| p.evidence()));
        x.evidence.extend(tunnel.clone());
        fixes(&mut x, &failing);
        out.push(x);
        return out;
    }
    for p in failing {
        let mut x = finding(
            Severity::Warning,
            format!(
                "LAN {}'s upstream resolver {} does not resolve {path}: the forwarder waits \
                 for it before trying the next",
                l.name, p.ask.server
            ),
        );
        x.evidence.push(p.evidence());
        x.evidence.extend(
            probes
                .iter()
                .filter(|o| o.answer.resolves())
                .map(|o| o.evidence()),
        );
        x.evidence.extend(tunnel.clone());
        fixes(&mut x, &[p]);
        out.push(x);
    }
    out
}

/// Where the LAN's upstream resolvers come from, for the fixes.
fn servers_origin(l: &Lan) -> String {
    match (&l.route, l.dns.as_ref().is_some_and(|d| d.servers_from_wan)) {
        (_, true) => "the WAN's DHCP lease".to_string(),
        (LanRoute::Portal(p), _) => format!("lans.{}.dns.servers, else portals.{p}.dns", l.name),
        (LanRoute::Direct, _) => format!("lans.{}.dns.servers, else wan.static.dns", l.name),
    }
}

/// The way to the upstreams ("through portal P" or "out the WAN") and,
/// through a portal, the evidence that its tunnel is up.
fn upstream_path(m: &Model, f: &Facts, l: &Lan) -> Option<(String, Option<String>)> {
    // Through a portal: only while its tunnel is up. A stale handshake is
    // the handshake check's finding, and the cause of these failures.
    Some(match &l.route {
        LanRoute::Portal(name) => {
            let p = &m.portals[name.index];
            let age = fresh_handshake(f, &p.interface)?;
            (
                format!("through portal {name}"),
                Some(format!(
                    "{}: latest handshake {age} s ago (the tunnel is up)",
                    p.interface
                )),
            )
        }
        LanRoute::Direct => ("out the WAN".to_string(), None),
    })
}

/// What to do about one failing upstream, by how it failed.
fn upstream_fix(p: &DnsProbe, servers_at: &str, tunnel: bool) -> String {
    let refused =
        |p: &DnsProbe| matches!(p.answer, Answer::Reply { rcode, .. } if rcode == RCODE_REFUSED);
    let s = p.ask.server;
    let src = p
        .ask
        .src
        .map(|a| a.to_string())
        .unwrap_or_else(|| "the WAN address".into());
    if refused(p) {
        format!(
            "{s} refuses queries from {src}: allow that source (or the exit's address, \
             if the exit masquerades) in its access list, or use another resolver ({servers_at})"
        )
    } else if matches!(p.answer, Answer::Reply { .. }) {
        format!("{s} answers but cannot resolve (its own upstreams fail): fix it or use another resolver ({servers_at})")
    } else if p.answer == Answer::NoListener {
        format!(
            "{s} is reached but runs no DNS server (ICMP port unreachable came back): \
             start its resolver, or correct the address ({servers_at})"
        )
    } else if tunnel {
        format!(
            "{s} is unreachable from the exit: check that it is the exit's resolver \
             ({servers_at}), and that the exit routes (and masquerades) traffic from \
             {src} to it; on the exit: dig @{s} {QUERY_NAME}"
        )
    } else {
        format!("{s} is unreachable from here: check {servers_at}; dig @{s} {QUERY_NAME}")
    }
}

/// `lans.L.dhcp.dns` set explicitly beside `lans.L.dns`: clients are told
/// to ask someone else, and the forwarder (its tunnel-only upstream path,
/// its cache) is bypassed. Without `lans.L.dns` a via-portal LAN's clients
/// asking a public resolver is not reported: their queries are LAN traffic,
/// routed into the tunnel and stopped by the kill switch like the rest.
fn dhcp_bypass(l: &Lan) -> Option<Finding> {
    let d = l.dns.as_ref()?;
    let dhcp = l.dhcp.as_ref()?;
    let others: Vec<String> = dhcp
        .dns
        .iter()
        .filter(|a| **a != d.listen)
        .map(|a| a.to_string())
        .collect();
    if others.is_empty() {
        return None;
    }
    let handed: Vec<String> = dhcp.dns.iter().map(|a| a.to_string()).collect();
    let mut x = finding(
        Severity::Warning,
        format!(
            "LAN {}'s DHCP hands out DNS {} besides or instead of its forwarder {}: clients \
             asking {} bypass the forwarder{}",
            l.name,
            others.join(", "),
            d.listen,
            if others.len() == 1 { "it" } else { "them" },
            match &l.route {
                LanRoute::Portal(p) => format!(
                    " (their queries still go into portal {p}'s tunnel as LAN traffic, unless \
                     a split route sends them direct)"
                ),
                LanRoute::Direct => String::new(),
            }
        ),
    );
    x.evidence.push(format!(
        "lans.{}.dhcp.dns = [{}]; lans.{}.dns answers on {}:53",
        l.name,
        handed.join(", "),
        l.name,
        d.listen
    ));
    x.fix.push(format!(
        "remove \"dns\" from lans.{}.dhcp: with lans.{}.dns set, DHCP hands out the router ({}) \
         by default",
        l.name, l.name, d.listen
    ));
    Some(x)
}
