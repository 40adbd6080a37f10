//! `portal doctor`: read-only checks of what people otherwise debug by hand.
//!
//! The edge (gather.rs, probe.rs) reads sysctls, /proc/net/netstat, the
//! rtnetlink dumps, WireGuard devices and Portal's nft table into `Facts`;
//! `checks::run` turns facts into findings, purely, so that each check is
//! unit-tested on made-up facts.

pub mod checks;
pub mod dns;
pub mod dns_probe;
pub mod gather;
pub mod nft;
pub mod probe;

use crate::core::cidr::Cidr;
use crate::trace::kernel::Snapshot;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// WireGuard's "no handshake for this long: the session is gone" (REJECT_AFTER_TIME).
pub const HANDSHAKE_STALE_SECS: u64 = 180;
/// Outer headers of a WireGuard packet: IP (20 / 40) + UDP 8 + WireGuard 32.
pub const WG_OVERHEAD_V4: u32 = 60;
pub const WG_OVERHEAD_V6: u32 = 80;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One thing wrong: which check, what, the numbers read, and the fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub severity: Severity,
    pub problem: String,
    pub evidence: Vec<String>,
    pub fix: Vec<String>,
}

/// TcpExt IPReversePathFilter read twice, `ms` apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RpfCounter {
    pub first: u64,
    pub second: u64,
    pub ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WgPeer {
    pub public_key: String,
    pub endpoint: Option<SocketAddr>,
    pub allowed_ips: Vec<Cidr>,
    /// Unix seconds; None: never.
    pub latest_handshake: Option<u64>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// A WireGuard device in this namespace, Portal's or not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WgDevice {
    pub name: String,
    pub peers: Vec<WgPeer>,
}

/// One route-back probe: from `src` to `target`, answered or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub portal: String,
    /// None: from the tunnel address; Some(LAN name): from the LAN address.
    pub lan: Option<String>,
    pub src: IpAddr,
    pub target: IpAddr,
    /// What came back ("port unreachable", "echo reply", ...), or None.
    pub answer: Option<String>,
}

/// Everything the checks look at, read at one moment.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Unix seconds.
    pub now: u64,
    /// "net.ipv4.ip_forward", "net.ipv4.conf.IF.forwarding", "net.ipv4.conf.IF.rp_filter", ...
    pub sysctls: BTreeMap<String, String>,
    pub rpf: Option<RpfCounter>,
    pub kernel: Snapshot,
    pub wireguard: Vec<WgDevice>,
    /// Devices that could not be read: (name, why).
    pub wireguard_errors: Vec<(String, String)>,
    /// Portal's nft table, normalized dump (None: absent).
    pub nft: Option<String>,
    pub probes: Vec<Probe>,
    /// The dns check's queries and what they got.
    pub dns: Vec<dns::DnsProbe>,
}

impl Facts {
    pub fn sysctl(&self, key: &str) -> Option<&str> {
        self.sysctls.get(key).map(String::as_str)
    }

    pub fn device(&self, name: &str) -> Option<&WgDevice> {
        self.wireguard.iter().find(|d| d.name == name)
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "ERROR",
            Severity::Warning => "WARNING",
        };
        writeln!(f, "{sev} [{}] {}", self.check, self.problem)?;
        for e in &self.evidence {
            writeln!(f, "  evidence: {e}")?;
        }
        for x in &self.fix {
            writeln!(f, "  fix:      {x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod dns_tests;
#[cfg(test)]
mod tests;
