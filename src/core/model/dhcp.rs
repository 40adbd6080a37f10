//! Validation of a LAN's `dhcp` section into the server's model.

use super::{check_hostname, Errors};
use crate::core::cidr::Cidr;
use crate::core::config;
use std::net::{IpAddr, Ipv4Addr};

pub const DEFAULT_LEASE_TIME: u32 = 12 * 3600;
/// Shorter leases make clients chatter; longer ones outlive a reconfig.
pub const MIN_LEASE_TIME: u32 = 60;
pub const MAX_LEASE_TIME: u32 = 365 * 24 * 3600;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpServer {
    /// The LAN's router address: server identifier, default gateway.
    pub router: Ipv4Addr,
    pub prefix_len: u8,
    /// Inclusive range handed out dynamically.
    pub pool_start: Ipv4Addr,
    pub pool_end: Ipv4Addr,
    pub lease_time: u32,
    pub dns: Vec<Ipv4Addr>,
    /// `dns` was not given: hand out the WAN's DNS servers, which for a
    /// DHCP WAN are known only once it has a lease.
    pub dns_from_wan: bool,
    pub domain: Option<String>,
    pub mtu: Option<u16>,
    pub statics: Vec<StaticLease>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticLease {
    pub mac: [u8; 6],
    pub address: Ipv4Addr,
    pub hostname: Option<String>,
}

impl DhcpServer {
    pub fn mask(&self) -> Ipv4Addr {
        Ipv4Addr::from(
            u32::MAX
                .checked_shl(32 - self.prefix_len as u32)
                .unwrap_or(0),
        )
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.router) & u32::from(self.mask()))
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()) | !u32::from(self.mask()))
    }

    /// On this LAN's subnet (network and broadcast addresses included).
    pub fn on_subnet(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & u32::from(self.mask()) == u32::from(self.network())
    }

    pub fn in_pool(&self, ip: Ipv4Addr) -> bool {
        (self.pool_start..=self.pool_end).contains(&ip)
    }

    /// An address a client may hold: on the subnet, not the router, the
    /// network or the broadcast address.
    pub fn assignable(&self, ip: Ipv4Addr) -> bool {
        self.on_subnet(ip) && ip != self.router && ip != self.network() && ip != self.broadcast()
    }

    pub fn static_for_mac(&self, mac: &[u8]) -> Option<&StaticLease> {
        self.statics.iter().find(|s| s.mac[..] == *mac)
    }

    pub fn static_for_addr(&self, ip: Ipv4Addr) -> Option<&StaticLease> {
        self.statics.iter().find(|s| s.address == ip)
    }
}

pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    let bad = || format!("`{s}` is not a MAC address (like 02:00:00:00:00:01)");
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return Err(bad());
        }
        mac[i] = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if mac[0] & 1 == 1 {
        return Err(format!(
            "`{s}` is a multicast MAC address, never a client's"
        ));
    }
    Ok(mac)
}

fn parse_v4(s: &str) -> Result<Ipv4Addr, String> {
    s.parse()
        .map_err(|_| format!("`{s}` is not an IPv4 address"))
}

pub(super) fn validate(
    at: &str,
    d: &config::DhcpServer,
    lan: Cidr,
    wan_dns: &[IpAddr],
    e: &mut Errors,
) -> Option<DhcpServer> {
    let router = router_address(at, lan, e)?;
    let mut s = DhcpServer {
        router,
        prefix_len: lan.len,
        pool_start: router,
        pool_end: router,
        lease_time: d.lease_time.unwrap_or(DEFAULT_LEASE_TIME),
        dns: Vec::new(),
        dns_from_wan: d.dns.is_none(),
        domain: None,
        mtu: d.mtu,
        statics: Vec::new(),
    };
    let mut ok = true;
    (s.pool_start, s.pool_end) = (
        Ipv4Addr::from(u32::from(s.network()) + 1),
        Ipv4Addr::from(u32::from(s.broadcast()) - 1),
    );
    if let Some(p) = &d.pool {
        ok &= pool(at, p, lan, &mut s, e);
    }
    if !(MIN_LEASE_TIME..=MAX_LEASE_TIME).contains(&s.lease_time) {
        ok = false;
        e.add(
            format!("{at}.lease_time"),
            format!(
                "{} s is outside {MIN_LEASE_TIME}..{MAX_LEASE_TIME} s",
                s.lease_time
            ),
        );
    }
    ok &= dns(at, d.dns.as_deref(), wan_dns, &mut s.dns, e);
    ok &= domain(at, d.domain.as_deref(), &mut s.domain, e);
    if let Some(mtu) = d.mtu {
        // RFC 2132 allows down to 68, but IPv4 hosts must take 576.
        if !(576..=9000).contains(&mtu) {
            ok = false;
            e.add(format!("{at}.mtu"), format!("{mtu} is outside 576..9000"));
        }
    }
    ok &= static_leases(at, &d.static_leases, lan, &mut s, e);
    ok.then_some(s)
}

/// The server's own address: the LAN's, IPv4 and with room for clients.
fn router_address(at: &str, lan: Cidr, e: &mut Errors) -> Option<Ipv4Addr> {
    let IpAddr::V4(router) = lan.addr else {
        e.add(at, "DHCP needs an IPv4 LAN address");
        return None;
    };
    if lan.len > 30 {
        e.add(
            at,
            format!(
                "the LAN prefix /{} has no room for clients: use /30 or shorter",
                lan.len
            ),
        );
        return None;
    }
    Some(router)
}

/// The configured pool into `s`: both ends client addresses, in order.
/// False (errors added) when it is not.
fn pool(at: &str, p: &config::PoolRange, lan: Cidr, s: &mut DhcpServer, e: &mut Errors) -> bool {
    let mut ok = true;
    let start = e.parse(&format!("{at}.pool.start"), parse_v4(&p.start));
    let end = e.parse(&format!("{at}.pool.end"), parse_v4(&p.end));
    for (field, ip) in [("start", start), ("end", end)] {
        if let Some(ip) = ip {
            if !s.assignable(ip) {
                ok = false;
                e.add(
                    format!("{at}.pool.{field}"),
                    format!("{ip} is not a client address of {}", lan.network()),
                );
            }
        }
    }
    match (start, end) {
        (Some(a), Some(b)) if a > b => {
            ok = false;
            e.add(format!("{at}.pool"), format!("start {a} is after end {b}"));
        }
        (Some(a), Some(b)) => (s.pool_start, s.pool_end) = (a, b),
        _ => ok = false,
    }
    ok
}

/// The DNS servers handed out into `out`: those configured, or else the
/// WAN's IPv4 ones. False (errors added) when one does not parse.
fn dns(
    at: &str,
    configured: Option<&[String]>,
    wan_dns: &[IpAddr],
    out: &mut Vec<Ipv4Addr>,
    e: &mut Errors,
) -> bool {
    let mut ok = true;
    match configured {
        Some(list) => {
            for (i, a) in list.iter().enumerate() {
                match e.parse(&format!("{at}.dns[{i}]"), parse_v4(a)) {
                    Some(ip) => out.push(ip),
                    None => ok = false,
                }
            }
        }
        None => {
            *out = wan_dns
                .iter()
                .filter_map(|a| match a {
                    IpAddr::V4(v4) => Some(*v4),
                    IpAddr::V6(_) => None,
                })
                .collect()
        }
    }
    ok
}

/// The domain handed out into `out`, without a trailing dot. False (an
/// error added) when it is not a domain name.
fn domain(at: &str, configured: Option<&str>, out: &mut Option<String>, e: &mut Errors) -> bool {
    let Some(dom) = configured else {
        return true;
    };
    match check_hostname(dom) {
        Ok(()) => {
            *out = Some(dom.trim_end_matches('.').to_string());
            true
        }
        Err(_) => {
            e.add(
                format!("{at}.domain"),
                format!("`{dom}` is not a valid domain name"),
            );
            false
        }
    }
}

/// The static leases into `s.statics`: each a client address with a
/// one-label host name, no MAC or address given twice. False (errors
/// added) when one is not.
fn static_leases(
    at: &str,
    leases: &[config::StaticLease],
    lan: Cidr,
    s: &mut DhcpServer,
    e: &mut Errors,
) -> bool {
    let mut ok = true;
    // Config index of each entry in `s.statics`, for messages.
    let mut index = Vec::new();
    for (i, st) in leases.iter().enumerate() {
        let sat = format!("{at}.static[{i}]");
        let mac = e.parse(&format!("{sat}.mac"), parse_mac(&st.mac));
        let addr = e.parse(&format!("{sat}.address"), parse_v4(&st.address));
        if let Some(ip) = addr {
            if !s.assignable(ip) {
                ok = false;
                e.add(
                    format!("{sat}.address"),
                    format!("{ip} is not a client address of {}", lan.network()),
                );
            }
        }
        if let Some(h) = &st.hostname {
            if check_hostname(h).is_err() || h.contains('.') {
                ok = false;
                e.add(
                    format!("{sat}.hostname"),
                    format!("`{h}` is not a valid host name (one label)"),
                );
            }
        }
        let (Some(mac), Some(address)) = (mac, addr) else {
            ok = false;
            continue;
        };
        if let Some(j) = s.statics.iter().position(|o| o.mac == mac) {
            ok = false;
            e.add(
                format!("{sat}.mac"),
                format!("{} is already given in {at}.static[{}]", st.mac, index[j]),
            );
        }
        if let Some(j) = s.statics.iter().position(|o| o.address == address) {
            ok = false;
            e.add(
                format!("{sat}.address"),
                format!("{address} is already given in {at}.static[{}]", index[j]),
            );
        }
        index.push(i);
        s.statics.push(StaticLease {
            mac,
            address,
            hostname: st.hostname.clone(),
        });
    }
    ok
}
