use super::*;
use crate::core::config;
use crate::core::model::validate;

fn key(n: u8) -> String {
    wireguard_control::Key([n; 32]).to_base64()
}

/// A site with an exit portal and a `roam` portal that accepts devices.
fn site(roam_extra: &str) -> String {
    format!(
        r#"{{
  "wan": {{ "interface": "eth0", "static": {{ "address": "203.0.113.2/24", "gateway": "203.0.113.1" }} }},
  "lans": {{
    "home": {{ "interface": "eth1", "address": "192.168.10.1/24", "via": "direct",
              "dhcp": {{ "dns": ["192.168.10.1"] }} }},
    "guest": {{ "interface": "eth2", "address": "192.168.20.1/24", "via": "direct" }}
  }},
  "portals": {{
    "roam": {{
      "interface": "wg-roam", "private_key_file": "/k", "listen_port": 51830,
      "address": ["10.77.0.1/24"], "exit": true{roam_extra},
      "clients": {{ "endpoint": "vpn.example.com:51830", "lans": ["home"] }},
      "peers": [ {{ "name": "old", "public_key": "{k1}", "allowed_ips": ["10.77.0.2/32"] }} ]
    }}
  }}
}}"#,
        k1 = key(1)
    )
}

fn model(text: &str) -> Model {
    validate(&config::parse(text).unwrap()).unwrap()
}

fn device<'a>(name: &'a str, all: bool) -> NewDevice<'a> {
    NewDevice {
        name,
        portal: "roam",
        all_traffic: all,
        private_key: "PRIVATE",
        public_key: Box::leak(key(9).into_boxed_str()),
        address: None,
    }
}

#[test]
fn add_takes_the_next_free_address_and_keeps_key_order() {
    let text = site("");
    let m = model(&text);
    let a = add(&text, &m, &key(5), &device("phone", false)).unwrap();
    assert_eq!(a.address.to_string(), "10.77.0.3/32");
    // The new config validates, with the device as a peer of `roam`.
    let m2 = model(&a.config);
    let peers = &m2.portal("roam").unwrap().peers;
    assert_eq!(peers.len(), 2);
    assert_eq!(peers[1].name.as_deref(), Some("phone"));
    assert_eq!(peers[1].public_key, key(9));
    // Key order as in the file: wan before lans before portals.
    let (w, l, p) = (
        a.config.find("\"wan\"").unwrap(),
        a.config.find("\"lans\"").unwrap(),
        a.config.find("\"portals\"").unwrap(),
    );
    assert!(w < l && l < p, "{}", a.config);
    let conf = wgquick::print(&a.device);
    assert!(conf.contains("PrivateKey = PRIVATE\n"), "{conf}");
    assert!(conf.contains("Address = 10.77.0.3/32\n"), "{conf}");
    assert!(conf.contains("DNS = 192.168.10.1\n"), "{conf}");
    assert!(
        conf.contains(&format!("PublicKey = {}\n", key(5))),
        "{conf}"
    );
    assert!(
        conf.contains("Endpoint = vpn.example.com:51830\n"),
        "{conf}"
    );
    // The LANs it may reach (home only) and the tunnel network.
    assert!(
        conf.contains("AllowedIPs = 192.168.10.0/24, 10.77.0.0/24\n"),
        "{conf}"
    );
    assert!(conf.contains("PersistentKeepalive = 25\n"), "{conf}");
    // A second device takes the next address.
    let b = add(&a.config, &m2, &key(5), &device("laptop", true)).unwrap();
    assert_eq!(b.address.to_string(), "10.77.0.4/32");
    assert!(wgquick::print(&b.device).contains("AllowedIPs = 0.0.0.0/0\n"));
    assert!(b.notes.is_empty());
}

#[test]
fn portal_dns_wins_over_the_lans() {
    let text = site(r#", "dns": ["9.9.9.9", "2620:fe::fe"]"#);
    let a = add(&text, &model(&text), &key(5), &device("phone", false)).unwrap();
    assert_eq!(a.device.dns, ["9.9.9.9", "2620:fe::fe"]);
}

/// Regression: with no portal `dns`, a LAN handing out the WAN's resolver
/// gave the device `DNS = <WAN resolver>`, outside its AllowedIPs: its
/// queries went past the tunnel. Such a resolver is left out now, as is a
/// LAN's forwarder (it answers on its LAN only).
#[test]
fn no_dns_line_for_resolvers_the_tunnel_does_not_carry() {
    let wan_dns = r#""gateway": "203.0.113.1", "dns": ["198.51.100.53"] }"#;
    let text = site("")
        .replace(r#""gateway": "203.0.113.1" }"#, wan_dns)
        .replace(r#""dhcp": { "dns": ["192.168.10.1"] }"#, r#""dhcp": {}"#);
    let m = model(&text);
    let home = |m: &Model| m.lans.iter().find(|l| l.name == "home").unwrap().clone();
    let dhcp = home(&m).dhcp.unwrap();
    assert_eq!(
        dhcp.dns,
        [Ipv4Addr::new(198, 51, 100, 53)],
        "home hands out the WAN's resolver"
    );
    let a = add(&text, &m, &key(5), &device("phone", false)).unwrap();
    assert!(a.device.dns.is_empty(), "{:?}", a.device.dns);
    assert!(!wgquick::print(&a.device).contains("DNS ="));
    assert!(
        a.notes.iter().any(|n| n.contains("no DNS line")),
        "{:?}",
        a.notes
    );
    // All traffic: the WAN resolver is inside 0.0.0.0/0, so asked through the tunnel.
    let b = add(&text, &m, &key(5), &device("laptop", true)).unwrap();
    assert_eq!(b.device.dns, ["198.51.100.53"]);
    // A LAN forwarder listens on its LAN only: no use to a device.
    let fwd = text.replace(r#""dhcp": {}"#, r#""dhcp": {}, "dns": {}"#);
    let m = model(&fwd);
    assert!(home(&m).dns.is_some());
    let c = add(&fwd, &m, &key(5), &device("tablet", true)).unwrap();
    assert!(c.device.dns.is_empty(), "{:?}", c.device.dns);
}

#[test]
fn refuses_duplicates_and_portals_without_clients() {
    let text = site("");
    let m = model(&text);
    let err = add(&text, &m, &key(5), &device("old", false))
        .err()
        .unwrap();
    assert!(err.contains("already"), "{err}");
    let mut d = device("x", false);
    d.portal = "nope";
    assert!(add(&text, &m, &key(5), &d).is_err());
    let plain = text.replace(
        r#""clients": { "endpoint": "vpn.example.com:51830", "lans": ["home"] },"#,
        "",
    );
    let err = add(&plain, &model(&plain), &key(5), &device("x", false))
        .err()
        .unwrap();
    assert!(err.contains("clients"), "{err}");
}

#[test]
fn all_traffic_through_a_portal_that_is_no_exit_is_noted() {
    let text = site("").replace(r#""exit": true"#, r#""exit": false"#);
    let a = add(&text, &model(&text), &key(5), &device("phone", true)).unwrap();
    assert!(a.notes[0].contains("not an exit"), "{:?}", a.notes);
}

#[test]
fn next_free_skips_addresses_and_peers_and_ends() {
    let text = site("").replace(r#""10.77.0.1/24""#, r#""10.77.0.2/30""#);
    let m = model(&text);
    // .0 network, .1 free, .2 the portal and the peer, .3 broadcast.
    assert_eq!(
        next_free(m.portal("roam").unwrap(), &m)
            .unwrap()
            .to_string(),
        "10.77.0.1/32"
    );
    let a = add(&text, &m, &key(5), &device("a", false)).unwrap();
    let m2 = model(&a.config);
    assert!(next_free(m2.portal("roam").unwrap(), &m2).is_none());
}

#[test]
fn remove_by_name() {
    let text = site("");
    let (out, portal) = remove(&text, "old", None).unwrap();
    assert_eq!(portal, "roam");
    assert!(model(&out).portal("roam").unwrap().peers.is_empty());
    assert!(remove(&text, "nobody", None).is_err());
    assert!(remove(&text, "old", Some("other")).is_err());
}

#[test]
fn list_shows_devices_without_endpoint() {
    let l = list(&model(&site("")));
    assert_eq!(
        l,
        format!("roam\told\t10.77.0.2/32\t(device)\t{}\n", key(1))
    );
}

#[test]
fn clients_validation_names_fields() {
    let text = site("")
        .replace(r#""listen_port": 51830,"#, "")
        .replace(r#""lans": ["home"]"#, r#""lans": ["home", "attic"]"#)
        .replace(r#""exit": true"#, r#""exit": true, "dns": ["nine"]"#);
    let errs = validate(&config::parse(&text).unwrap()).unwrap_err();
    let errs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    for want in [
        "portals.roam.listen_port: a portal with `clients` needs a fixed listen_port",
        "portals.roam.clients.lans[1]: no LAN named `attic`",
        "portals.roam.dns[0]: `nine` is not an IP address",
    ] {
        assert!(
            errs.iter().any(|e| e.starts_with(want)),
            "{want} in {errs:?}"
        );
    }
    let bad = site("").replace("vpn.example.com:51830", "vpn.example.com");
    let errs = validate(&config::parse(&bad).unwrap()).unwrap_err();
    assert!(errs[0]
        .to_string()
        .starts_with("portals.roam.clients.endpoint"));
}

#[test]
fn firewall_forwards_devices_to_their_lans_only() {
    let m = model(&site(""));
    let text = crate::core::firewall::ruleset(&m).to_string();
    let line = text
        .lines()
        .find(|l| l.contains("road warriors roam"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("iifname \"wg-roam\""), "{line}");
    assert!(line.contains("ip saddr 10.77.0.0/24"), "{line}");
    assert!(
        line.contains("oifname { \"eth1\" }") || line.contains("oifname \"eth1\""),
        "{line}"
    );
    assert!(!line.contains("eth2"), "{line}");
}

#[test]
fn refuses_to_guess_beside_a_peer_whose_address_is_unknown() {
    // An exit peer holds 0.0.0.0/0: its own tunnel address (likely .1 or
    // .2) is somewhere in 10.77.0.0/24 and not in the config.
    let text = site("").replace(r#""10.77.0.2/32""#, r#""0.0.0.0/0""#);
    let m = model(&text);
    // (Added holds a private key: it has no Debug, so no unwrap_err.)
    let Err(e) = add(&text, &m, &key(5), &device("phone", false)) else {
        panic!("a device was added beside a peer of unknown address");
    };
    assert!(
        e.contains("peer `old`'s allowed IPs 0.0.0.0/0 cover the tunnel network 10.77.0.0/24"),
        "{e}"
    );
    // Picked by hand, it is checked against the network and what is held.
    let pick = |ip: &str| NewDevice {
        address: Some(ip.parse().unwrap()),
        ..device("phone", false)
    };
    let a = add(&text, &m, &key(5), &pick("10.77.0.20")).unwrap();
    assert_eq!(a.address.to_string(), "10.77.0.20/32");
    for (ip, why) in [
        (
            "10.78.0.20",
            "not in portal `roam`'s tunnel network 10.77.0.0/24",
        ),
        ("fd00::20", "not in portal `roam`'s tunnel network"),
        ("10.77.0.255", "the network or broadcast address"),
        ("10.77.0.1", "already a tunnel address"),
    ] {
        let Err(e) = add(&text, &m, &key(5), &pick(ip)) else {
            panic!("--address {ip} was taken");
        };
        assert!(e.contains(why), "{ip}: {e}");
    }
}
