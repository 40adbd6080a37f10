//! Validation of `portals.P.dns` and `lans.L.dns` into the forwarder's
//! model (src/dns/).

use super::{Errors, LanRoute, Portal, Wan, WanMode};
use crate::core::cidr::Cidr;
use crate::core::config;
use std::net::{IpAddr, Ipv4Addr};

/// Answers a LAN's forwarder keeps when `lans.L.dns.cache` is not given.
pub const DEFAULT_CACHE_ENTRIES: usize = 10_000;

/// A LAN's DNS forwarder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanDns {
    /// The LAN's router address: clients ask here (port 53).
    pub listen: Ipv4Addr,
    /// Upstream resolvers (port 53), in the order they are tried.
    pub servers: Vec<Ipv4Addr>,
    /// `servers` comes from the WAN's DHCP lease, known only at run time.
    pub servers_from_wan: bool,
    /// Via a portal: its IPv4 tunnel address. Upstream queries leave from
    /// it, so the rule `from ADDRESS lookup TABLE` (desired.rs) sends them
    /// into the tunnel, and when the tunnel is down its kill switch answers:
    /// they never leave by the WAN.
    pub source: Option<Ipv4Addr>,
    /// Answers the forwarder keeps; 0: no cache.
    pub cache: usize,
}

/// `lans.L.dns.cache` at most: about this many KiB of memory, too.
pub const MAX_CACHE: u64 = 100_000;

fn parse_v4(s: &str) -> Result<Ipv4Addr, String> {
    match s.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => Ok(v4),
        Ok(IpAddr::V6(_)) => Err(format!(
            "`{s}` is IPv6: queries go upstream from the tunnel's IPv4 address"
        )),
        Err(_) => Err(format!("`{s}` is not an IPv4 address")),
    }
}

fn parse_list(at: &str, list: &[String], e: &mut Errors) -> Vec<Ipv4Addr> {
    list.iter()
        .enumerate()
        .filter_map(|(i, s)| e.parse(&format!("{at}[{i}]"), parse_v4(s)))
        .collect()
}

/// `portals.P.dns`: resolvers reached through the portal's tunnel. IPv6
/// ones are kept for road-warrior devices' `DNS =`; the forwarder asks the
/// IPv4 ones only (it queries from the tunnel's IPv4 address).
pub(super) fn portal_servers(at: &str, list: &[String], e: &mut Errors) -> Vec<IpAddr> {
    list.iter()
        .enumerate()
        .filter_map(|(i, s)| {
            e.parse(
                &format!("{at}.dns[{i}]"),
                s.parse::<IpAddr>()
                    .map_err(|_| format!("`{s}` is not an IP address")),
            )
        })
        .collect()
}

/// `lans.L.dns`, for a LAN at `address` routed by `route`.
pub(super) fn validate_lan(
    at: &str,
    d: &config::LanDns,
    address: Cidr,
    route: &LanRoute,
    portals: &[Portal],
    wan: Option<&Wan>,
    e: &mut Errors,
) -> Option<LanDns> {
    let at = format!("{at}.dns");
    let IpAddr::V4(listen) = address.addr else {
        e.add(&at, "DNS needs an IPv4 LAN address");
        return None;
    };
    let explicit = d
        .servers
        .as_ref()
        .map(|l| parse_list(&format!("{at}.servers"), l, e));
    let mut out = LanDns {
        listen,
        servers: Vec::new(),
        servers_from_wan: false,
        source: None,
        cache: DEFAULT_CACHE_ENTRIES,
    };
    match d.cache {
        Some(n) if n > MAX_CACHE => e.add(
            format!("{at}.cache"),
            format!("{n} answers is too many: at most {MAX_CACHE} (0 turns the cache off)"),
        ),
        Some(n) => out.cache = n as usize,
        None => {}
    }
    match route {
        LanRoute::Portal(name) => {
            // A missing portal is reported by `via` already.
            let p = portals.get(name.index)?;
            out.source = p.addresses.iter().find_map(|a| match a.addr {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            });
            if out.source.is_none() {
                e.add(
                    &at,
                    format!("portal `{name}` has no IPv4 tunnel address to query from"),
                );
                return None;
            }
            out.servers = explicit.unwrap_or_else(|| {
                p.dns
                    .iter()
                    .filter_map(|a| match a {
                        IpAddr::V4(v4) => Some(*v4),
                        IpAddr::V6(_) => None,
                    })
                    .collect()
            });
            if out.servers.is_empty() {
                e.add(
                    format!("{at}.servers"),
                    format!("no upstream resolver: give `servers` here or an IPv4 `dns` in portals.{name}"),
                );
                return None;
            }
        }
        LanRoute::Direct => match (explicit, wan.map(|w| &w.mode)) {
            (Some(list), _) => out.servers = list,
            (None, Some(WanMode::Static { dns, .. })) => {
                out.servers = dns
                    .iter()
                    .filter_map(|a| match a {
                        IpAddr::V4(v4) => Some(*v4),
                        IpAddr::V6(_) => None,
                    })
                    .collect();
            }
            (None, Some(WanMode::Dhcp { .. })) => out.servers_from_wan = true,
            (None, None) => return None,
        },
    }
    if out.servers.is_empty() && !out.servers_from_wan {
        e.add(
            format!("{at}.servers"),
            "no upstream resolver: give `servers` here or IPv4 `dns` in wan.static",
        );
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use crate::core::config::parse;
    use crate::core::model::validate;
    use std::net::Ipv4Addr;

    const KEY: &str = "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE=";

    pub(super) fn config(lan_dns: &str, portal_dns: &str, wan: &str) -> String {
        format!(
            r#"{{
  "wan": {{ "interface": "wan0", {wan} }},
  "lans": {{
    "home": {{ "interface": "lan0", "address": "192.168.10.1/24", "via": "paris", "dhcp": {{}} {lan_dns} }},
    "office": {{ "interface": "lan1", "address": "192.168.11.1/24", "via": "direct", "dhcp": {{ "dns": ["9.9.9.9"] }}, "dns": {{}} }}
  }},
  "portals": {{ "paris": {{ "interface": "wg0", "private_key_file": "/k", "address": ["10.99.0.2/24"] {portal_dns},
      "peers": [ {{ "public_key": "{KEY}", "allowed_ips": ["0.0.0.0/0"] }} ] }} }}
}}"#
        )
    }

    pub(super) const STATIC_WAN: &str = r#""static": { "address": "198.51.100.2/24", "gateway": "198.51.100.1", "dns": ["198.51.100.1", "2001:db8::1"] }"#;

    fn errors(text: &str) -> Vec<String> {
        match validate(&parse(text).unwrap()) {
            Ok(_) => vec![],
            Err(e) => e.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn via_portal_uses_portal_dns_from_the_tunnel_address() {
        let text = config(r#", "dns": {}"#, r#", "dns": ["10.64.0.1"]"#, STATIC_WAN);
        let m = validate(&parse(&text).unwrap()).unwrap();
        let home = m.lans.iter().find(|l| l.name == "home").unwrap();
        let d = home.dns.as_ref().unwrap();
        assert_eq!(d.listen, Ipv4Addr::new(192, 168, 10, 1));
        assert_eq!(d.servers, vec![Ipv4Addr::new(10, 64, 0, 1)]);
        assert_eq!(d.source, Some(Ipv4Addr::new(10, 99, 0, 2)));
        // DHCP hands out the router itself.
        let dhcp = home.dhcp.as_ref().unwrap();
        assert_eq!(dhcp.dns, vec![Ipv4Addr::new(192, 168, 10, 1)]);
        assert!(!dhcp.dns_from_wan);
        // A direct LAN: the WAN's IPv4 DNS, no source; its explicit DHCP dns stays.
        let office = m.lans.iter().find(|l| l.name == "office").unwrap();
        let d = office.dns.as_ref().unwrap();
        assert_eq!(d.servers, vec![Ipv4Addr::new(198, 51, 100, 1)]);
        assert_eq!(d.source, None);
        assert_eq!(
            office.dhcp.as_ref().unwrap().dns,
            vec![Ipv4Addr::new(9, 9, 9, 9)]
        );
    }

    #[test]
    fn explicit_servers_still_leave_through_the_tunnel() {
        let text = config(r#", "dns": { "servers": ["1.1.1.1"] }"#, "", STATIC_WAN);
        let m = validate(&parse(&text).unwrap()).unwrap();
        let d = m.lans[0].dns.as_ref().unwrap();
        assert_eq!(d.servers, vec![Ipv4Addr::new(1, 1, 1, 1)]);
        assert_eq!(d.source, Some(Ipv4Addr::new(10, 99, 0, 2)));
        assert_eq!(d.cache, super::DEFAULT_CACHE_ENTRIES);
        let text = config(
            r#", "dns": { "servers": ["1.1.1.1"], "cache": 0 }"#,
            "",
            STATIC_WAN,
        );
        let m = validate(&parse(&text).unwrap()).unwrap();
        assert_eq!(m.lans[0].dns.as_ref().unwrap().cache, 0);
    }

    #[test]
    fn direct_lan_with_dhcp_wan_takes_the_lease() {
        let text = config("", "", r#""dhcp": {}"#);
        let m = validate(&parse(&text).unwrap()).unwrap();
        let d = m.lans[1].dns.as_ref().unwrap();
        assert!(d.servers_from_wan && d.servers.is_empty());
        // Without `dns`, the LAN's DHCP keeps its defaults.
        assert!(m.lans[0].dns.is_none());
        assert!(m.lans[0].dhcp.as_ref().unwrap().dns_from_wan);
    }

    #[test]
    fn a_portals_ipv6_resolvers_are_for_devices_only() {
        let text = config(
            r#", "dns": {}"#,
            r#", "dns": ["2620:fe::fe", "10.64.0.1"]"#,
            STATIC_WAN,
        );
        let m = validate(&parse(&text).unwrap()).unwrap();
        let d = m.lans.iter().find(|l| l.name == "home").unwrap();
        assert_eq!(
            d.dns.as_ref().unwrap().servers,
            vec![Ipv4Addr::new(10, 64, 0, 1)]
        );
        assert_eq!(m.portals[0].dns.len(), 2);
        let e = errors(&config(
            r#", "dns": {}"#,
            r#", "dns": ["2620:fe::fe"]"#,
            STATIC_WAN,
        ));
        assert!(
            e[0].starts_with("lans.home.dns.servers: no upstream resolver: give `servers` here or an IPv4 `dns` in portals.paris"),
            "{e:?}"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let e = errors(&config(r#", "dns": {}"#, "", STATIC_WAN));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("lans.home.dns.servers: no upstream"),
            "{e:?}"
        );
        let e = errors(&config(
            r#", "dns": { "servers": ["x", "2001:db8::1"] }"#,
            r#", "dns": ["10.64.0.300"]"#,
            STATIC_WAN,
        ));
        assert!(
            e.iter().any(|l| l.starts_with("portals.paris.dns[0]: ")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|l| l.starts_with("lans.home.dns.servers[0]: ")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|l| l.starts_with("lans.home.dns.servers[1]: `2001:db8::1` is IPv6")),
            "{e:?}"
        );
        let no_wan_dns = r#""static": { "address": "198.51.100.2/24", "gateway": "198.51.100.1" }"#;
        let e = errors(&config("", r#", "dns": ["10.64.0.1"]"#, no_wan_dns));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("lans.office.dns.servers: "), "{e:?}");
        let e = errors(&config(r#", "dns": { "cache": 100001 }"#, "", STATIC_WAN));
        assert!(
            e.iter()
                .any(|l| l.starts_with("lans.home.dns.cache: 100001 answers is too many")),
            "{e:?}"
        );
        let bad = parse(&config(r#", "dns": { "cache": -1 }"#, "", STATIC_WAN)).unwrap_err();
        assert!(bad.starts_with("lans.home.dns.cache: "), "{bad}");
        let bad = parse(&config(r#", "dns": { "bogus": 1 }"#, "", STATIC_WAN)).unwrap_err();
        assert!(
            bad.starts_with("lans.home.dns.bogus: unknown field"),
            "{bad}"
        );
    }
}

/// The no-leak guarantee rests on the desired state: checked here for
/// every LAN that forwards through a portal.
#[cfg(test)]
mod leak_tests {
    use crate::core::cidr::Cidr;
    use crate::core::desired::{desired, Inputs, RouteKind};
    use crate::core::model::{validate, LanRoute};
    use std::net::IpAddr;

    #[test]
    fn upstream_queries_have_only_the_tunnel_or_the_kill_switch() {
        let text = super::tests::config(
            r#", "dns": {}"#,
            r#", "dns": ["10.64.0.1"]"#,
            super::tests::STATIC_WAN,
        );
        let m = validate(&crate::core::config::parse(&text).unwrap()).unwrap();
        let d = desired(&m, &Inputs::default());
        let mut checked = 0;
        for l in &m.lans {
            let (Some(dns), LanRoute::Portal(p)) = (&l.dns, &l.route) else {
                continue;
            };
            let p = &m.portals[p.index];
            let src = Cidr::new(IpAddr::V4(dns.source.unwrap()), 32);
            assert!(d
                .rules
                .iter()
                .any(|r| r.from == src && r.to.is_none() && r.table == p.table));
            let routes: Vec<_> = d.routes.iter().filter(|r| r.table == p.table).collect();
            assert!(routes.iter().any(|r| r.kind == RouteKind::Unreachable));
            assert!(routes
                .iter()
                .all(|r| matches!(&r.kind, RouteKind::Unreachable)
                    || r.kind == RouteKind::Dev(p.interface.clone())));
            checked += 1;
        }
        assert_eq!(checked, 1);
        // The input chain opens port 53 on the LANs with `dns` only.
        let nft = d.nft.to_string();
        for proto in ["udp", "tcp"] {
            let line = format!("iifname {{ \"lan0\", \"lan1\" }} {proto} dport 53 accept");
            assert!(nft.contains(&line), "{line} not in\n{nft}");
        }
        let m2 = validate(
            &crate::core::config::parse(
                &super::tests::config("", "", super::tests::STATIC_WAN)
                    .replace(r#", "dns": {}"#, ""),
            )
            .unwrap(),
        )
        .unwrap();
        assert!(!crate::core::desired::desired(&m2, &Inputs::default())
            .nft
            .to_string()
            .contains("dport 53"));
    }
}
