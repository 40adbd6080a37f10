//! wg-quick's config format (`wg0.conf`): parsed and printed, pure.
//!
//! Parsed as wg-quick reads it: `#` starts a comment, section and key names
//! are case-insensitive, list keys (Address, DNS, AllowedIPs) may repeat and
//! hold comma-separated values. What Portal cannot honour (hook scripts,
//! SaveConfig, FwMark) is refused with its line number, not dropped.
//! The text holds private keys: callers decide where it may go.

use std::fmt::Write;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WgQuick {
    pub private_key: Option<String>,
    pub addresses: Vec<String>,
    pub listen_port: Option<u16>,
    pub mtu: Option<u32>,
    /// As written: a number, `off` or `auto` (the caller decides).
    pub table: Option<String>,
    pub dns: Vec<String>,
    pub peers: Vec<Peer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Peer {
    pub public_key: String,
    pub preshared_key: Option<String>,
    pub allowed_ips: Vec<String>,
    pub endpoint: Option<String>,
    pub persistent_keepalive: Option<u16>,
}

enum Section {
    None,
    Interface,
    Peer,
}

/// Parses wg-quick text; errors name the line (`line 7: ...`).
pub fn parse(text: &str) -> Result<WgQuick, String> {
    let mut c = WgQuick::default();
    let mut section = Section::None;
    let mut seen_interface = false;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            section = match line.to_ascii_lowercase().as_str() {
                "[interface]" => {
                    seen_interface = true;
                    Section::Interface
                }
                "[peer]" => {
                    c.peers.push(Peer::default());
                    Section::Peer
                }
                _ => return Err(format!("line {n}: unknown section {line}")),
            };
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {n}: `{}` is not KEY = VALUE", shown(line)));
        };
        let (key, value) = (key.trim(), value.trim());
        let k = key.to_ascii_lowercase();
        let at = |what: &str| format!("line {n}: {key}: {what}");
        match (&section, k.as_str()) {
            (Section::None, _) => return Err(format!("line {n}: {key} outside a section")),
            (_, "preup" | "postup" | "predown" | "postdown") => {
                return Err(at(
                    "hook commands cannot be honoured (Portal configures the kernel itself; \
                     remove the line, and do in Portal's config what the command did)",
                ))
            }
            (_, "saveconfig") => {
                return Err(at(
                    "cannot be honoured (Portal's config is the JSON file; remove the line)",
                ))
            }
            (_, "fwmark") => return Err(at(
                "cannot be honoured (Portal routes by source and its own tables; remove the line)",
            )),
            (Section::Interface, "privatekey") => c.private_key = Some(value.to_string()),
            (Section::Interface, "address") => c.addresses.extend(list(value)),
            (Section::Interface, "dns") => c.dns.extend(list(value)),
            (Section::Interface, "listenport") => {
                c.listen_port = Some(value.parse().map_err(|_| at("not a port number"))?)
            }
            (Section::Interface, "mtu") => {
                c.mtu = Some(value.parse().map_err(|_| at("not a number"))?)
            }
            (Section::Interface, "table") => c.table = Some(value.to_string()),
            (Section::Peer, _) => {
                let p = c.peers.last_mut().ok_or_else(|| at("outside [Peer]"))?;
                match k.as_str() {
                    "publickey" => p.public_key = value.to_string(),
                    "presharedkey" => p.preshared_key = Some(value.to_string()),
                    "allowedips" => p.allowed_ips.extend(list(value)),
                    "endpoint" => p.endpoint = Some(value.to_string()),
                    "persistentkeepalive" => {
                        p.persistent_keepalive = if value.eq_ignore_ascii_case("off") {
                            None
                        } else {
                            Some(value.parse().map_err(|_| at("not a number of seconds"))?)
                        }
                    }
                    _ => return Err(at("unknown key in [Peer]")),
                }
            }
            (Section::Interface, _) => return Err(at("unknown key in [Interface]")),
        }
    }
    if !seen_interface {
        return Err("no [Interface] section".into());
    }
    for (i, p) in c.peers.iter().enumerate() {
        if p.public_key.is_empty() {
            return Err(format!("[Peer] number {}: no PublicKey", i + 1));
        }
    }
    Ok(c)
}

/// A line shown in an error, without what could be a key.
fn shown(line: &str) -> String {
    line.chars().take(20).collect::<String>() + if line.len() > 20 { "..." } else { "" }
}

fn list(v: &str) -> impl Iterator<Item = String> + '_ {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Prints the config in wg-quick's usual layout.
pub fn print(c: &WgQuick) -> String {
    let mut s = String::from("[Interface]\n");
    let kv = |s: &mut String, k: &str, v: &str| {
        let _ = writeln!(s, "{k} = {v}");
    };
    if let Some(k) = &c.private_key {
        kv(&mut s, "PrivateKey", k);
    }
    if !c.addresses.is_empty() {
        kv(&mut s, "Address", &c.addresses.join(", "));
    }
    if let Some(p) = c.listen_port {
        kv(&mut s, "ListenPort", &p.to_string());
    }
    if let Some(m) = c.mtu {
        kv(&mut s, "MTU", &m.to_string());
    }
    if let Some(t) = &c.table {
        kv(&mut s, "Table", t);
    }
    if !c.dns.is_empty() {
        kv(&mut s, "DNS", &c.dns.join(", "));
    }
    for p in &c.peers {
        s.push_str("\n[Peer]\n");
        kv(&mut s, "PublicKey", &p.public_key);
        if let Some(k) = &p.preshared_key {
            kv(&mut s, "PresharedKey", k);
        }
        if !p.allowed_ips.is_empty() {
            kv(&mut s, "AllowedIPs", &p.allowed_ips.join(", "));
        }
        if let Some(e) = &p.endpoint {
            kv(&mut s, "Endpoint", e);
        }
        if let Some(k) = p.persistent_keepalive {
            kv(&mut s, "PersistentKeepalive", &k.to_string());
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
    const K2: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";

    #[test]
    fn parses_comments_case_lists_and_ipv6() {
        let text = format!(
            "# a phone\n[interface]\nprivatekey = {K1}  # secret\nADDRESS = 10.0.0.2/24, fd00::2/64\n\
             Address=10.1.0.2/32\nListenPort = 51820\nMtu = 1420\nTable = 1234\nDNS = 1.1.1.1,2606:4700::1111\n\n\
             [PEER]\nPublicKey = {K2}\nAllowedIPs = 0.0.0.0/0, ::/0\nallowedips = 192.168.1.0/24\n\
             Endpoint = [2001:db8::1]:51820\nPersistentKeepalive = 25\n"
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.private_key.as_deref(), Some(K1));
        assert_eq!(c.addresses, ["10.0.0.2/24", "fd00::2/64", "10.1.0.2/32"]);
        assert_eq!(c.listen_port, Some(51820));
        assert_eq!(c.mtu, Some(1420));
        assert_eq!(c.table.as_deref(), Some("1234"));
        assert_eq!(c.dns, ["1.1.1.1", "2606:4700::1111"]);
        assert_eq!(c.peers.len(), 1);
        let p = &c.peers[0];
        assert_eq!(p.public_key, K2);
        assert_eq!(p.allowed_ips, ["0.0.0.0/0", "::/0", "192.168.1.0/24"]);
        assert_eq!(p.endpoint.as_deref(), Some("[2001:db8::1]:51820"));
        assert_eq!(p.persistent_keepalive, Some(25));
    }

    #[test]
    fn print_then_parse_is_identity() {
        let c = WgQuick {
            private_key: Some(K1.into()),
            addresses: vec!["10.0.0.2/24".into(), "fd00::2/64".into()],
            listen_port: Some(51820),
            mtu: Some(1280),
            table: Some("51820".into()),
            dns: vec!["9.9.9.9".into()],
            peers: vec![
                Peer {
                    public_key: K2.into(),
                    preshared_key: Some(K1.into()),
                    allowed_ips: vec!["0.0.0.0/0".into()],
                    endpoint: Some("vpn.example.com:51820".into()),
                    persistent_keepalive: Some(25),
                },
                Peer {
                    public_key: K1.into(),
                    allowed_ips: vec!["10.0.0.9/32".into()],
                    ..Peer::default()
                },
            ],
        };
        assert_eq!(parse(&print(&c)).unwrap(), c);
    }

    #[test]
    fn refuses_what_portal_cannot_honour_naming_the_line() {
        for (line, word) in [
            ("PostUp = iptables -A FORWARD", "PostUp"),
            ("preup = echo", "preup"),
            ("SaveConfig = true", "SaveConfig"),
            ("FwMark = 0x1234", "FwMark"),
            ("Bogus = 1", "unknown key"),
        ] {
            let err = parse(&format!("[Interface]\nPrivateKey = {K1}\n{line}\n")).unwrap_err();
            assert!(err.starts_with("line 3: "), "{err}");
            assert!(err.contains(word), "{err}");
            assert!(!err.contains(K1), "{err}");
        }
        assert!(parse("[Peer]\nEndpoint = a:1\n").is_err());
        assert!(parse("PrivateKey = x\n").unwrap_err().contains("line 1"));
        assert!(parse("[Interface]\n[Peer]\nAllowedIPs = 0.0.0.0/0\n")
            .unwrap_err()
            .contains("no PublicKey"));
    }

    #[test]
    fn a_malformed_line_does_not_echo_a_key() {
        let err = parse(&format!("[Interface]\n{K1}\n")).unwrap_err();
        assert!(!err.contains(K1), "{err}");
    }
}
