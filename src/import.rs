//! wg-quick config <-> a portal entry of Portal's config (`portal import`,
//! `portal export`). Pure: the keys travel as values here; the caller
//! writes them to files (mode 0600) and never prints them.

use crate::core::cidr::Cidr;
use crate::core::config;
use crate::wgquick::{self, WgQuick};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// A portal entry made from a wg-quick config, and the secrets it refers to.
pub struct Imported {
    pub entry: Value,
    /// (file, key) to write with mode 0600 before the config refers to them.
    pub secrets: Vec<(PathBuf, String)>,
    /// What was added, one line each (no keys).
    pub summary: Vec<String>,
}

/// `wg-NAME`, cut to Linux's 15 bytes.
pub fn default_interface(name: &str) -> String {
    let mut s = format!("wg-{name}");
    while s.len() > 15 {
        s.pop();
    }
    s
}

/// An address or network as Portal writes it: with a prefix (wg-quick
/// allows a bare address: /32 or /128).
fn with_prefix(s: &str) -> Result<Cidr, String> {
    if s.contains('/') {
        s.parse()
    } else {
        let ip: std::net::IpAddr = s.parse().map_err(|_| format!("`{s}` is not an address"))?;
        Ok(Cidr::new(ip, if ip.is_ipv4() { 32 } else { 128 }).expect("full-length prefix"))
    }
}

pub fn to_portal(c: &WgQuick, name: &str, key_dir: &Path) -> Result<Imported, String> {
    let private_key = c
        .private_key
        .clone()
        .ok_or("[Interface] has no PrivateKey: Portal needs the tunnel's private key")?;
    crate::core::model::check_key(&private_key).map_err(|e| format!("PrivateKey: {e}"))?;
    let interface = default_interface(name);
    let key_file = key_dir.join(format!("{name}.key"));
    let mut secrets = vec![(key_file.clone(), private_key)];
    let mut summary = Vec::new();
    let mut e = Map::new();
    e.insert("interface".into(), json!(interface));
    e.insert("private_key_file".into(), json!(key_file));
    if let Some(p) = c.listen_port {
        e.insert("listen_port".into(), json!(p));
    }
    let addresses = addresses(c)?;
    e.insert("address".into(), json!(addresses));
    if let Some(m) = c.mtu {
        e.insert("mtu".into(), json!(m));
    }
    if let Some(n) = table(c, &mut summary)? {
        e.insert("table".into(), json!(n));
    }
    if !c.dns.is_empty() {
        check_dns(&c.dns)?;
        e.insert("dns".into(), json!(c.dns));
    }
    let mut peers = Vec::new();
    for (i, p) in c.peers.iter().enumerate() {
        peers.push(peer(p, i, name, key_dir, &mut secrets, &mut summary)?);
    }
    e.insert("peers".into(), Value::Array(peers));
    summary.insert(
        0,
        format!(
            "portals.{name}: interface {interface}, address {}{}",
            addresses.join(", "),
            c.listen_port
                .map_or(String::new(), |p| format!(", listen port {p}"))
        ),
    );
    Ok(Imported {
        entry: Value::Object(e),
        secrets,
        summary,
    })
}

/// `Address`: each with a prefix.
fn addresses(c: &WgQuick) -> Result<Vec<String>, String> {
    let mut addresses = Vec::new();
    for a in &c.addresses {
        addresses.push(
            with_prefix(a)
                .map_err(|r| format!("Address: {r}"))?
                .to_string(),
        );
    }
    Ok(addresses)
}

/// `Table`: a number is kept, `auto` is Portal's default (noted in the
/// summary), `off` is refused.
fn table(c: &WgQuick, summary: &mut Vec<String>) -> Result<Option<u32>, String> {
    match c.table.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(None),
        Some("auto") => {
            summary.push("Table = auto: Portal picks the table (the default)".into());
            Ok(None)
        }
        Some("off") => Err(
            "Table = off cannot be honoured: Portal always routes the LANs that use a portal \
             through its table (remove the line, or give a number)"
                .into(),
        ),
        Some(t) => {
            let n: u32 = t
                .parse()
                .map_err(|_| format!("Table = {t}: give a number (table names are not read)"))?;
            Ok(Some(n))
        }
    }
}

/// `DNS`: server addresses only.
fn check_dns(dns: &[String]) -> Result<(), String> {
    for d in dns {
        d.parse::<std::net::IpAddr>().map_err(|_| {
            format!("DNS = {d}: Portal takes DNS server addresses only (no search domains)")
        })?;
    }
    Ok(())
}

/// The `i`th `[Peer]` as a peer entry; its preshared key goes to
/// `secrets`, a line about it to `summary`.
fn peer(
    p: &wgquick::Peer,
    i: usize,
    name: &str,
    key_dir: &Path,
    secrets: &mut Vec<(PathBuf, String)>,
    summary: &mut Vec<String>,
) -> Result<Value, String> {
    let at = format!("[Peer] number {}", i + 1);
    let mut pe = Map::new();
    pe.insert("public_key".into(), json!(p.public_key));
    if let Some(psk) = &p.preshared_key {
        crate::core::model::check_key(psk).map_err(|e| format!("{at}: PresharedKey: {e}"))?;
        let f = key_dir.join(format!("{name}-peer{}.psk", i + 1));
        pe.insert("preshared_key_file".into(), json!(f));
        secrets.push((f, psk.clone()));
    }
    if let Some(ep) = &p.endpoint {
        pe.insert("endpoint".into(), json!(ep));
    }
    let mut ips = Vec::new();
    for a in &p.allowed_ips {
        let c = with_prefix(a).map_err(|r| format!("{at}: AllowedIPs: {r}"))?;
        // As wg does: host bits are dropped.
        ips.push(c.network().to_string());
    }
    pe.insert("allowed_ips".into(), json!(ips));
    if let Some(k) = p.persistent_keepalive.filter(|k| *k > 0) {
        pe.insert("persistent_keepalive".into(), json!(k));
    }
    summary.push(format!(
        "peer {}: allowed IPs {}{}{}",
        p.public_key,
        ips.join(", "),
        p.endpoint
            .as_ref()
            .map_or(String::new(), |e| format!(", endpoint {e}")),
        if p.preshared_key.is_some() {
            ", preshared key"
        } else {
            ""
        }
    ));
    Ok(Value::Object(pe))
}

/// The wg-quick config of portal `p` as written in the config (so that
/// what was not set stays unset), with its keys.
pub fn to_wgquick(p: &config::Portal, private_key: String, psks: &[Option<String>]) -> WgQuick {
    WgQuick {
        private_key: Some(private_key),
        addresses: p.address.clone(),
        listen_port: p.listen_port,
        mtu: p.mtu,
        table: p.table.map(|t| t.to_string()),
        dns: p.dns.clone(),
        peers: p
            .peers
            .iter()
            .enumerate()
            .map(|(i, pe)| wgquick::Peer {
                public_key: pe.public_key.clone(),
                preshared_key: psks.get(i).cloned().flatten(),
                allowed_ips: pe.allowed_ips.clone(),
                endpoint: pe.endpoint.clone(),
                persistent_keepalive: pe.persistent_keepalive.filter(|k| *k > 0),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> String {
        wireguard_control::Key([n; 32]).to_base64()
    }

    fn sample() -> String {
        format!(
            "[Interface]\nPrivateKey = {}\nAddress = 10.2.0.2, fd00::2/64\nListenPort = 51900\nMTU = 1420\n\
             Table = 1234\nDNS = 10.2.0.1\n\n[Peer]\nPublicKey = {}\nPresharedKey = {}\n\
             AllowedIPs = 0.0.0.0/0, 10.9.9.9/24\nEndpoint = vpn.example.com:51820\nPersistentKeepalive = 25\n",
            key(1),
            key(2),
            key(3)
        )
    }

    #[test]
    fn maps_every_field_and_keeps_keys_out_of_the_entry() {
        let c = wgquick::parse(&sample()).unwrap();
        let i = to_portal(&c, "provider", Path::new("/etc/portal")).unwrap();
        let text = i.entry.to_string();
        assert!(!text.contains(&key(1)) && !text.contains(&key(3)), "{text}");
        assert_eq!(i.entry["interface"], "wg-provider");
        assert_eq!(i.entry["private_key_file"], "/etc/portal/provider.key");
        assert_eq!(i.entry["address"], json!(["10.2.0.2/32", "fd00::2/64"]));
        assert_eq!(i.entry["listen_port"], 51900);
        assert_eq!(i.entry["mtu"], 1420);
        assert_eq!(i.entry["table"], 1234);
        assert_eq!(i.entry["dns"], json!(["10.2.0.1"]));
        let p = &i.entry["peers"][0];
        assert_eq!(p["allowed_ips"], json!(["0.0.0.0/0", "10.9.9.0/24"]));
        assert_eq!(p["preshared_key_file"], "/etc/portal/provider-peer1.psk");
        assert_eq!(p["persistent_keepalive"], 25);
        assert_eq!(i.secrets.len(), 2);
        assert_eq!(i.secrets[0].1, key(1));
        let summary = i.summary.join("\n");
        assert!(
            !summary.contains(&key(1)) && !summary.contains(&key(3)),
            "{summary}"
        );
    }

    #[test]
    fn export_of_an_import_is_the_same_config() {
        let c = wgquick::parse(&sample()).unwrap();
        let i = to_portal(&c, "provider", Path::new("/k")).unwrap();
        let p: config::Portal = serde_json::from_value(i.entry).unwrap();
        let back = to_wgquick(&p, key(1), &[Some(key(3))]);
        let mut want = c.clone();
        want.addresses = vec!["10.2.0.2/32".into(), "fd00::2/64".into()];
        want.peers[0].allowed_ips[1] = "10.9.9.0/24".into();
        assert_eq!(back, want);
    }

    #[test]
    fn table_off_refused_auto_defaulted_interface_cut() {
        let c = wgquick::parse(&sample().replace("Table = 1234", "Table = off")).unwrap();
        let err = to_portal(&c, "p", Path::new("/k")).err().unwrap();
        assert!(err.contains("Table = off"), "{err}");
        let c = wgquick::parse(&sample().replace("Table = 1234", "Table = auto")).unwrap();
        let i = to_portal(&c, "p", Path::new("/k")).unwrap();
        assert!(i.entry.get("table").is_none());
        assert!(i.summary.iter().any(|s| s.contains("auto")));
        assert_eq!(
            default_interface("averyveryverylongname"),
            "wg-averyveryver"
        );
        let c = wgquick::parse(&sample().replace("DNS = 10.2.0.1", "DNS = 10.2.0.1, corp.example"))
            .unwrap();
        assert!(to_portal(&c, "p", Path::new("/k"))
            .err()
            .unwrap()
            .contains("search domains"));
    }
}
