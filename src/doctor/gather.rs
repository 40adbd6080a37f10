//! The effects of `doctor`: reads everything the checks look at into Facts.
//! Read-only but for the route-back probes (a few UDP datagrams).

use super::{probe, Facts, Probe, RpfCounter, WgDevice, WgPeer, HANDSHAKE_STALE_SECS};
use crate::core::model::{LanRoute, Model};
use crate::kernel::netlink::Netlink;
use crate::kernel::{nftables, sysctl, wireguard};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

pub struct Options {
    /// How long to watch the rp_filter counter.
    pub watch: Duration,
    pub probes: bool,
}

/// A counter of /proc/net/netstat ("TcpExt", "IPReversePathFilter"): each
/// group is a line of names followed by a line of values.
pub fn netstat(text: &str, group: &str, name: &str) -> Option<u64> {
    let prefix = format!("{group}:");
    let mut lines = text.lines().filter(|l| l.starts_with(&prefix));
    let (names, values) = (lines.next()?, lines.next()?);
    let i = names.split_whitespace().position(|n| n == name)?;
    values.split_whitespace().nth(i)?.parse().ok()
}

fn rpf_now() -> Option<u64> {
    let t = std::fs::read_to_string("/proc/net/netstat").ok()?;
    netstat(&t, "TcpExt", "IPReversePathFilter")
}

pub async fn facts(m: &Model, opts: &Options) -> Result<Facts, String> {
    let started = Instant::now();
    let first = rpf_now();
    let mut f = Facts {
        now: crate::clock::unix_ms() / 1000,
        ..Facts::default()
    };
    let rtnl = Netlink::new()?;
    f.kernel = rtnl.snapshot().await?;
    let mut keys = vec![
        "net.ipv4.ip_forward".to_string(),
        "net.ipv4.conf.all.rp_filter".to_string(),
    ];
    for l in &f.kernel.links {
        keys.push(format!("net.ipv4.conf.{}.forwarding", l.name));
        keys.push(format!("net.ipv4.conf.{}.rp_filter", l.name));
    }
    for k in keys {
        if let Some(v) = sysctl::read(&k) {
            f.sysctls.insert(k, v);
        }
    }
    for l in &f.kernel.links {
        let userspace = match l.kind.as_str() {
            "wireguard" => false,
            // A TUN is wireguard-go's when its UAPI socket answers.
            "tun" if wireguard::socket_path(&l.name).exists() => true,
            _ => continue,
        };
        match device(&l.name, userspace) {
            Ok(d) => f.wireguard.push(d),
            Err(e) => f.wireguard_errors.push((l.name.clone(), e)),
        }
    }
    f.nft = nftables::listing(crate::core::firewall::NFT_TABLE)?;
    if opts.probes {
        f.probes = probes(m, &f);
        f.dns = super::dns_probe::run(super::dns::plan(m));
    }
    // The counter's second reading: at least `watch` after the first.
    if let Some(first) = first {
        let left = opts.watch.saturating_sub(started.elapsed());
        tokio::time::sleep(left).await;
        if let Some(second) = rpf_now() {
            f.rpf = Some(RpfCounter {
                first,
                second,
                ms: started.elapsed().as_millis() as u64,
            });
        }
    }
    Ok(f)
}

fn device(name: &str, userspace: bool) -> Result<WgDevice, String> {
    let config = wireguard::observe(name, userspace)?;
    let stats = wireguard::stats(name)?;
    Ok(WgDevice {
        name: name.to_string(),
        peers: config
            .peers
            .into_iter()
            .map(|p| {
                let s = stats.peers.iter().find(|s| s.public_key == p.public_key);
                WgPeer {
                    endpoint: s.and_then(|s| s.endpoint).or(p.endpoint),
                    latest_handshake: s.and_then(|s| s.latest_handshake),
                    rx_bytes: s.map_or(0, |s| s.rx_bytes),
                    tx_bytes: s.map_or(0, |s| s.tx_bytes),
                    allowed_ips: p.allowed_ips,
                    public_key: p.public_key,
                }
            })
            .collect(),
    })
}

/// Where to probe for each portal with a live peer: a host of each routed
/// subnet, else a peer's own /32 in the tunnel network; from the tunnel
/// address, and from the address of each LAN whose traffic reaches it
/// unmasqueraded.
pub fn probe_plan(m: &Model, f: &Facts) -> Vec<Probe> {
    let mut plan = Vec::new();
    for p in &m.portals {
        let live = f.device(&p.interface).is_some_and(|d| {
            d.peers.iter().any(|x| {
                x.latest_handshake
                    .is_some_and(|t| f.now.saturating_sub(t) <= HANDSHAKE_STALE_SECS)
            })
        });
        let Some(tunnel_src) = p.addresses.iter().find(|a| a.addr.is_ipv4()) else {
            continue;
        };
        if !live {
            continue;
        }
        let mut targets: Vec<(IpAddr, bool)> = p
            .remote_subnets
            .iter()
            .filter(|s| !s.is_v6())
            .map(|s| match s.network().addr {
                IpAddr::V4(a) if s.len < 31 => IpAddr::V4(Ipv4Addr::from(u32::from(a) + 1)),
                _ => s.addr,
            })
            .map(|t| (t, true))
            .collect();
        if targets.is_empty() {
            for peer in &p.peers {
                for a in &peer.allowed_ips {
                    if a.len == 32 && tunnel_src.network().contains(&a.addr) {
                        targets.push((a.addr, false));
                    }
                }
            }
        }
        for (target, routed) in targets {
            plan.push(Probe {
                portal: p.name.clone(),
                lan: None,
                src: tunnel_src.addr,
                target,
                answer: None,
            });
            for l in &m.lans {
                let reaches = match &l.route {
                    // Masqueraded unless the target is a routed subnet.
                    LanRoute::Portal(r) => r.name == p.name && (routed || !p.masquerade),
                    LanRoute::Direct => routed,
                };
                if reaches {
                    plan.push(Probe {
                        portal: p.name.clone(),
                        lan: Some(l.name.clone()),
                        src: l.address.addr,
                        target,
                        answer: None,
                    });
                }
            }
        }
    }
    plan
}

fn probes(m: &Model, f: &Facts) -> Vec<Probe> {
    let mut done = Vec::new();
    for mut p in probe_plan(m, f) {
        // A probe refused on our side (no route) proves nothing: left out.
        match probe::udp(p.src, p.target, Duration::from_millis(1500)) {
            Ok(a) => {
                p.answer = a;
                done.push(p);
            }
            Err(e) => crate::log::warn(&format!("doctor: probe not sent: {e}")),
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::netstat;

    #[test]
    fn reads_a_counter_from_proc_net_netstat() {
        let t = "TcpExt: SyncookiesSent IPReversePathFilter TW\nTcpExt: 0 17 3\n\
                 IpExt: InNoRoutes InTruncatedPkts\nIpExt: 1 2\n";
        assert_eq!(netstat(t, "TcpExt", "IPReversePathFilter"), Some(17));
        assert_eq!(netstat(t, "IpExt", "InTruncatedPkts"), Some(2));
        assert_eq!(netstat(t, "TcpExt", "Missing"), None);
    }
}
