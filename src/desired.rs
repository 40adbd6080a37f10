//! Model -> desired kernel state, as plain data.
//!
//! Everything Portal puts in the kernel is described here and nowhere else.
//! Ownership is marked in the kernel itself so that `down` and the diff can
//! find Portal's objects without a side file: routes, rules and addresses
//! carry protocol number PROTO, WireGuard links carry the alias
//! "portal:<name>", and the nftables table is Portal's own (`inet portal`).

use crate::cidr::Cidr;
use crate::model::{Endpoint, LanRoute, Model, WanMode};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

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
pub const NFT_TABLE: &str = "portal";
pub const LINK_ALIAS_PREFIX: &str = "portal:";

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Desired {
    pub nft: String,
    pub wireguard: Vec<WgDevice>,
    pub links: Vec<Link>,
    pub addresses: Vec<Address>,
    pub routes: Vec<Route>,
    pub rules: Vec<Rule>,
    pub sysctls: Vec<Sysctl>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WgDevice {
    pub portal: String,
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
}

pub fn desired(m: &Model, inputs: &Inputs) -> Desired {
    let mut d = Desired {
        nft: nft_ruleset(m),
        ..Desired::default()
    };
    d.links.push(Link {
        name: m.wan.interface.clone(),
        mtu: None,
        alias: None,
    });
    if let WanMode::Static {
        address, gateway, ..
    } = &m.wan.mode
    {
        d.addresses.push(Address {
            dev: m.wan.interface.clone(),
            cidr: *address,
        });
        d.routes.push(Route {
            table: MAIN_TABLE,
            dst: Cidr::default_for(false),
            kind: RouteKind::Via(IpAddr::V4(*gateway), m.wan.interface.clone()),
            metric: 0,
        });
    }
    for l in &m.lans {
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
    for p in &m.portals {
        d.wireguard.push(WgDevice {
            portal: p.name.clone(),
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
                })
                .collect(),
        });
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
        }
    }
    let via_lans: Vec<_> = m
        .lans
        .iter()
        .filter_map(|l| match &l.route {
            LanRoute::Portal(p) => m.portal(p).map(|p| (l, p)),
            LanRoute::Direct => None,
        })
        .collect();
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
    for (l, p) in &via_lans {
        d.rules.push(Rule {
            priority: PRIO_FROM_LAN,
            from: Some(l.address.network()),
            to: None,
            table: p.table,
        });
    }
    d.sysctls.push(Sysctl {
        key: "net.ipv4.ip_forward".into(),
        value: "1".into(),
    });
    d
}

/// Portal's nftables table: MSS clamping, kill switch, NAT. Written whole
/// and replaced in one transaction, so it is never half there.
pub fn nft_ruleset(m: &Model) -> String {
    let wan = &m.wan.interface;
    let mut fwd = Vec::new();
    let mut nat = Vec::new();
    for p in &m.portals {
        // Clamp SYNs both ways: into the tunnel, and out of it for peers
        // (not running Portal) that do not clamp their side.
        let (mss4, mss6) = (p.mtu - 40, p.mtu - 60);
        for dir in ["oifname", "iifname"] {
            fwd.push(format!(
                "{dir} \"{i}\" meta nfproto ipv4 tcp flags & (syn | rst) == syn tcp option maxseg size > {mss4} tcp option maxseg size set {mss4} comment \"mss clamp {n}\"",
                i = p.interface,
                n = p.name
            ));
            fwd.push(format!(
                "{dir} \"{i}\" meta nfproto ipv6 tcp flags & (syn | rst) == syn tcp option maxseg size > {mss6} tcp option maxseg size set {mss6} comment \"mss clamp {n}\"",
                i = p.interface,
                n = p.name
            ));
        }
        if p.exit {
            // Bounce server: what the peers send (from their tunnel
            // addresses, their allowed IPs or their routed subnets) leaves
            // by our WAN, SNATed to our WAN address.
            let mut sources: Vec<Cidr> = p.addresses.iter().map(|a| a.network()).collect();
            sources.extend(p.remote_subnets.iter().copied());
            for peer in &p.peers {
                sources.extend(peer.allowed_ips.iter().filter(|a| !a.is_default()));
            }
            let sources = outermost(sources.into_iter().filter(|c| !c.is_v6()).collect());
            if !sources.is_empty() {
                nat.push(format!(
                    "oifname \"{wan}\" ip saddr {{ {} }} masquerade comment \"exit {}\"",
                    join(&sources),
                    p.name
                ));
            }
        }
    }
    for l in &m.lans {
        let net = l.address.network();
        match &l.route {
            LanRoute::Direct => nat.push(format!(
                "oifname \"{wan}\" ip saddr {net} masquerade comment \"lan {} direct\"",
                l.name
            )),
            LanRoute::Portal(name) => {
                let Some(p) = m.portal(name) else { continue };
                if l.kill_switch {
                    fwd.push(format!(
                        "iifname \"{}\" oifname != \"{}\" counter reject with icmpx type admin-prohibited comment \"kill switch {} via {}\"",
                        l.interface, p.interface, l.name, p.name
                    ));
                }
                if p.masquerade {
                    // Site-to-site traffic keeps its real source address.
                    let keep = outermost(
                        p.remote_subnets
                            .iter()
                            .filter(|c| !c.is_v6())
                            .copied()
                            .collect(),
                    );
                    let except = if keep.is_empty() {
                        String::new()
                    } else {
                        format!("ip daddr != {{ {} }} ", join(&keep))
                    };
                    nat.push(format!(
                        "oifname \"{}\" ip saddr {net} {except}masquerade comment \"lan {} via {}\"",
                        p.interface, l.name, p.name
                    ));
                }
            }
        }
    }
    let mut s = format!("table inet {NFT_TABLE} {{\n");
    s.push_str("\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n");
    for r in &fwd {
        s.push_str(&format!("\t\t{r}\n"));
    }
    s.push_str("\t}\n");
    s.push_str(
        "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n",
    );
    for r in &nat {
        s.push_str(&format!("\t\t{r}\n"));
    }
    s.push_str("\t}\n}\n");
    s
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
