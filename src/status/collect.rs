//! Gathers a `Status` at the edges: the agent's view (model, kill-switch
//! check of its last pass, probe results), the kernel (addresses, main-table
//! routes, link carrier, WireGuard figures), /proc and the DHCP lease files.
//! Reading is done per request (cached briefly by the server), so handshake
//! ages and byte counts are the kernel's, not a copy from the last pass.

use super::{
    parse_loadavg, parse_meminfo, parse_uptime, peer_state, Lan, Peer, Portal, ProbeResult, Status,
    System, Wan,
};
use crate::core::desired::WanLease;
use crate::core::diff::Observed;
use crate::core::model::{LanRoute, Model, Peer as PeerModel, Portal as PortalModel, WanMode};
use crate::kernel::wireguard::{self, PeerStats};
use crate::worker::lock;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What only the agent knows, shared with the page's threads.
#[derive(Debug, Default)]
pub struct AgentView {
    pub model: Option<Arc<Model>>,
    /// LAN name -> kill switch found complete in the kernel after the last pass.
    pub kill_switch: BTreeMap<String, bool>,
    /// Portal name -> the latest probe.
    pub probes: BTreeMap<String, ProbeOutcome>,
    /// The SSIDs and their stations, kept by the hostapd workers.
    pub wifi: crate::wifi::hostapd::WifiView,
    /// The DNS forwarders' figures, kept by their threads.
    pub dns: crate::dns::service::DnsView,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProbeOutcome {
    pub url: String,
    pub at: u64,
    pub result: Result<String, String>,
}

pub type Shared = Arc<Mutex<AgentView>>;

/// For each LAN behind a portal with the kill switch on: are both layers
/// in the kernel? The unreachable default route in the portal's table, and
/// Portal's nft table as last written (its forward chain rejects the LAN's
/// traffic anywhere but the tunnel). Pure: `o` is a fresh observation.
pub fn kill_switch_armed(m: &Model, o: &Observed) -> BTreeMap<String, bool> {
    m.lans
        .iter()
        .filter(|l| l.kill_switch)
        .filter_map(|l| Some((l, m.via(l)?)))
        .map(|(l, p)| {
            // A split LAN's kill switch is in its own table; a `portal`
            // list has one per prefix instead of a default.
            let table = l.split.as_ref().map_or(p.table, |s| s.table);
            let per_prefix = l
                .split
                .as_ref()
                .is_some_and(|s| s.kind == crate::core::model::SplitKind::Portal);
            let route = o
                .routes
                .iter()
                .any(|r| r.is_kill_switch() && r.table == table && (per_prefix || r.dst.len == 0));
            (l.name.clone(), route && o.nft_present && o.nft_current)
        })
        .collect()
}

/// The main table's IPv4 default gateway through `iface`, from
/// /proc/net/route (addresses are hex in host byte order, little-endian here
/// and on the ER-X's mipsel alike).
pub fn default_gateway(route_table: &str, iface: &str) -> Option<Ipv4Addr> {
    route_table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 || f[0] != iface || f[1] != "00000000" || f[7] != "00000000" {
            return None;
        }
        let gw = u32::from_str_radix(f[2], 16).ok()?;
        (gw != 0).then(|| Ipv4Addr::from(gw.swap_bytes()))
    })
}

/// The interfaces' IPv4 addresses with prefix lengths, as the kernel has them.
fn kernel_addresses() -> Addresses {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return out;
    };
    for a in addrs {
        let (Some(ip), Some(mask)) = (
            a.address.as_ref().and_then(|s| s.as_sockaddr_in()),
            a.netmask.as_ref().and_then(|s| s.as_sockaddr_in()),
        ) else {
            continue;
        };
        let len = u32::from(mask.ip()).count_ones();
        out.entry(a.interface_name)
            .or_default()
            .push(format!("{}/{len}", ip.ip()));
    }
    out
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

pub fn system(hostname: Option<&str>) -> System {
    let (mem_total_kib, mem_available_kib) =
        parse_meminfo(&read("/proc/meminfo")).unwrap_or_default();
    System {
        version: env!("CARGO_PKG_VERSION").to_string(),
        hostname: hostname
            .map(str::to_string)
            .or_else(|| Some(read("/proc/sys/kernel/hostname").trim().to_string()))
            .filter(|h| !h.is_empty()),
        uptime_secs: parse_uptime(&read("/proc/uptime")).unwrap_or_default(),
        load: parse_loadavg(&read("/proc/loadavg")).unwrap_or_default(),
        mem_total_kib,
        mem_available_kib,
        portal_is_init: crate::init::under_portal_init(),
    }
}

pub struct Collector {
    pub shared: Shared,
    pub state_dir: PathBuf,
}

impl Collector {
    /// Everything the page shows, read now. `now` in Unix seconds.
    pub fn collect(&self, now: u64) -> Status {
        let (model, kill_switch, probes, wifi) = {
            let v = lock(&self.shared);
            let wifi: Vec<_> = lock(&v.wifi).values().cloned().collect();
            (
                v.model.clone(),
                v.kill_switch.clone(),
                v.probes.clone(),
                wifi,
            )
        };
        let dns = super::dns_figures(&lock(&lock(&self.shared).dns));
        let Some(m) = model else {
            return Status {
                system: system(None),
                log: crate::log::recent(),
                counters: crate::counters::snapshot(),
                ..Status::default()
            };
        };
        let addrs = kernel_addresses();
        let dhcp = crate::dhcp::status(&m, &self.state_dir);
        let wan = wan(&m, &addrs, dhcp.wan.as_ref(), now);
        let lans = lans(&m, &addrs, &kill_switch);
        let portals = m
            .portals
            .iter()
            .map(|p| portal(&m, p, probes.get(&p.name), now))
            .collect();
        Status {
            system: system(m.hostname.as_deref()),
            wan,
            lans,
            leases: dhcp.lans,
            portals,
            wifi,
            dns,
            counters: crate::counters::snapshot(),
            log: crate::log::recent(),
        }
    }
}

/// The first address the kernel has on each interface.
type Addresses = BTreeMap<String, Vec<String>>;

fn first_addr(addrs: &Addresses, iface: &str) -> Option<String> {
    addrs.get(iface).and_then(|a| a.first()).cloned()
}

fn wan(m: &Model, addrs: &Addresses, lease: Option<&WanLease>, now: u64) -> Wan {
    Wan {
        interface: m.wan.interface.clone(),
        mode: match m.wan.mode {
            WanMode::Static { .. } => "static",
            WanMode::Dhcp { .. } => "dhcp",
        }
        .into(),
        address: first_addr(addrs, &m.wan.interface),
        gateway: default_gateway(&read("/proc/net/route"), &m.wan.interface).map(|g| g.to_string()),
        lease_expires_in: lease.map(|l| {
            let expires = l.acquired_ms / 1000 + u64::from(l.lease_secs);
            expires.saturating_sub(now)
        }),
        link_up: crate::dhcp::wan::carrier(&m.wan.interface),
    }
}

fn lans(m: &Model, addrs: &Addresses, kill_switch: &BTreeMap<String, bool>) -> Vec<Lan> {
    m.lans
        .iter()
        .map(|l| Lan {
            name: l.name.clone(),
            interface: l.interface.clone(),
            address: first_addr(addrs, &l.interface).unwrap_or_else(|| "-".into()),
            exit: match &l.route {
                LanRoute::Portal(p) => p.name.clone(),
                LanRoute::Direct => crate::core::model::DIRECT.into(),
            },
            kill_switch_armed: kill_switch.get(&l.name).copied(),
        })
        .collect()
}

/// A portal as the kernel has it now (keys, port, backend, each peer's
/// figures) and its latest exit probe.
fn portal(m: &Model, p: &PortalModel, probe: Option<&ProbeOutcome>, now: u64) -> Portal {
    let live = wireguard::stats(&p.interface).ok();
    let peers = p
        .peers
        .iter()
        .map(|cfg| {
            let s = live
                .as_ref()
                .and_then(|d| d.peers.iter().find(|s| s.public_key == cfg.public_key));
            peer(cfg, s, now)
        })
        .collect();
    Portal {
        name: p.name.clone(),
        interface: p.interface.clone(),
        public_key: live.as_ref().and_then(|d| d.public_key.clone()),
        listen_port: live.as_ref().and_then(|d| d.listen_port),
        backend: live.as_ref().map(|d| {
            if d.userspace {
                "wireguard-go"
            } else {
                "kernel"
            }
            .to_string()
        }),
        peers,
        lans: m.lans_via(&p.name).map(|l| l.name.clone()).collect(),
        probe: probe.map(|o| ProbeResult {
            url: o.url.clone(),
            exit_address: o.result.as_ref().ok().cloned(),
            error: o.result.as_ref().err().cloned(),
            age_secs: now.saturating_sub(o.at),
        }),
    }
}

/// A configured peer with the kernel's figures for it (`live`: absent
/// when the interface or the peer is not there yet).
fn peer(cfg: &PeerModel, live: Option<&PeerStats>, now: u64) -> Peer {
    let latest = live.and_then(|s| s.latest_handshake);
    let age = latest.map(|t| now.saturating_sub(t));
    Peer {
        name: cfg.name.clone(),
        public_key: cfg.public_key.clone(),
        endpoint: live.and_then(|s| s.endpoint).map(|e| e.to_string()),
        latest_handshake: latest,
        handshake_age_secs: age,
        rx_bytes: live.map_or(0, |s| s.rx_bytes),
        tx_bytes: live.map_or(0, |s| s.tx_bytes),
        state: peer_state(age),
    }
}

#[cfg(test)]
mod tests {
    use super::default_gateway;
    use std::net::Ipv4Addr;

    #[test]
    fn gateway_from_proc_net_route() {
        let t =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                 wan0\t00000000\t016433C6\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                 wan0\t006433C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(
            default_gateway(t, "wan0"),
            Some(Ipv4Addr::new(198, 51, 100, 1))
        );
        assert_eq!(default_gateway(t, "lan0"), None);
    }
}

#[cfg(test)]
mod kill_switch_tests {
    use super::kill_switch_armed;
    use crate::core::cidr::Cidr;
    use crate::core::desired::{Route, RouteKind, KILL_SWITCH_METRIC};
    use crate::core::diff::Observed;
    use crate::core::model::{validate, FIRST_TABLE};

    fn model() -> crate::core::model::Model {
        let cfg = crate::core::config::parse(
            r#"{
              "wan": { "interface": "eth0", "static": { "address": "203.0.113.2/24", "gateway": "203.0.113.1" } },
              "lans": {
                "home": { "interface": "eth1", "address": "192.168.10.1/24", "via": "paris" },
                "open": { "interface": "eth3", "address": "192.168.30.1/24", "via": "paris", "kill_switch": false },
                "guest": { "interface": "eth2", "address": "192.168.20.1/24", "via": "direct" }
              },
              "portals": { "paris": { "interface": "wg0", "private_key_file": "/k", "address": ["10.99.0.2/24"],
                "peers": [ { "public_key": "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=", "allowed_ips": ["0.0.0.0/0"] } ] } }
            }"#,
        )
        .unwrap();
        validate(&cfg).unwrap()
    }

    fn observed(route: bool, nft: bool) -> Observed {
        let mut o = Observed {
            nft_present: nft,
            nft_current: nft,
            ..Observed::default()
        };
        if route {
            o.routes.push(Route {
                table: FIRST_TABLE,
                dst: Cidr::default_for(false),
                kind: RouteKind::Unreachable,
                metric: KILL_SWITCH_METRIC,
            });
        }
        o
    }

    #[test]
    fn armed_only_with_both_layers() {
        let m = model();
        let armed = |route, nft| kill_switch_armed(&m, &observed(route, nft));
        // Only `home` has a kill switch: `open` turned it off, `guest` is direct.
        assert_eq!(
            armed(true, true).into_iter().collect::<Vec<_>>(),
            vec![("home".to_string(), true)]
        );
        assert!(!armed(false, true)["home"]);
        assert!(!armed(true, false)["home"]);
    }
}
