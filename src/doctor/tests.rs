use super::checks;
use super::*;
use crate::trace::kernel::Link;
use crate::trace::tests::{c, route, rule as trace_rule};
use crate::trace::{Action, RouteType, Rule};

const EXIT_KEY: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
const NOW: u64 = 1_000_000;

fn model() -> crate::core::model::Model {
    let cfg = crate::core::config::parse(&format!(
        r#"{{
          "wan": {{ "interface": "wan0", "static": {{ "address": "198.51.100.2/24", "gateway": "198.51.100.1" }} }},
          "lans": {{
            "home": {{ "interface": "lan0", "address": "192.168.10.1/24", "via": "paris" }},
            "guest": {{ "interface": "lan1", "address": "192.168.11.1/24", "via": "direct" }}
          }},
          "portals": {{ "paris": {{ "interface": "wg0", "private_key_file": "/k", "address": ["10.99.0.2/24"],
            "remote_subnets": ["192.168.20.0/24"],
            "peers": [ {{ "name": "exit", "public_key": "{EXIT_KEY}", "endpoint": "198.51.100.3:51820",
                          "allowed_ips": ["0.0.0.0/0"] }} ] }} }}
        }}"#
    ))
    .unwrap();
    crate::core::model::validate(&cfg).unwrap()
}

/// A rule that looks up `table` (trace's helper takes any action).
fn rule(priority: u32, from: Option<&str>, to: Option<&str>, table: u32) -> Rule {
    trace_rule(priority, from, to, Action::Table(table))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A listing with the rules Portal writes for `model()` that the checks read.
fn listing(mss_rules: usize, kill_switch: bool) -> String {
    let mut s = String::from("portal nftables listing v1 (netlink)\n");
    let mut add = |comment: &str, expr: &str| {
        let mut ud = vec![0u8, (comment.len() + 1) as u8];
        ud.extend_from_slice(comment.as_bytes());
        ud.push(0);
        s.push_str(&format!(
            "rule 1={} 2={} 7={}\n  {expr}\n",
            hex(b"portal\0"),
            hex(b"forward\0"),
            hex(&ud)
        ));
    };
    for i in 0..mss_rules {
        // 1240 = 0x04d8 (IPv4), 1220 = 0x04c4 (IPv6)
        add(
            "mss clamp paris",
            if i % 2 == 0 {
                "cmp 0c00030004d8"
            } else {
                "cmp 0c00030004c4"
            },
        );
    }
    if kill_switch {
        add("kill switch home via paris", "reject 00");
    }
    s
}

/// A healthy router for `model()`.
fn healthy() -> Facts {
    let mut f = Facts {
        now: NOW,
        ..Facts::default()
    };
    for (k, v) in [
        ("net.ipv4.ip_forward", "1"),
        ("net.ipv4.conf.all.rp_filter", "1"),
        ("net.ipv4.conf.lan0.forwarding", "1"),
        ("net.ipv4.conf.lan0.rp_filter", "0"),
    ] {
        f.sysctls.insert(k.into(), v.into());
    }
    for (i, (name, mtu)) in [
        ("wan0", 1500),
        ("lan0", 1500),
        ("lan1", 1500),
        ("wg0", 1280),
    ]
    .into_iter()
    .enumerate()
    {
        f.kernel.links.push(Link {
            index: i as u32 + 2,
            name: name.into(),
            mtu,
            up: true,
            kind: if name == "wg0" {
                "tun".into()
            } else {
                String::new()
            },
        });
    }
    f.kernel.rules = vec![
        rule(0, None, None, 255),
        rule(10000, None, Some("192.168.10.0/24"), 254),
        rule(10100, Some("192.168.10.0/24"), None, 51820),
        rule(32766, None, None, 254),
    ];
    f.kernel.routes = vec![
        route(255, "192.168.10.1/32", RouteType::Local, Some("lan0"), 0),
        route(
            255,
            "192.168.10.255/32",
            RouteType::Broadcast,
            Some("lan0"),
            0,
        ),
        route(254, "0.0.0.0/0", RouteType::Unicast, Some("wan0"), 0),
        route(254, "192.168.10.0/24", RouteType::Unicast, Some("lan0"), 0),
        route(254, "192.168.11.0/24", RouteType::Unicast, Some("lan1"), 0),
        route(254, "10.99.0.0/24", RouteType::Unicast, Some("wg0"), 0),
        route(254, "192.168.20.0/24", RouteType::Unicast, Some("wg0"), 0),
        route(51820, "0.0.0.0/0", RouteType::Unreachable, None, 4000),
        route(51820, "0.0.0.0/0", RouteType::Unicast, Some("wg0"), 0),
    ];
    f.wireguard.push(WgDevice {
        name: "wg0".into(),
        peers: vec![WgPeer {
            public_key: EXIT_KEY.into(),
            endpoint: Some("198.51.100.3:51820".parse().unwrap()),
            allowed_ips: vec![c("0.0.0.0/0")],
            latest_handshake: Some(NOW - 20),
            rx_bytes: 1000,
            tx_bytes: 2000,
        }],
    });
    f.nft = Some(listing(4, true));
    f.rpf = Some(RpfCounter {
        first: 5,
        second: 5,
        ms: 1000,
    });
    f
}

fn checks_of(findings: &[Finding]) -> Vec<&'static str> {
    findings.iter().map(|x| x.check).collect()
}

#[test]
fn a_healthy_router_has_no_findings() {
    assert_eq!(checks::run(&model(), &healthy()), vec![]);
}

#[test]
fn forwarding_off_globally_is_one_finding_with_its_fix() {
    let mut f = healthy();
    f.sysctls.insert("net.ipv4.ip_forward".into(), "0".into());
    f.sysctls
        .insert("net.ipv4.conf.lan0.forwarding".into(), "0".into());
    let x = checks::forwarding(&model(), &f);
    assert_eq!(x.len(), 1);
    assert_eq!(x[0].evidence, vec!["net.ipv4.ip_forward = 0"]);
    assert_eq!(x[0].fix[0], "sysctl -w net.ipv4.ip_forward=1");
}

#[test]
fn forwarding_off_on_one_interface() {
    let mut f = healthy();
    f.sysctls
        .insert("net.ipv4.conf.lan0.forwarding".into(), "0".into());
    let x = checks::run(&model(), &f);
    assert_eq!(checks_of(&x), vec!["forwarding"]);
    assert!(x[0].problem.contains("lan0"));
    assert_eq!(x[0].fix, vec!["sysctl -w net.ipv4.conf.lan0.forwarding=1"]);
}

fn asymmetric() -> Facts {
    let mut f = healthy();
    // A host of the home LAN is routed back by another interface.
    f.kernel.routes.push(route(
        254,
        "192.168.10.10/32",
        RouteType::Unicast,
        Some("lan1"),
        0,
    ));
    f
}

#[test]
fn strict_rp_filter_with_an_asymmetric_route_and_a_rising_counter_is_an_error() {
    let mut f = asymmetric();
    f.rpf = Some(RpfCounter {
        first: 5,
        second: 9,
        ms: 1000,
    });
    let x = checks::rp_filter(&model(), &f);
    assert_eq!(x.len(), 1, "{x:?}");
    assert_eq!(x[0].severity, Severity::Error);
    assert!(x[0].problem.contains("on lan0") && x[0].problem.contains("leaves by lan1"));
    assert!(x[0]
        .evidence
        .iter()
        .any(|e| e.contains("5 -> 9") && e.contains("4 dropped")));
    assert!(x[0].fix[0].starts_with("sysctl -w net.ipv4.conf.lan0.rp_filter=2"));
}

#[test]
fn rp_filter_without_drops_warns_and_loose_mode_is_quiet() {
    let f = asymmetric();
    let x = checks::rp_filter(&model(), &f);
    assert_eq!(x[0].severity, Severity::Warning);
    let mut loose = asymmetric();
    loose
        .sysctls
        .insert("net.ipv4.conf.all.rp_filter".into(), "2".into());
    assert_eq!(checks::rp_filter(&model(), &loose), vec![]);
    // conf.all 0 but the interface strict: the higher one is in force.
    let mut dev = asymmetric();
    dev.sysctls
        .insert("net.ipv4.conf.all.rp_filter".into(), "0".into());
    dev.sysctls
        .insert("net.ipv4.conf.lan0.rp_filter".into(), "1".into());
    assert_eq!(checks::rp_filter(&model(), &dev).len(), 1);
}

#[test]
fn rp_filter_drops_nobody_explains_are_still_reported() {
    let mut f = healthy();
    f.rpf = Some(RpfCounter {
        first: 1,
        second: 3,
        ms: 1000,
    });
    let x = checks::rp_filter(&model(), &f);
    assert_eq!(x.len(), 1);
    assert!(x[0].problem.contains("dropped 2 packet"));
}

#[test]
fn tunnel_mtu_different_from_the_config() {
    let mut f = healthy();
    f.kernel
        .links
        .iter_mut()
        .find(|l| l.name == "wg0")
        .unwrap()
        .mtu = 1420;
    let x = checks::mtu(&model(), &f);
    assert_eq!(checks_of(&x), vec!["mtu"]);
    assert!(x[0].evidence[0].contains("wg0 mtu 1420"));
    assert_eq!(x[0].fix[0], "ip link set dev wg0 mtu 1280");
}

#[test]
fn missing_mss_clamp_rule() {
    let mut f = healthy();
    f.nft = Some(listing(3, true));
    let x = checks::mtu(&model(), &f);
    assert_eq!(checks_of(&x), vec!["mss"]);
    assert!(x[0].evidence[0].contains("3 rule(s)"));
}

#[test]
fn tunnel_plus_overhead_above_the_wan_mtu() {
    let mut f = healthy();
    f.kernel
        .links
        .iter_mut()
        .find(|l| l.name == "wan0")
        .unwrap()
        .mtu = 1300;
    let x = checks::mtu(&model(), &f);
    assert_eq!(checks_of(&x), vec!["mtu"]);
    assert!(x[0].problem.contains("1340"), "{}", x[0].problem);
    // A route MTU to the endpoint counts as the path too.
    let mut g = healthy();
    g.kernel.routes[2].mtu = Some(1320);
    assert_eq!(checks_of(&checks::mtu(&model(), &g)), vec!["mtu"]);
}

#[test]
fn handshake_never_or_stale_names_peer_and_endpoint() {
    let mut f = healthy();
    f.wireguard[0].peers[0].latest_handshake = None;
    let x = checks::handshakes(&model(), &f);
    assert_eq!(x.len(), 1);
    assert!(x[0]
        .problem
        .contains("peer exit at 198.51.100.3:51820 (never)"));
    f.wireguard[0].peers[0].latest_handshake = Some(NOW - 181);
    assert!(checks::handshakes(&model(), &f)[0]
        .problem
        .contains("181 s ago"));
    f.wireguard[0].peers[0].latest_handshake = Some(NOW - 180);
    assert_eq!(checks::handshakes(&model(), &f), vec![]);
    f.wireguard.clear();
    assert!(checks::handshakes(&model(), &f)[0].evidence[0].contains("not a WireGuard device"));
}

fn probe(lan: Option<&str>, src: &str, answer: Option<&str>) -> Probe {
    Probe {
        portal: "paris".into(),
        lan: lan.map(str::to_string),
        src: src.parse().unwrap(),
        target: "192.168.20.1".parse().unwrap(),
        answer: answer.map(str::to_string),
    }
}

#[test]
fn route_back_missing_when_only_the_tunnel_address_is_answered() {
    let mut f = healthy();
    f.probes = vec![
        probe(None, "10.99.0.2", Some("ICMP port unreachable")),
        probe(Some("home"), "192.168.10.1", None),
    ];
    let x = checks::route_back(&model(), &f);
    assert_eq!(x.len(), 1);
    assert!(x[0].fix[0].contains("\"192.168.10.0/24\"") && x[0].fix[0].contains("remote_subnets"));
    // Both answered: fine. Neither: the tunnel itself is down, not this.
    f.probes[1].answer = Some("ICMP port unreachable".into());
    assert_eq!(checks::route_back(&model(), &f), vec![]);
    f.probes[0].answer = None;
    f.probes[1].answer = None;
    assert_eq!(checks::route_back(&model(), &f), vec![]);
}

#[test]
fn probe_plan_sources_tunnel_and_unmasqueraded_lans() {
    let m = model();
    let plan = super::gather::probe_plan(&m, &healthy());
    let got: Vec<(Option<&str>, String)> = plan
        .iter()
        .map(|p| (p.lan.as_deref(), format!("{} -> {}", p.src, p.target)))
        .collect();
    assert_eq!(
        got,
        vec![
            (None, "10.99.0.2 -> 192.168.20.1".to_string()),
            (Some("guest"), "192.168.11.1 -> 192.168.20.1".to_string()),
            (Some("home"), "192.168.10.1 -> 192.168.20.1".to_string()),
        ]
    );
    // No live peer: nothing is probed.
    let mut f = healthy();
    f.wireguard[0].peers[0].latest_handshake = None;
    assert!(super::gather::probe_plan(&m, &f).is_empty());
}

#[test]
fn allowed_ips_overlapping_another_device_or_a_lan() {
    let mut f = healthy();
    f.wireguard.push(WgDevice {
        name: "other0".into(),
        peers: vec![WgPeer {
            public_key: "uW+gFVSzAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
            allowed_ips: vec![c("0.0.0.0/0"), c("192.168.20.0/25"), c("192.168.10.128/25")],
            ..WgPeer::default()
        }],
    });
    let x = checks::overlaps(&model(), &f);
    assert_eq!(x.len(), 2, "{x:?}");
    assert!(x[0]
        .problem
        .contains("192.168.20.0/25 on other0 overlaps 192.168.20.0/24 on wg0"));
    // The fix points at the device that is not Portal's.
    assert!(x[0].fix[0].contains("wg set other0"));
    assert!(x[1].problem.contains("overlaps LAN home"));
}

#[test]
fn kill_switch_not_armed_without_its_route_or_its_rule() {
    let mut f = healthy();
    f.kernel.routes.retain(|r| r.kind != RouteType::Unreachable);
    let x = checks::kill_switch(&model(), &f);
    assert_eq!(x.len(), 1);
    assert!(x[0].evidence[0].contains("no unreachable default route"));
    assert_eq!(
        x[0].fix[0],
        "ip route add unreachable default table 51820 metric 4000 proto 52"
    );
    let mut g = healthy();
    g.nft = Some(listing(4, false));
    let x = checks::kill_switch(&model(), &g);
    assert!(x[0].evidence[1].contains("missing"));
    g.nft = None;
    assert!(checks::kill_switch(&model(), &g)[0].evidence[1].contains("absent"));
}

#[test]
fn findings_serialize_for_json() {
    let mut f = healthy();
    f.sysctls.insert("net.ipv4.ip_forward".into(), "0".into());
    let j = serde_json::to_value(checks::run(&model(), &f)).unwrap();
    assert_eq!(j[0]["check"], "forwarding");
    assert_eq!(j[0]["severity"], "error");
    assert_eq!(j[0]["evidence"][0], "net.ipv4.ip_forward = 0");
}

#[test]
fn trace_accepts_a_split_lans_direct_destination_out_the_wan_and_rejects_the_rest() {
    use crate::trace::forward::{verdict, Verdict};
    use crate::trace::{Outcome, Trace};
    let text = format!(
        r#"{{
          "wan": {{ "interface": "wan0", "static": {{ "address": "198.51.100.2/24", "gateway": "198.51.100.1" }} }},
          "lans": {{ "home": {{ "interface": "lan0", "address": "192.168.10.1/24", "via": "paris",
                               "split": {{ "direct": ["203.0.113.0/24"] }} }} }},
          "portals": {{ "paris": {{ "interface": "wg0", "private_key_file": "/k", "address": ["10.99.0.2/24"],
            "peers": [ {{ "public_key": "{EXIT_KEY}", "endpoint": "198.51.100.3:51820", "allowed_ips": ["0.0.0.0/0"] }} ] }} }}
        }}"#
    );
    let m = crate::core::model::validate(&crate::core::config::parse(&text).unwrap()).unwrap();
    let lan = &m.lans[0];
    let out = |dev: &str| Trace {
        steps: Vec::new(),
        outcome: Outcome::Route(route(254, "0.0.0.0/0", RouteType::Unicast, Some(dev), 0)),
    };
    let dst: std::net::IpAddr = "203.0.113.1".parse().unwrap();
    assert!(
        matches!(verdict(&m, lan, &dst, &out("wan0")), Verdict::Accept(c) if c.contains("split"))
    );
    assert!(matches!(
        verdict(&m, lan, &dst, &out("wg0")),
        Verdict::Accept(_)
    ));
    assert!(matches!(
        verdict(&m, lan, &dst, &out("lan9")),
        Verdict::KillSwitch(_)
    ));
}
