use super::*;
use crate::dhcp::lease::LeaseState;
use std::net::Ipv4Addr;

fn sample() -> Status {
    let mut s = Status {
        system: System {
            version: "0.1.0".into(),
            hostname: Some("nyc".into()),
            uptime_secs: 3700,
            load: [0.5, 0.25, 0.125],
            mem_total_kib: 1024 * 1024,
            mem_available_kib: 512 * 1024,
            portal_is_init: true,
        },
        wan: Wan {
            interface: "eth0".into(),
            mode: "dhcp".into(),
            address: Some("198.51.100.104/24".into()),
            gateway: Some("198.51.100.1".into()),
            lease_expires_in: Some(300),
            link_up: true,
        },
        ..Status::default()
    };
    s.lans.push(Lan {
        name: "home".into(),
        interface: "eth1".into(),
        address: "192.168.10.1/24".into(),
        exit: "paris".into(),
        kill_switch_armed: Some(true),
    });
    s.portals.push(Portal {
        name: "paris".into(),
        interface: "wg-paris".into(),
        public_key: Some("PUBKEYsite=".into()),
        listen_port: Some(51820),
        backend: Some("kernel".into()),
        peers: vec![Peer {
            name: Some("paris-exit".into()),
            public_key: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=".into(),
            endpoint: Some("198.51.100.7:51820".into()),
            latest_handshake: Some(1_000_000 - 42),
            handshake_age_secs: Some(42),
            rx_bytes: 1536,
            tx_bytes: 3 * 1024 * 1024,
            state: peer_state(Some(42)),
        }],
        lans: vec!["home".into()],
        probe: None,
    });
    s.leases.insert(
        "home".into(),
        vec![Lease {
            address: Ipv4Addr::new(192, 168, 10, 100),
            client: "02:00:00:00:00:01".into(),
            mac: "02:00:00:00:00:01".into(),
            hostname: Some("<script>".into()),
            expires: 1_000_600,
            state: LeaseState::Bound,
        }],
    );
    s.dns.push(Dns {
        lan: "home".into(),
        queries: 120,
        answered: 30,
        cache_hits: 90,
        cache_misses: 30,
        servfail: 0,
        cache_entries: 25,
        cache_size: 10_000,
        ..Dns::default()
    });
    s.wifi.push(crate::wifi::hostapd::BssStatus {
        lan: "home".into(),
        interface: "wlan0".into(),
        ssid: "Paris <5G>".into(),
        radio: "phy0".into(),
        band: "5".into(),
        channel: 36,
        security: "wpa2".into(),
        state: "running".into(),
        hostapd_state: Some("ENABLED".into()),
        freq_mhz: Some(5180),
        stations: vec![crate::wifi::Station {
            mac: "02:00:00:00:01:01".into(),
            connected_secs: Some(90),
            signal_dbm: Some(-41),
            rx_bytes: Some(2048),
            tx_bytes: None,
            authorized: true,
        }],
    });
    s.log.push("12:00:00Z portal: applied: <b>&".into());
    s.counters = Counters {
        passes: 7,
        changes_applied: 23,
        apply_errors: 1,
        restarts: 2,
    };
    s
}

#[test]
fn peer_state_follows_the_handshake_age() {
    assert_eq!(peer_state(Some(0)), PeerState::Up);
    assert_eq!(peer_state(Some(179)), PeerState::Up);
    assert_eq!(peer_state(Some(180)), PeerState::Stale);
    assert_eq!(peer_state(Some(599)), PeerState::Stale);
    assert_eq!(peer_state(Some(600)), PeerState::Down);
    assert_eq!(peer_state(None), PeerState::Down);
}

#[test]
fn proc_files_parse() {
    assert_eq!(parse_uptime("3700.52 7000.10\n"), Some(3700));
    assert_eq!(
        parse_loadavg("0.50 0.25 0.12 1/123 4567\n"),
        Some([0.5, 0.25, 0.12])
    );
    let meminfo =
        "MemTotal:       24683108 kB\nMemFree:        20000000 kB\nMemAvailable:   23000000 kB\n";
    assert_eq!(parse_meminfo(meminfo), Some((24683108, 23000000)));
    assert_eq!(parse_uptime(""), None);
    assert_eq!(parse_loadavg("0.5 x"), None);
    assert_eq!(parse_meminfo("MemTotal: 5 kB\n"), None);
}

#[test]
fn durations_and_sizes_read_well() {
    assert_eq!(age(42), "42 s");
    assert_eq!(age(150), "3 min");
    assert_eq!(age(3700), "62 min");
    assert_eq!(age(7300), "2 h 1 min");
    assert_eq!(age(200_000), "2 d 7 h");
    assert_eq!(bytes(512), "512 B");
    assert_eq!(bytes(1536), "1.5 KiB");
    assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
}

#[test]
fn the_page_shows_every_section_and_escapes_what_it_is_given() {
    let page = html::render(&sample(), 1_000_000);
    for needle in [
        "<title>nyc - Portal</title>",
        "http-equiv=\"refresh\"",
        "up 62 min",
        "(firmware, PID 1)",
        "<code>wg-paris</code>, kernel)",
        "198.51.100.104/24",
        "10 min left",
        "<span class=\"up\">armed</span>",
        "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
        "42 s ago",
        "1.5 KiB / 3.0 MiB",
        "<span class=\"up\">up</span>",
        "192.168.10.100",
        "&lt;script&gt;",
        "applied: &lt;b&gt;&amp;",
        "7 passes, 23 changes applied, 1 apply errors, 2 restarts",
        "<td data-l=\"cache hits\">90 (75%)</td><td data-l=\"cached / size\">25 / 10000</td>",
        "<td data-l=\"SSID\">Paris &lt;5G&gt;</td>",
        "wlan0 (5 GHz, channel 36)",
        "<span class=\"up\">running</span> <small>(ENABLED, 5180 MHz)</small>",
        "<code>02:00:00:00:01:01</code>",
        "-41 dBm",
        "2.0 KiB / 0 B",
    ] {
        assert!(page.contains(needle), "missing {needle:?} in\n{page}");
    }
    assert!(!page.contains("<script>"), "host names are escaped");
    assert!(
        !page.contains("src=") && !page.contains("href=\"http"),
        "no external assets"
    );
}

#[test]
fn metrics_are_prometheus_text() {
    let m = metrics::render(&sample());
    for line in [
        "# TYPE portal_peer_handshake_age_seconds gauge",
        "portal_peer_handshake_age_seconds{portal=\"paris\",peer=\"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\"} 42",
        "portal_peer_receive_bytes_total{portal=\"paris\",peer=\"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\"} 1536",
        "portal_peer_transmit_bytes_total{portal=\"paris\",peer=\"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\"} 3145728",
        "portal_dhcp_leases{lan=\"home\",state=\"bound\"} 1",
        "portal_passes_total 7",
        "portal_apply_errors_total 1",
        "portal_restarts_total 2",
        "portal_uptime_seconds 3700",
        "portal_dns_cache_hits_total{lan=\"home\"} 90",
        "portal_dns_cache_entries{lan=\"home\"} 25",
        "portal_wifi_stations{lan=\"home\",ssid=\"Paris <5G>\"} 1",
        "portal_wifi_station_signal_dbm{lan=\"home\",mac=\"02:00:00:00:01:01\"} -41",
    ] {
        assert!(m.lines().any(|l| l == line), "missing {line:?} in\n{m}");
    }
    // Every sample line belongs to a family declared before it.
    let mut declared = std::collections::HashSet::new();
    for l in m.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            declared.insert(rest.split(' ').next().unwrap().to_string());
        } else if !l.starts_with('#') {
            let name = l.split(['{', ' ']).next().unwrap();
            assert!(declared.contains(name), "{name} used before its TYPE");
        }
    }
}

#[test]
fn json_has_the_same_data() {
    let v = serde_json::to_value(sample()).unwrap();
    assert_eq!(v["wan"]["address"], "198.51.100.104/24");
    assert_eq!(v["portals"][0]["peers"][0]["state"], "up");
    assert_eq!(v["portals"][0]["peers"][0]["rx_bytes"], 1536);
    assert_eq!(v["leases"]["home"][0]["mac"], "02:00:00:00:00:01");
    assert_eq!(v["lans"][0]["kill_switch_armed"], true);
    assert_eq!(v["dns"][0]["cache_hits"], 90);
}
