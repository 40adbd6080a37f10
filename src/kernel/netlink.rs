//! rtnetlink: dumps links, addresses, routes and rules into `Observed`, and
//! writes the link/address/rule changes (routes: kernel/routes.rs).

use super::error::KernelError;
use crate::core::cidr::Cidr;
use crate::core::desired::{Address, Desired, Rule, PROTO};
use crate::core::diff::{LinkKind, Observed, ObservedAddress, ObservedLink};
use futures::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressProtocol};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::route::RouteProtocol;
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use netlink_packet_route::AddressFamily;
use rtnetlink::{Handle, IpVersion, LinkUnspec, LinkWireguard};
use std::collections::BTreeMap;
use std::net::IpAddr;

pub struct Netlink {
    handle: Handle,
}

pub(crate) fn err(what: &str, e: rtnetlink::Error) -> KernelError {
    KernelError::from_rtnetlink(what, e)
}

impl Netlink {
    /// Needs a running tokio runtime (the connection task is spawned on it).
    pub fn new() -> Result<Netlink, String> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| format!("netlink: {e}"))?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    /// The connection, for reads of other modules (trace/kernel.rs).
    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    pub async fn links(&self) -> Result<Vec<LinkMessage>, KernelError> {
        self.handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| err("listing links", e))
    }

    /// The names of the interfaces the kernel has now.
    pub async fn link_names(&self) -> Result<std::collections::BTreeSet<String>, KernelError> {
        Ok(self.links().await?.iter().map(|m| link_from(m).0).collect())
    }

    pub async fn observe(&self, d: &Desired) -> Result<Observed, KernelError> {
        let mut o = Observed::default();
        let mut names: BTreeMap<u32, String> = BTreeMap::new();
        for m in self.links().await? {
            let (name, link) = link_from(&m);
            names.insert(link.index, name.clone());
            o.links.insert(name, link);
        }
        let dev = |i: u32| names.get(&i).cloned().unwrap_or_else(|| format!("if{i}"));

        let addrs: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| err("listing addresses", e))?;
        for a in addrs {
            let Some((cidr, ours)) = address_from(&a) else {
                continue;
            };
            let dev = dev(a.header.index);
            let managed = d.links.iter().any(|l| l.name == dev);
            if ours || managed {
                o.addresses.push(ObservedAddress { dev, cidr, ours });
            }
        }

        // Split lists make 100,000 routes: a dump filtered by the kernel
        // and decoded directly (kernel/routes.rs).
        o.routes = super::routes::dump(&dev)?;
        o.main_others = super::routes::dump_main_others(&dev)?;

        let rules = self.rules_v4().await?;
        o.rules = rules.iter().filter_map(rule_from).collect();
        Ok(o)
    }

    /// One link by name, asked for alone (not a dump: this runs per change).
    /// Every IPv4 policy rule, in the kernel's order.
    pub async fn rules_v4(&self) -> Result<Vec<RuleMessage>, KernelError> {
        self.handle
            .rule()
            .get(IpVersion::V4)
            .execute()
            .try_collect()
            .await
            .map_err(|e| err("listing rules", e))
    }

    pub async fn link(&self, name: &str) -> Result<ObservedLink, KernelError> {
        let mut found = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match found.try_next().await {
            Ok(Some(m)) => Ok(link_from(&m).1),
            Ok(None) => Err(KernelError::NoInterface(name.to_string())),
            Err(e) => match err(&format!("looking up {name}"), e) {
                // A lookup by name answers ENODEV when there is none.
                KernelError::Refused {
                    errno: nix::errno::Errno::ENODEV,
                    ..
                } => Err(KernelError::NoInterface(name.to_string())),
                other => Err(other),
            },
        }
    }

    pub async fn index(&self, name: &str) -> Result<u32, KernelError> {
        Ok(self.link(name).await?.index)
    }

    pub async fn wireguard_add(&self, name: &str) -> Result<(), KernelError> {
        self.handle
            .link()
            .add(LinkWireguard::new(name).build())
            .execute()
            .await
            .map_err(|e| err(&format!("creating WireGuard link {name}"), e))
    }

    pub async fn link_del(&self, name: &str) -> Result<(), KernelError> {
        let index = self.index(name).await?;
        self.handle
            .link()
            .del(index)
            .execute()
            .await
            .map_err(|e| err(&format!("deleting {name}"), e))
    }

    pub async fn link_set(
        &self,
        name: &str,
        mtu: Option<u32>,
        alias: Option<&str>,
        up: bool,
    ) -> Result<(), KernelError> {
        let mut b = LinkUnspec::new_with_index(self.index(name).await?);
        if let Some(m) = mtu {
            b = b.mtu(m);
        }
        if let Some(a) = alias {
            b = b.alias(a.to_string());
        }
        if up {
            b = b.up();
        }
        self.handle
            .link()
            .set(b.build())
            .execute()
            .await
            .map_err(|e| err("link", e))
    }

    pub async fn addr_add(&self, a: &Address) -> Result<(), KernelError> {
        let mut req = self
            .handle
            .address()
            .add(self.index(&a.dev).await?, a.cidr.addr, a.cidr.len);
        req.message_mut()
            .attributes
            .push(AddressAttribute::Protocol(AddressProtocol::Other(PROTO)));
        req.execute().await.map_err(|e| err("address", e))
    }

    pub async fn addr_del(&self, a: &Address) -> Result<(), KernelError> {
        let msg = self.address_message(a).await?;
        self.handle
            .address()
            .del(msg)
            .execute()
            .await
            .map_err(|e| err("address", e))
    }

    pub async fn rule_add(&self, r: &Rule) -> Result<(), KernelError> {
        let mut req = self.handle.rule().add();
        *req.message_mut() = rule_message(r);
        req.execute().await.map_err(|e| err("rule", e))
    }

    pub async fn rule_del(&self, r: &Rule) -> Result<(), KernelError> {
        self.handle
            .rule()
            .del(rule_message(r))
            .execute()
            .await
            .map_err(|e| err("rule", e))
    }

    async fn address_message(&self, a: &Address) -> Result<AddressMessage, KernelError> {
        let mut m = AddressMessage::default();
        m.header.index = self.index(&a.dev).await?;
        m.header.prefix_len = a.cidr.len;
        m.header.family = family(&a.cidr.addr);
        m.attributes.push(AddressAttribute::Local(a.cidr.addr));
        m.attributes.push(AddressAttribute::Address(a.cidr.addr));
        Ok(m)
    }
}

fn family(a: &IpAddr) -> AddressFamily {
    if a.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

fn link_from(m: &LinkMessage) -> (String, ObservedLink) {
    let mut name = String::new();
    let mut link = ObservedLink {
        index: m.header.index,
        mtu: 0,
        up: m.header.flags.contains(LinkFlags::Up),
        alias: None,
        kind: LinkKind::Other,
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => name = n.clone(),
            LinkAttribute::Mtu(v) => link.mtu = *v,
            LinkAttribute::IfAlias(s) => link.alias = Some(s.clone()),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    match i {
                        LinkInfo::Kind(InfoKind::Wireguard) => link.kind = LinkKind::Wireguard,
                        LinkInfo::Kind(InfoKind::Tun) => link.kind = LinkKind::Tun,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    (name, link)
}

fn address_from(m: &AddressMessage) -> Option<(Cidr, bool)> {
    let mut addr = None;
    let mut ours = false;
    for a in &m.attributes {
        match a {
            AddressAttribute::Local(ip) => addr = Some(*ip),
            AddressAttribute::Address(ip) if addr.is_none() => addr = Some(*ip),
            AddressAttribute::Protocol(AddressProtocol::Other(p)) => ours = *p == PROTO,
            _ => {}
        }
    }
    Some((Cidr::new(addr?, m.header.prefix_len)?, ours))
}

fn rule_from(m: &RuleMessage) -> Option<Rule> {
    let mut rule = Rule {
        priority: 0,
        from: None,
        to: None,
        table: u32::from(m.header.table),
    };
    let mut ours = false;
    for a in &m.attributes {
        match a {
            RuleAttribute::Priority(p) => rule.priority = *p,
            RuleAttribute::Table(t) => rule.table = *t,
            RuleAttribute::Source(ip) => rule.from = Cidr::new(*ip, m.header.src_len),
            RuleAttribute::Destination(ip) => rule.to = Cidr::new(*ip, m.header.dst_len),
            RuleAttribute::Protocol(RouteProtocol::Other(p)) => ours = *p == PROTO,
            _ => {}
        }
    }
    ours.then_some(rule)
}

/// A rule message. The action must be "to table": rtnetlink's default
/// (unspec) makes a rule whose every match fails with EINVAL.
fn rule_message(r: &Rule) -> RuleMessage {
    let mut m = RuleMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.action = RuleAction::ToTable;
    if r.table < 256 {
        m.header.table = r.table as u8;
    }
    m.attributes.push(RuleAttribute::Table(r.table));
    m.attributes.push(RuleAttribute::Priority(r.priority));
    m.attributes
        .push(RuleAttribute::Protocol(RouteProtocol::Other(PROTO)));
    if let Some(c) = r.from {
        m.header.src_len = c.len;
        m.attributes.push(RuleAttribute::Source(c.addr));
    }
    if let Some(c) = r.to {
        m.header.dst_len = c.len;
        m.attributes.push(RuleAttribute::Destination(c.addr));
    }
    m
}
