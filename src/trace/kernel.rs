//! The effectful edge of `trace` and `doctor`: every IPv4 rule and the
//! routes of all tables over rtnetlink (not only Portal's proto-52 ones),
//! links by index, and the kernel's own answer (RTM_GETROUTE, as
//! `ip route get ADDR from SRC iif DEV` asks it).

use super::{Action, Route, RouteType, Rule};
use crate::core::cidr::Cidr;
use crate::kernel::netlink::{err, Netlink};
use futures::TryStreamExt;
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteMetric,
    RouteType as RtType,
};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleFlags, RuleMessage};
use netlink_packet_route::AddressFamily;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mtu: u32,
    pub up: bool,
    /// "wireguard", "tun", "veth", ... (IFLA_INFO_KIND), empty when none.
    pub kind: String,
}

/// Rules, routes and links as the kernel has them now.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub links: Vec<Link>,
    pub rules: Vec<Rule>,
    pub routes: Vec<Route>,
}

impl Snapshot {
    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }
}

/// trace's and doctor's reads, on the agent's own rtnetlink connection type
/// (crate::kernel::netlink): everything, not only Portal's objects.
impl Netlink {
    pub async fn snapshot(&self) -> Result<Snapshot, String> {
        let links: Vec<Link> = self.links().await?.iter().map(link_from).collect();
        let names: BTreeMap<u32, String> =
            links.iter().map(|l| (l.index, l.name.clone())).collect();
        let dev = |i: u32| names.get(&i).cloned().unwrap_or_else(|| format!("if{i}"));

        let rules = self.rules_v4().await?;
        let mut query = RouteMessage::default();
        query.header.address_family = AddressFamily::Inet;
        let routes: Vec<RouteMessage> = self
            .handle()
            .route()
            .get(query)
            .execute()
            .try_collect()
            .await
            .map_err(|e| err("listing routes", e))?;
        Ok(Snapshot {
            rules: rules.iter().map(rule_from).collect(),
            routes: routes.iter().filter_map(|r| route_from(r, &dev)).collect(),
            links,
        })
    }

    /// The kernel's decision for a packet from `src` arriving on `iif` (or
    /// the router's own, with no `iif`), to `dst`.
    pub async fn route_get(
        &self,
        snap: &Snapshot,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        iif: Option<&str>,
    ) -> Result<Route, Refusal> {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.destination_prefix_length = 32;
        m.header.source_prefix_length = 32;
        // Without it the answer names table main whatever table matched.
        m.header.flags = RouteFlags::LookupTable;
        m.attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet(dst)));
        m.attributes
            .push(RouteAttribute::Source(RouteAddress::Inet(src)));
        if let Some(name) = iif {
            let l = snap.link(name).ok_or_else(|| Refusal {
                errno: None,
                text: format!("interface {name} does not exist"),
            })?;
            m.attributes.push(RouteAttribute::Iif(l.index));
        }
        let mut answers = self.handle().route().get(m).execute();
        let names: BTreeMap<u32, String> = snap
            .links
            .iter()
            .map(|l| (l.index, l.name.clone()))
            .collect();
        let dev = |i: u32| names.get(&i).cloned().unwrap_or_else(|| format!("if{i}"));
        match answers.try_next().await {
            Ok(Some(r)) => route_from(&r, &dev).ok_or_else(|| Refusal {
                errno: None,
                text: "an answer without a route".into(),
            }),
            Ok(None) => Err(Refusal {
                errno: None,
                text: "no answer".into(),
            }),
            Err(e) => Err(kernel_error(e)),
        }
    }
}

/// The kernel refused the lookup: its errno, and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub errno: Option<i32>,
    pub text: String,
}

/// The kernel's refusal as `ip route get` words it.
fn kernel_error(e: rtnetlink::Error) -> Refusal {
    let s = e.to_string();
    let errno = match &e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    };
    let text = match errno {
        Some(libc::ENETUNREACH) => "Network is unreachable".into(),
        Some(libc::EHOSTUNREACH) => "No route to host".into(),
        Some(libc::EACCES) => "Permission denied (prohibit)".into(),
        Some(libc::EINVAL) => {
            "Invalid argument (a blackhole route, a martian or reverse-path-filtered source, \
             or forwarding off on the iif)"
                .into()
        }
        Some(libc::EXDEV) => {
            "Invalid cross-device link (reverse-path filter refused the source)".into()
        }
        _ => s,
    };
    Refusal { errno, text }
}

fn link_from(m: &netlink_packet_route::link::LinkMessage) -> Link {
    let mut l = Link {
        index: m.header.index,
        name: String::new(),
        mtu: 0,
        up: m.header.flags.contains(LinkFlags::Up),
        kind: String::new(),
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => l.name = n.clone(),
            LinkAttribute::Mtu(v) => l.mtu = *v,
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        l.kind = match k {
                            InfoKind::Wireguard => "wireguard".into(),
                            InfoKind::Tun => "tun".into(),
                            InfoKind::Veth => "veth".into(),
                            InfoKind::Bridge => "bridge".into(),
                            other => format!("{other:?}").to_lowercase(),
                        };
                    }
                }
            }
            _ => {}
        }
    }
    l
}

fn rule_from(m: &RuleMessage) -> Rule {
    let mut r = Rule {
        priority: 0,
        invert: m.header.flags.contains(RuleFlags::Invert),
        from: None,
        to: None,
        iif: None,
        oif: None,
        fwmark: None,
        suppress_prefixlen: None,
        action: match m.header.action {
            RuleAction::ToTable => Action::Table(u32::from(m.header.table)),
            RuleAction::Goto => Action::Goto(0),
            RuleAction::Nop => Action::Nop,
            RuleAction::Unreachable => Action::Unreachable,
            RuleAction::Blackhole => Action::Blackhole,
            RuleAction::Prohibit => Action::Prohibit,
            RuleAction::Unspec => Action::Other(0),
            RuleAction::Other(n) => Action::Other(n),
            _ => Action::Other(255),
        },
        unmodelled: false,
    };
    let mut mark = None;
    let mut mask = u32::MAX;
    for a in &m.attributes {
        match a {
            RuleAttribute::Priority(p) => r.priority = *p,
            RuleAttribute::Table(t) => {
                if let Action::Table(_) = r.action {
                    r.action = Action::Table(*t)
                }
            }
            RuleAttribute::Goto(t) => r.action = Action::Goto(*t),
            RuleAttribute::Source(ip) => r.from = Cidr::new(*ip, m.header.src_len),
            RuleAttribute::Destination(ip) => r.to = Cidr::new(*ip, m.header.dst_len),
            RuleAttribute::Iifname(n) => r.iif = Some(n.clone()),
            RuleAttribute::Oifname(n) => r.oif = Some(n.clone()),
            RuleAttribute::FwMark(v) => mark = Some(*v),
            RuleAttribute::FwMask(v) => mask = *v,
            RuleAttribute::SuppressPrefixLen(s) if *s != u32::MAX => {
                r.suppress_prefixlen = Some(*s)
            }
            RuleAttribute::UidRange(_)
            | RuleAttribute::IpProtocol(_)
            | RuleAttribute::SourcePortRange(_)
            | RuleAttribute::DestinationPortRange(_)
            | RuleAttribute::L3MDev(true) => r.unmodelled = true,
            _ => {}
        }
    }
    r.fwmark = mark.map(|m| (m, mask));
    r
}

fn route_from(m: &RouteMessage, dev: &dyn Fn(u32) -> String) -> Option<Route> {
    let h: &RouteHeader = &m.header;
    let mut r = Route {
        table: u32::from(h.table),
        dst: Cidr::default_for(false),
        kind: match h.kind {
            RtType::Unicast => RouteType::Unicast,
            RtType::Local => RouteType::Local,
            RtType::Broadcast => RouteType::Broadcast,
            RtType::Anycast => RouteType::Anycast,
            RtType::Multicast => RouteType::Multicast,
            RtType::BlackHole => RouteType::Blackhole,
            RtType::Unreachable => RouteType::Unreachable,
            RtType::Prohibit => RouteType::Prohibit,
            RtType::Throw => RouteType::Throw,
            RtType::Other(n) => RouteType::Other(n),
            _ => RouteType::Other(0),
        },
        dev: None,
        gateway: None,
        metric: 0,
        prefsrc: None,
        mtu: None,
    };
    for a in &m.attributes {
        match a {
            RouteAttribute::Table(t) => r.table = *t,
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => {
                r.dst = Cidr::new(IpAddr::V4(*ip), h.destination_prefix_length)?
            }
            RouteAttribute::Gateway(RouteAddress::Inet(ip)) => r.gateway = Some(IpAddr::V4(*ip)),
            RouteAttribute::PrefSource(RouteAddress::Inet(ip)) => r.prefsrc = Some(IpAddr::V4(*ip)),
            RouteAttribute::Oif(i) => r.dev = Some(dev(*i)),
            RouteAttribute::Priority(p) => r.metric = *p,
            RouteAttribute::Metrics(ms) => {
                for x in ms {
                    if let RouteMetric::Mtu(v) = x {
                        r.mtu = Some(*v);
                    }
                }
            }
            _ => {}
        }
    }
    Some(r)
}
