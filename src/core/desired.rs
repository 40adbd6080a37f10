//! Model -> desired kernel state, as plain data.
//!
//! Everything Portal puts in the kernel is described here and nowhere else.
//! Ownership is marked in the kernel itself so that `down` and the diff can
//! find Portal's objects without a side file: routes, rules and addresses
//! carry protocol number PROTO, WireGuard links carry the alias
//! "portal:<name>", and the nftables table is Portal's own (`inet portal`).

use crate::core::cidr::Cidr;
use crate::core::model::{Endpoint, Lan, Model, Portal, WanMode};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

mod fast_path;
mod split;

/// Protocol number marking Portal's routes, rules and addresses ("proto 52").
/// Unassigned in iproute2's rt_protos list.
pub const PROTO: u8 = 52;
pub const MAIN_TABLE: u32 = 254;
/// Kill-switch routes sit behind the real default route of a portal table.
pub const KILL_SWITCH_METRIC: u32 = 4000;
/// Rule priorities: LAN-bound traffic stays in main (the router's replies
/// and traffic between LANs), then each LAN's traffic goes to its portal.
pub const PRIO_TO_LAN: u32 = 10000;
pub const PRIO_FROM_LAN: u32 = 10100;
pub const LINK_ALIAS_PREFIX: &str = "portal:";

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Desired {
    pub nft: crate::core::ruleset::Table,
    pub wireguard: Vec<WgDevice>,
    pub links: Vec<Link>,
    pub addresses: Vec<Address>,
    pub routes: Vec<Route>,
    pub rules: Vec<Rule>,
    pub sysctls: Vec<Sysctl>,
    /// Interfaces another program makes (hostapd's extra SSIDs): while
    /// absent they are waited for, not errors; the pass that follows their
    /// creation (a netlink event) configures them.
    pub awaited: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WgDevice {
    pub name: String,
    pub private_key_file: PathBuf,
    /// Public key derived from the private key file (compared with the
    /// device's; the private key itself is read only when written).
    pub public_key: Option<String>,
    pub listen_port: Option<u16>,
    pub peers: Vec<WgPeer>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WgPeer {
    pub public_key: String,
    /// As configured (printed by `plan`).
    pub endpoint: Option<Endpoint>,
    /// As resolved now (what gets written); None when resolution failed.
    pub endpoint_addr: Option<SocketAddr>,
    pub allowed_ips: Vec<Cidr>,
    pub persistent_keepalive: Option<u16>,
    /// Read only when written, like the private key.
    pub preshared_key_file: Option<PathBuf>,
    /// A one-way fingerprint of the preshared key (see
    /// keys::psk_fingerprint), compared with the device's: no rewrite
    /// each pass, and nothing secret to print.
    pub preshared_key_id: Option<String>,
}

/// An interface Portal keeps up; `wireguard` ones are created and owned.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub name: String,
    pub mtu: Option<u32>,
    /// Set on links Portal creates, so it can find them again.
    pub alias: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Address {
    pub dev: String,
    pub cidr: Cidr,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum RouteKind {
    Dev(String),
    Via(IpAddr, String),
    Unreachable,
    /// Ends the lookup in this table; rules after it are tried (split LANs).
    Throw,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub table: u32,
    pub dst: Cidr,
    pub kind: RouteKind,
    /// 0 when unset (the kernel's view too).
    pub metric: u32,
}

impl Route {
    pub fn is_kill_switch(&self) -> bool {
        self.kind == RouteKind::Unreachable
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    pub priority: u32,
    pub from: Option<Cidr>,
    pub to: Option<Cidr>,
    pub table: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    pub key: String,
    pub value: String,
}

/// What the pure core needs from the outside world: public keys derived from
/// the key files and endpoint names resolved now.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// Portal name -> public key of its private key file.
    pub public_keys: BTreeMap<String, String>,
    /// (portal name, peer index) -> resolved endpoint.
    pub endpoints: BTreeMap<(String, usize), SocketAddr>,
    /// (portal name, peer index) -> fingerprint of its preshared key file.
    pub preshared_key_ids: BTreeMap<(String, usize), String>,
    /// With `wan.dhcp`: the lease the client holds; None until it has one.
    pub wan_lease: Option<WanLease>,
    /// When the kernel has flowtables: the interfaces it has now. A
    /// flowtable may list only those (kernels before 6.16 refuse the whole
    /// table otherwise), so the table is rewritten when one appears.
    pub fast_path_links: Option<BTreeSet<String>>,
}

/// A lease as the WAN uses it; also what is written to disk.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct WanLease {
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    pub server: Ipv4Addr,
    pub lease_secs: u32,
    pub t1_secs: u32,
    pub t2_secs: u32,
    /// Unix milliseconds when the lease was granted (the ACK arrived).
    pub acquired_ms: u64,
}

impl WanLease {
    pub fn t1_at(&self) -> u64 {
        self.acquired_ms + self.t1_secs as u64 * 1000
    }
    pub fn t2_at(&self) -> u64 {
        self.acquired_ms + self.t2_secs as u64 * 1000
    }
    pub fn expires_at(&self) -> u64 {
        self.acquired_ms + self.lease_secs as u64 * 1000
    }
}

pub fn desired(m: &Model, inputs: &Inputs) -> Desired {
    let mut d = Desired {
        nft: crate::core::firewall::ruleset(m),
        awaited: m.hostapd_interfaces().map(str::to_string).collect(),
        ..Desired::default()
    };
    fast_path::add(m, inputs, &mut d.nft);
    wan(m, inputs.wan_lease.as_ref(), &mut d);
    for l in &m.lans {
        lan(l, &mut d);
    }
    for p in &m.portals {
        portal(m, p, inputs, &mut d);
    }
    policy_rules(m, &mut d);
    d.sysctls.push(Sysctl {
        key: "net.ipv4.ip_forward".into(),
        value: "1".into(),
    });
    d
}

/// The WAN link, and its address and default route (static, or the lease's).
fn wan(m: &Model, lease: Option<&WanLease>, d: &mut Desired) {
    d.links.push(Link {
        name: m.wan.interface.clone(),
        mtu: None,
        alias: None,
    });
    let wan = match (&m.wan.mode, lease) {
        (
            WanMode::Static {
                address, gateway, ..
            },
            _,
        ) => Some((*address, Some(*gateway))),
        (WanMode::Dhcp { .. }, Some(l)) => {
            Cidr::new(IpAddr::V4(l.address), l.prefix_len).map(|c| (c, l.gateway))
        }
        // No lease yet: no address, no default route; the kill switch holds.
        (WanMode::Dhcp { .. }, None) => None,
    };
    if let Some((address, gateway)) = wan {
        d.addresses.push(Address {
            dev: m.wan.interface.clone(),
            cidr: address,
        });
        if let Some(gateway) = gateway {
            d.routes.push(Route {
                table: MAIN_TABLE,
                dst: Cidr::default_for(false),
                kind: RouteKind::Via(IpAddr::V4(gateway), m.wan.interface.clone()),
                metric: 0,
            });
        }
    }
}

/// A LAN's link and its address.
fn lan(l: &Lan, d: &mut Desired) {
    d.links.push(Link {
        name: l.interface.clone(),
        mtu: None,
        alias: None,
    });
    d.addresses.push(Address {
        dev: l.interface.clone(),
        cidr: l.address,
    });
}

/// A portal's WireGuard device, link, addresses, routes to its remote
/// subnets and, when LANs exit through it, its table and kill switch.
fn portal(m: &Model, p: &Portal, inputs: &Inputs, d: &mut Desired) {
    d.wireguard.push(wg_device(p, inputs));
    d.links.push(Link {
        name: p.interface.clone(),
        mtu: Some(p.mtu),
        alias: Some(format!("{LINK_ALIAS_PREFIX}{}", p.name)),
    });
    for a in &p.addresses {
        d.addresses.push(Address {
            dev: p.interface.clone(),
            cidr: *a,
        });
    }
    for s in &p.remote_subnets {
        d.routes.push(Route {
            table: MAIN_TABLE,
            dst: *s,
            kind: RouteKind::Dev(p.interface.clone()),
            metric: 0,
        });
    }
    if m.lans_via(&p.name).next().is_some() {
        exit_table(p, d);
    }
}

/// The portal's WireGuard device, with the keys and endpoints `inputs` found.
fn wg_device(p: &Portal, inputs: &Inputs) -> WgDevice {
    WgDevice {
        name: p.interface.clone(),
        private_key_file: p.private_key_file.clone(),
        public_key: inputs.public_keys.get(&p.name).cloned(),
        listen_port: p.listen_port,
        peers: p
            .peers
            .iter()
            .enumerate()
            .map(|(i, peer)| WgPeer {
                public_key: peer.public_key.clone(),
                endpoint: peer.endpoint.clone(),
                endpoint_addr: inputs.endpoints.get(&(p.name.clone(), i)).copied(),
                allowed_ips: peer.allowed_ips.clone(),
                persistent_keepalive: peer.persistent_keepalive,
                preshared_key_file: peer.preshared_key_file.clone(),
                preshared_key_id: inputs.preshared_key_ids.get(&(p.name.clone(), i)).cloned(),
            })
            .collect(),
    }
}

/// An exit portal's table: the kill switch behind the tunnel's default
/// route, and the rule sending the router's own tunnel-address traffic there.
fn exit_table(p: &Portal, d: &mut Desired) {
    // The kill switch: when the tunnel device vanishes its routes go
    // with it, and this route (which has no device) answers instead.
    d.routes.push(Route {
        table: p.table,
        dst: Cidr::default_for(false),
        kind: RouteKind::Unreachable,
        metric: KILL_SWITCH_METRIC,
    });
    d.routes.push(Route {
        table: p.table,
        dst: Cidr::default_for(false),
        kind: RouteKind::Dev(p.interface.clone()),
        metric: 0,
    });
    // The router's own traffic from its tunnel address (the exit
    // probe) leaves through the tunnel too; without this rule strict
    // rp_filter drops the replies, which the main table would send
    // out the WAN.
    for a in p.addresses.iter().filter(|a| a.addr.is_ipv4()) {
        d.rules.push(Rule {
            priority: PRIO_FROM_LAN,
            from: Cidr::new(a.addr, 32),
            to: None,
            table: p.table,
        });
    }
}

/// The policy rules (and split LANs' routes): LAN-bound and road-warrior
/// traffic stays in main, then each LAN's traffic goes to its portal.
fn policy_rules(m: &Model, d: &mut Desired) {
    let via_lans: Vec<_> = m.lans.iter().filter_map(|l| Some((l, m.via(l)?))).collect();
    if !via_lans.is_empty() {
        for l in &m.lans {
            d.rules.push(Rule {
                priority: PRIO_TO_LAN,
                from: None,
                to: Some(l.address.network()),
                table: MAIN_TABLE,
            });
        }
    }
    // Replies from LANs to road-warrior devices stay in main (the tunnel
    // network's route), whichever portal the LAN itself exits through.
    for p in m.portals.iter().filter(|p| p.clients.is_some()) {
        if let Some(net) =
            crate::core::model::clients::tunnel_network(p).filter(|_| !via_lans.is_empty())
        {
            d.rules.push(Rule {
                priority: PRIO_TO_LAN,
                from: None,
                to: Some(net),
                table: MAIN_TABLE,
            });
        }
    }
    for (l, p) in &via_lans {
        if let Some(s) = &l.split {
            split::routes(s, p, &mut d.routes);
        }
        d.rules.push(Rule {
            priority: PRIO_FROM_LAN,
            from: Some(l.address.network()),
            to: None,
            table: l.split.as_ref().map_or(p.table, |s| s.table),
        });
    }
}
