//! `/metrics`: the Prometheus text exposition format (version 0.0.4).

use super::Status;
use std::fmt::Write;

/// Escapes a label value: backslash, double quote and newline.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

/// Every family, one function per source: peers, WiFi, leases, DNS, the
/// agent's counters.
pub fn render(s: &Status) -> String {
    let mut o = String::with_capacity(2048);
    peers(&mut o, s);
    wifi(&mut o, s);
    leases(&mut o, s);
    dns(&mut o, s);
    agent(&mut o, s);
    o
}

fn peers(o: &mut String, s: &Status) {
    family(
        o,
        "portal_peer_handshake_age_seconds",
        "gauge",
        "Seconds since the latest WireGuard handshake with the peer (absent: never).",
    );
    for p in &s.portals {
        for peer in &p.peers {
            if let Some(a) = peer.handshake_age_secs {
                let _ = writeln!(
                    o,
                    "portal_peer_handshake_age_seconds{{portal=\"{}\",peer=\"{}\"}} {a}",
                    label(&p.name),
                    label(&peer.public_key)
                );
            }
        }
    }
    for (name, help, pick) in [
        (
            "portal_peer_receive_bytes_total",
            "Bytes received from the peer.",
            0,
        ),
        (
            "portal_peer_transmit_bytes_total",
            "Bytes sent to the peer.",
            1,
        ),
    ] {
        family(o, name, "counter", help);
        for p in &s.portals {
            for peer in &p.peers {
                let v = if pick == 0 {
                    peer.rx_bytes
                } else {
                    peer.tx_bytes
                };
                let _ = writeln!(
                    o,
                    "{name}{{portal=\"{}\",peer=\"{}\"}} {v}",
                    label(&p.name),
                    label(&peer.public_key)
                );
            }
        }
    }
}

fn wifi(o: &mut String, s: &Status) {
    family(
        o,
        "portal_wifi_stations",
        "gauge",
        "Stations associated with the SSID.",
    );
    for b in &s.wifi {
        let _ = writeln!(
            o,
            "portal_wifi_stations{{lan=\"{}\",ssid=\"{}\"}} {}",
            label(&b.lan),
            label(&b.ssid),
            b.stations.len()
        );
    }
    family(
        o,
        "portal_wifi_station_signal_dbm",
        "gauge",
        "Signal of an associated station, as the driver reports it.",
    );
    for b in &s.wifi {
        for st in &b.stations {
            if let Some(d) = st.signal_dbm {
                let _ = writeln!(
                    o,
                    "portal_wifi_station_signal_dbm{{lan=\"{}\",mac=\"{}\"}} {d}",
                    label(&b.lan),
                    label(&st.mac)
                );
            }
        }
    }
}

/// Leases on record, counted per LAN and state.
fn leases(o: &mut String, s: &Status) {
    family(
        o,
        "portal_dhcp_leases",
        "gauge",
        "DHCP leases on record per LAN and state.",
    );
    for (lan, list) in &s.leases {
        let mut by_state = std::collections::BTreeMap::new();
        for l in list {
            *by_state
                .entry(format!("{:?}", l.state).to_lowercase())
                .or_insert(0u64) += 1;
        }
        for (state, n) in by_state {
            let _ = writeln!(
                o,
                "portal_dhcp_leases{{lan=\"{}\",state=\"{state}\"}} {n}",
                label(lan)
            );
        }
    }
}

fn dns(o: &mut String, s: &Status) {
    type Pick = fn(&super::Dns) -> u64;
    let dns: [(&str, &str, &str, Pick); 6] = [
        (
            "portal_dns_queries_total",
            "counter",
            "Queries the LAN's DNS forwarder received.",
            |d| d.queries,
        ),
        (
            "portal_dns_upstream_answers_total",
            "counter",
            "Upstream answers relayed to clients.",
            |d| d.answered,
        ),
        (
            "portal_dns_cache_hits_total",
            "counter",
            "Queries answered from the cache.",
            |d| d.cache_hits,
        ),
        (
            "portal_dns_cache_misses_total",
            "counter",
            "Cacheable queries not in the cache.",
            |d| d.cache_misses,
        ),
        (
            "portal_dns_servfail_total",
            "counter",
            "Queries answered SERVFAIL (no upstream answered).",
            |d| d.servfail,
        ),
        (
            "portal_dns_cache_entries",
            "gauge",
            "Answers in the cache.",
            |d| d.cache_entries as u64,
        ),
    ];
    for (name, kind, help, pick) in dns {
        family(o, name, kind, help);
        for d in &s.dns {
            let _ = writeln!(o, "{name}{{lan=\"{}\"}} {}", label(&d.lan), pick(d));
        }
    }
}

/// The agent's own counters and the system's uptime.
fn agent(o: &mut String, s: &Status) {
    let c = &s.counters;
    for (name, help, v) in [
        (
            "portal_passes_total",
            "Agent passes (observe, diff, apply).",
            c.passes,
        ),
        (
            "portal_changes_applied_total",
            "Kernel changes the agent applied.",
            c.changes_applied,
        ),
        (
            "portal_apply_errors_total",
            "Kernel changes that failed.",
            c.apply_errors,
        ),
        (
            "portal_restarts_total",
            "Child restarts (wireguard-go, DHCP threads).",
            c.restarts,
        ),
    ] {
        family(o, name, "counter", help);
        let _ = writeln!(o, "{name} {v}");
    }
    family(
        o,
        "portal_uptime_seconds",
        "gauge",
        "Seconds since the system booted.",
    );
    let _ = writeln!(o, "portal_uptime_seconds {}", s.system.uptime_secs);
}
