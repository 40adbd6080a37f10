//! Validation of the `status_page` section.

use super::{check_hostname, Errors};
use crate::core::config::Config;
use std::net::Ipv4Addr;

pub const DEFAULT_PORT: u16 = 80;
pub const DEFAULT_PROBE_INTERVAL: u32 = 60;
/// Probing more often than this would be traffic for its own sake.
pub const MIN_PROBE_INTERVAL: u32 = 10;
pub const MAX_PROBE_INTERVAL: u32 = 24 * 3600;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusPage {
    pub port: u16,
    /// LAN names, in config order; never empty.
    pub lans: Vec<String>,
    pub probe: Option<Probe>,
}

/// A plain-HTTP GET whose body is the caller's address as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub host: String,
    pub port: u16,
    /// Starts with `/`.
    pub path: String,
    pub interval_secs: u32,
}

impl Probe {
    pub fn url(&self) -> String {
        format!("http://{}:{}{}", self.host, self.port, self.path)
    }
}

pub(super) fn validate(cfg: &Config, e: &mut Errors) -> Option<StatusPage> {
    let page = cfg
        .status_page
        .clone()
        .unwrap_or(crate::core::config::StatusPage {
            enabled: true,
            ..Default::default()
        });
    if !page.enabled {
        return None;
    }
    let port = match page.port {
        Some(0) => {
            e.add("status_page.port", "port 0 is not a port");
            DEFAULT_PORT
        }
        Some(p) => p,
        None => DEFAULT_PORT,
    };
    let lans = match &page.lans {
        None => cfg.lans.keys().cloned().collect(),
        Some(list) => {
            for (i, name) in list.iter().enumerate() {
                if !cfg.lans.contains_key(name) {
                    e.add(
                        format!("status_page.lans[{i}]"),
                        format!("no LAN named `{name}`"),
                    );
                }
            }
            if list.is_empty() {
                e.add(
                    "status_page.lans",
                    "empty: name at least one LAN, or set `enabled` to false",
                );
            }
            list.clone()
        }
    };
    let interval_secs = page.probe_interval.unwrap_or(DEFAULT_PROBE_INTERVAL);
    if !(MIN_PROBE_INTERVAL..=MAX_PROBE_INTERVAL).contains(&interval_secs) {
        e.add(
            "status_page.probe_interval",
            format!("{interval_secs} s is outside {MIN_PROBE_INTERVAL}..{MAX_PROBE_INTERVAL} s"),
        );
    }
    if page.probe_interval.is_some() && page.probe_url.is_none() {
        e.add("status_page.probe_interval", "set without `probe_url`");
    }
    let probe = page.probe_url.as_ref().and_then(|u| {
        e.parse("status_page.probe_url", parse_http_url(u))
            .map(|(host, port, path)| Probe {
                host,
                port,
                path,
                interval_secs,
            })
    });
    if lans.is_empty() {
        // No LAN at all (a bounce server): nowhere to serve the page.
        return None;
    }
    Some(StatusPage { port, lans, probe })
}

/// `http://HOST[:PORT][/PATH]` -> (host, port, path). No TLS: the probe is a
/// few bytes of plain HTTP, and the answer (an address) is not a secret.
pub fn parse_http_url(u: &str) -> Result<(String, u16, String), String> {
    let rest = u.strip_prefix("http://").ok_or_else(|| {
        if u.starts_with("https://") {
            format!("`{u}`: https is not supported; use a plain http:// URL")
        } else {
            format!("`{u}` is not an http:// URL")
        }
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{u}`: spaces or control characters in the path"));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            let port: u16 = p
                .parse()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("`{u}`: `{p}` is not a port"))?;
            (h, port)
        }
        _ => (authority, 80),
    };
    if host.parse::<Ipv4Addr>().is_err() {
        check_hostname(host).map_err(|r| format!("`{u}`: {r}"))?;
    }
    Ok((host.to_string(), port, path.to_string()))
}

#[cfg(test)]
mod tests {
    use super::parse_http_url;

    #[test]
    fn urls() {
        let ok = |u: &str| parse_http_url(u).unwrap();
        assert_eq!(
            ok("http://198.51.100.1:8080/"),
            ("198.51.100.1".into(), 8080, "/".into())
        );
        assert_eq!(
            ok("http://ip.example.net"),
            ("ip.example.net".into(), 80, "/".into())
        );
        assert_eq!(
            ok("http://ip.example.net/who?fmt=text"),
            ("ip.example.net".into(), 80, "/who?fmt=text".into())
        );
        for bad in [
            "https://ip.example.net/",
            "ftp://x/",
            "http://:80/",
            "http://host:0/",
            "http://host:99999/",
            "http://ho st/",
            "http://host/a b",
            "http://[2001:db8::1]/",
        ] {
            assert!(parse_http_url(bad).is_err(), "{bad} accepted");
        }
    }
}
