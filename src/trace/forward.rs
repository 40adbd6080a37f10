//! Where Portal's forward chain sends a LAN's packet once routing chose the
//! output device: the same decisions as firewall::forward, by the model
//! (pure). The comments named are those of the rules in table inet portal.

use super::{Outcome, RouteType, Trace};
use crate::core::model::{Lan, LanRoute, Model};
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Forwarded: the rule that accepts it.
    Accept(String),
    /// Rejected by the kill switch (admin prohibited).
    KillSwitch(String),
    /// Dropped by the chain's policy (counter drop_forward).
    Drop,
    /// Not forwarded at all (local delivery, or routing refused it).
    NotForwarded(String),
}

pub fn verdict(m: &Model, lan: &Lan, dst: &IpAddr, t: &Trace) -> Verdict {
    let oif = match &t.outcome {
        Outcome::Route(r) if r.kind == RouteType::Unicast => r.dev.clone().unwrap_or_default(),
        Outcome::Route(r) if r.kind == RouteType::Local => {
            return Verdict::NotForwarded("for the router itself: the input chain decides".into())
        }
        Outcome::Route(r) => return Verdict::NotForwarded(format!("a {} route", r.kind)),
        _ => return Verdict::NotForwarded("routing refused it before the firewall".into()),
    };
    match &lan.route {
        LanRoute::Portal(r) => {
            let p = &m.portals[r.index];
            if oif == p.interface {
                Verdict::Accept(format!("lan {} via {}", lan.name, p.name))
            } else if lan.split.is_some() && lan.kill_switch && oif == m.wan.interface {
                // Routing (the LAN's split table) chose the WAN.
                Verdict::Accept(format!("lan {} split: direct destinations", lan.name))
            } else if lan.kill_switch {
                Verdict::KillSwitch(format!("kill switch {} via {}", lan.name, p.name))
            } else if oif == m.wan.interface {
                Verdict::Accept(format!(
                    "lan {} falls back to the WAN (kill switch off)",
                    lan.name
                ))
            } else {
                Verdict::Drop
            }
        }
        LanRoute::Direct => {
            if oif == m.wan.interface {
                return Verdict::Accept(format!("lan {} direct", lan.name));
            }
            let s2s = m
                .portals
                .iter()
                .find(|p| p.interface == oif && p.remote_subnets.iter().any(|s| s.contains(dst)));
            match s2s {
                Some(p) => Verdict::Accept(format!("lan {} to site-to-site {}", lan.name, p.name)),
                None => Verdict::Drop,
            }
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Accept(c) => write!(f, "accepted (rule \"{c}\")"),
            Verdict::KillSwitch(c) => write!(
                f,
                "REJECTED by the kill switch (rule \"{c}\", counter drop_kill_switch)"
            ),
            Verdict::Drop => f.write_str("dropped by the forward policy (counter drop_forward)"),
            Verdict::NotForwarded(why) => write!(f, "not forwarded: {why}"),
        }
    }
}
