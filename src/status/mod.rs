//! What the status page shows, as plain data: collected at the edges (the
//! kernel, /proc, the DHCP lease files), rendered by pure functions as HTML
//! (`html`), JSON (serde) and Prometheus text (`metrics`). Public keys are
//! shown; private keys are not in these types at all.

pub mod collect;
pub mod html;
pub mod metrics;
pub mod peer_page;
pub mod probe;
pub mod server;

use crate::dhcp::lease::Lease;
use serde::Serialize;
use std::collections::BTreeMap;

/// A handshake younger than this means the tunnel is up (WireGuard rekeys
/// every 2 minutes while traffic flows).
pub const UP_WITHIN_SECS: u64 = 180;
/// Older than UP but younger than this: stale (idle, or just broken).
pub const STALE_WITHIN_SECS: u64 = 600;

#[derive(Serialize, Debug, Clone, PartialEq, Default)]
pub struct Status {
    pub system: System,
    pub wan: Wan,
    pub lans: Vec<Lan>,
    /// LAN name -> its DHCP leases on record.
    pub leases: BTreeMap<String, Vec<Lease>>,
    pub portals: Vec<Portal>,
    /// One entry per SSID (a WiFi LAN), with its associated stations.
    pub wifi: Vec<crate::wifi::hostapd::BssStatus>,
    /// One entry per LAN whose DNS forwarder runs.
    pub dns: Vec<Dns>,
    pub counters: Counters,
    /// The newest log lines, oldest first.
    pub log: Vec<String>,
}

#[derive(Serialize, Debug, Clone, PartialEq, Default)]
pub struct System {
    pub version: String,
    pub hostname: Option<String>,
    pub uptime_secs: u64,
    pub load: [f64; 3],
    pub mem_total_kib: u64,
    pub mem_available_kib: u64,
    /// Portal itself is PID 1 (the firmware), not an agent on another OS.
    pub portal_is_init: bool,
}

#[derive(Serialize, Debug, Clone, PartialEq, Default)]
pub struct Wan {
    pub interface: String,
    /// "static" or "dhcp".
    pub mode: String,
    pub address: Option<String>,
    pub gateway: Option<String>,
    /// Seconds until the DHCP lease expires.
    pub lease_expires_in: Option<u64>,
    pub link_up: bool,
}

#[derive(Serialize, Debug, Clone, PartialEq, Default)]
pub struct Lan {
    pub name: String,
    pub interface: String,
    pub address: String,
    /// A portal name, or "direct".
    pub exit: String,
    /// Only for LANs via a portal: is the kill switch in the kernel now?
    pub kill_switch_armed: Option<bool>,
}

#[derive(Serialize, Debug, Clone, PartialEq, Default)]
pub struct Portal {
    pub name: String,
    pub interface: String,
    pub public_key: Option<String>,
    pub listen_port: Option<u16>,
    /// "kernel" or "wireguard-go"; None when the device is missing.
    pub backend: Option<String>,
    pub peers: Vec<Peer>,
    /// The LANs that exit through this portal.
    pub lans: Vec<String>,
    /// The latest "where do I exit" probe through this portal, if configured.
    pub probe: Option<ProbeResult>,
}

#[derive(Serialize, Debug, Clone, PartialEq, Default)]
pub struct ProbeResult {
    pub url: String,
    /// The address the probe server saw: where this portal's traffic exits.
    pub exit_address: Option<String>,
    pub error: Option<String>,
    pub age_secs: u64,
}

#[derive(Serialize, Debug, Clone, PartialEq, Default)]
pub struct Peer {
    pub name: Option<String>,
    pub public_key: String,
    pub endpoint: Option<String>,
    /// Unix seconds, as `wg show latest-handshakes` prints them.
    pub latest_handshake: Option<u64>,
    pub handshake_age_secs: Option<u64>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub state: PeerState,
}

#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum PeerState {
    Up,
    Stale,
    #[default]
    Down,
}

/// A LAN's DNS forwarder since it (re)started: `answered` are the
/// upstreams' answers relayed, `cache_hits` the ones from the cache.
#[derive(Serialize, Debug, Clone, PartialEq, Default)]
pub struct Dns {
    pub lan: String,
    pub queries: u64,
    pub answered: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub servfail: u64,
    pub refused: u64,
    pub formerr: u64,
    pub cache_entries: usize,
    /// 0: no cache.
    pub cache_size: usize,
}

pub fn dns_figures(view: &BTreeMap<String, crate::dns::service::Figures>) -> Vec<Dns> {
    view.iter()
        .map(|(lan, f)| Dns {
            lan: lan.clone(),
            queries: f.stats.queries,
            answered: f.stats.answered,
            cache_hits: f.stats.cache_hits,
            cache_misses: f.stats.cache_misses,
            servfail: f.stats.servfail,
            refused: f.stats.refused,
            formerr: f.stats.formerr,
            cache_entries: f.cached,
            cache_size: f.cache_size,
        })
        .collect()
}

pub use crate::counters::Counters;

pub fn peer_state(handshake_age_secs: Option<u64>) -> PeerState {
    match handshake_age_secs {
        Some(a) if a < UP_WITHIN_SECS => PeerState::Up,
        Some(a) if a < STALE_WITHIN_SECS => PeerState::Stale,
        _ => PeerState::Down,
    }
}

/// /proc/uptime: seconds since boot.
pub fn parse_uptime(text: &str) -> Option<u64> {
    let secs: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(secs as u64)
}

/// /proc/loadavg: the 1, 5 and 15 minute load averages.
pub fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// /proc/meminfo: (MemTotal, MemAvailable) in KiB.
pub fn parse_meminfo(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("MemTotal:")?, field("MemAvailable:")?))
}

/// Human-readable durations for the page: "45 s", "3 min", "2 h 5 min", "4 d 3 h".
pub fn age(secs: u64) -> String {
    match secs {
        0..=89 => format!("{secs} s"),
        90..=5399 => format!("{} min", (secs + 30) / 60),
        5400..=172_799 => format!("{} h {} min", secs / 3600, (secs % 3600) / 60),
        _ => format!("{} d {} h", secs / 86_400, (secs % 86_400) / 3600),
    }
}

/// Byte counts for the page: "512 B", "1.5 KiB", "3.2 MiB", "1.1 GiB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests;
