//! Portal's nftables table (`inet portal`), generated from the model: pure.
//!
//! - prerouting (raw): anti-spoofing: a LAN packet must come from its LAN's
//!   prefix; a packet to a tunnel address must come from its tunnel.
//! - input: default drop. From the WAN only the portals' WireGuard ports and
//!   replies; from a tunnel only replies; from a LAN, ICMP echo, DHCP and
//!   the status page where the config serves them.
//! - forward: default drop. Only the flows the config defines: a LAN into its
//!   portal (the kill switch rejects anything else) or out the WAN when
//!   `direct`; tunnel -> WAN for exits; site-to-site subnets. IPv6 from LANs
//!   is dropped until Portal routes IPv6.
//! - postrouting (nat): masquerade per LAN and per exit.
//!
//! Every drop is counted in a named counter per reason (`nft list counters
//! table inet portal`), for the status page.

use crate::cidr::Cidr;
use crate::model::{LanRoute, Model, Portal, WanMode};

pub const DROP_COUNTERS: &[&str] = &[
    "drop_spoof",
    "drop_invalid",
    "drop_input_wan",
    "drop_input_tunnel",
    "drop_input_lan",
    "drop_input_other",
    "drop_kill_switch",
    "drop_ipv6_lan",
    "drop_forward",
];

/// Open connections to the status page, all LAN clients together.
pub const STATUS_PAGE_MAX_CONNECTIONS: u32 = 64;

pub fn ruleset(m: &Model) -> String {
    let mut t = String::from("table inet portal {\n");
    for c in DROP_COUNTERS {
        t.push_str(&format!("\tcounter {c} {{\n\t}}\n"));
    }
    chain(
        &mut t,
        "prerouting",
        "type filter hook prerouting priority raw; policy accept;",
        &prerouting(m),
    );
    chain(
        &mut t,
        "input",
        "type filter hook input priority filter; policy drop;",
        &input(m),
    );
    chain(
        &mut t,
        "forward",
        "type filter hook forward priority filter; policy drop;",
        &forward(m),
    );
    chain(
        &mut t,
        "postrouting",
        "type nat hook postrouting priority srcnat; policy accept;",
        &nat(m),
    );
    t.push_str("}\n");
    t
}

fn chain(t: &mut String, name: &str, head: &str, rules: &[String]) {
    t.push_str(&format!("\tchain {name} {{\n\t\t{head}\n"));
    for r in rules {
        t.push_str(&format!("\t\t{r}\n"));
    }
    t.push_str("\t}\n");
}

fn prerouting(m: &Model) -> Vec<String> {
    let mut r = Vec::new();
    for l in &m.lans {
        // 0.0.0.0 is a DHCP client that has no address yet.
        r.push(format!(
            "iifname \"{}\" ip saddr != {{ {}, 0.0.0.0 }} counter name \"drop_spoof\" drop comment \"lan {}: source outside its prefix\"",
            l.interface,
            l.address.network(),
            l.name
        ));
    }
    for p in &m.portals {
        for a in p.addresses.iter().filter(|a| !a.is_v6()) {
            // As wg-quick does; the router's own packets (via lo) are fine.
            r.push(format!(
                "ip daddr {} iifname != \"{}\" fib saddr type != local counter name \"drop_spoof\" drop comment \"tunnel address of {} from outside its tunnel\"",
                a.addr, p.interface, p.name
            ));
        }
    }
    r
}

fn input(m: &Model) -> Vec<String> {
    let wan = &m.wan.interface;
    let lans = set_of(m.lans.iter().map(|l| l.interface.as_str()));
    let tunnels = set_of(m.portals.iter().map(|p| p.interface.as_str()));
    let mut r = vec![
        "iif \"lo\" accept".to_string(),
        "ct state established,related accept".to_string(),
        "ct state invalid counter name \"drop_invalid\" drop".to_string(),
        // Neighbour discovery is IPv6's ARP: without it nothing IPv6 works.
        "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert } ip6 hoplimit 255 accept".to_string(),
    ];
    let ports: Vec<String> = m
        .portals
        .iter()
        .filter_map(|p| p.listen_port)
        .map(|p| p.to_string())
        .collect();
    if !ports.is_empty() {
        r.push(format!(
            "iifname \"{wan}\" udp dport {{ {} }} accept comment \"wireguard\"",
            ports.join(", ")
        ));
    }
    if matches!(m.wan.mode, WanMode::Dhcp { .. }) {
        // The ISP's server broadcasts its replies: conntrack cannot match them.
        r.push(format!(
            "iifname \"{wan}\" udp sport 67 udp dport 68 accept comment \"dhcp client\""
        ));
    }
    if let Some(dhcp) = set_of(
        m.lans
            .iter()
            .filter(|l| l.dhcp.is_some())
            .map(|l| l.interface.as_str()),
    ) {
        r.push(format!(
            "iifname {dhcp} udp dport 67 accept comment \"dhcp server\""
        ));
    }
    if let Some(page) = &m.status_page {
        let ifaces = m
            .lans
            .iter()
            .filter(|l| page.lans.contains(&l.name))
            .map(|l| l.interface.as_str());
        if let Some(set) = set_of(ifaces) {
            // The HTTP server holds a thread per open connection: bound
            // them, so that a LAN client cannot exhaust the router's memory.
            r.push(format!(
                "iifname {set} tcp dport {} ct count over {STATUS_PAGE_MAX_CONNECTIONS} counter name \"drop_input_lan\" reject with tcp reset comment \"status page: connection limit\"",
                page.port
            ));
            r.push(format!(
                "iifname {set} tcp dport {} accept comment \"status page\"",
                page.port
            ));
        }
    }
    if let Some(lans) = &lans {
        r.push(format!("iifname {lans} icmp type echo-request accept"));
        r.push(format!("iifname {lans} icmpv6 type echo-request accept"));
    }
    // UDP is refused (port unreachable) rather than dropped so that a scan
    // tells "closed" from the WireGuard ports, which never answer strangers.
    r.push(format!(
        "iifname \"{wan}\" meta l4proto udp counter name \"drop_input_wan\" reject"
    ));
    r.push(format!(
        "iifname \"{wan}\" counter name \"drop_input_wan\" drop"
    ));
    if let Some(tunnels) = &tunnels {
        r.push(format!(
            "iifname {tunnels} meta l4proto udp counter name \"drop_input_tunnel\" reject"
        ));
        r.push(format!(
            "iifname {tunnels} counter name \"drop_input_tunnel\" drop"
        ));
    }
    if let Some(lans) = &lans {
        r.push(format!("iifname {lans} counter name \"drop_input_lan\" reject with icmpx type admin-prohibited"));
    }
    r.push("counter name \"drop_input_other\" drop".to_string());
    r
}

fn forward(m: &Model) -> Vec<String> {
    let wan = &m.wan.interface;
    let mut r = Vec::new();
    for p in &m.portals {
        // Clamp SYNs both ways: into the tunnel, and out of it for peers
        // (not running Portal) that do not clamp their side.
        let (mss4, mss6) = (p.mtu - 40, p.mtu - 60);
        for dir in ["oifname", "iifname"] {
            for (family, mss) in [("ipv4", mss4), ("ipv6", mss6)] {
                r.push(format!(
                    "{dir} \"{}\" meta nfproto {family} tcp flags & (syn | rst) == syn tcp option maxseg size > {mss} tcp option maxseg size set {mss} comment \"mss clamp {}\"",
                    p.interface, p.name
                ));
            }
        }
    }
    r.push("ct state established,related accept".into());
    r.push("ct state invalid counter name \"drop_invalid\" drop".into());
    if let Some(lans) = set_of(m.lans.iter().map(|l| l.interface.as_str())) {
        r.push(format!(
            "iifname {lans} meta nfproto ipv6 counter name \"drop_ipv6_lan\" drop comment \"IPv6 from LANs is not routed yet\""
        ));
    }
    for l in &m.lans {
        match &l.route {
            LanRoute::Direct => {
                r.push(format!(
                    "iifname \"{}\" oifname \"{wan}\" accept comment \"lan {} direct\"",
                    l.interface, l.name
                ));
                for p in &m.portals {
                    if let Some(subnets) = remote_subnets(p) {
                        r.push(format!(
                            "iifname \"{}\" oifname \"{}\" ip daddr {subnets} accept comment \"lan {} to site-to-site {}\"",
                            l.interface, p.interface, l.name, p.name
                        ));
                    }
                }
            }
            LanRoute::Portal(name) => {
                let Some(p) = m.portal(name) else { continue };
                r.push(format!(
                    "iifname \"{}\" oifname \"{}\" accept comment \"lan {} via {}\"",
                    l.interface, p.interface, l.name, p.name
                ));
                if l.kill_switch {
                    r.push(format!(
                        "iifname \"{}\" counter name \"drop_kill_switch\" reject with icmpx type admin-prohibited comment \"kill switch {} via {}\"",
                        l.interface, l.name, p.name
                    ));
                } else {
                    r.push(format!(
                        "iifname \"{}\" oifname \"{wan}\" accept comment \"lan {} falls back to the WAN (kill switch off)\"",
                        l.interface, l.name
                    ));
                }
            }
        }
    }
    for p in &m.portals {
        if p.exit {
            r.push(format!(
                "iifname \"{}\" oifname \"{wan}\" accept comment \"exit {}\"",
                p.interface, p.name
            ));
        }
        let lans = set_of(m.lans_via(&p.name).map(|l| l.interface.as_str()));
        if let (Some(subnets), Some(lans)) = (remote_subnets(p), lans) {
            r.push(format!(
                "iifname \"{}\" ip saddr {subnets} oifname {lans} accept comment \"site-to-site {}\"",
                p.interface, p.name
            ));
        }
    }
    r.push("counter name \"drop_forward\" drop".into());
    r
}

fn nat(m: &Model) -> Vec<String> {
    let wan = &m.wan.interface;
    let mut r = Vec::new();
    for p in m.portals.iter().filter(|p| p.exit) {
        // Bounce server: what the peers send (from their tunnel addresses,
        // their allowed IPs or their routed subnets) leaves by our WAN.
        let mut sources: Vec<Cidr> = p.addresses.iter().map(|a| a.network()).collect();
        sources.extend(p.remote_subnets.iter().copied());
        for peer in &p.peers {
            sources.extend(peer.allowed_ips.iter().filter(|a| !a.is_default()));
        }
        let sources = outermost(sources.into_iter().filter(|c| !c.is_v6()).collect());
        if !sources.is_empty() {
            r.push(format!(
                "oifname \"{wan}\" ip saddr {{ {} }} masquerade comment \"exit {}\"",
                join(&sources),
                p.name
            ));
        }
    }
    for l in &m.lans {
        let net = l.address.network();
        let out_wan = format!(
            "oifname \"{wan}\" ip saddr {net} masquerade comment \"lan {} out the WAN\"",
            l.name
        );
        match &l.route {
            LanRoute::Direct => r.push(out_wan),
            LanRoute::Portal(name) => {
                let Some(p) = m.portal(name) else { continue };
                if p.masquerade {
                    // Site-to-site traffic keeps its real source address.
                    let except = remote_subnets(p)
                        .map(|s| format!("ip daddr != {s} "))
                        .unwrap_or_default();
                    r.push(format!(
                        "oifname \"{}\" ip saddr {net} {except}masquerade comment \"lan {} via {}\"",
                        p.interface, l.name, p.name
                    ));
                }
                if !l.kill_switch {
                    r.push(out_wan);
                }
            }
        }
    }
    r
}

/// `{ a, b }` of a portal's IPv4 remote subnets, if it has any.
fn remote_subnets(p: &Portal) -> Option<String> {
    let v4 = outermost(
        p.remote_subnets
            .iter()
            .filter(|c| !c.is_v6())
            .copied()
            .collect(),
    );
    (!v4.is_empty()).then(|| format!("{{ {} }}", join(&v4)))
}

/// `{ "a", "b" }` of interface names, if any.
fn set_of<'a>(names: impl Iterator<Item = &'a str>) -> Option<String> {
    let quoted: Vec<String> = names.map(|n| format!("\"{n}\"")).collect();
    (!quoted.is_empty()).then(|| format!("{{ {} }}", quoted.join(", ")))
}

/// Sorted, without prefixes that another one covers (nft refuses
/// overlapping intervals in one set).
fn outermost(mut c: Vec<Cidr>) -> Vec<Cidr> {
    c.sort_by_key(|x| (x.len, *x));
    let mut out: Vec<Cidr> = Vec::new();
    for x in c {
        if !out.iter().any(|o| o.covers(&x)) {
            out.push(x);
        }
    }
    out.sort();
    out
}

fn join(c: &[Cidr]) -> String {
    c.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
