//! Road-warrior devices: `portal peer add/list/remove`. The edits are pure
//! functions of the config's JSON (key order kept: serde_json's
//! preserve_order) and the validated model; the caller validates the new
//! text in full before writing it, atomically.

use crate::core::cidr::Cidr;
use crate::core::model::{clients::tunnel_network, Model, Portal};
use crate::wgquick::{self, WgQuick};
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr};

/// Keepalive written into device configs: devices sit behind NAT.
pub const KEEPALIVE: u16 = 25;

pub struct NewDevice<'a> {
    pub name: &'a str,
    pub portal: &'a str,
    /// Route everything through the router (0.0.0.0/0), not only its LANs.
    pub all_traffic: bool,
    /// The device's key pair: the private key goes into its .conf only.
    pub private_key: &'a str,
    pub public_key: &'a str,
    /// The device's tunnel address, when the user picks it (`--address`).
    pub address: Option<IpAddr>,
}

pub struct Added {
    /// The config file's new text.
    pub config: String,
    /// The device's wg-quick config (holds its private key).
    pub device: WgQuick,
    pub address: Cidr,
    /// Things the user should know (printed on stderr).
    pub notes: Vec<String>,
}

/// Adds device `d` to `text` (the config file, whose model is `m`);
/// `portal_public_key` is the router's side of the tunnel.
pub fn add(text: &str, m: &Model, portal_public_key: &str, d: &NewDevice) -> Result<Added, String> {
    let p = m
        .portal(d.portal)
        .ok_or_else(|| format!("no portal named `{}`", d.portal))?;
    let clients = p.clients.as_ref().ok_or_else(|| {
        format!(
            "portal `{}` does not accept devices: add portals.{}.clients {{\"endpoint\": \"HOST:{}\"}}",
            p.name,
            p.name,
            p.listen_port.unwrap_or(51820)
        )
    })?;
    check_new_name(m, d.name)?;
    let address = pick_address(p, m, d.address)?;
    let v = with_peer(text, d, address)?;
    let mut notes = Vec::new();
    let allowed_ips = device_allowed_ips(p, m, &clients.lans, d.all_traffic, &mut notes);
    let dns = device_dns(p, m, &clients.lans, &allowed_ips);
    if dns.is_empty() && p.dns.is_empty() {
        notes.push(format!(
            "no DNS line: portal `{}` has no `dns`, and no LAN resolver is reachable through the \
             tunnel; the device keeps its own resolver (set portals.{}.dns to give it one)",
            p.name, p.name
        ));
    }
    let device = WgQuick {
        private_key: Some(d.private_key.to_string()),
        addresses: vec![address.to_string()],
        mtu: Some(p.mtu),
        dns,
        peers: vec![wgquick::Peer {
            public_key: portal_public_key.to_string(),
            allowed_ips: allowed_ips.iter().map(Cidr::to_string).collect(),
            endpoint: Some(clients.endpoint.to_string()),
            persistent_keepalive: Some(KEEPALIVE),
            ..Default::default()
        }],
        ..Default::default()
    };
    Ok(Added {
        config: to_text(&v)?,
        device,
        address,
        notes,
    })
}

/// A device name: printable, 1-64 characters, no peer's name yet.
fn check_new_name(m: &Model, name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control()) {
        return Err(format!(
            "`{}` is not a device name (1-64 printable characters)",
            name
        ));
    }
    if let Some(other) = m
        .portals
        .iter()
        .find(|o| o.peers.iter().any(|pe| pe.name.as_deref() == Some(name)))
    {
        return Err(format!(
            "a peer named `{}` is already in portal `{}`",
            name, other.name
        ));
    }
    Ok(())
}

/// The device's tunnel address: the one chosen, checked, or the next free.
fn pick_address(p: &Portal, m: &Model, chosen: Option<IpAddr>) -> Result<Cidr, String> {
    match chosen {
        Some(ip) => chosen_address(p, m, ip),
        None => {
            if let Some(blind) = unknown_peer_address(p) {
                return Err(blind);
            }
            next_free(p, m).ok_or_else(|| {
                format!(
                    "no free address left in portal `{}`'s tunnel network",
                    p.name
                )
            })
        }
    }
}

/// The config's JSON with the device added to its portal's `peers`.
fn with_peer(text: &str, d: &NewDevice, address: Cidr) -> Result<Value, String> {
    let mut v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let peers = v
        .get_mut("portals")
        .and_then(|ps| ps.get_mut(d.portal))
        .and_then(Value::as_object_mut)
        .ok_or_else(|| format!("portals.{} is not an object", d.portal))?
        .entry("peers")
        .or_insert_with(|| json!([]));
    peers
        .as_array_mut()
        .ok_or_else(|| format!("portals.{}.peers is not a list", d.portal))?
        .push(json!({
            "name": d.name,
            "public_key": d.public_key,
            "allowed_ips": [address.to_string()],
        }));
    Ok(v)
}

/// What the device sends into the tunnel: everything (noted if the portal
/// is no exit), or the LANs it may reach and the tunnel network.
fn device_allowed_ips(
    p: &Portal,
    m: &Model,
    lans: &[String],
    all_traffic: bool,
    notes: &mut Vec<String>,
) -> Vec<Cidr> {
    if all_traffic {
        if !p.exit {
            notes.push(format!(
                "portal `{}` is not an exit (\"exit\": true): the device's internet traffic will be dropped",
                p.name
            ));
        }
        vec![Cidr::default_for(false)]
    } else {
        let mut nets: Vec<Cidr> = m
            .lans
            .iter()
            .filter(|l| lans.contains(&l.name))
            .map(|l| l.address.network())
            .collect();
        nets.extend(tunnel_network(p));
        nets
    }
}

/// The `DNS =` of a new device: the portal's `dns` (resolvers reached
/// through its tunnel) when it has some; else the DHCP resolvers of the LANs
/// the device may reach, but only those its `allowed` IPs send into the
/// tunnel (a WAN resolver outside them would take the device's queries past
/// the tunnel: a DNS leak) and not a LAN's own forwarder, which answers on
/// its LAN only. Empty: no DNS line, the device keeps its resolver.
fn device_dns(p: &Portal, m: &Model, lans: &[String], allowed: &[Cidr]) -> Vec<String> {
    if !p.dns.is_empty() {
        return p.dns.iter().map(IpAddr::to_string).collect();
    }
    let mut dns: Vec<String> = Vec::new();
    for l in m.lans.iter().filter(|l| lans.contains(&l.name)) {
        let forwarder = l.dns.as_ref().map(|d| IpAddr::V4(d.listen));
        for s in l.dhcp.iter().flat_map(|d| d.dns.iter()) {
            let ip = IpAddr::V4(*s);
            let through_tunnel = allowed.iter().any(|a| a.contains(&ip));
            if through_tunnel && Some(ip) != forwarder && !dns.contains(&ip.to_string()) {
                dns.push(ip.to_string());
            }
        }
    }
    dns
}

/// A peer of `p` whose allowed IPs cover the whole tunnel network (say
/// 0.0.0.0/0, the usual exit) without naming its own tunnel address: that
/// address is somewhere in the network and Portal can't know where, so any
/// address it picks for a device may be the peer's. Returned as the error.
fn unknown_peer_address(p: &Portal) -> Option<String> {
    let net = tunnel_network(p)?;
    let pe = p.peers.iter().find(|pe| {
        pe.allowed_ips.iter().any(|a| a.covers(&net))
            && !pe.allowed_ips.iter().any(|a| net.covers(a) && *a != net)
    })?;
    let name = pe.name.as_deref().unwrap_or("(unnamed)");
    let wide = pe.allowed_ips.iter().find(|a| a.covers(&net))?;
    Some(format!(
        "portal `{}`: peer `{name}`'s allowed IPs {wide} cover the tunnel network {net} and its own tunnel address is not in the config, so Portal can't tell which address is free; pick one with --address, or give devices a portal of their own",
        p.name
    ))
}

/// Checks an address the user picked: inside the tunnel network, neither
/// its network nor broadcast address, and not held by anyone Portal knows.
fn chosen_address(p: &Portal, m: &Model, ip: IpAddr) -> Result<Cidr, String> {
    let net = tunnel_network(p)
        .ok_or_else(|| format!("portal `{}` has no IPv4 tunnel network", p.name))?;
    // The network is IPv4: an IPv6 address is not in it.
    if !net.contains(&ip) {
        return Err(format!(
            "--address {ip}: not in portal `{}`'s tunnel network {net}",
            p.name
        ));
    }
    if net.len < 31 && (ip == net.addr || Some(ip) == net.broadcast_v4().map(IpAddr::V4)) {
        return Err(format!(
            "--address {ip}: the network or broadcast address of {net}"
        ));
    }
    if taken(m, ip) {
        return Err(format!(
            "--address {ip}: already a tunnel address or a peer's allowed IP"
        ));
    }
    Cidr::new(ip, 32).ok_or_else(|| format!("--address {ip}: not an IPv4 address"))
}

/// True when a portal has `ip` as its tunnel address, or a peer's allowed
/// IPs (other than a default route) hold it.
fn taken(m: &Model, ip: IpAddr) -> bool {
    m.portals.iter().any(|o| {
        o.addresses.iter().any(|a| a.addr == ip)
            || o.peers.iter().any(|pe| {
                pe.allowed_ips
                    .iter()
                    .any(|a| !a.is_default() && a.contains(&ip))
            })
    })
}

/// The lowest address of the portal's tunnel network that no tunnel
/// address and no peer's allowed IPs (other than a default route) holds.
pub fn next_free(p: &Portal, m: &Model) -> Option<Cidr> {
    let net = tunnel_network(p)?;
    let IpAddr::V4(base) = net.addr else {
        return None;
    };
    let size = 1u64 << (32 - u32::from(net.len));
    // Not the network's first address, nor (below /31) its broadcast.
    (1..size.saturating_sub(1).max(1))
        .map(|i| IpAddr::V4(Ipv4Addr::from(u32::from(base) + i as u32)))
        .find(|ip| !taken(m, *ip))
        .and_then(|ip| Cidr::new(ip, 32))
}

/// Removes the peer named `name` (from `portal` if given); returns the new
/// text and the portal it was in.
pub fn remove(text: &str, name: &str, portal: Option<&str>) -> Result<(String, String), String> {
    let mut v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    if let Some(ps) = v.get_mut("portals").and_then(Value::as_object_mut) {
        for (pname, p) in ps.iter_mut() {
            if portal.is_some_and(|w| w != pname) {
                continue;
            }
            if let Some(peers) = p.get_mut("peers").and_then(Value::as_array_mut) {
                let before = peers.len();
                peers.retain(|pe| pe.get("name").and_then(Value::as_str) != Some(name));
                if peers.len() != before {
                    found.push(pname.clone());
                }
            }
        }
    }
    match found.len() {
        0 => Err(format!("no peer named `{name}`")),
        1 => Ok((to_text(&v)?, found.remove(0))),
        _ => Err(format!(
            "peers named `{name}` are in portals {}: give --portal",
            found.join(", ")
        )),
    }
}

/// One line per peer: portal, name, allowed IPs, endpoint, public key.
pub fn list(m: &Model) -> String {
    let mut out = String::new();
    for p in &m.portals {
        for pe in &p.peers {
            let ips: Vec<String> = pe.allowed_ips.iter().map(|c| c.to_string()).collect();
            out.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\n",
                p.name,
                pe.name.as_deref().unwrap_or("-"),
                ips.join(","),
                pe.endpoint
                    .as_ref()
                    .map_or("(device)".to_string(), |e| e.to_string()),
                pe.public_key
            ));
        }
    }
    out
}

/// The config's text as written back: pretty JSON, keys in file order.
pub fn to_text(v: &Value) -> Result<String, String> {
    serde_json::to_string_pretty(v)
        .map(|s| s + "\n")
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
