//! Validation of `portals.P.clients` (road-warrior devices): a portal that
//! phones and laptops dial into.

use super::{parse_endpoint, Endpoint, Errors, Portal};
use crate::core::cidr::Cidr;
use crate::core::config::Config;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clients {
    /// What the devices connect to (printed in their .conf).
    pub endpoint: Endpoint,
    /// LAN names the devices may reach, in config order.
    pub lans: Vec<String>,
}

/// Fills `clients` of each portal from the config.
pub(super) fn validate(cfg: &Config, portals: &mut [Portal], e: &mut Errors) {
    for p in portals.iter_mut() {
        let Some(c) = cfg.portals.get(&p.name) else {
            continue;
        };
        let at = format!("portals.{}", p.name);
        let Some(cl) = &c.clients else { continue };
        // Devices dial in: nobody can reach a random port.
        if p.listen_port.is_none() {
            e.add(
                format!("{at}.listen_port"),
                "a portal with `clients` needs a fixed listen_port (the devices' Endpoint)",
            );
        }
        let endpoint = e.parse(
            &format!("{at}.clients.endpoint"),
            parse_endpoint(&cl.endpoint),
        );
        let lans = match &cl.lans {
            None => cfg.lans.keys().cloned().collect(),
            Some(names) => {
                for (i, n) in names.iter().enumerate() {
                    if !cfg.lans.contains_key(n) {
                        let known: Vec<&str> = cfg.lans.keys().map(String::as_str).collect();
                        e.add(
                            format!("{at}.clients.lans[{i}]"),
                            format!("no LAN named `{n}` (LANs: {})", known.join(", ")),
                        );
                    }
                }
                names.clone()
            }
        };
        if tunnel_network(p).is_none() {
            e.add(
                format!("{at}.address"),
                "a portal with `clients` needs an IPv4 tunnel address (the devices get addresses in its network)",
            );
        }
        if let Some(endpoint) = endpoint {
            p.clients = Some(Clients { endpoint, lans });
        }
    }
}

/// The network devices get their addresses in: the portal's first IPv4
/// tunnel address's network.
pub fn tunnel_network(p: &Portal) -> Option<Cidr> {
    p.addresses.iter().find(|a| !a.is_v6()).map(|a| a.network())
}
