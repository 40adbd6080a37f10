//! Desired state vs what the kernel has -> the ordered list of changes.
//!
//! Pure: the kernel is read elsewhere (kernel/observe.rs) into `Observed`.
//! The same function produces `portal plan` (a diff against an empty
//! kernel) and each agent pass, so the plan is exactly what gets applied.
//! Each change prints as the `ip`/`wg`/`nft`/`sysctl` command doing the same.

use crate::core::cidr::Cidr;
use crate::core::desired::{
    Address, Desired, Link, Route, RouteKind, Rule, Sysctl, WgPeer, LINK_ALIAS_PREFIX, MAIN_TABLE,
    PROTO,
};
use crate::core::firewall::NFT_TABLE;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub links: BTreeMap<String, ObservedLink>,
    /// Addresses on the interfaces Portal manages, and Portal's own anywhere.
    pub addresses: Vec<ObservedAddress>,
    /// Routes and rules marked with PROTO (Portal's own).
    pub routes: Vec<Route>,
    /// The main table's other routes (the host's own, e.g. its default
    /// route): one equal to a desired route is adopted, one in its slot is
    /// replaced; neither is ever deleted.
    pub main_others: Vec<Route>,
    pub rules: Vec<Rule>,
    pub wireguard: BTreeMap<String, ObservedWg>,
    pub sysctls: BTreeMap<String, String>,
    /// True when Portal's nft table is present and as last written.
    pub nft_current: bool,
    pub nft_present: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedLink {
    pub index: u32,
    pub mtu: u32,
    pub up: bool,
    pub alias: Option<String>,
    pub kind: LinkKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    Wireguard,
    /// wireguard-go's device.
    Tun,
    Other,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedAddress {
    pub dev: String,
    pub cidr: Cidr,
    pub ours: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObservedWg {
    pub public_key: Option<String>,
    pub listen_port: u16,
    pub peers: Vec<ObservedPeer>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedPeer {
    pub public_key: String,
    pub endpoint: Option<SocketAddr>,
    pub allowed_ips: Vec<Cidr>,
    pub persistent_keepalive: Option<u16>,
    /// A handshake within kernel::wireguard::STALE_SECS: the peer answers.
    pub handshake_recent: bool,
    /// The endpoint this agent last wrote to the peer (None: none yet).
    pub endpoint_written: Option<SocketAddr>,
    /// keys::psk_fingerprint of the device's preshared key, if it has one.
    pub preshared_key_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    NftReplace(crate::core::ruleset::Table),
    NftDelete,
    /// `userspace`: None = kernel WireGuard if the kernel has it (auto).
    WgCreate {
        name: String,
        userspace: Option<bool>,
    },
    /// Only the parts that differ; `private_key_file` set means "write the key".
    WgSet {
        name: String,
        private_key_file: Option<PathBuf>,
        listen_port: Option<u16>,
        peers: Vec<WgPeer>,
        remove_peers: Vec<String>,
    },
    LinkSet {
        name: String,
        mtu: Option<u32>,
        alias: Option<String>,
        up: bool,
    },
    LinkDel(String),
    AddrAdd(Address),
    AddrDel(Address),
    RouteAdd(Route),
    /// A route that takes the slot (table, destination, metric) of another
    /// owner's route: `ip route replace`.
    RouteReplace(Route),
    RouteDel(Route),
    RuleAdd(Rule),
    RuleDel(Rule),
    Sysctl(Sysctl),
    /// Many route additions or deletions, written in netlink batches.
    Routes(batch::RouteBatch),
}

pub mod batch;

impl Change {
    /// Changes that make up the kill switch: if one fails, nothing that
    /// opens a path may follow.
    pub fn is_kill_switch(&self) -> bool {
        matches!(self, Change::NftReplace(_))
            || matches!(self, Change::RouteAdd(r) if r.is_kill_switch())
            || matches!(self, Change::Routes(b) if b.op == batch::RouteOp::Add
                && b.routes.iter().any(Route::is_kill_switch))
    }

    /// Changes that remove something: done when it is already gone.
    pub fn is_removal(&self) -> bool {
        matches!(
            self,
            Change::RouteDel(_) | Change::AddrDel(_) | Change::RuleDel(_) | Change::LinkDel(_)
        ) || matches!(self, Change::Routes(b) if b.op == batch::RouteOp::Del)
    }
}

/// The changes that turn `o` into `d`, in a safe order: the kill switch
/// first, then devices, addresses, routes, WireGuard keys and peers, rules,
/// removals, and forwarding last.
pub fn diff(d: &Desired, o: &Observed, userspace: Option<bool>) -> Vec<Change> {
    let mut out = Vec::new();
    if !o.nft_current {
        out.push(Change::NftReplace(d.nft.clone()));
    }
    // Sets, not list scans: split lists make 100,000 routes.
    let have: BTreeSet<&Route> = o.routes.iter().collect();
    let want: BTreeSet<&Route> = d.routes.iter().collect();
    let (kill, normal): (Vec<&Route>, Vec<&Route>) =
        d.routes.iter().partition(|r| r.is_kill_switch());
    for r in kill {
        if !have.contains(r) {
            out.push(Change::RouteAdd(r.clone()));
        }
    }
    // Devices first (links must exist to be configured); their keys and
    // peers after addresses and routes, so the first handshake can leave.
    let wg_sets = wg_devices(d, o, userspace, &mut out);
    links_and_addresses(d, o, &mut out);
    route_additions(&normal, &have, o, &mut out);
    out.extend(wg_sets);
    for r in &d.rules {
        if !o.rules.contains(r) {
            out.push(Change::RuleAdd(r.clone()));
        }
    }
    removals(d, o, &want, &mut out);
    for s in &d.sysctls {
        if o.sysctls.get(&s.key) != Some(&s.value) {
            out.push(Change::Sysctl(s.clone()));
        }
    }
    batch::group(out)
}

/// The WireGuard devices missing, created into `out`; returned, the key and
/// peer settings to apply later (all of a new device's, a present one's
/// differences).
fn wg_devices(
    d: &Desired,
    o: &Observed,
    userspace: Option<bool>,
    out: &mut Vec<Change>,
) -> Vec<Change> {
    let mut wg_sets = Vec::new();
    for w in &d.wireguard {
        match o.wireguard.get(&w.name) {
            None => {
                if !o.links.contains_key(&w.name) {
                    out.push(Change::WgCreate {
                        name: w.name.clone(),
                        userspace,
                    });
                }
                wg_sets.push(Change::WgSet {
                    name: w.name.clone(),
                    private_key_file: Some(w.private_key_file.clone()),
                    listen_port: w.listen_port,
                    peers: w.peers.clone(),
                    remove_peers: Vec::new(),
                });
            }
            Some(ow) => wg_sets.extend(wg_update(w, ow)),
        }
    }
    wg_sets
}

/// Links set up and addresses added, except on awaited interfaces that are
/// not there yet (nothing to do to them).
fn links_and_addresses(d: &Desired, o: &Observed, out: &mut Vec<Change>) {
    let waiting = |dev: &str| d.awaited.iter().any(|a| a == dev) && !o.links.contains_key(dev);
    for l in d.links.iter().filter(|l| !waiting(&l.name)) {
        out.extend(link_update(l, o.links.get(&l.name)));
    }
    for a in d.addresses.iter().filter(|a| !waiting(&a.dev)) {
        if !o
            .addresses
            .iter()
            .any(|x| x.dev == a.dev && x.cidr == a.cidr)
        {
            out.push(Change::AddrAdd(a.clone()));
        }
    }
}

/// The routes missing (the kill switch's aside): added, or replacing
/// another owner's route in their slot; another owner's equal route is
/// adopted.
fn route_additions(
    routes: &[&Route],
    have: &BTreeSet<&Route>,
    o: &Observed,
    out: &mut Vec<Change>,
) {
    for &r in routes {
        // Only the main table holds others' routes: split lists' 100,000
        // routes in their own tables skip the scan.
        let others: &[Route] = if r.table == MAIN_TABLE {
            &o.main_others
        } else {
            &[]
        };
        if have.contains(r) || others.contains(r) {
            continue;
        }
        let same_slot = |x: &&Route| x.table == r.table && x.dst == r.dst && x.metric == r.metric;
        if others.iter().any(|x| same_slot(&x)) {
            out.push(Change::RouteReplace(r.clone()));
        } else {
            out.push(Change::RouteAdd(r.clone()));
        }
    }
}

/// What Portal owns and no longer wants, removed: rules, routes,
/// addresses, then its WireGuard links.
fn removals(d: &Desired, o: &Observed, want: &BTreeSet<&Route>, out: &mut Vec<Change>) {
    for r in &o.rules {
        if !d.rules.contains(r) {
            out.push(Change::RuleDel(r.clone()));
        }
    }
    for r in &o.routes {
        if !want.contains(r) {
            out.push(Change::RouteDel(r.clone()));
        }
    }
    for a in o.addresses.iter().filter(|a| a.ours) {
        if !d
            .addresses
            .iter()
            .any(|x| x.dev == a.dev && x.cidr == a.cidr)
        {
            out.push(Change::AddrDel(Address {
                dev: a.dev.clone(),
                cidr: a.cidr,
            }));
        }
    }
    for (name, l) in &o.links {
        let ours = l
            .alias
            .as_deref()
            .is_some_and(|a| a.starts_with(LINK_ALIAS_PREFIX));
        if ours && !d.wireguard.iter().any(|w| &w.name == name) {
            out.push(Change::LinkDel(name.clone()));
        }
    }
}

/// Everything Portal owns, removed (`portal down`): rules first so traffic
/// stops entering the tunnel tables while the kill switch still holds, the
/// nft table last. `restore` gives sysctls their values from before Portal.
pub fn teardown(o: &Observed, restore: &[Sysctl]) -> Vec<Change> {
    let empty = Desired::default();
    let mut out: Vec<Change> = diff(
        &empty,
        &Observed {
            nft_current: true,
            ..o.clone()
        },
        None,
    )
    .into_iter()
    .filter(|c| !matches!(c, Change::Sysctl(_)))
    .collect();
    if o.nft_present {
        out.push(Change::NftDelete);
    }
    for s in restore {
        if o.sysctls.get(&s.key) != Some(&s.value) {
            out.push(Change::Sysctl(s.clone()));
        }
    }
    out
}

fn wg_update(w: &crate::core::desired::WgDevice, o: &ObservedWg) -> Option<Change> {
    let key_differs = w.public_key.is_some() && w.public_key != o.public_key;
    let port_differs = w.listen_port.is_some_and(|p| p != o.listen_port);
    let peers: Vec<WgPeer> = w
        .peers
        .iter()
        .filter(
            |p| match o.peers.iter().find(|op| op.public_key == p.public_key) {
                None => true,
                Some(op) => !peer_matches(p, op),
            },
        )
        .cloned()
        .collect();
    let remove_peers: Vec<String> = o
        .peers
        .iter()
        .filter(|op| !w.peers.iter().any(|p| p.public_key == op.public_key))
        .map(|op| op.public_key.clone())
        .collect();
    if !key_differs && !port_differs && peers.is_empty() && remove_peers.is_empty() {
        return None;
    }
    Some(Change::WgSet {
        name: w.name.clone(),
        private_key_file: key_differs.then(|| w.private_key_file.clone()),
        listen_port: if port_differs { w.listen_port } else { None },
        peers,
        remove_peers,
    })
}

fn peer_matches(p: &WgPeer, o: &ObservedPeer) -> bool {
    let mut want = p.allowed_ips.clone();
    let mut have = o.allowed_ips.clone();
    want.sort();
    have.sort();
    let endpoint_ok = match p.endpoint_addr {
        // An endpoint that did not resolve is left as the kernel has it.
        None => true,
        Some(want) if o.endpoint == Some(want) => true,
        // WireGuard roams: a peer that answers from elsewhere than the
        // address last written keeps its new endpoint. The configured one is
        // written again when its name resolves differently, or when the
        // peer stops answering where it roamed to.
        Some(want) => {
            o.endpoint.is_some() && o.endpoint_written == Some(want) && o.handshake_recent
        }
    };
    want == have
        && endpoint_ok
        && p.persistent_keepalive == o.persistent_keepalive
        && p.preshared_key_id == o.preshared_key_id
}

fn link_update(l: &Link, o: Option<&ObservedLink>) -> Option<Change> {
    let (mtu, alias, up) = match o {
        // Not there yet: a WireGuard link is created by WgCreate first.
        None => (l.mtu, l.alias.clone(), true),
        Some(o) => (
            l.mtu.filter(|m| *m != o.mtu),
            l.alias.clone().filter(|a| o.alias.as_ref() != Some(a)),
            !o.up,
        ),
    };
    if mtu.is_none() && alias.is_none() && !up {
        return None;
    }
    Some(Change::LinkSet {
        name: l.name.clone(),
        mtu,
        alias,
        up,
    })
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::NftReplace(ruleset) => write!(
                f,
                "nft -f - <<'EOF'\ntable inet {NFT_TABLE}\ndelete table inet {NFT_TABLE}\n{ruleset}EOF"
            ),
            Change::NftDelete => write!(f, "nft delete table inet {NFT_TABLE}"),
            Change::WgCreate { name, userspace: Some(false) } => {
                write!(f, "ip link add dev {name} type wireguard")
            }
            Change::WgCreate { name, userspace: Some(true) } => write!(f, "wireguard-go {name}"),
            Change::WgCreate { name, userspace: None } => {
                write!(f, "ip link add dev {name} type wireguard 2>/dev/null || wireguard-go {name}")
            }
            Change::WgSet {
                name,
                private_key_file,
                listen_port,
                peers,
                remove_peers,
            } => {
                write!(f, "wg set {name}")?;
                if let Some(k) = private_key_file {
                    write!(f, " private-key {}", k.display())?;
                }
                if let Some(p) = listen_port {
                    write!(f, " listen-port {p}")?;
                }
                for p in peers {
                    write!(f, " peer {}", p.public_key)?;
                    // The address written (a name as resolved now); a name
                    // that did not resolve is printed as `wg set` takes it.
                    match (p.endpoint_addr, &p.endpoint) {
                        (Some(a), _) => write!(f, " endpoint {a}")?,
                        (None, Some(e)) => write!(f, " endpoint {e}")?,
                        (None, None) => {}
                    }
                    let ips: Vec<String> = p.allowed_ips.iter().map(|c| c.to_string()).collect();
                    write!(f, " allowed-ips {}", if ips.is_empty() { "\"\"".into() } else { ips.join(",") })?;
                    write!(f, " persistent-keepalive {}", p.persistent_keepalive.map_or("off".into(), |k| k.to_string()))?;
                    // The file's name, as `wg set` takes it; never the key.
                    if let Some(k) = &p.preshared_key_file {
                        write!(f, " preshared-key {}", k.display())?;
                    }
                }
                for k in remove_peers {
                    write!(f, " peer {k} remove")?;
                }
                Ok(())
            }
            Change::LinkSet { name, mtu, alias, up } => {
                write!(f, "ip link set dev {name}")?;
                if let Some(m) = mtu {
                    write!(f, " mtu {m}")?;
                }
                if let Some(a) = alias {
                    write!(f, " alias {a}")?;
                }
                if *up {
                    write!(f, " up")?;
                }
                Ok(())
            }
            Change::LinkDel(name) => write!(f, "ip link del dev {name}"),
            // iproute2 before 6.3 cannot write an address protocol; Portal sets
            // it over netlink, so the comment says so rather than the command.
            Change::AddrAdd(a) => write!(f, "ip address add {} dev {}  # marked proto {PROTO}", a.cidr, a.dev),
            Change::AddrDel(a) => write!(f, "ip address del {} dev {}", a.cidr, a.dev),
            Change::RouteAdd(r) => write!(f, "ip route add {} proto {PROTO}", route_spec(r)),
            Change::RouteReplace(r) => {
                write!(f, "ip route replace {} proto {PROTO}", route_spec(r))
            }
            Change::RouteDel(r) => write!(f, "ip route del {}", route_spec(r)),
            Change::RuleAdd(r) => write!(f, "ip rule add {} protocol {PROTO}", rule_spec(r)),
            Change::RuleDel(r) => write!(f, "ip rule del {}", rule_spec(r)),
            Change::Sysctl(s) => write!(f, "sysctl -w {}={}", s.key, s.value),
            Change::Routes(b) => write!(f, "{b}"),
        }
    }
}

fn dst(c: &Cidr) -> String {
    if c.is_default() {
        "default".into()
    } else {
        c.to_string()
    }
}

fn table_name(t: u32) -> String {
    if t == MAIN_TABLE {
        "main".into()
    } else {
        t.to_string()
    }
}

fn route_spec(r: &Route) -> String {
    let mut s = match &r.kind {
        RouteKind::Unreachable => format!("unreachable {}", dst(&r.dst)),
        RouteKind::Throw => format!("throw {}", dst(&r.dst)),
        RouteKind::Dev(d) => format!("{} dev {d}", dst(&r.dst)),
        RouteKind::Via(gw, d) => format!("{} via {gw} dev {d}", dst(&r.dst)),
    };
    if r.table != MAIN_TABLE {
        s.push_str(&format!(" table {}", r.table));
    }
    if r.metric != 0 {
        s.push_str(&format!(" metric {}", r.metric));
    }
    s
}

fn rule_spec(r: &Rule) -> String {
    let mut s = format!("priority {}", r.priority);
    if let Some(c) = &r.from {
        s.push_str(&format!(" from {c}"));
    }
    if let Some(c) = &r.to {
        s.push_str(&format!(" to {c}"));
    }
    s.push_str(&format!(" lookup {}", table_name(r.table)));
    s
}

#[cfg(test)]
mod tests;
