//! DHCPv4 on dhcproto: the LAN server (pure handler in `server`, sockets in
//! `service`), its lease table and store.

pub mod client;
pub mod lease;
pub mod ratelimit;
pub mod server;
pub mod service;
pub mod store;
pub mod wan;
pub mod wire;

use crate::core::model::{Model, WanMode};
use client::WanLease;
use lease::Lease;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// What DHCP knows, as on disk: the WAN's lease (with `wan.dhcp`) and the
/// leases on record for each LAN with a server. Offers in flight are not on
/// disk and not listed. `portal leases` prints it; the status page shows it.
#[derive(Serialize, Debug, Clone, PartialEq, Default)]
pub struct Status {
    pub wan: Option<WanLease>,
    pub lans: BTreeMap<String, Vec<Lease>>,
}

pub fn status(m: &Model, state_dir: &Path) -> Status {
    let lans = m
        .lans
        .iter()
        .filter_map(|l| {
            let cfg = l.dhcp.as_ref()?;
            let table = store::read(state_dir, &l.name, cfg.pool_start);
            Some((l.name.clone(), table.durable()))
        })
        .collect();
    let wan = match m.wan.mode {
        WanMode::Dhcp { .. } => wan::remembered(state_dir),
        WanMode::Static { .. } => None,
    };
    Status { wan, lans }
}

/// `status` for a person, at `now` (Unix seconds).
pub fn render(s: &Status, now: u64) -> String {
    let left = |expires: u64| {
        if expires > now {
            format!("{} s left", expires - now)
        } else {
            "expired".to_string()
        }
    };
    let mut out = String::new();
    if let Some(w) = &s.wan {
        out.push_str(&format!(
            "wan: {}/{} from {}, gateway {}, DNS {}, {}\n",
            w.address,
            w.prefix_len,
            w.server,
            w.gateway.map(|g| g.to_string()).unwrap_or("none".into()),
            if w.dns.is_empty() {
                "none".to_string()
            } else {
                w.dns
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            },
            left(w.expires_at() / 1000)
        ));
    }
    for (lan, list) in &s.lans {
        out.push_str(&format!("lan {lan}: {} lease(s)\n", list.len()));
        for l in list {
            out.push_str(&format!(
                "  {:<15} {}  {:<9} {:<14} {}\n",
                l.address,
                l.mac,
                format!("{:?}", l.state).to_lowercase(),
                left(l.expires),
                l.hostname.as_deref().unwrap_or("-")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lease::LeaseState;
    use std::net::Ipv4Addr;

    #[test]
    fn render_shows_the_wan_lease_and_each_lans_leases() {
        let mut s = Status {
            wan: None,
            lans: BTreeMap::new(),
        };
        s.wan = Some(WanLease {
            address: Ipv4Addr::new(198, 51, 100, 104),
            prefix_len: 24,
            gateway: Some(Ipv4Addr::new(198, 51, 100, 1)),
            dns: vec![Ipv4Addr::new(198, 51, 100, 53)],
            domain: None,
            server: Ipv4Addr::new(198, 51, 100, 1),
            lease_secs: 600,
            t1_secs: 300,
            t2_secs: 525,
            acquired_ms: 1_000_000,
        });
        s.lans.insert(
            "home".into(),
            vec![Lease {
                address: Ipv4Addr::new(192, 168, 10, 100),
                client: "02:00:00:00:00:01".into(),
                mac: "02:00:00:00:00:01".into(),
                hostname: Some("laptop".into()),
                expires: 1_500,
                state: LeaseState::Bound,
            }],
        );
        let text = render(&s, 1_100);
        assert_eq!(
            text,
            "wan: 198.51.100.104/24 from 198.51.100.1, gateway 198.51.100.1, DNS 198.51.100.53, 500 s left\n\
             lan home: 1 lease(s)\n  192.168.10.100  02:00:00:00:00:01  bound     400 s left     laptop\n"
        );
        assert!(render(&s, 2_000).contains("expired"));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["lans"]["home"][0]["address"], "192.168.10.100");
        assert_eq!(json["wan"]["address"], "198.51.100.104");
    }
}
