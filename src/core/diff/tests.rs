//! The diff against a kernel that already has (some of) the desired state.

use super::*;
use crate::core::desired::{desired, Inputs};
use crate::core::model;
use std::net::SocketAddr;

const EXIT_KEY: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
const OWN_KEY: &str = "UgFuZCTWLvtxOv2Eo9hTDnSg47iwgelf3xf1jIFxRD4=";

fn site() -> (Desired, Inputs) {
    let text = include_str!("../../../examples/site.json");
    let m = model::validate(&crate::core::config::parse(text).unwrap()).unwrap();
    let mut inputs = Inputs::default();
    inputs.public_keys.insert("paris".into(), OWN_KEY.into());
    inputs
        .endpoints
        .insert(("paris".into(), 0), "198.51.100.7:51820".parse().unwrap());
    (desired(&m, &inputs), inputs)
}

/// The kernel as Portal leaves it after applying `d`.
fn applied(d: &Desired) -> Observed {
    let mut o = Observed {
        nft_current: true,
        nft_present: true,
        ..Observed::default()
    };
    for l in &d.links {
        o.links.insert(
            l.name.clone(),
            ObservedLink {
                index: o.links.len() as u32 + 2,
                mtu: l.mtu.unwrap_or(1500),
                up: true,
                alias: l.alias.clone(),
                kind: LinkKind::Other,
            },
        );
    }
    o.addresses = d
        .addresses
        .iter()
        .map(|a| ObservedAddress {
            dev: a.dev.clone(),
            cidr: a.cidr,
            ours: true,
        })
        .collect();
    o.routes = d.routes.clone();
    o.rules = d.rules.clone();
    for w in &d.wireguard {
        o.wireguard.insert(
            w.name.clone(),
            ObservedWg {
                public_key: w.public_key.clone(),
                listen_port: w.listen_port.unwrap_or(0),
                peers: w
                    .peers
                    .iter()
                    .map(|p| ObservedPeer {
                        public_key: p.public_key.clone(),
                        endpoint: p.endpoint_addr,
                        allowed_ips: p.allowed_ips.clone(),
                        persistent_keepalive: p.persistent_keepalive,
                        handshake_recent: true,
                        endpoint_written: p.endpoint_addr,
                        preshared_key_id: p.preshared_key_id.clone(),
                    })
                    .collect(),
            },
        );
    }
    for s in &d.sysctls {
        o.sysctls.insert(s.key.clone(), s.value.clone());
    }
    o
}

#[test]
fn nothing_to_do_when_the_kernel_matches() {
    let (d, _) = site();
    assert_eq!(diff(&d, &applied(&d), None), Vec::<Change>::new());
}

#[test]
fn an_endpoint_this_agent_did_not_write_is_rewritten_for_that_peer_only() {
    let (d, _) = site();
    let mut o = applied(&d);
    let moved: SocketAddr = "198.51.100.99:51820".parse().unwrap();
    let peer = &mut o.wireguard.get_mut("wg-paris").unwrap().peers[0];
    peer.endpoint = Some(moved);
    // Set by someone else, or before this agent started.
    peer.endpoint_written = None;
    let changes = diff(&d, &o, None);
    assert_eq!(changes.len(), 1, "{changes:?}");
    match &changes[0] {
        Change::WgSet {
            private_key_file,
            listen_port,
            peers,
            remove_peers,
            ..
        } => {
            assert!(private_key_file.is_none() && listen_port.is_none() && remove_peers.is_empty());
            assert_eq!(peers.len(), 1);
            assert_eq!(
                peers[0].endpoint_addr,
                Some("198.51.100.7:51820".parse().unwrap())
            );
        }
        other => panic!("expected a peer update, got {other}"),
    }
}

#[test]
fn a_peer_that_roamed_and_answers_keeps_its_endpoint() {
    let (d, _) = site();
    let mut o = applied(&d);
    let roamed: SocketAddr = "198.51.100.99:40000".parse().unwrap();
    o.wireguard.get_mut("wg-paris").unwrap().peers[0].endpoint = Some(roamed);
    assert!(diff(&d, &o, None).is_empty());
}

#[test]
fn a_roamed_peer_that_stopped_answering_gets_the_configured_endpoint_again() {
    let (d, _) = site();
    let mut o = applied(&d);
    let peer = &mut o.wireguard.get_mut("wg-paris").unwrap().peers[0];
    peer.endpoint = Some("198.51.100.99:40000".parse().unwrap());
    peer.handshake_recent = false;
    assert_eq!(diff(&d, &o, None).len(), 1);
}

#[test]
fn a_name_that_resolves_anew_is_written_even_while_the_peer_answers() {
    let (mut d, _) = site();
    let o = applied(&d);
    let moved: SocketAddr = "198.51.100.13:51820".parse().unwrap();
    d.wireguard[0].peers[0].endpoint_addr = Some(moved);
    let changes = diff(&d, &o, None);
    assert!(
        matches!(&changes[..], [Change::WgSet { peers, .. }] if peers[0].endpoint_addr == Some(moved)),
        "{changes:?}"
    );
}

#[test]
fn an_unresolved_endpoint_leaves_the_device_alone() {
    let (mut d, _) = site();
    let o = applied(&d);
    d.wireguard[0].peers[0].endpoint_addr = None;
    assert!(diff(&d, &o, None).is_empty());
}

#[test]
fn unknown_peers_are_removed_and_a_new_key_is_written() {
    let (d, _) = site();
    let mut o = applied(&d);
    let wg = o.wireguard.get_mut("wg-paris").unwrap();
    wg.public_key = Some(EXIT_KEY.into());
    let mut stranger = wg.peers[0].clone();
    stranger.public_key = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=".into();
    stranger.allowed_ips = vec!["10.1.0.0/16".parse().unwrap()];
    wg.peers.push(stranger);
    let text: Vec<String> = diff(&d, &o, None).iter().map(|c| c.to_string()).collect();
    assert_eq!(
        text,
        vec!["wg set wg-paris private-key /etc/portal/paris.key peer HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw= remove"]
    );
}

#[test]
fn stale_objects_of_ours_are_removed_after_the_new_ones_are_added() {
    let (d, _) = site();
    let mut o = applied(&d);
    let stale_rule = Rule {
        priority: 10100,
        from: Some("192.168.99.0/24".parse().unwrap()),
        to: None,
        table: 51830,
    };
    o.rules.push(stale_rule.clone());
    o.rules
        .retain(|r| r.priority != 10000 || r.to != Some("192.168.10.0/24".parse().unwrap()));
    o.links.insert(
        "wg-old".into(),
        ObservedLink {
            index: 99,
            mtu: 1280,
            up: true,
            alias: Some("portal:old".into()),
            kind: LinkKind::Tun,
        },
    );
    let changes = diff(&d, &o, None);
    let add = changes
        .iter()
        .position(|c| matches!(c, Change::RuleAdd(_)))
        .unwrap();
    let del = changes
        .iter()
        .position(|c| c == &Change::RuleDel(stale_rule.clone()))
        .unwrap();
    assert!(add < del, "{changes:?}");
    assert!(changes.contains(&Change::LinkDel("wg-old".into())));
    // A link that is not ours is never deleted.
    o.links.get_mut("wg-old").unwrap().alias = None;
    assert!(!diff(&d, &o, None).contains(&Change::LinkDel("wg-old".into())));
}

#[test]
fn nft_is_rewritten_first_when_it_drifted() {
    let (d, _) = site();
    let mut o = applied(&d);
    o.nft_current = false;
    o.routes.retain(|r| !r.is_kill_switch());
    let changes = diff(&d, &o, None);
    assert!(matches!(changes[0], Change::NftReplace(_)));
    assert!(changes[1].is_kill_switch() && matches!(changes[1], Change::RouteAdd(_)));
}

#[test]
fn teardown_removes_only_ours_and_restores_sysctls() {
    let (d, _) = site();
    let mut o = applied(&d);
    o.addresses.push(ObservedAddress {
        dev: "eth1".into(),
        cidr: "192.168.10.7/24".parse().unwrap(),
        ours: false,
    });
    let restore = vec![Sysctl {
        key: "net.ipv4.ip_forward".into(),
        value: "0".into(),
    }];
    let changes = teardown(&o, &restore);
    let text: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
    assert!(text.iter().all(|t| !t.contains("192.168.10.7")), "{text:?}");
    assert!(
        text.first().unwrap().starts_with("ip rule del"),
        "rules go first: {text:?}"
    );
    assert_eq!(text[text.len() - 2], "nft delete table inet portal");
    assert_eq!(text.last().unwrap(), "sysctl -w net.ipv4.ip_forward=0");
    assert!(text.contains(&"ip link del dev wg-paris".to_string()));
    assert!(
        !text.iter().any(|t| t.contains("link del dev eth")),
        "not ours: {text:?}"
    );
}

#[cfg(feature = "wifi")]
#[test]
fn an_awaited_interface_is_configured_once_it_exists() {
    // Two SSIDs on wlan0: hostapd makes wlan0-1 when it starts.
    let text = r#"{ "wan": { "interface": "eth0", "dhcp": {} },
        "lans": {
          "air": { "interface": "wlan0", "address": "192.168.70.1/24", "via": "direct",
                    "wifi": { "ssid": "A", "passphrase": "passphrase 1" } },
          "air2": { "interface": "wlan0-1", "address": "192.168.71.1/24", "via": "direct",
                    "wifi": { "radio": "wlan0", "ssid": "B", "passphrase": "passphrase 2" } } } }"#;
    let m = model::validate(&crate::core::config::parse(text).unwrap()).unwrap();
    let d = desired(&m, &Inputs::default());
    assert_eq!(d.awaited, vec!["wlan0-1".to_string()]);
    let mut o = applied(&d);
    let touches = |changes: &[Change], dev: &str| {
        changes.iter().any(|c| match c {
            Change::LinkSet { name, .. } => name == dev,
            Change::AddrAdd(a) => a.dev == dev,
            _ => false,
        })
    };
    // Not there yet: waited for, nothing to fail on; wlan0 still handled.
    o.links.remove("wlan0-1");
    o.links.remove("wlan0");
    o.addresses.clear();
    let changes = diff(&d, &o, None);
    assert!(!touches(&changes, "wlan0-1"), "{changes:?}");
    assert!(touches(&changes, "wlan0"), "{changes:?}");
    // Once hostapd made it: brought up and given its address.
    let mut o = applied(&d);
    o.addresses.retain(|a| a.dev != "wlan0-1");
    o.links.get_mut("wlan0-1").unwrap().up = false;
    assert!(touches(&diff(&d, &o, None), "wlan0-1"));
    // `plan` shows the whole setup, awaited interfaces included.
    let plan = crate::plan_text(&m, &Inputs::default(), None);
    assert!(plan.contains("192.168.71.1/24 dev wlan0-1"), "{plan}");
}

#[test]
fn a_preshared_key_is_written_once_by_file_name_and_compared_by_fingerprint() {
    let (mut d, _) = site();
    let mut o = applied(&d);
    let psk = wireguard_control::Key([7; 32]);
    let id = crate::keys::psk_fingerprint(&psk);
    d.wireguard[0].peers[0].preshared_key_file = Some("/etc/portal/paris.psk".into());
    d.wireguard[0].peers[0].preshared_key_id = id.clone();
    let changes = diff(&d, &o, None);
    assert_eq!(changes.len(), 1, "{changes:?}");
    let text = changes[0].to_string();
    assert!(
        text.contains("preshared-key /etc/portal/paris.psk"),
        "{text}"
    );
    assert!(!text.contains(&psk.to_base64()), "{text}");
    // Once the device has it, nothing to do on the next pass.
    o.wireguard.get_mut("wg-paris").unwrap().peers[0].preshared_key_id = id;
    assert!(diff(&d, &o, None).is_empty());
    // WireGuard's all-zero key means none.
    assert_eq!(
        crate::keys::psk_fingerprint(&wireguard_control::Key([0; 32])),
        None
    );
}

/// Regression: `portal apply` on a host that already had its default route
/// (a Debian box, a UDM) failed with "File exists". An equal route is
/// adopted (no change, and `down` leaves it); another owner's route in the
/// same slot is replaced.
#[test]
fn the_hosts_own_main_table_route_is_adopted_or_replaced() {
    let (d, _) = site();
    let wan_default = d
        .routes
        .iter()
        .find(|r| r.table == MAIN_TABLE && r.dst.is_default())
        .cloned()
        .unwrap();
    let mut o = applied(&d);
    o.routes.retain(|r| *r != wan_default);
    o.main_others = vec![wan_default.clone()];
    assert!(diff(&d, &o, None).is_empty());
    assert!(teardown(&o, &[])
        .iter()
        .all(|c| !matches!(c, Change::RouteDel(r) if *r == wan_default)));
    let elsewhere = Route {
        kind: RouteKind::Via("203.0.113.254".parse().unwrap(), "eth0".into()),
        ..wan_default.clone()
    };
    o.main_others = vec![elsewhere];
    let changes = diff(&d, &o, None);
    assert_eq!(changes, [Change::RouteReplace(wan_default.clone())]);
    assert_eq!(
        changes[0].to_string(),
        "ip route replace default via 203.0.113.1 dev eth0 proto 52"
    );
    // Another metric is another slot: added beside it.
    o.main_others[0].metric = 100;
    assert_eq!(diff(&d, &o, None), [Change::RouteAdd(wan_default)]);
}
