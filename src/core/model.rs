//! The validated model: what the config means, with every value checked.
//!
//! `validate` is pure (no file or kernel access) and reports every problem
//! it finds, each with the JSON path of the offending value. Key files are
//! checked separately (keys.rs) because that needs the file system.

use crate::core::cidr::Cidr;
use crate::core::config::{self, Backend, Config};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

pub mod clients;
pub mod dhcp;
pub mod dns;
pub mod split;
pub mod status_page;
pub mod wifi;
pub use clients::Clients;
pub use dhcp::DhcpServer;
pub use dns::LanDns;
pub use split::{Split, SplitKind};
pub use status_page::StatusPage;
pub use wifi::Radio;

/// The routing table of the first portal when none is configured; later
/// portals take the next free numbers (in name order). 51820 follows wg-quick.
pub const FIRST_TABLE: u32 = 51820;
pub const DEFAULT_MTU: u32 = 1280;
/// The route choice that means "no portal, NAT out the WAN".
pub const DIRECT: &str = "direct";

#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub hostname: Option<String>,
    pub backend: Backend,
    pub wan: Wan,
    pub lans: Vec<Lan>,
    pub portals: Vec<Portal>,
    /// None: switched off (or no LAN to serve it on).
    pub status_page: Option<StatusPage>,
    /// WiFi radios that serve at least one LAN's SSID.
    pub radios: Vec<Radio>,
    /// The forwarding fast path (a flowtable) where the kernel has it.
    pub fast_path: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Wan {
    pub interface: String,
    pub mode: WanMode,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WanMode {
    Static {
        address: Cidr,
        gateway: Ipv4Addr,
        dns: Vec<IpAddr>,
    },
    Dhcp {
        hostname: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Lan {
    pub name: String,
    pub interface: String,
    pub address: Cidr,
    pub route: LanRoute,
    pub kill_switch: bool,
    pub dhcp: Option<DhcpServer>,
    /// A DNS forwarder on the router's LAN address.
    pub dns: Option<LanDns>,
    /// Destination lists and the LAN's own table (only `via` a portal).
    pub split: Option<Split>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LanRoute {
    Direct,
    Portal(PortalRef),
}

/// A LAN's `via` portal, resolved at validation: its place in
/// `Model::portals` (so no lookup by name can miss later) and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalRef {
    pub index: usize,
    pub name: String,
}

impl std::fmt::Display for PortalRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Portal {
    pub name: String,
    pub interface: String,
    pub private_key_file: PathBuf,
    pub listen_port: Option<u16>,
    pub addresses: Vec<Cidr>,
    pub mtu: u32,
    pub table: u32,
    pub masquerade: bool,
    pub exit: bool,
    pub remote_subnets: Vec<Cidr>,
    pub peers: Vec<Peer>,
    /// Road-warrior devices accepted (see model/clients.rs).
    pub clients: Option<Clients>,
    /// Resolvers reached through the tunnel (the IPv4 ones are `lans.L.dns`'s
    /// default), and the DNS of road-warrior devices.
    pub dns: Vec<IpAddr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    pub name: Option<String>,
    /// Base64, as WireGuard prints it (validated: 32 bytes).
    pub public_key: String,
    pub endpoint: Option<Endpoint>,
    pub allowed_ips: Vec<Cidr>,
    pub persistent_keepalive: Option<u16>,
    pub preshared_key_file: Option<PathBuf>,
}

/// `host:port`, where host is an IP address or a DNS name resolved at apply time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// One problem in the config: where (JSON path) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

impl Model {
    pub fn portal(&self, name: &str) -> Option<&Portal> {
        self.portals.iter().find(|p| p.name == name)
    }

    /// The portal LAN `l` leaves through; None for a direct LAN.
    pub fn via(&self, l: &Lan) -> Option<&Portal> {
        match &l.route {
            LanRoute::Portal(r) => Some(&self.portals[r.index]),
            LanRoute::Direct => None,
        }
    }

    /// Interfaces hostapd makes (every SSID but a radio's first): absent
    /// until it runs, and made again when it restarts.
    pub fn hostapd_interfaces(&self) -> impl Iterator<Item = &str> {
        self.radios
            .iter()
            .flat_map(|r| r.bsses.iter().skip(1).map(|b| b.interface.as_str()))
    }

    /// `interface` is one that hostapd makes (see `hostapd_interfaces`).
    pub fn made_by_hostapd(&self, interface: &str) -> bool {
        self.hostapd_interfaces().any(|i| i == interface)
    }

    /// The LANs whose traffic leaves through `portal`.
    pub fn lans_via<'a>(&'a self, portal: &'a str) -> impl Iterator<Item = &'a Lan> + 'a {
        self.lans
            .iter()
            .filter(move |l| matches!(&l.route, LanRoute::Portal(r) if r.name == portal))
    }

    /// The split list files in use, watched by the agent for changes.
    pub fn split_files(&self) -> impl Iterator<Item = &std::path::Path> {
        self.lans
            .iter()
            .filter_map(|l| l.split.as_ref())
            .flat_map(|s| s.files.iter().map(|f| f.as_path()))
    }
}

/// Collects errors so that one run of `portal check` reports all of them.
#[derive(Default)]
struct Errors(Vec<ConfigError>);

impl Errors {
    fn add(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.0.push(ConfigError {
            path: path.into(),
            reason: reason.into(),
        });
    }

    /// Parses a value, recording the error under `path` on failure.
    fn parse<T>(&mut self, path: &str, r: Result<T, String>) -> Option<T> {
        r.map_err(|e| self.add(path, e)).ok()
    }
}

/// Checks a parsed config and builds the model, or returns every problem found.
pub fn validate(cfg: &Config) -> Result<Model, Vec<ConfigError>> {
    validate_with(cfg, &split::Files::new())
}

/// `validate`, given the text of the split list files (read by load.rs).
pub fn validate_with(cfg: &Config, files: &split::Files) -> Result<Model, Vec<ConfigError>> {
    let mut e = Errors::default();
    if let Some(h) = &cfg.hostname {
        if let Err(r) = check_hostname(h) {
            e.add("hostname", r);
        }
    }
    let wan = validate_wan(&cfg.wan, cfg.hostname.as_ref(), &mut e);
    let portals = validate_portals(cfg, &mut e);
    let mut portals = portals;
    clients::validate(cfg, &mut portals, &mut e);
    let mut lans = validate_lans(cfg, wan.as_ref(), &portals, files, &mut e);
    split::number_tables(lans.iter_mut().filter_map(|l| l.split.as_mut()), &portals);
    check_interfaces(cfg, &mut e);
    check_overlaps(wan.as_ref(), &lans, &portals, &mut e);
    check_allowed_ips_across_portals(&portals, &mut e);
    let status_page = status_page::validate(cfg, &mut e);
    let radios = wifi::validate(cfg, &mut e);
    match (wan, e.0.is_empty()) {
        (Some(wan), true) => Ok(Model {
            hostname: cfg.hostname.clone(),
            backend: cfg.wireguard_backend,
            wan,
            lans,
            portals,
            status_page,
            radios,
            fast_path: cfg.fast_path.unwrap_or(true),
        }),
        _ => Err(e.0),
    }
}

fn validate_wan(w: &config::Wan, hostname: Option<&String>, e: &mut Errors) -> Option<Wan> {
    let mode = match (&w.static_, &w.dhcp) {
        (Some(s), None) => {
            let address = e.parse("wan.static.address", parse_host_cidr(&s.address, true));
            let gateway = e.parse(
                "wan.static.gateway",
                s.gateway
                    .parse::<Ipv4Addr>()
                    .map_err(|_| format!("`{}` is not an IPv4 address", s.gateway)),
            );
            let mut dns = Vec::new();
            for (i, d) in s.dns.iter().enumerate() {
                if let Some(ip) = e.parse(
                    &format!("wan.static.dns[{i}]"),
                    d.parse::<IpAddr>()
                        .map_err(|_| format!("`{d}` is not an IP address")),
                ) {
                    dns.push(ip);
                }
            }
            let (address, gateway) = (address?, gateway?);
            if !address.contains(&IpAddr::V4(gateway)) {
                e.add(
                    "wan.static.gateway",
                    format!(
                        "{gateway} is not inside the WAN network {}",
                        address.network()
                    ),
                );
            } else if IpAddr::V4(gateway) == address.addr {
                e.add("wan.static.gateway", "is the WAN address itself");
            }
            WanMode::Static {
                address,
                gateway,
                dns,
            }
        }
        (None, Some(d)) => {
            if let Some(h) = &d.hostname {
                if check_hostname(h).is_err() {
                    e.add(
                        "wan.dhcp.hostname",
                        format!("`{h}` is not a valid host name"),
                    );
                    return None;
                }
            }
            // Option 12 defaults to the router's own name.
            WanMode::Dhcp {
                hostname: d.hostname.clone().or_else(|| hostname.cloned()),
            }
        }
        (Some(_), Some(_)) => {
            e.add("wan", "give either `static` or `dhcp`, not both");
            return None;
        }
        (None, None) => {
            e.add("wan", "missing the address mode: add `static` or `dhcp`");
            return None;
        }
    };
    Some(Wan {
        interface: w.interface.clone(),
        mode,
    })
}

fn validate_portals(cfg: &Config, e: &mut Errors) -> Vec<Portal> {
    // Portals without a `table` take the free numbers from FIRST_TABLE up,
    // skipping the ones other portals set explicitly.
    let explicit: Vec<u32> = cfg.portals.values().filter_map(|p| p.table).collect();
    let mut auto = (FIRST_TABLE..).filter(|t| !explicit.contains(t));
    let mut portals = Vec::new();
    for (name, p) in &cfg.portals {
        let table = p
            .table
            .unwrap_or_else(|| auto.next().unwrap_or(FIRST_TABLE));
        portals.push(validate_portal(name, p, table, e));
    }
    check_portals_apart(&portals, e);
    portals
}

/// One portal, its routing table chosen; errors are added, the portal is
/// built anyway (validate_with discards the model when there are any).
fn validate_portal(name: &str, p: &config::Portal, table: u32, e: &mut Errors) -> Portal {
    let at = format!("portals.{name}");
    let mtu = p.mtu.unwrap_or(DEFAULT_MTU);
    check_portal_settings(&at, name, p, mtu, table, e);
    if p.address.is_empty() {
        e.add(
            format!("{at}.address"),
            "a portal needs at least one tunnel address",
        );
    }
    let addresses: Vec<Cidr> = p
        .address
        .iter()
        .enumerate()
        .filter_map(|(j, a)| e.parse(&format!("{at}.address[{j}]"), parse_host_cidr(a, false)))
        .collect();
    let remote_subnets: Vec<Cidr> = p
        .remote_subnets
        .iter()
        .enumerate()
        .filter_map(|(j, a)| e.parse(&format!("{at}.remote_subnets[{j}]"), parse_network(a)))
        .collect();
    let peers = validate_peers(&at, &p.peers, e);
    let dns = dns::portal_servers(&at, &p.dns, e);
    check_remote_subnets_routed(&at, &remote_subnets, &peers, e);
    Portal {
        name: name.to_string(),
        interface: p.interface.clone(),
        private_key_file: p.private_key_file.clone(),
        listen_port: p.listen_port,
        addresses,
        mtu,
        table,
        masquerade: p.masquerade,
        exit: p.exit,
        remote_subnets,
        peers,
        clients: None,
        dns,
    }
}

/// A portal's name, MTU, listen port and table, each on its own.
fn check_portal_settings(
    at: &str,
    name: &str,
    p: &config::Portal,
    mtu: u32,
    table: u32,
    e: &mut Errors,
) {
    if let Err(r) = check_name(name) {
        e.add(at, r);
    }
    if name == DIRECT {
        e.add(
            at,
            "`direct` is reserved (it means \"no portal\" in a LAN's `via`)",
        );
    }
    if !(1280..=9000).contains(&mtu) {
        e.add(
            format!("{at}.mtu"),
            format!("{mtu} is outside 1280..9000 (below 1280 breaks IPv6 in the tunnel)"),
        );
    }
    if p.listen_port == Some(0) {
        e.add(
            format!("{at}.listen_port"),
            "0 is not a port (leave it out for a random one)",
        );
    }
    if matches!(table, 0 | 253..=255) {
        e.add(
            format!("{at}.table"),
            format!(
                "table {table} is reserved by the kernel (0, 253 default, 254 main, 255 local)"
            ),
        );
    }
}

/// Each remote subnet must be inside some peer's allowed_ips.
fn check_remote_subnets_routed(at: &str, remote_subnets: &[Cidr], peers: &[Peer], e: &mut Errors) {
    for (j, subnet) in remote_subnets.iter().enumerate() {
        if !peers
            .iter()
            .any(|pe| pe.allowed_ips.iter().any(|a| a.covers(subnet)))
        {
            e.add(
                format!("{at}.remote_subnets[{j}]"),
                format!("{subnet} is not inside any peer's allowed_ips: WireGuard would drop its traffic"),
            );
        }
    }
}

/// No two portals share a routing table or a listen port.
fn check_portals_apart(portals: &[Portal], e: &mut Errors) {
    for (i, a) in portals.iter().enumerate() {
        for b in &portals[..i] {
            if a.table == b.table {
                e.add(
                    format!("portals.{}.table", a.name),
                    format!("table {} is also used by portal `{}`", a.table, b.name),
                );
            }
            if a.listen_port.is_some() && a.listen_port == b.listen_port {
                e.add(
                    format!("portals.{}.listen_port", a.name),
                    format!(
                        "port {} is also used by portal `{}`",
                        a.listen_port.unwrap_or(0),
                        b.name
                    ),
                );
            }
        }
    }
}

fn validate_peers(at: &str, peers: &[config::Peer], e: &mut Errors) -> Vec<Peer> {
    let mut out: Vec<Peer> = Vec::new();
    for (j, p) in peers.iter().enumerate() {
        let pat = format!("{at}.peers[{j}]");
        let public_key = e.parse(&format!("{pat}.public_key"), check_key(&p.public_key));
        if let Some(k) = &public_key {
            if let Some(other) = out.iter().position(|o| &o.public_key == k) {
                e.add(
                    format!("{pat}.public_key"),
                    format!("the same key as {at}.peers[{other}]"),
                );
            }
        }
        let endpoint = p
            .endpoint
            .as_ref()
            .and_then(|s| e.parse(&format!("{pat}.endpoint"), parse_endpoint(s)));
        let mut allowed_ips: Vec<Cidr> = Vec::new();
        for (k, a) in p.allowed_ips.iter().enumerate() {
            let path = format!("{pat}.allowed_ips[{k}]");
            let Some(c) = e.parse(&path, parse_network(a)) else {
                continue;
            };
            // WireGuard gives an allowed IP to the last peer that claims it,
            // silently: the first peer would lose its traffic. Only the same
            // prefix clashes: nested ones are fine (longest prefix wins, so an
            // exit peer with 0.0.0.0/0 can sit next to a site peer's subnet).
            for (oj, o) in out.iter().enumerate() {
                if o.allowed_ips.contains(&c) {
                    e.add(
                        &path,
                        format!("{c} is also claimed by {at}.peers[{oj}]: WireGuard would silently give it to one peer only"),
                    );
                }
            }
            if let Some(clash) = allowed_ips.iter().find(|x| x.overlaps(&c)) {
                e.add(&path, format!("{c} overlaps {clash} of the same peer"));
            }
            allowed_ips.push(c);
        }
        out.push(Peer {
            name: p.name.clone(),
            public_key: public_key.unwrap_or_default(),
            endpoint,
            allowed_ips,
            persistent_keepalive: p.persistent_keepalive.filter(|k| *k > 0),
            preshared_key_file: p.preshared_key_file.clone(),
        });
    }
    out
}

fn validate_lans(
    cfg: &Config,
    wan: Option<&Wan>,
    portals: &[Portal],
    files: &split::Files,
    e: &mut Errors,
) -> Vec<Lan> {
    let wan_dns: &[IpAddr] = match wan.map(|w| &w.mode) {
        Some(WanMode::Static { dns, .. }) => dns,
        _ => &[],
    };
    let mut lans = Vec::new();
    for (name, l) in &cfg.lans {
        let at = format!("lans.{name}");
        if let Err(r) = check_name(name) {
            e.add(&at, r);
        }
        let address = e.parse(&format!("{at}.address"), parse_host_cidr(&l.address, true));
        let route = if l.via == DIRECT {
            LanRoute::Direct
        } else {
            let index = portals.iter().position(|p| p.name == l.via);
            match index.map(|i| &portals[i]) {
                None => {
                    let known: Vec<&str> = portals.iter().map(|p| p.name.as_str()).collect();
                    e.add(
                        format!("{at}.via"),
                        format!(
                            "no portal named `{}` (portals: {}; or `direct`)",
                            l.via,
                            if known.is_empty() {
                                "none".to_string()
                            } else {
                                known.join(", ")
                            }
                        ),
                    );
                }
                Some(p) => {
                    let default_v4 = Cidr::default_for(false);
                    if !p
                        .peers
                        .iter()
                        .any(|pe| pe.allowed_ips.contains(&default_v4))
                    {
                        e.add(
                            format!("{at}.via"),
                            format!(
                                "portal `{}` has no peer with allowed_ips 0.0.0.0/0: WireGuard would drop this LAN's internet traffic",
                                p.name
                            ),
                        );
                    }
                }
            }
            LanRoute::Portal(PortalRef {
                // A missing portal is an error above: no model is made.
                index: index.unwrap_or(usize::MAX),
                name: l.via.clone(),
            })
        };
        if let Some(address) = address {
            let mut dhcp = l
                .dhcp
                .as_ref()
                .and_then(|d| dhcp::validate(&format!("{at}.dhcp"), d, address, wan_dns, e));
            let dns = l
                .dns
                .as_ref()
                .and_then(|d| dns::validate_lan(&at, d, address, &route, portals, wan, e));
            // Clients ask the router, unless `dhcp.dns` says otherwise.
            if let (Some(s), Some(d)) = (dhcp.as_mut(), &dns) {
                if l.dhcp.as_ref().is_some_and(|c| c.dns.is_none()) {
                    s.dns = vec![d.listen];
                    s.dns_from_wan = false;
                }
            }
            let via_portal = matches!(route, LanRoute::Portal(_));
            let split = l
                .split
                .as_ref()
                .and_then(|s| split::validate(&format!("{at}.split"), s, via_portal, files, e));
            lans.push(Lan {
                name: name.clone(),
                interface: l.interface.clone(),
                address,
                route,
                kill_switch: l.kill_switch,
                dhcp,
                dns,
                split,
            });
        }
    }
    lans
}

/// Interface names: valid for Linux, and each used for one role only.
fn check_interfaces(cfg: &Config, e: &mut Errors) {
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut names = vec![("wan.interface".to_string(), &cfg.wan.interface)];
    names.extend(
        cfg.lans
            .iter()
            .map(|(n, l)| (format!("lans.{n}.interface"), &l.interface)),
    );
    names.extend(
        cfg.portals
            .iter()
            .map(|(n, p)| (format!("portals.{n}.interface"), &p.interface)),
    );
    for (path, name) in names {
        if let Err(r) = check_ifname(name) {
            e.add(&path, r);
        } else if let Some((other, _)) = seen.iter().find(|(_, n)| n == name) {
            e.add(
                &path,
                format!("interface `{name}` is already used by {other}"),
            );
        }
        seen.push((path, name.clone()));
    }
}

/// Networks the router is attached to or routes must not overlap: the kernel
/// would pick one route and the other network would be unreachable.
fn check_overlaps(wan: Option<&Wan>, lans: &[Lan], portals: &[Portal], e: &mut Errors) {
    let mut nets: Vec<(String, Cidr)> = Vec::new();
    if let Some(Wan {
        mode: WanMode::Static { address, .. },
        ..
    }) = wan
    {
        nets.push(("wan.static.address".into(), address.network()));
    }
    for l in lans {
        nets.push((format!("lans.{}.address", l.name), l.address.network()));
    }
    for p in portals {
        for (j, a) in p.addresses.iter().enumerate() {
            nets.push((format!("portals.{}.address[{j}]", p.name), a.network()));
        }
        for (j, s) in p.remote_subnets.iter().enumerate() {
            nets.push((format!("portals.{}.remote_subnets[{j}]", p.name), *s));
        }
    }
    for (i, (path, net)) in nets.iter().enumerate() {
        if let Some((other, onet)) = nets[..i].iter().find(|(_, o)| o.overlaps(net)) {
            e.add(path, format!("{net} overlaps {onet} of {other}"));
        }
    }
}

/// Across portals, allowed IPs other than a default route must not overlap:
/// Portal routes them in the main table, where only one portal can win.
/// (Default routes live in each portal's own table, so several exits can
/// each carry 0.0.0.0/0.)
fn check_allowed_ips_across_portals(portals: &[Portal], e: &mut Errors) {
    let mut claimed: Vec<(String, Cidr)> = Vec::new();
    for p in portals {
        let mut mine = Vec::new();
        for (j, peer) in p.peers.iter().enumerate() {
            for (k, a) in peer.allowed_ips.iter().enumerate() {
                if a.is_default() {
                    continue;
                }
                let path = format!("portals.{}.peers[{j}].allowed_ips[{k}]", p.name);
                if let Some((other, o)) = claimed.iter().find(|(_, o)| o.overlaps(a)) {
                    e.add(
                        &path,
                        format!("{a} overlaps {o} of {other} (another portal)"),
                    );
                }
                mine.push((path, *a));
            }
        }
        claimed.extend(mine);
    }
}

/// An interface address: host bits set, IPv4 when `v4_only`.
fn parse_host_cidr(s: &str, v4_only: bool) -> Result<Cidr, String> {
    let c: Cidr = s.parse()?;
    if v4_only && c.is_v6() {
        return Err(format!("`{s}` must be an IPv4 address/prefix"));
    }
    if c.len < 31 && !c.is_v6() && (c.is_network() || c.broadcast_v4() == Some(ipv4(&c.addr))) {
        return Err(format!(
            "{} is the network or broadcast address of {}; give the router's own address",
            c.addr,
            c.network()
        ));
    }
    Ok(c)
}

/// A network prefix: host bits must be clear (a typo detector).
fn parse_network(s: &str) -> Result<Cidr, String> {
    let c: Cidr = s.parse()?;
    if !c.is_network() {
        return Err(format!(
            "`{s}` has host bits set; did you mean {}?",
            c.network()
        ));
    }
    Ok(c)
}

fn ipv4(a: &IpAddr) -> Ipv4Addr {
    match a {
        IpAddr::V4(v) => *v,
        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    }
}

pub(crate) fn parse_endpoint(s: &str) -> Result<Endpoint, String> {
    let bad = || format!("`{s}` is not HOST:PORT");
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if port == 0 {
        return Err(format!("`{s}`: port 0 is not a port"));
    }
    let host = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("`{v6}` is not an IPv6 address"))?;
        v6.to_string()
    } else if host.parse::<Ipv4Addr>().is_ok() {
        host.to_string()
    } else {
        check_hostname(host).map_err(|r| format!("host `{host}`: {r}"))?;
        host.to_string()
    };
    Ok(Endpoint { host, port })
}

fn check_hostname(h: &str) -> Result<(), String> {
    let ok_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if h.is_empty() || h.len() > 253 || !h.trim_end_matches('.').split('.').all(ok_label) {
        return Err(format!("`{h}` is not a valid host name"));
    }
    Ok(())
}

/// Portal and LAN names become parts of nft comments and log lines.
fn check_name(n: &str) -> Result<(), String> {
    if n.is_empty()
        || n.len() > 32
        || !n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!("name `{n}` must be 1-32 of a-z, A-Z, 0-9, - and _"));
    }
    Ok(())
}

/// Linux's own rules for a network interface name (dev_valid_name).
pub fn check_ifname(n: &str) -> Result<(), String> {
    if n.is_empty() {
        return Err("interface name is empty".into());
    }
    if n.len() > 15 {
        return Err(format!(
            "interface name `{n}` is {} bytes; Linux allows 15",
            n.len()
        ));
    }
    if n == "." || n == ".." || n.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        return Err(format!(
            "`{n}` is not a valid interface name (no /, :, spaces)"
        ));
    }
    Ok(())
}

/// A WireGuard key: base64 of 32 bytes.
pub fn check_key(k: &str) -> Result<String, String> {
    match wireguard_control::Key::from_base64(k.trim()) {
        Ok(key) => Ok(key.to_base64()),
        Err(_) => Err("not a WireGuard key (base64 of 32 bytes, as `wg pubkey` prints)".into()),
    }
}

#[cfg(test)]
mod tests;
