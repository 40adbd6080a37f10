//! Endpoint host names, re-resolved off the agent's loop.
//!
//! The other site's address may change (dynamic DNS). A thread resolves each
//! named endpoint every `interval`, sooner while its peer has no recent
//! handshake (the name may point somewhere new), and with backoff while the
//! name does not resolve. When an address changes it tells the agent, whose
//! next pass updates that one peer (diff.rs writes only differing peers).
//! Resolving blocks (getaddrinfo), so it never runs on the agent's loop.
//!
//! The scheduling is pure (`due`, `stale`), tested without a resolver.

use crate::core::model::Model;
use crate::log;
use crate::worker::{lock, Worker};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

pub use crate::kernel::wireguard::STALE_SECS;
/// While a peer is stale, its name is resolved again this often.
pub const STALE_RETRY_SECS: u64 = 15;
/// First retry after a name fails to resolve; doubled per failure, up to
/// the interval.
pub const FAIL_RETRY_SECS: u64 = 5;

/// (portal name, peer index): the key of `desired::Inputs::endpoints`.
pub type PeerKey = (String, usize);

/// An endpoint given as a host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub key: PeerKey,
    pub interface: String,
    pub public_key: String,
    pub host: String,
    pub port: u16,
}

/// What is known of one name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub addr: Option<SocketAddr>,
    /// Unix seconds of the last attempt.
    pub tried_at: Option<u64>,
    /// Failures since the last success.
    pub failures: u32,
}

/// Endpoints that are host names (IP literals need no resolving).
pub fn targets(m: &Model) -> Vec<Target> {
    let mut out = Vec::new();
    for p in &m.portals {
        for (i, peer) in p.peers.iter().enumerate() {
            let Some(e) = &peer.endpoint else { continue };
            if e.host.parse::<IpAddr>().is_ok() {
                continue;
            }
            out.push(Target {
                key: (p.name.clone(), i),
                interface: p.interface.clone(),
                public_key: peer.public_key.clone(),
                host: e.host.clone(),
                port: e.port,
            });
        }
    }
    out
}

/// Endpoints given as IP addresses, as socket addresses.
pub fn literal_endpoints(m: &Model) -> BTreeMap<PeerKey, SocketAddr> {
    let mut out = BTreeMap::new();
    for p in &m.portals {
        for (i, peer) in p.peers.iter().enumerate() {
            if let Some(e) = &peer.endpoint {
                if let Ok(ip) = e.host.parse::<IpAddr>() {
                    out.insert((p.name.clone(), i), SocketAddr::new(ip, e.port));
                }
            }
        }
    }
    out
}

/// A peer whose latest handshake (unix seconds; None: never) is older than
/// STALE_SECS at `now`.
pub fn stale(latest_handshake: Option<u64>, now: u64) -> bool {
    latest_handshake.is_none_or(|t| now.saturating_sub(t) > STALE_SECS)
}

/// Whether `e` should be resolved again at `now`.
pub fn due(e: &Entry, now: u64, stale: bool, interval: u64) -> bool {
    let Some(tried) = e.tried_at else {
        return true;
    };
    let wait = if e.failures > 0 {
        let shift = (e.failures - 1).min(16);
        (FAIL_RETRY_SECS << shift).min(interval)
    } else if stale {
        STALE_RETRY_SECS.min(interval)
    } else {
        interval
    };
    now >= tried.saturating_add(wait)
}

/// Resolves `host:port` now, preferring IPv4 (the WAN is IPv4 today).
pub fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let all: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .collect();
    all.iter()
        .find(|a| a.is_ipv4())
        .or(all.first())
        .copied()
        .ok_or_else(|| "no address".to_string())
}

#[derive(Default)]
struct State {
    targets: Vec<Target>,
    /// By target key; reset when the key's host or port changes.
    entries: BTreeMap<PeerKey, (String, u16, Entry)>,
}

/// The resolving thread and what it found.
pub struct Resolver {
    state: Arc<Mutex<State>>,
    changed: watch::Receiver<u64>,
    worker: Worker,
}

impl Resolver {
    /// Starts the thread; `interval` is the period for names whose peer
    /// answers.
    pub fn start(interval: Duration) -> Resolver {
        let state: Arc<Mutex<State>> = Arc::default();
        let (tx, changed) = watch::channel(0u64);
        let shared = state.clone();
        let interval = interval.as_secs().max(1);
        let worker = Worker::spawn("endpoint resolver".into(), move |stop: &AtomicBool| {
            while !stop.load(Ordering::Relaxed) {
                if round(&shared, interval) {
                    tx.send_modify(|v| *v += 1);
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            Ok(())
        });
        Resolver {
            state,
            changed,
            worker,
        }
    }

    /// Follows the model: names no longer configured are forgotten, new
    /// ones are resolved on the thread's next round.
    pub fn set_model(&self, m: &Model) {
        let mut s = lock(&self.state);
        s.targets = targets(m);
        let keep: Vec<PeerKey> = s.targets.iter().map(|t| t.key.clone()).collect();
        s.entries.retain(|k, _| keep.contains(k));
    }

    /// Every endpoint that has an address now: IP literals, and names as
    /// last resolved (a name not resolved yet is absent: the device keeps
    /// its current endpoint).
    pub fn endpoints(&self, m: &Model) -> BTreeMap<PeerKey, SocketAddr> {
        let mut out = literal_endpoints(m);
        let s = lock(&self.state);
        for t in &s.targets {
            if let Some((host, port, e)) = s.entries.get(&t.key) {
                if let (true, Some(a)) = (host == &t.host && *port == t.port, e.addr) {
                    out.insert(t.key.clone(), a);
                }
            }
        }
        out
    }

    /// Changes each time an address changes.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.changed.clone()
    }

    pub fn tell_to_stop(&self) {
        self.worker.tell_to_stop();
    }

    pub fn stop(self) {
        self.worker.stop();
    }
}

/// One round: resolves the names that are due. True if an address changed.
fn round(shared: &Mutex<State>, interval: u64) -> bool {
    let targets = lock(shared).targets.clone();
    let mut handshakes: BTreeMap<String, BTreeMap<String, Option<u64>>> = BTreeMap::new();
    let mut changed = false;
    for t in targets {
        let now = crate::clock::unix_ms() / 1000;
        let peers = handshakes
            .entry(t.interface.clone())
            .or_insert_with(|| latest_handshakes(&t.interface));
        // A device not there yet has no handshake to judge by.
        let is_stale = peers
            .get(&t.public_key)
            .is_some_and(|latest| stale(*latest, now));
        let entry = {
            let s = lock(shared);
            match s.entries.get(&t.key) {
                Some((h, p, e)) if *h == t.host && *p == t.port => e.clone(),
                _ => Entry::default(),
            }
        };
        if !due(&entry, now, is_stale, interval) {
            continue;
        }
        let result = resolve(&t.host, t.port);
        let (portal, i) = &t.key;
        let at = format!("portals.{portal}.peers[{i}].endpoint");
        let next = match result {
            Ok(addr) => {
                match entry.addr {
                    Some(old) if old != addr => {
                        log::info(&format!(
                            "{at}: {} now resolves to {addr} (was {old})",
                            t.host
                        ));
                        changed = true;
                    }
                    None => {
                        log::info(&format!("{at}: {} resolves to {addr}", t.host));
                        changed = true;
                    }
                    _ => {}
                }
                Entry {
                    addr: Some(addr),
                    tried_at: Some(now),
                    failures: 0,
                }
            }
            Err(e) => {
                if entry.failures == 0 {
                    log::warn(&format!(
                        "{at}: cannot resolve {}: {e}; keeping {}",
                        t.host,
                        entry
                            .addr
                            .map(|a| a.to_string())
                            .unwrap_or_else(|| "the device's endpoint".into())
                    ));
                }
                Entry {
                    addr: entry.addr,
                    tried_at: Some(now),
                    failures: entry.failures + 1,
                }
            }
        };
        lock(shared)
            .entries
            .insert(t.key.clone(), (t.host.clone(), t.port, next));
    }
    changed
}

/// Peer public key -> latest handshake (unix seconds), of one device; empty
/// when the device cannot be read.
fn latest_handshakes(interface: &str) -> BTreeMap<String, Option<u64>> {
    match crate::kernel::wireguard::stats(interface) {
        Ok(s) => s
            .peers
            .into_iter()
            .map(|p| (p.public_key, p.latest_handshake))
            .collect(),
        Err(_) => BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(tried: u64, failures: u32) -> Entry {
        Entry {
            addr: Some("192.0.2.1:51820".parse().unwrap()),
            tried_at: Some(tried),
            failures,
        }
    }

    #[test]
    fn a_name_never_tried_is_due_at_once() {
        assert!(due(&Entry::default(), 0, false, 60));
    }

    #[test]
    fn an_answering_peer_waits_for_the_interval() {
        let e = entry(1000, 0);
        assert!(!due(&e, 1059, false, 60));
        assert!(due(&e, 1060, false, 60));
    }

    #[test]
    fn a_stale_peer_is_resolved_again_sooner() {
        let e = entry(1000, 0);
        assert!(!due(&e, 1014, true, 300));
        assert!(due(&e, 1015, true, 300));
        // Never later than the interval itself.
        assert!(due(&e, 1002, true, 2));
    }

    #[test]
    fn failures_back_off_up_to_the_interval() {
        assert!(due(&entry(1000, 1), 1005, false, 300));
        assert!(!due(&entry(1000, 2), 1009, false, 300));
        assert!(due(&entry(1000, 2), 1010, false, 300));
        assert!(!due(&entry(1000, 30), 1299, false, 300));
        assert!(due(&entry(1000, 30), 1300, false, 300));
    }

    #[test]
    fn staleness_follows_the_latest_handshake() {
        assert!(stale(None, 1000));
        assert!(!stale(Some(900), 1000));
        assert!(!stale(Some(1000 - STALE_SECS), 1000));
        assert!(stale(Some(1000 - STALE_SECS - 1), 1000));
    }

    #[test]
    fn only_named_endpoints_are_targets() {
        let text = r#"{
          "wan": { "interface": "wan0", "static": { "address": "198.51.100.2/24", "gateway": "198.51.100.1" } },
          "portals": { "paris": { "interface": "wg-paris", "private_key_file": "/k", "address": ["10.99.0.2/24"],
            "peers": [
              { "public_key": "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=", "endpoint": "paris.example.net:51820", "allowed_ips": ["0.0.0.0/0"] },
              { "public_key": "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=", "endpoint": "192.0.2.9:51821", "allowed_ips": ["10.99.0.9/32"] }
            ] } }
        }"#;
        let m = crate::core::model::validate(&crate::core::config::parse(text).unwrap()).unwrap();
        let t = targets(&m);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].key, ("paris".to_string(), 0));
        assert_eq!(t[0].host, "paris.example.net");
        let lit = literal_endpoints(&m);
        assert_eq!(lit.len(), 1);
        assert_eq!(
            lit[&("paris".to_string(), 1)],
            "192.0.2.9:51821".parse().unwrap()
        );
    }
}
