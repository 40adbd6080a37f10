//! Portal's nftables table (`inet portal`), generated from the model as
//! plain data (crate::core::ruleset): pure. `portal plan` prints it as nft text;
//! the agent writes it through netlink (kernel/nftables.rs).
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

use crate::core::cidr::Cidr;
use crate::core::model::{Lan, LanRoute, Model, Portal, WanMode};
use crate::core::ruleset::{
    AddrType, Chain, ChainKind, CtState, Dir, Family, Hook, IcmpType, Icmpv6Type, IpField, IpValue,
    Item, Match, Op, PortField, Priority, Reject, Rule, Stmt, Table, TcpFlag, Values, Verdict, L4,
};
use std::net::{IpAddr, Ipv4Addr};

/// Portal's one nft table: `table inet portal`.
pub const NFT_TABLE: &str = "portal";
/// DNS: the LAN forwarders answer on it, so the input chain opens it.
pub const DNS_PORT: u16 = 53;

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

/// The fast path's flowtable: `flow add @fastpath`.
pub const FAST_PATH: &str = "fastpath";

/// Open connections to the status page, all LAN clients together.
pub const STATUS_PAGE_MAX_CONNECTIONS: u32 = 64;

pub fn ruleset(m: &Model) -> Table {
    let chain = |name: &str, kind, hook, priority, policy, rules| Chain {
        name: name.to_string(),
        kind,
        hook,
        priority,
        policy,
        rules,
    };
    Table {
        name: NFT_TABLE.to_string(),
        counters: DROP_COUNTERS.iter().map(|c| c.to_string()).collect(),
        flowtables: Vec::new(),
        chains: vec![
            chain(
                "prerouting",
                ChainKind::Filter,
                Hook::Prerouting,
                Priority::Raw,
                Verdict::Accept,
                prerouting(m),
            ),
            chain(
                "input",
                ChainKind::Filter,
                Hook::Input,
                Priority::Filter,
                Verdict::Drop,
                input(m),
            ),
            chain(
                "forward",
                ChainKind::Filter,
                Hook::Forward,
                Priority::Filter,
                Verdict::Drop,
                forward(m),
            ),
            chain(
                "postrouting",
                ChainKind::Nat,
                Hook::Postrouting,
                Priority::SrcNat,
                Verdict::Accept,
                nat(m),
            ),
        ],
    }
}

/// The interfaces a fast path can list: the WAN, the LANs, the portals.
pub fn fast_path_interfaces(m: &Model) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let names = std::iter::once(m.wan.interface.as_str())
        .chain(m.lans.iter().map(|l| l.interface.as_str()))
        .chain(m.portals.iter().map(|p| p.interface.as_str()));
    for n in names {
        if !out.iter().any(|o| o == n) {
            out.push(n.to_string());
        }
    }
    out
}

/// Adds the forwarding fast path to `t`: a flowtable over `devices`, and
/// `ct state established flow add @fastpath` right before the forward
/// chain's `ct state established,related accept`. Only established flows
/// are offloaded, and those are accepted by that next rule anyway: the
/// fast path changes how they travel, not which ones may. Packets of an
/// offloaded flow skip the chains; a route change or the output device
/// going away ends the offload, and the next packet takes the chains again.
pub fn add_fast_path(t: &mut Table, devices: Vec<String>) {
    let Some(forward) = t.chains.iter_mut().find(|c| c.hook == Hook::Forward) else {
        return;
    };
    let Some(at) = forward
        .rules
        .iter()
        .position(|r| *r == established_accept())
    else {
        return;
    };
    forward.rules.insert(
        at,
        rule(vec![
            Match::CtState(vec![CtState::Established]).into(),
            Stmt::FlowAdd(FAST_PATH.to_string()).into(),
        ])
        .comment("fast path"),
    );
    t.flowtables.push(crate::core::ruleset::Flowtable {
        name: FAST_PATH.to_string(),
        devices,
    });
}

/// `t` without the fast path: no flowtable, no `flow add` rule.
pub fn without_fast_path(t: &Table) -> Table {
    let mut plain = t.clone();
    plain.flowtables.clear();
    for c in &mut plain.chains {
        c.rules.retain(|r| {
            !r.items
                .iter()
                .any(|i| matches!(i, Item::Stmt(Stmt::FlowAdd(_))))
        });
    }
    plain
}

fn established_accept() -> Rule {
    rule(vec![
        Match::CtState(vec![CtState::Established, CtState::Related]).into(),
        ACCEPT.into(),
    ])
}

// Small constructors, so that each rule below reads like its nft text.

fn rule(items: Vec<Item>) -> Rule {
    Rule::new(items)
}

fn iifname(name: &str) -> Item {
    ifname(Dir::In, Op::Eq, Values::One(name.to_string()))
}

fn oifname(name: &str) -> Item {
    ifname(Dir::Out, Op::Eq, Values::One(name.to_string()))
}

/// `iifname { "a", "b" }`.
fn iifnames(set: &Values<String>) -> Item {
    ifname(Dir::In, Op::Eq, set.clone())
}

fn ifname(dir: Dir, op: Op, names: Values<String>) -> Item {
    Match::IfName { dir, op, names }.into()
}

fn ip(field: IpField, op: Op, values: Values<IpValue>) -> Item {
    Match::Ip { field, op, values }.into()
}

fn net(c: Cidr) -> IpValue {
    IpValue::Net(c)
}

fn port(proto: L4, field: PortField, p: u16) -> Item {
    Match::Port {
        proto,
        field,
        ports: Values::One(p),
    }
    .into()
}

/// The end of the input chain for traffic arriving by `from` (the WAN, the
/// tunnels): UDP refused, so that a scan sees "closed" everywhere except the
/// WireGuard ports, which never answer strangers; the rest dropped; both
/// counted in `counter_name`.
fn closed(from: Item, counter_name: &str) -> [Rule; 2] {
    [
        rule(vec![
            from.clone(),
            Match::L4proto(L4::Udp).into(),
            counter(counter_name),
            reject(Reject::PortUnreachable),
        ]),
        rule(vec![from, counter(counter_name), DROP.into()]),
    ]
}

fn counter(name: &str) -> Item {
    Stmt::Counter(name.to_string()).into()
}

fn reject(r: Reject) -> Item {
    Stmt::Reject(r).into()
}

const ACCEPT: Verdict = Verdict::Accept;
const DROP: Verdict = Verdict::Drop;

fn prerouting(m: &Model) -> Vec<Rule> {
    let mut r = Vec::new();
    for l in &m.lans {
        // 0.0.0.0 is a DHCP client that has no address yet.
        let unspecified = IpValue::Addr(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        r.push(
            rule(vec![
                iifname(&l.interface),
                ip(
                    IpField::Saddr,
                    Op::Ne,
                    Values::Set(vec![net(l.address.network()), unspecified]),
                ),
                counter("drop_spoof"),
                DROP.into(),
            ])
            .comment(format!("lan {}: source outside its prefix", l.name)),
        );
    }
    for p in &m.portals {
        for a in p.addresses.iter().filter(|a| !a.is_v6()) {
            // As wg-quick does; the router's own packets (via lo) are fine.
            r.push(
                rule(vec![
                    ip(IpField::Daddr, Op::Eq, Values::One(IpValue::Addr(a.addr))),
                    ifname(Dir::In, Op::Ne, Values::One(p.interface.clone())),
                    Match::FibSaddrType {
                        op: Op::Ne,
                        ty: AddrType::Local,
                    }
                    .into(),
                    counter("drop_spoof"),
                    DROP.into(),
                ])
                .comment(format!(
                    "tunnel address of {} from outside its tunnel",
                    p.name
                )),
            );
        }
    }
    r
}

fn input(m: &Model) -> Vec<Rule> {
    let lans = set_of(m.lans.iter().map(|l| l.interface.as_str()));
    let tunnels = set_of(m.portals.iter().map(|p| p.interface.as_str()));
    let mut r = input_basics();
    r.extend(input_from_wan(m));
    r.extend(input_lan_services(m));
    r.extend(input_status_page(m));
    if let Some(lans) = &lans {
        r.extend(echo_requests(lans));
    }
    r.extend(closed(iifname(&m.wan.interface), "drop_input_wan"));
    if let Some(tunnels) = &tunnels {
        r.extend(closed(iifnames(tunnels), "drop_input_tunnel"));
    }
    if let Some(lans) = &lans {
        r.push(rule(vec![
            iifnames(lans),
            counter("drop_input_lan"),
            reject(Reject::AdminProhibited),
        ]));
    }
    r.push(rule(vec![counter("drop_input_other"), DROP.into()]));
    r
}

/// The input chain's head, whatever the config: loopback, conntrack and
/// IPv6 neighbour discovery.
fn input_basics() -> Vec<Rule> {
    vec![
        rule(vec![Match::Iif("lo".into()).into(), ACCEPT.into()]),
        rule(vec![
            Match::CtState(vec![CtState::Established, CtState::Related]).into(),
            ACCEPT.into(),
        ]),
        rule(vec![
            Match::CtState(vec![CtState::Invalid]).into(),
            counter("drop_invalid"),
            DROP.into(),
        ]),
        // Neighbour discovery is IPv6's ARP: without it nothing IPv6 works.
        rule(vec![
            Match::Icmpv6Type(Values::Set(vec![
                Icmpv6Type::NdNeighborSolicit,
                Icmpv6Type::NdNeighborAdvert,
                Icmpv6Type::NdRouterAdvert,
            ]))
            .into(),
            Match::Ip6Hoplimit(255).into(),
            ACCEPT.into(),
        ]),
    ]
}

/// What the WAN may open: the portals' WireGuard ports, and the DHCP
/// client's replies when the WAN uses DHCP.
fn input_from_wan(m: &Model) -> Vec<Rule> {
    let wan = m.wan.interface.as_str();
    let mut r = Vec::new();
    let ports: Vec<u16> = m.portals.iter().filter_map(|p| p.listen_port).collect();
    if !ports.is_empty() {
        r.push(
            rule(vec![
                iifname(wan),
                Match::Port {
                    proto: L4::Udp,
                    field: PortField::Dport,
                    ports: Values::Set(ports),
                }
                .into(),
                ACCEPT.into(),
            ])
            .comment("wireguard"),
        );
    }
    if matches!(m.wan.mode, WanMode::Dhcp { .. }) {
        // The ISP's server broadcasts its replies: conntrack cannot match them.
        r.push(
            rule(vec![
                iifname(wan),
                port(L4::Udp, PortField::Sport, 67),
                port(L4::Udp, PortField::Dport, 68),
                ACCEPT.into(),
            ])
            .comment("dhcp client"),
        );
    }
    r
}

/// The DHCP server and DNS forwarder, open on the LANs that have them.
fn input_lan_services(m: &Model) -> Vec<Rule> {
    let mut r = Vec::new();
    if let Some(dhcp) = set_of(
        m.lans
            .iter()
            .filter(|l| l.dhcp.is_some())
            .map(|l| l.interface.as_str()),
    ) {
        r.push(
            rule(vec![
                iifnames(&dhcp),
                port(L4::Udp, PortField::Dport, 67),
                ACCEPT.into(),
            ])
            .comment("dhcp server"),
        );
    }
    if let Some(dns) = set_of(
        m.lans
            .iter()
            .filter(|l| l.dns.is_some())
            .map(|l| l.interface.as_str()),
    ) {
        for proto in [L4::Udp, L4::Tcp] {
            r.push(
                rule(vec![
                    iifnames(&dns),
                    port(proto, PortField::Dport, DNS_PORT),
                    ACCEPT.into(),
                ])
                .comment("dns"),
            );
        }
    }
    r
}

/// The status page, open (with a connection limit) on the LANs it serves.
fn input_status_page(m: &Model) -> Vec<Rule> {
    let Some(page) = &m.status_page else {
        return Vec::new();
    };
    let ifaces = m
        .lans
        .iter()
        .filter(|l| page.lans.contains(&l.name))
        .map(|l| l.interface.as_str());
    let Some(set) = set_of(ifaces) else {
        return Vec::new();
    };
    // The HTTP server holds a thread per open connection: bound
    // them, so that a LAN client cannot exhaust the router's memory.
    vec![
        rule(vec![
            iifnames(&set),
            port(L4::Tcp, PortField::Dport, page.port),
            Match::CtCountOver(STATUS_PAGE_MAX_CONNECTIONS).into(),
            counter("drop_input_lan"),
            reject(Reject::TcpReset),
        ])
        .comment("status page: connection limit"),
        rule(vec![
            iifnames(&set),
            port(L4::Tcp, PortField::Dport, page.port),
            ACCEPT.into(),
        ])
        .comment("status page"),
    ]
}

/// Pings (IPv4 and IPv6) from the LANs.
fn echo_requests(lans: &Values<String>) -> [Rule; 2] {
    [
        rule(vec![
            iifnames(lans),
            Match::IcmpType(Values::One(IcmpType::EchoRequest)).into(),
            ACCEPT.into(),
        ]),
        rule(vec![
            iifnames(lans),
            Match::Icmpv6Type(Values::One(Icmpv6Type::EchoRequest)).into(),
            ACCEPT.into(),
        ]),
    ]
}

fn forward(m: &Model) -> Vec<Rule> {
    let mut r = Vec::new();
    for p in &m.portals {
        r.extend(mss_clamps(p));
    }
    r.push(established_accept());
    r.push(rule(vec![
        Match::CtState(vec![CtState::Invalid]).into(),
        counter("drop_invalid"),
        DROP.into(),
    ]));
    if let Some(lans) = set_of(m.lans.iter().map(|l| l.interface.as_str())) {
        r.push(
            rule(vec![
                ifname(Dir::In, Op::Eq, lans),
                Match::Nfproto(Family::Ipv6).into(),
                counter("drop_ipv6_lan"),
                DROP.into(),
            ])
            .comment("IPv6 from LANs is not routed yet"),
        );
    }
    for l in &m.lans {
        match &l.route {
            LanRoute::Direct => r.extend(lan_direct(m, l)),
            LanRoute::Portal(via) => r.extend(lan_via(m, l, &m.portals[via.index])),
        }
    }
    for p in &m.portals {
        r.extend(from_portal(m, p));
    }
    r.push(rule(vec![counter("drop_forward"), DROP.into()]));
    r
}

/// Clamp SYNs both ways: into the tunnel, and out of it for peers
/// (not running Portal) that do not clamp their side.
fn mss_clamps(p: &Portal) -> Vec<Rule> {
    let (mss4, mss6) = (p.mtu - 40, p.mtu - 60);
    let mut r = Vec::new();
    for dir in [Dir::Out, Dir::In] {
        for (family, mss) in [(Family::Ipv4, mss4), (Family::Ipv6, mss6)] {
            r.push(
                rule(vec![
                    ifname(dir, Op::Eq, Values::One(p.interface.clone())),
                    Match::Nfproto(family).into(),
                    Match::TcpFlags {
                        mask: vec![TcpFlag::Syn, TcpFlag::Rst],
                        equals: vec![TcpFlag::Syn],
                    }
                    .into(),
                    Match::TcpMssAbove(mss).into(),
                    Stmt::SetTcpMss(mss).into(),
                ])
                .comment(format!("mss clamp {}", p.name)),
            );
        }
    }
    r
}

/// A `direct` LAN: out the WAN, and into every site-to-site portal's subnets.
fn lan_direct(m: &Model, l: &Lan) -> Vec<Rule> {
    let mut r = vec![rule(vec![
        iifname(&l.interface),
        oifname(&m.wan.interface),
        ACCEPT.into(),
    ])
    .comment(format!("lan {} direct", l.name))];
    for p in &m.portals {
        if let Some(subnets) = remote_subnets(p) {
            r.push(
                rule(vec![
                    iifname(&l.interface),
                    oifname(&p.interface),
                    ip(IpField::Daddr, Op::Eq, subnets),
                    ACCEPT.into(),
                ])
                .comment(format!("lan {} to site-to-site {}", l.name, p.name)),
            );
        }
    }
    r
}

/// A LAN through portal `p`: into the tunnel, out the WAN for a split
/// LAN's direct destinations, then the kill switch (or the WAN fallback).
fn lan_via(m: &Model, l: &Lan, p: &Portal) -> Vec<Rule> {
    let wan = m.wan.interface.as_str();
    let mut r = vec![rule(vec![
        iifname(&l.interface),
        oifname(&p.interface),
        ACCEPT.into(),
    ])
    .comment(format!("lan {} via {}", l.name, p.name))];
    // Split: the LAN's table sends only its direct destinations
    // to the WAN (throw routes, or no route) and holds the rest.
    if l.split.is_some() && l.kill_switch {
        r.push(
            rule(vec![iifname(&l.interface), oifname(wan), ACCEPT.into()])
                .comment(format!("lan {} split: direct destinations", l.name)),
        );
    }
    if l.kill_switch {
        r.push(
            rule(vec![
                iifname(&l.interface),
                counter("drop_kill_switch"),
                reject(Reject::AdminProhibited),
            ])
            .comment(format!("kill switch {} via {}", l.name, p.name)),
        );
    } else {
        r.push(
            rule(vec![iifname(&l.interface), oifname(wan), ACCEPT.into()]).comment(format!(
                "lan {} falls back to the WAN (kill switch off)",
                l.name
            )),
        );
    }
    r
}

/// What may come out of portal `p`: to the WAN for an exit, road warriors
/// to their LANs, and its remote subnets to the LANs routed through it.
fn from_portal(m: &Model, p: &Portal) -> Vec<Rule> {
    let mut r = Vec::new();
    if p.exit {
        r.push(
            rule(vec![
                iifname(&p.interface),
                oifname(&m.wan.interface),
                ACCEPT.into(),
            ])
            .comment(format!("exit {}", p.name)),
        );
    }
    if let Some(rule) = road_warriors(m, p) {
        r.push(rule);
    }
    let lans = set_of(m.lans_via(&p.name).map(|l| l.interface.as_str()));
    if let (Some(subnets), Some(lans)) = (remote_subnets(p), lans) {
        r.push(
            rule(vec![
                iifname(&p.interface),
                ip(IpField::Saddr, Op::Eq, subnets),
                ifname(Dir::Out, Op::Eq, lans),
                ACCEPT.into(),
            ])
            .comment(format!("site-to-site {}", p.name)),
        );
    }
    r
}

fn nat(m: &Model) -> Vec<Rule> {
    let wan = m.wan.interface.as_str();
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
            r.push(
                rule(vec![
                    oifname(wan),
                    ip(
                        IpField::Saddr,
                        Op::Eq,
                        Values::Set(sources.into_iter().map(net).collect()),
                    ),
                    Stmt::Masquerade.into(),
                ])
                .comment(format!("exit {}", p.name)),
            );
        }
    }
    for l in &m.lans {
        let lan_net = Values::One(net(l.address.network()));
        let out_wan = rule(vec![
            oifname(wan),
            ip(IpField::Saddr, Op::Eq, lan_net.clone()),
            Stmt::Masquerade.into(),
        ])
        .comment(format!("lan {} out the WAN", l.name));
        match &l.route {
            LanRoute::Direct => r.push(out_wan),
            LanRoute::Portal(via) => {
                let p = &m.portals[via.index];
                if p.masquerade {
                    // Site-to-site traffic keeps its real source address.
                    let mut items = vec![
                        oifname(&p.interface),
                        ip(IpField::Saddr, Op::Eq, lan_net.clone()),
                    ];
                    if let Some(s) = remote_subnets(p) {
                        items.push(ip(IpField::Daddr, Op::Ne, s));
                    }
                    items.push(Stmt::Masquerade.into());
                    r.push(rule(items).comment(format!("lan {} via {}", l.name, p.name)));
                }
                if !l.kill_switch || l.split.is_some() {
                    r.push(out_wan);
                }
            }
        }
    }
    r
}

/// Road-warrior devices (`clients`), from the portal's tunnel network, to
/// the LANs they may reach; replies pass as established.
fn road_warriors(m: &Model, p: &Portal) -> Option<Rule> {
    let c = p.clients.as_ref()?;
    let net = crate::core::model::clients::tunnel_network(p)?;
    let lans = set_of(
        m.lans
            .iter()
            .filter(|l| c.lans.contains(&l.name))
            .map(|l| l.interface.as_str()),
    )?;
    Some(
        rule(vec![
            iifname(&p.interface),
            ip(IpField::Saddr, Op::Eq, Values::One(IpValue::Net(net))),
            ifname(Dir::Out, Op::Eq, lans),
            ACCEPT.into(),
        ])
        .comment(format!("road warriors {}", p.name)),
    )
}

/// `{ a, b }` of a portal's IPv4 remote subnets, if it has any.
fn remote_subnets(p: &Portal) -> Option<Values<IpValue>> {
    let v4 = outermost(
        p.remote_subnets
            .iter()
            .filter(|c| !c.is_v6())
            .copied()
            .collect(),
    );
    (!v4.is_empty()).then(|| Values::Set(v4.into_iter().map(net).collect()))
}

/// `{ "a", "b" }` of interface names, if any.
fn set_of<'a>(names: impl Iterator<Item = &'a str>) -> Option<Values<String>> {
    let names: Vec<String> = names.map(str::to_string).collect();
    (!names.is_empty()).then_some(Values::Set(names))
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
