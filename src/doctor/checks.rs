//! Facts -> findings, one pure function per check.

use super::nft::{self, NftRule};
use super::{Facts, Finding, Severity, HANDSHAKE_STALE_SECS, WG_OVERHEAD_V4, WG_OVERHEAD_V6};
use crate::core::cidr::Cidr;
use crate::core::desired::RouteKind;
use crate::core::diff::Observed;
use crate::core::model::{Model, Portal};
use crate::trace::{self, Packet, RouteType};
use std::net::{IpAddr, Ipv4Addr};

pub fn run(m: &Model, f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    out.extend(forwarding(m, f));
    out.extend(rp_filter(m, f));
    out.extend(mtu(m, f));
    out.extend(handshakes(m, f));
    out.extend(route_back(m, f));
    out.extend(overlaps(m, f));
    out.extend(kill_switch(m, f));
    out.extend(super::dns::check(m, f));
    out
}

pub(super) fn finding(check: &'static str, severity: Severity, problem: String) -> Finding {
    Finding {
        check,
        severity,
        problem,
        evidence: Vec::new(),
        fix: Vec::new(),
    }
}

/// The interfaces Portal forwards between: WAN, LANs, tunnels.
fn interfaces(m: &Model) -> Vec<&str> {
    let mut v = vec![m.wan.interface.as_str()];
    v.extend(m.lans.iter().map(|l| l.interface.as_str()));
    v.extend(m.portals.iter().map(|p| p.interface.as_str()));
    v
}

pub fn forwarding(m: &Model, f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(v) = f.sysctl("net.ipv4.ip_forward").filter(|v| *v != "1") {
        let mut x = finding(
            "forwarding",
            Severity::Error,
            "IPv4 forwarding is off: nothing from a LAN is routed anywhere".into(),
        );
        x.evidence.push(format!("net.ipv4.ip_forward = {v}"));
        x.fix.push("sysctl -w net.ipv4.ip_forward=1".into());
        x.fix
            .push("(or `portal apply CONFIG`: Portal sets it on every pass)".into());
        out.push(x);
    }
    // Writing ip_forward sets every interface's forwarding too: when it is
    // off, the interfaces' zeros are that one cause, not findings of their own.
    if !out.is_empty() {
        return out;
    }
    for i in interfaces(m) {
        let key = format!("net.ipv4.conf.{i}.forwarding");
        if let Some(v) = f.sysctl(&key).filter(|v| *v == "0") {
            let mut x = finding(
                "forwarding",
                Severity::Error,
                format!("forwarding is off on {i}: packets arriving there are not routed"),
            );
            x.evidence.push(format!("{key} = {v}"));
            x.fix.push(format!("sysctl -w {key}=1"));
            out.push(x);
        }
    }
    out
}

/// rp_filter in force on `iface`: the higher of conf.all and conf.IF.
fn rp_mode(f: &Facts, iface: &str) -> Option<u8> {
    let get = |k: String| f.sysctl(&k).and_then(|v| v.parse::<u8>().ok());
    let all = get("net.ipv4.conf.all.rp_filter".into());
    let dev = get(format!("net.ipv4.conf.{iface}.rp_filter"));
    all.max(dev)
}

/// The first address of `c` that is not one of the router's own.
fn sample_host(c: &Cidr, f: &Facts) -> Option<IpAddr> {
    let IpAddr::V4(a) = c.network().addr else {
        return None;
    };
    let base = u32::from(a);
    let count = if c.len >= 31 { 1 } else { 3 };
    (0..count)
        .map(|k| {
            if c.len >= 31 {
                IpAddr::V4(Ipv4Addr::from(u32::from(ipv4(c.addr))))
            } else {
                IpAddr::V4(Ipv4Addr::from(base + 1 + k))
            }
        })
        .find(|ip| {
            !f.kernel
                .routes
                .iter()
                .any(|r| r.kind == RouteType::Local && r.dst.len == 32 && r.dst.addr == *ip)
        })
}

fn ipv4(a: IpAddr) -> Ipv4Addr {
    match a {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    }
}

/// The sources expected to arrive on each interface: a LAN's network, a
/// tunnel's networks and routed subnets and its peers' allowed IPs; and
/// every more specific route inside them (which is what makes a path
/// asymmetric).
fn expected_sources(m: &Model, f: &Facts) -> Vec<(String, Cidr)> {
    let mut v: Vec<(String, Cidr)> = Vec::new();
    for l in &m.lans {
        v.push((l.interface.clone(), l.address.network()));
    }
    for p in &m.portals {
        for a in &p.addresses {
            v.push((p.interface.clone(), a.network()));
        }
        for s in &p.remote_subnets {
            v.push((p.interface.clone(), *s));
        }
        if let Some(d) = f.device(&p.interface) {
            for peer in &d.peers {
                for a in peer.allowed_ips.iter().filter(|a| !a.is_default()) {
                    v.push((p.interface.clone(), *a));
                }
            }
        }
    }
    let mut more = Vec::new();
    for (dev, c) in &v {
        for r in &f.kernel.routes {
            let routed = matches!(
                r.kind,
                RouteType::Unicast
                    | RouteType::Unreachable
                    | RouteType::Blackhole
                    | RouteType::Prohibit
            );
            if routed && c.covers(&r.dst) && r.dst.len > c.len {
                more.push((dev.clone(), r.dst));
            }
        }
    }
    v.extend(more);
    v.retain(|(_, c)| !c.is_v6());
    v
}

pub fn rp_filter(m: &Model, f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    let rose = f.rpf.map(|c| c.second.saturating_sub(c.first)).unwrap_or(0);
    let counter = f.rpf.map(|c| {
        format!(
            "TcpExt IPReversePathFilter {} -> {} in {} ms (/proc/net/netstat)",
            c.first, c.second, c.ms
        )
    });
    let mut explained = false;
    for (iface, src) in expected_sources(m, f) {
        let Some(x) = rp_asymmetric(f, &iface, &src, rose, counter.as_deref()) else {
            continue;
        };
        explained = true;
        out.push(x);
    }
    if rose > 0 && !explained {
        out.push(rp_unexplained(m, f, rose, counter));
    }
    out
}

/// Strict rp_filter on `iface` while the route back to a host of `src`
/// leaves by another interface: that source's packets are dropped.
fn rp_asymmetric(
    f: &Facts,
    iface: &str,
    src: &Cidr,
    rose: u64,
    counter: Option<&str>,
) -> Option<Finding> {
    let (host, back) = rp_route_back_elsewhere(f, iface, src)?;
    let back_dev = back.dev().map(str::to_string);
    let sev = if rose > 0 {
        Severity::Error
    } else {
        Severity::Warning
    };
    let mut x = finding(
        "rp_filter",
        sev,
        format!(
            "strict rp_filter on {iface} drops packets from {src}: they arrive on {iface} \
             but the route back to {host} leaves by {} (asymmetric routing)",
            back_dev.as_deref().unwrap_or("no interface")
        ),
    );
    x.evidence.push(format!(
        "rp_filter on {iface} = 1 (strict; the higher of conf.all and conf.{iface})"
    ));
    x.evidence.push(format!(
        "route back to {host}: {}",
        back.outcome.to_string().replace('\n', " ")
    ));
    if let Some(c) = counter {
        x.evidence.push(format!("{c}: {rose} dropped"));
    }
    x.fix.push(format!(
        "sysctl -w net.ipv4.conf.{iface}.rp_filter=2   (loose: accept a source that is \
         routable by any interface; the mode in force is the higher of conf.all and conf.{iface})"
    ));
    x.fix.push(format!(
        "or make the path symmetric: route {src} back by {iface} (or remove the route that \
         sends it by {})",
        back_dev.as_deref().unwrap_or("nowhere")
    ));
    Some(x)
}

/// With strict rp_filter on `iface`: a host of `src` and the route back to
/// it, when that route leaves by another interface.
fn rp_route_back_elsewhere(f: &Facts, iface: &str, src: &Cidr) -> Option<(IpAddr, trace::Trace)> {
    let mode = rp_mode(f, iface)?;
    if mode != 1 {
        return None;
    }
    let host = sample_host(src, f)?;
    // The reverse-path check is a route lookup to the source, as the
    // router's own (iif lo) with the packet's destination as source.
    let back = trace::simulate(
        &f.kernel.rules,
        &f.kernel.routes,
        &Packet {
            src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dst: host,
            iif: None,
            mark: 0,
        },
    );
    let back_dev = back.dev().map(str::to_string);
    let local = matches!(&back.outcome, trace::Outcome::Route(r) if r.kind != RouteType::Unicast);
    if local || back_dev.as_deref() == Some(iface) {
        return None;
    }
    Some((host, back))
}

/// The counter rose but no interface explains it: the strict ones listed.
fn rp_unexplained(m: &Model, f: &Facts, rose: u64, counter: Option<String>) -> Finding {
    let strict: Vec<&str> = interfaces(m)
        .into_iter()
        .filter(|i| rp_mode(f, i) == Some(1))
        .collect();
    let mut x = finding(
        "rp_filter",
        Severity::Warning,
        format!(
            "the reverse-path filter dropped {rose} packet(s) while doctor watched, on an \
             interface it could not pin down"
        ),
    );
    if let Some(c) = counter {
        x.evidence.push(c);
    }
    x.evidence
        .push(format!("strict rp_filter (1) on: {}", strict.join(", ")));
    x.fix.push(
        "find the source with `nstat -az TcpExtIPReversePathFilter` while testing, then \
         sysctl -w net.ipv4.conf.IFACE.rp_filter=2 (loose) on the interface it arrives on"
            .into(),
    );
    x
}

fn mss_rules<'a>(rules: &'a [NftRule], portal: &str) -> Vec<&'a NftRule> {
    let c = format!("mss clamp {portal}");
    rules
        .iter()
        .filter(|r| r.comment.as_deref() == Some(c.as_str()))
        .collect()
}

pub fn mtu(m: &Model, f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    let rules = f.nft.as_deref().map(nft::rules);
    let wan_mtu = f.kernel.link(&m.wan.interface).map(|l| l.mtu);
    for p in &m.portals {
        out.extend(device_mtu(f, p));
        if let Some(rules) = &rules {
            out.extend(mss_clamp(rules, p));
        }
        out.extend(path_mtu(m, f, p, wan_mtu));
        out.extend(lan_mtus(m, p));
    }
    out
}

/// The tunnel device's MTU differs from the config's.
fn device_mtu(f: &Facts, p: &Portal) -> Option<Finding> {
    let l = f.kernel.link(&p.interface)?;
    if l.mtu == p.mtu {
        return None;
    }
    let mut x = finding(
        "mtu",
        Severity::Error,
        format!(
            "{} has MTU {} but the config says {}: {}",
            p.interface,
            l.mtu,
            p.mtu,
            if l.mtu > p.mtu {
                "packets too big for the path are sent and lost"
            } else {
                "the MSS clamp no longer matches the device"
            }
        ),
    );
    x.evidence.push(format!(
        "ip link: {} mtu {}; portals.{}.mtu = {}",
        p.interface, l.mtu, p.name, p.mtu
    ));
    x.fix
        .push(format!("ip link set dev {} mtu {}", p.interface, p.mtu));
    x.fix.push("(or `portal apply CONFIG`)".into());
    Some(x)
}

/// The portal's MSS clamp rules missing from (or wrong in) the ruleset.
fn mss_clamp(rules: &[NftRule], p: &Portal) -> Option<Finding> {
    // Two directions (into and out of the tunnel), IPv4 and IPv6.
    let found = mss_rules(rules, &p.name);
    let (mss4, mss6) = ((p.mtu - 40) as u16, (p.mtu - 60) as u16);
    let right = found
        .iter()
        .filter(|r| nft::carries_be16(r, mss4) || nft::carries_be16(r, mss6))
        .count();
    if right >= 4 {
        return None;
    }
    let mut x = finding(
        "mss",
        Severity::Error,
        format!(
            "the MSS clamp for {} is missing from table inet portal: TCP \
             connections through the tunnel stall on large transfers",
            p.name
        ),
    );
    x.evidence.push(format!(
        "forward chain: {} rule(s) \"mss clamp {}\", {right} clamping to {mss4} \
         (IPv4) / {mss6} (IPv6); 4 expected",
        found.len(),
        p.name
    ));
    x.fix.push(
        "portal firewall CONFIG   (rewrites table inet portal; or `portal apply CONFIG`)".into(),
    );
    x.fix.push(format!(
        "by hand, per direction (oifname and iifname) and family: nft add rule inet \
         portal forward oifname {} meta nfproto ipv4 tcp flags & (syn | rst) == syn \
         tcp option maxseg size > {mss4} tcp option maxseg size set {mss4}",
        p.interface
    ));
    Some(x)
}

/// The tunnel's packets plus WireGuard's headers must fit the WAN (or the
/// route to the endpoint).
fn path_mtu(m: &Model, f: &Facts, p: &Portal, wan_mtu: Option<u32>) -> Option<Finding> {
    let v6 = p
        .peers
        .iter()
        .any(|peer| peer.endpoint.as_ref().is_some_and(|e| e.host.contains(':')));
    let overhead = if v6 { WG_OVERHEAD_V6 } else { WG_OVERHEAD_V4 };
    let path = endpoint_route_mtu(f, p).or(wan_mtu);
    let path = path.filter(|path| p.mtu + overhead > *path)?;
    let mut x = finding(
        "mtu",
        Severity::Error,
        format!(
            "{}'s MTU {} plus WireGuard's {overhead} bytes is {}, more than the path's {path}: \
             full-size packets are fragmented or lost",
            p.name,
            p.mtu,
            p.mtu + overhead
        ),
    );
    x.evidence.push(format!(
        "{} mtu {}, path (WAN {} or the route to the endpoint) {path}",
        p.interface, p.mtu, m.wan.interface
    ));
    x.fix.push(format!(
        "\"portals\": {{ \"{}\": {{ \"mtu\": {} }} }}",
        p.name,
        (path - overhead).max(1280)
    ));
    Some(x)
}

/// LANs via the portal that hand out an MTU above the tunnel's.
fn lan_mtus(m: &Model, p: &Portal) -> Vec<Finding> {
    let mut out = Vec::new();
    for l in m.lans_via(&p.name) {
        if let Some(lan_mtu) = l.dhcp.as_ref().and_then(|d| d.mtu) {
            if u32::from(lan_mtu) > p.mtu {
                let mut x = finding(
                    "mtu",
                    Severity::Warning,
                    format!(
                        "LAN {} hands out MTU {lan_mtu}, above {}'s {}: TCP is clamped, but \
                         large UDP/ICMP from the LAN relies on path MTU discovery",
                        l.name, p.name, p.mtu
                    ),
                );
                x.evidence.push(format!(
                    "lans.{}.dhcp.mtu = {lan_mtu}; portals.{}.mtu = {}",
                    l.name, p.name, p.mtu
                ));
                x.fix.push(format!(
                    "\"lans\": {{ \"{}\": {{ \"dhcp\": {{ \"mtu\": {} }} }} }}",
                    l.name, p.mtu
                ));
                out.push(x);
            }
        }
    }
    out
}

/// The `mtu` metric of the route that carries the tunnel's packets to a
/// peer's endpoint, if one is set.
fn endpoint_route_mtu(f: &Facts, p: &crate::core::model::Portal) -> Option<u32> {
    let d = f.device(&p.interface)?;
    d.peers
        .iter()
        .filter_map(|peer| peer.endpoint)
        .filter_map(|e| {
            let t = trace::simulate(
                &f.kernel.rules,
                &f.kernel.routes,
                &Packet {
                    src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    dst: e.ip(),
                    iif: None,
                    mark: 0,
                },
            );
            match t.outcome {
                trace::Outcome::Route(r) => r.mtu,
                _ => None,
            }
        })
        .min()
}

pub fn handshakes(m: &Model, f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in &m.portals {
        let dev = f.device(&p.interface);
        for (i, peer) in p.peers.iter().enumerate() {
            let Some(endpoint) = &peer.endpoint else {
                continue;
            };
            let label = peer.name.clone().unwrap_or_else(|| format!("peers[{i}]"));
            let live = dev.and_then(|d| d.peers.iter().find(|x| x.public_key == peer.public_key));
            let age = live
                .and_then(|l| l.latest_handshake)
                .map(|t| f.now.saturating_sub(t));
            if age.is_some_and(|a| a <= HANDSHAKE_STALE_SECS) {
                continue;
            }
            let when = match age {
                Some(a) => format!("{a} s ago"),
                None => "never".into(),
            };
            let mut x = finding(
                "handshake",
                Severity::Error,
                format!(
                    "portal {}: no recent handshake with peer {label} at {endpoint} ({when})",
                    p.name
                ),
            );
            match (dev, live) {
                (None, _) => x.evidence.push(format!(
                    "{} is not a WireGuard device here (missing, or its wireguard-go is not answering)",
                    p.interface
                )),
                (Some(_), None) => x.evidence.push(format!(
                    "{} has no peer {}",
                    p.interface, peer.public_key
                )),
                (Some(_), Some(l)) => x.evidence.push(format!(
                    "wg show {}: latest handshake {when}, endpoint {}, rx {} B, tx {} B",
                    p.interface,
                    l.endpoint
                        .map(|e| e.to_string())
                        .unwrap_or_else(|| "(none)".into()),
                    l.rx_bytes,
                    l.tx_bytes
                )),
            }
            x.fix.push(format!(
                "check that {endpoint} is the peer's address and listen port, that it runs and \
                 its firewall passes UDP to that port from here"
            ));
            x.fix.push(format!(
                "check the keys: the other side's peer entry for us must hold the key \
                 `portal pubkey {}` prints, and portals.{}.peers[{i}].public_key must be theirs",
                p.private_key_file.display(),
                p.name
            ));
            out.push(x);
        }
    }
    out
}

pub fn route_back(m: &Model, f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    for lan_probe in f.probes.iter().filter(|p| p.lan.is_some()) {
        if lan_probe.answer.is_some() {
            continue;
        }
        // Only a finding when the same target answers the tunnel address:
        // then the tunnel works and only the way back to the LAN is missing.
        let Some(tunnel) = f.probes.iter().find(|t| {
            t.lan.is_none()
                && t.portal == lan_probe.portal
                && t.target == lan_probe.target
                && t.answer.is_some()
        }) else {
            continue;
        };
        let lan_name = lan_probe.lan.as_deref().unwrap_or_default();
        let Some(lan) = m.lans.iter().find(|l| l.name == lan_name) else {
            continue;
        };
        let net = lan.address.network();
        let mut x = finding(
            "route_back",
            Severity::Error,
            format!(
                "portal {}: the other side has no route back to LAN {} ({net}): the tunnel \
                 works, but traffic from the LAN to {} gets no answer",
                lan_probe.portal, lan.name, lan_probe.target
            ),
        );
        x.evidence.push(format!(
            "UDP probe {} -> {}: {}",
            tunnel.src,
            tunnel.target,
            tunnel.answer.as_deref().unwrap_or_default()
        ));
        x.evidence.push(format!(
            "UDP probe {} -> {}: no answer",
            lan_probe.src, lan_probe.target
        ));
        x.fix.push(format!(
            "on the other site: add \"{net}\" to the portal's \"remote_subnets\" (Portal), or to \
             its peer's \"allowed_ips\" with a route into the tunnel (wg-quick: AllowedIPs = {net})"
        ));
        out.push(x);
    }
    out
}

pub fn overlaps(m: &Model, f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    // Each device's claims: its peers' allowed IPs (the default route is
    // every exit's and policy routing picks among them: left out), and for
    // Portal's devices the subnets routed into them.
    let mut claims: Vec<(String, String, Cidr)> = Vec::new();
    for d in &f.wireguard {
        for peer in &d.peers {
            for a in peer
                .allowed_ips
                .iter()
                .filter(|a| !a.is_default() && !a.is_v6())
            {
                claims.push((
                    d.name.clone(),
                    format!("peer {}", short(&peer.public_key)),
                    *a,
                ));
            }
        }
    }
    for p in &m.portals {
        for s in &p.remote_subnets {
            claims.push((
                p.interface.clone(),
                format!("portals.{}.remote_subnets", p.name),
                *s,
            ));
        }
    }
    for (i, (da, wa, a)) in claims.iter().enumerate() {
        for (db, wb, b) in &claims[i + 1..] {
            if da == db || !a.overlaps(b) {
                continue;
            }
            let mut x = finding(
                "allowed_ips",
                Severity::Error,
                format!(
                    "{a} on {da} overlaps {b} on {db}: traffic for the overlap goes to one \
                     device only (the most specific route), replies may come from the other"
                ),
            );
            x.evidence.push(format!("{da} {wa}: {a}"));
            x.evidence.push(format!("{db} {wb}: {b}"));
            // Suggest changing the device that is not Portal's, if one is not.
            let portal_dev = |d: &str| m.portals.iter().any(|p| p.interface == d);
            let (od, op) = if portal_dev(db) && !portal_dev(da) {
                (da, a)
            } else {
                (db, b)
            };
            x.fix.push(format!(
                "keep the prefix on one device: e.g. `wg set {od} peer KEY allowed-ips ...` \
                 without {op}, or remove it from the config of the device that should not have it"
            ));
            out.push(x);
        }
        for l in m.lans.iter().filter(|l| a.overlaps(&l.address.network())) {
            let mut x = finding(
                "allowed_ips",
                Severity::Error,
                format!(
                    "{a} on {da} overlaps LAN {} ({}): the LAN's hosts are routed into the tunnel",
                    l.name,
                    l.address.network()
                ),
            );
            x.evidence.push(format!("{da} {wa}: {a}"));
            x.evidence.push(format!(
                "lans.{}.address = {} on {}",
                l.name, l.address, l.interface
            ));
            x.fix.push(format!(
                "remove {a} from {da} (`wg set {da} peer KEY allowed-ips ...` without it), or \
                 renumber the LAN"
            ));
            out.push(x);
        }
    }
    out
}

fn short(key: &str) -> String {
    format!("{}…", key.chars().take(8).collect::<String>())
}

pub fn kill_switch(m: &Model, f: &Facts) -> Vec<Finding> {
    let rules = f.nft.as_deref().map(nft::rules).unwrap_or_default();
    let has_rule = |c: &str| rules.iter().any(|r| r.comment.as_deref() == Some(c));
    let expected: Vec<(&str, &Portal, String)> = m
        .lans
        .iter()
        .filter(|l| l.kill_switch)
        .filter_map(|l| {
            let p = m.via(l)?;
            Some((
                l.name.as_str(),
                p,
                format!("kill switch {} via {}", l.name, p.name),
            ))
        })
        .collect();
    // The agent's own check (status page), on an observation built from the
    // full dump: any refusing default route counts, as each stops a leak.
    let o = Observed {
        routes: f
            .kernel
            .routes
            .iter()
            .filter(|r| {
                matches!(
                    r.kind,
                    RouteType::Unreachable | RouteType::Blackhole | RouteType::Prohibit
                )
            })
            .map(|r| crate::core::desired::Route {
                table: r.table,
                dst: r.dst,
                kind: RouteKind::Unreachable,
                metric: r.metric,
            })
            .collect(),
        nft_present: f.nft.is_some(),
        nft_current: expected.iter().all(|(_, _, c)| has_rule(c)),
        ..Observed::default()
    };
    let armed = crate::status::collect::kill_switch_armed(m, &o);
    let mut out = Vec::new();
    for (lan, p, comment) in &expected {
        if armed.get(*lan).copied().unwrap_or(true) {
            continue;
        }
        let portal = &p.name;
        let route = o
            .routes
            .iter()
            .find(|r| r.table == p.table && r.dst.is_default());
        let mut x = finding(
            "kill_switch",
            Severity::Error,
            format!(
                "the kill switch of LAN {lan} (via {portal}) is not armed: if {} goes away, \
                 the LAN's traffic leaks out the WAN",
                p.interface
            ),
        );
        x.evidence.push(match route {
            Some(r) => format!(
                "table {}: unreachable default metric {} (present)",
                p.table, r.metric
            ),
            None => format!("table {}: no unreachable default route", p.table),
        });
        x.evidence.push(match (&f.nft, has_rule(comment)) {
            (None, _) => "table inet portal: absent".into(),
            (Some(_), true) => format!("table inet portal: rule \"{comment}\" present"),
            (Some(_), false) => format!("table inet portal: rule \"{comment}\" missing"),
        });
        if route.is_none() {
            x.fix.push(format!(
                "ip route add unreachable default table {} metric {} proto 52",
                p.table,
                crate::core::desired::KILL_SWITCH_METRIC
            ));
        }
        if !has_rule(comment) {
            x.fix.push("portal firewall CONFIG".into());
        }
        x.fix.push("(or `portal apply CONFIG`)".into());
        out.push(x);
    }
    out
}
