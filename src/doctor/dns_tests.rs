use super::dns::{self, Answer, Ask, DnsProbe, Target};
use super::{Facts, Severity, WgDevice, WgPeer};
use std::net::Ipv4Addr;

const EXIT_KEY: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
const NOW: u64 = 1_000_000;

/// home via paris (upstreams 10.64.0.1 and 10.64.0.2 from 10.99.0.2),
/// office direct (the WAN's 198.51.100.1), guest without `dns`.
fn model(office_dhcp: &str) -> crate::core::model::Model {
    let cfg = crate::core::config::parse(&format!(
        r#"{{
          "wan": {{ "interface": "wan0", "static": {{ "address": "198.51.100.2/24", "gateway": "198.51.100.1", "dns": ["198.51.100.1"] }} }},
          "lans": {{
            "home": {{ "interface": "lan0", "address": "192.168.10.1/24", "via": "paris", "dns": {{}}, "dhcp": {{}} }},
            "office": {{ "interface": "lan1", "address": "192.168.11.1/24", "via": "direct", "dns": {{}}, "dhcp": {{ {office_dhcp} }} }},
            "guest": {{ "interface": "lan2", "address": "192.168.12.1/24", "via": "paris", "dhcp": {{ "dns": ["9.9.9.9"] }} }}
          }},
          "portals": {{ "paris": {{ "interface": "wg0", "private_key_file": "/k", "address": ["10.99.0.2/24"],
            "dns": ["10.64.0.1", "10.64.0.2"],
            "peers": [ {{ "name": "exit", "public_key": "{EXIT_KEY}", "endpoint": "198.51.100.3:51820",
                          "allowed_ips": ["0.0.0.0/0"] }} ] }} }}
        }}"#
    ))
    .unwrap();
    crate::core::model::validate(&cfg).unwrap()
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn ok(rcode: u8) -> Answer {
    Answer::Reply { rcode, ms: 3 }
}

/// Facts with every planned query answered as `answer(ask)` says, and
/// the tunnel's handshake `age` seconds ago (None: never).
fn facts(
    m: &crate::core::model::Model,
    age: Option<u64>,
    answer: impl Fn(&Ask) -> Answer,
) -> Facts {
    let mut f = Facts {
        now: NOW,
        ..Facts::default()
    };
    f.wireguard.push(WgDevice {
        name: "wg0".into(),
        peers: vec![WgPeer {
            public_key: EXIT_KEY.into(),
            latest_handshake: age.map(|a| NOW - a),
            ..WgPeer::default()
        }],
    });
    f.dns = dns::plan(m)
        .into_iter()
        .map(|ask| DnsProbe {
            answer: answer(&ask),
            ask,
        })
        .collect();
    f
}

fn healthy_answer(a: &Ask) -> Answer {
    match a.target {
        Target::Forwarder => ok(4), // NOTIMP: the forwarder's own answer
        Target::Upstream => ok(3),  // NXDOMAIN for .invalid
    }
}

#[test]
fn plan_asks_each_forwarder_on_its_lan_address_and_each_upstream_from_the_forwarders_source() {
    let m = model("");
    let plan = dns::plan(&m);
    let show: Vec<String> = plan
        .iter()
        .map(|a| format!("{} {:?} {:?} {}", a.lan, a.target, a.src, a.server))
        .collect();
    assert_eq!(
        show,
        vec![
            "home Forwarder None 192.168.10.1",
            "home Upstream Some(10.99.0.2) 10.64.0.1",
            "home Upstream Some(10.99.0.2) 10.64.0.2",
            "office Forwarder None 192.168.11.1",
            "office Upstream None 198.51.100.1",
        ]
    );
}

#[test]
fn healthy_forwarders_and_upstreams_have_no_findings() {
    let m = model("");
    let f = facts(&m, Some(10), healthy_answer);
    assert_eq!(dns::check(&m, &f), vec![]);
    // NOERROR is as good as NXDOMAIN; no queries at all (--no-probe): nothing.
    let f = facts(&m, Some(10), |a| match a.target {
        Target::Forwarder => ok(4),
        Target::Upstream => ok(0),
    });
    assert_eq!(dns::check(&m, &f), vec![]);
    let mut f = facts(&m, Some(10), healthy_answer);
    f.dns.clear();
    assert_eq!(dns::check(&m, &f), vec![]);
    // The guest LAN's DHCP hands out 9.9.9.9, but it has no forwarder: not ours.
    assert!(super::checks::run(&m, &f).iter().all(|x| x.check != "dns"));
}

#[test]
fn a_silent_or_absent_forwarder_is_an_error_pointing_at_the_agents_log() {
    let m = model("");
    for (answer, why) in [
        (
            Answer::Timeout { ms: 1502 },
            "no reply in 1502 ms (3 tries)",
        ),
        (Answer::NoListener, "ICMP port unreachable"),
    ] {
        let f = facts(&m, Some(10), |a| {
            if a.target == Target::Forwarder && a.lan == "home" {
                answer.clone()
            } else {
                healthy_answer(a)
            }
        });
        let x = dns::check(&m, &f);
        assert_eq!(x.len(), 1, "{x:?}");
        assert_eq!(x[0].severity, Severity::Error);
        assert!(
            x[0].problem
                .starts_with("LAN home's DNS forwarder does not answer on 192.168.10.1:53"),
            "{}",
            x[0].problem
        );
        assert!(
            x[0].evidence[0].contains("the router -> 192.168.10.1:53: ")
                && x[0].evidence[0].contains(why),
            "{:?}",
            x[0].evidence
        );
        assert!(x[0].fix[0].contains("`dns home: answering on 192.168.10.1:53`"));
    }
}

#[test]
fn one_upstream_silent_through_a_live_tunnel_is_a_warning_naming_the_exit() {
    let m = model("");
    let f = facts(&m, Some(30), |a| {
        if a.server == v4("10.64.0.2") {
            Answer::Timeout { ms: 2001 }
        } else {
            healthy_answer(a)
        }
    });
    let x = dns::check(&m, &f);
    assert_eq!(x.len(), 1, "{x:?}");
    assert_eq!(x[0].severity, Severity::Warning);
    assert!(x[0]
        .problem
        .contains("upstream resolver 10.64.0.2 does not resolve through portal paris"));
    assert_eq!(
        x[0].evidence,
        vec![
            "portal-doctor.invalid A: 10.99.0.2 -> 10.64.0.2:53: no reply in 2001 ms (3 tries)",
            "portal-doctor.invalid A: 10.99.0.2 -> 10.64.0.1:53: NXDOMAIN in 3 ms",
            "wg0: latest handshake 30 s ago (the tunnel is up)",
        ]
    );
    assert!(
        x[0].fix[0].starts_with("10.64.0.2 is unreachable from the exit")
            && x[0].fix[0].contains("portals.paris.dns")
            && x[0].fix[0].contains("from 10.99.0.2"),
        "{:?}",
        x[0].fix
    );
}

#[test]
fn every_upstream_failing_is_one_error_and_refused_names_the_access_list() {
    let m = model("");
    let f = facts(&m, Some(5), |a| match a.server.octets() {
        [10, 64, 0, 1] => Answer::Timeout { ms: 2000 },
        [10, 64, 0, 2] => ok(5),
        _ => healthy_answer(a),
    });
    let x = dns::check(&m, &f);
    assert_eq!(x.len(), 1, "{x:?}");
    assert_eq!(x[0].severity, Severity::Error);
    assert!(x[0]
        .problem
        .starts_with("no upstream resolver of LAN home answers through portal paris"));
    assert_eq!(x[0].evidence.len(), 3, "{:?}", x[0].evidence);
    assert!(x[0].evidence[1].ends_with("10.64.0.2:53: REFUSED in 3 ms"));
    assert!(x[0].fix[1].starts_with("10.64.0.2 refuses queries from 10.99.0.2"));
    // A direct LAN: "out the WAN", the WAN's static DNS named.
    let f = facts(&m, Some(5), |a| match a.lan.as_str() {
        "office" if a.target == Target::Upstream => {
            Answer::NotSent("Network is unreachable".into())
        }
        _ => healthy_answer(a),
    });
    let x = dns::check(&m, &f);
    assert_eq!(x.len(), 1, "{x:?}");
    assert!(x[0].problem.contains("LAN office answers out the WAN"));
    assert!(x[0].evidence[0].contains("the router (its own source) -> 198.51.100.1:53: not sent"));
    assert!(x[0].fix[0].contains("wan.static.dns"));
}

#[test]
fn upstreams_are_not_judged_while_the_tunnel_is_down() {
    // The handshake check reports the cause; SERVFAIL is its consequence.
    let m = model("");
    for age in [None, Some(super::HANDSHAKE_STALE_SECS + 1)] {
        let f = facts(&m, age, |a| match a.target {
            Target::Forwarder => ok(4),
            Target::Upstream if a.lan == "home" => Answer::NotSent("No route to host".into()),
            Target::Upstream => ok(3),
        });
        assert_eq!(dns::check(&m, &f), vec![], "{age:?}");
    }
}

#[test]
fn dhcp_handing_out_another_resolver_beside_the_forwarder_warns() {
    let m = model(r#""dns": ["192.168.11.1", "9.9.9.9"]"#);
    let f = facts(&m, Some(10), healthy_answer);
    let x = dns::check(&m, &f);
    assert_eq!(x.len(), 1, "{x:?}");
    assert_eq!(x[0].severity, Severity::Warning);
    assert!(x[0].problem.starts_with(
        "LAN office's DHCP hands out DNS 9.9.9.9 besides or instead of its forwarder 192.168.11.1"
    ));
    assert_eq!(
        x[0].evidence,
        vec!["lans.office.dhcp.dns = [192.168.11.1, 9.9.9.9]; lans.office.dns answers on 192.168.11.1:53"]
    );
    assert!(x[0].fix[0].starts_with("remove \"dns\" from lans.office.dhcp"));
    // Only the router: fine.
    let m = model(r#""dns": ["192.168.11.1"]"#);
    assert_eq!(dns::check(&m, &facts(&m, Some(10), healthy_answer)), vec![]);
}

#[test]
fn answers_are_read_from_real_datagrams() {
    // The probe against a UDP socket on loopback playing each part.
    use std::net::UdpSocket;
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let mut b = [0u8; 512];
        let (n, from) = server.recv_from(&mut b).unwrap();
        // A stray datagram with another ID first: skipped.
        let mut other = crate::dns::wire::answer(&b[..n]);
        other[0] ^= 0xff;
        server.send_to(&other, from).unwrap();
        let h = crate::dns::wire::Header::parse(&b[..n]).unwrap();
        assert_eq!(h.opcode(), 0);
        let q = crate::dns::wire::question(&b[..n]).unwrap();
        assert_eq!(q.name, b"\x0dportal-doctor\x07invalid\x00");
        let reply = crate::dns::wire::error_reply(&b[..n], &h, Some(q.end), 3);
        server.send_to(&reply, from).unwrap();
    });
    let a = super::dns_probe::query_port(
        &Ask {
            lan: "x".into(),
            target: Target::Upstream,
            src: Some(v4("127.0.0.1")),
            server: v4("127.0.0.1"),
        },
        port,
    );
    t.join().unwrap();
    assert!(matches!(a, Answer::Reply { rcode: 3, .. }), "{a:?}");
    // Nothing listening: port unreachable, at once.
    let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let a = super::dns_probe::query_port(
        &Ask {
            lan: "x".into(),
            target: Target::Forwarder,
            src: None,
            server: v4("127.0.0.1"),
        },
        port,
    );
    assert_eq!(a, Answer::NoListener);
}
