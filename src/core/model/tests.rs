use super::*;
use crate::core::desired::Inputs;
use serde_json::{json, Value};
use std::collections::BTreeMap;

// ---- helpers -------------------------------------------------------------

/// A valid WireGuard public key, different for each `n`.
fn key(n: u8) -> String {
    wireguard_control::Key([n; 32]).to_base64()
}

fn peer(n: u8, allowed_ips: &[&str]) -> Value {
    json!({ "public_key": key(n), "endpoint": "198.51.100.7:51820", "allowed_ips": allowed_ips })
}

fn portal(interface: &str, address: &str, peers: Vec<Value>) -> Value {
    json!({
        "interface": interface,
        "private_key_file": format!("/etc/portal/{interface}.key"),
        "address": [address],
        "peers": peers,
    })
}

/// The valid baseline: a LAN via portal `paris`, a LAN direct.
fn base() -> Value {
    json!({
        "wan": {
            "interface": "eth0",
            "static": { "address": "203.0.113.2/24", "gateway": "203.0.113.1", "dns": ["203.0.113.1"] }
        },
        "lans": {
            "home": { "interface": "eth1", "address": "192.168.10.1/24", "via": "paris" },
            "guest": { "interface": "eth2", "address": "192.168.20.1/24", "via": "direct" }
        },
        "portals": { "paris": portal("wg-paris", "10.99.0.2/24", vec![peer(1, &["0.0.0.0/0"])]) }
    })
}

/// The node at a dotted path ("portals.paris.peers.0.endpoint"), created
/// when missing: as an object member, or (index one past the end) appended.
fn node<'a>(v: &'a mut Value, path: &str) -> &'a mut Value {
    path.split('.').fold(v, |v, k| match v {
        Value::Array(a) => {
            let i: usize = k.parse().expect("array index");
            if i == a.len() {
                a.push(Value::Null);
            }
            &mut a[i]
        }
        _ => &mut v[k],
    })
}

/// `v` with the value at `path` replaced (or added).
fn set(mut v: Value, path: &str, x: Value) -> Value {
    *node(&mut v, path) = x;
    v
}

/// `v` without the object member at `path`.
fn cut(mut v: Value, path: &str) -> Value {
    let (parent, k) = path.rsplit_once('.').unwrap_or(("", path));
    let obj = if parent.is_empty() {
        &mut v
    } else {
        node(&mut v, parent)
    };
    assert!(
        obj.as_object_mut().unwrap().remove(k).is_some(),
        "no {path} to cut"
    );
    v
}

/// The base config plus a second portal `tokyo` (and a LAN using it).
fn with_tokyo(tokyo: Value) -> Value {
    let v = set(base(), "portals.tokyo", tokyo);
    set(
        v,
        "lans.office",
        json!({ "interface": "eth3", "address": "192.168.30.1/24", "via": "tokyo" }),
    )
}

fn tokyo() -> Value {
    portal("wg-tokyo", "10.98.0.2/24", vec![peer(2, &["0.0.0.0/0"])])
}

fn validate_json(v: &Value) -> Result<Model, Vec<ConfigError>> {
    let cfg = config::parse(&v.to_string()).expect("config parses");
    validate(&cfg)
}

fn valid(v: Value) -> Model {
    match validate_json(&v) {
        Ok(m) => m,
        Err(errs) => panic!("expected valid, got: {errs:#?}"),
    }
}

fn errors(v: Value) -> Vec<ConfigError> {
    validate_json(&v).expect_err("expected validation errors")
}

/// Asserts that validation reports an error at exactly `path` whose reason
/// contains `reason`.
#[track_caller]
fn expect_err(v: Value, path: &str, reason: &str) {
    let errs = errors(v);
    assert!(
        errs.iter()
            .any(|e| e.path == path && e.reason.contains(reason)),
        "expected `{path}: ...{reason}...`, got: {errs:#?}"
    );
}

// ---- the baseline --------------------------------------------------------

#[test]
fn baseline_is_valid() {
    let m = valid(base());
    assert_eq!(m.wan.interface, "eth0");
    assert_eq!(m.lans.len(), 2);
    let home = m.lans.iter().find(|l| l.name == "home").unwrap();
    assert_eq!(
        home.route,
        LanRoute::Portal(PortalRef {
            index: 0,
            name: "paris".into()
        })
    );
    assert!(home.kill_switch, "kill_switch defaults to on");
    let p = m.portal("paris").unwrap();
    assert_eq!(
        (p.table, p.mtu, p.masquerade, p.exit),
        (FIRST_TABLE, DEFAULT_MTU, true, false)
    );
    assert_eq!(
        p.peers[0].endpoint.as_ref().unwrap().to_string(),
        "198.51.100.7:51820"
    );
    assert_eq!(m.lans_via("paris").count(), 1);
}

#[test]
fn examples_are_valid() {
    valid(serde_json::from_str(include_str!("../../../examples/site.json")).unwrap());
    valid(serde_json::from_str(include_str!("../../../examples/two-exits.json")).unwrap());
}

// ---- WAN -----------------------------------------------------------------

#[test]
fn wan_needs_exactly_one_mode() {
    expect_err(cut(base(), "wan.static"), "wan", "missing the address mode");
    expect_err(set(base(), "wan.dhcp", json!({})), "wan", "not both");
}

#[test]
fn wan_dhcp_sends_the_router_hostname_unless_given_one() {
    let v = set(
        set(cut(base(), "wan.static"), "wan.dhcp", json!({})),
        "hostname",
        json!("nyc"),
    );
    assert_eq!(
        valid(v.clone()).wan.mode,
        WanMode::Dhcp {
            hostname: Some("nyc".into())
        }
    );
    let v = set(v, "wan.dhcp", json!({"hostname": "box"}));
    assert_eq!(
        valid(v.clone()).wan.mode,
        WanMode::Dhcp {
            hostname: Some("box".into())
        }
    );
    expect_err(
        set(v, "wan.dhcp", json!({"hostname": "no spaces"})),
        "wan.dhcp.hostname",
        "not a valid host name",
    );
}

fn with_dhcp(d: Value) -> Value {
    set(base(), "lans.home.dhcp", d)
}

#[test]
fn lan_dhcp_defaults_to_the_whole_prefix_and_the_wans_dns() {
    let m = valid(with_dhcp(json!({})));
    let home = m.lans.iter().find(|l| l.name == "home").unwrap();
    let d = home.dhcp.as_ref().unwrap();
    assert_eq!(
        d.router,
        "192.168.10.1".parse::<std::net::Ipv4Addr>().unwrap()
    );
    assert_eq!(
        (d.pool_start.to_string(), d.pool_end.to_string()),
        ("192.168.10.1".into(), "192.168.10.254".into())
    );
    assert!(d.assignable("192.168.10.2".parse().unwrap()));
    assert!(
        !d.assignable(d.router),
        "the router's own address is never handed out"
    );
    assert_eq!(d.lease_time, 12 * 3600);
}

#[test]
fn lan_dhcp_errors_name_the_field() {
    expect_err(
        with_dhcp(json!({"pool": {"start": "192.168.11.5", "end": "192.168.10.9"}})),
        "lans.home.dhcp.pool.start",
        "not a client address",
    );
    expect_err(
        with_dhcp(json!({"pool": {"start": "192.168.10.90", "end": "192.168.10.9"}})),
        "lans.home.dhcp.pool",
        "after end",
    );
    expect_err(
        with_dhcp(json!({"pool": {"start": "192.168.10.9", "end": "192.168.10.255"}})),
        "lans.home.dhcp.pool.end",
        "not a client address",
    );
    expect_err(
        with_dhcp(json!({"lease_time": 5})),
        "lans.home.dhcp.lease_time",
        "outside",
    );
    expect_err(
        with_dhcp(json!({"dns": ["9.9.9.9", "x"]})),
        "lans.home.dhcp.dns[1]",
        "not an IPv4 address",
    );
    expect_err(
        with_dhcp(json!({"domain": "bad domain"})),
        "lans.home.dhcp.domain",
        "not a valid domain",
    );
    expect_err(
        with_dhcp(json!({"mtu": 100})),
        "lans.home.dhcp.mtu",
        "outside",
    );
    expect_err(
        with_dhcp(json!({"static": [{"mac": "02:00:00:00:00", "address": "192.168.10.5"}]})),
        "lans.home.dhcp.static[0].mac",
        "not a MAC",
    );
    expect_err(
        with_dhcp(json!({"static": [{"mac": "01:00:5e:00:00:01", "address": "192.168.10.5"}]})),
        "lans.home.dhcp.static[0].mac",
        "multicast",
    );
    expect_err(
        with_dhcp(json!({"static": [{"mac": "02:00:00:00:00:01", "address": "192.168.10.1"}]})),
        "lans.home.dhcp.static[0].address",
        "not a client address",
    );
    expect_err(
        with_dhcp(json!({"static": [
            {"mac": "02:00:00:00:00:01", "address": "192.168.10.5"},
            {"mac": "02:00:00:00:00:01", "address": "192.168.10.6"}]})),
        "lans.home.dhcp.static[1].mac",
        "already given in lans.home.dhcp.static[0]",
    );
    expect_err(
        with_dhcp(
            json!({"static": [{"mac": "02:00:00:00:00:01", "address": "192.168.10.5", "hostname": "a.b"}]}),
        ),
        "lans.home.dhcp.static[0].hostname",
        "one label",
    );
    expect_err(
        set(
            with_dhcp(json!({})),
            "lans.home.address",
            json!("192.168.10.1/31"),
        ),
        "lans.home.dhcp",
        "no room",
    );
}

#[test]
fn wan_address_must_be_a_host_address_with_prefix() {
    let bad = |a: &str, reason: &str| {
        expect_err(
            set(base(), "wan.static.address", json!(a)),
            "wan.static.address",
            reason,
        )
    };
    bad("203.0.113.0/24", "network or broadcast address");
    bad("203.0.113.255/24", "network or broadcast address");
    bad("203.0.113/24", "not an IP address");
    bad("203.0.113.2", "the /prefix is required");
    bad("203.0.113.2/33", "too long");
    bad("2001:db8::2/64", "must be an IPv4");
    // /31 and /32 have no network or broadcast address to refuse.
    valid(set(
        set(base(), "wan.static.address", json!("203.0.113.0/31")),
        "wan.static.gateway",
        json!("203.0.113.1"),
    ));
}

#[test]
fn wan_gateway_must_be_inside_the_wan_net() {
    let gw = |g: &str| set(base(), "wan.static.gateway", json!(g));
    expect_err(
        gw("198.51.100.1"),
        "wan.static.gateway",
        "not inside the WAN network 203.0.113.0/24",
    );
    expect_err(
        gw("203.0.113.2"),
        "wan.static.gateway",
        "the WAN address itself",
    );
    expect_err(gw("203.0.113"), "wan.static.gateway", "not an IPv4 address");
}

#[test]
fn dns_must_be_ip_addresses() {
    let v = set(
        base(),
        "wan.static.dns",
        json!(["2001:db8::53", "dns.example"]),
    );
    expect_err(v, "wan.static.dns[1]", "`dns.example` is not an IP address");
}

#[test]
fn hostname_must_be_valid() {
    expect_err(
        set(base(), "hostname", json!("-router")),
        "hostname",
        "not a valid host name",
    );
    valid(set(base(), "hostname", json!("portal-nyc.example.net")));
}

// ---- interfaces ----------------------------------------------------------

#[test]
fn interface_names_follow_linux_rules() {
    let iface = |n: &str| set(base(), "lans.home.interface", json!(n));
    expect_err(
        iface("eth1234567890123"),
        "lans.home.interface",
        "is 16 bytes; Linux allows 15",
    );
    valid(iface("eth123456789012")); // 15 is fine
    expect_err(
        iface("eth/1"),
        "lans.home.interface",
        "not a valid interface name",
    );
    expect_err(
        iface("eth 1"),
        "lans.home.interface",
        "not a valid interface name",
    );
    expect_err(iface(""), "lans.home.interface", "empty");
    let v = set(base(), "portals.paris.interface", json!("wg:paris"));
    expect_err(v, "portals.paris.interface", "not a valid interface name");
    expect_err(
        set(base(), "wan.interface", json!("..")),
        "wan.interface",
        "not a valid interface name",
    );
}

#[test]
fn an_interface_has_one_role() {
    let v = set(base(), "lans.guest.interface", json!("eth0"));
    expect_err(
        v,
        "lans.guest.interface",
        "`eth0` is already used by wan.interface",
    );
    let v = set(base(), "portals.paris.interface", json!("eth1"));
    expect_err(
        v,
        "portals.paris.interface",
        "already used by lans.home.interface",
    );
}

// ---- LANs ----------------------------------------------------------------

#[test]
fn lan_must_not_overlap_another_lan() {
    // LANs are checked in name order: guest, then home.
    let v = set(base(), "lans.home.address", json!("192.168.20.129/25"));
    expect_err(
        v,
        "lans.home.address",
        "overlaps 192.168.20.0/24 of lans.guest.address",
    );
}

#[test]
fn lan_must_not_overlap_the_wan() {
    let v = set(base(), "lans.home.address", json!("203.0.113.129/25"));
    expect_err(v, "lans.home.address", "of wan.static.address");
}

#[test]
fn lan_must_not_overlap_a_tunnel_net_or_remote_subnet() {
    let v = set(
        base(),
        "portals.paris.address",
        json!(["192.168.10.254/24"]),
    );
    expect_err(
        v,
        "portals.paris.address[0]",
        "overlaps 192.168.10.0/24 of lans.home.address",
    );
    let v = set(
        base(),
        "portals.paris.remote_subnets",
        json!(["192.168.20.0/24"]),
    );
    expect_err(
        v,
        "portals.paris.remote_subnets[0]",
        "of lans.guest.address",
    );
}

#[test]
fn lan_address_is_a_host_address() {
    let v = set(base(), "lans.home.address", json!("192.168.10.0/24"));
    expect_err(v, "lans.home.address", "network or broadcast address");
}

#[test]
fn lan_via_a_missing_portal() {
    let v = set(base(), "lans.home.via", json!("tokyo"));
    expect_err(
        v,
        "lans.home.via",
        "no portal named `tokyo` (portals: paris; or `direct`)",
    );
    let v = set(
        cut(base(), "portals.paris"),
        "lans.home.via",
        json!("paris"),
    );
    expect_err(v, "lans.home.via", "(portals: none; or `direct`)");
}

#[test]
fn lan_via_a_portal_needs_a_default_route_peer() {
    let v = set(
        base(),
        "portals.paris.peers.0.allowed_ips",
        json!(["10.99.0.0/24"]),
    );
    expect_err(v, "lans.home.via", "no peer with allowed_ips 0.0.0.0/0");
    // Without a LAN through it, such a portal is fine (site-to-site only).
    valid(cut(
        set(
            base(),
            "portals.paris.peers.0.allowed_ips",
            json!(["10.50.0.0/16"]),
        ),
        "lans.home",
    ));
}

#[test]
fn lan_names_are_checked() {
    let lan = json!({ "interface": "eth5", "address": "192.168.50.1/24", "via": "direct" });
    expect_err(
        set(base(), "lans.home lab", lan.clone()),
        "lans.home lab",
        "must be 1-32 of",
    );
    valid(set(base(), "lans.home-lab_2", lan));
}

// ---- portals -------------------------------------------------------------

#[test]
fn portal_names_are_checked() {
    let rename = |name: &str| {
        set(
            cut(base(), "portals.paris"),
            &format!("portals.{name}"),
            tokyo(),
        )
    };
    expect_err(rename("direct"), "portals.direct", "`direct` is reserved");
    expect_err(rename("par is"), "portals.par is", "must be 1-32 of");
    expect_err(
        rename(&"p".repeat(33)),
        &format!("portals.{}", "p".repeat(33)),
        "must be 1-32 of",
    );
}

#[test]
fn mtu_range() {
    let mtu = |m: u32| set(base(), "portals.paris.mtu", json!(m));
    expect_err(mtu(1279), "portals.paris.mtu", "1279 is outside 1280..9000");
    expect_err(mtu(9001), "portals.paris.mtu", "outside 1280..9000");
    valid(mtu(1280));
    valid(mtu(9000));
}

#[test]
fn listen_port_zero_and_clash() {
    expect_err(
        set(base(), "portals.paris.listen_port", json!(0)),
        "portals.paris.listen_port",
        "0 is not a port",
    );
    let v = set(
        with_tokyo(set(tokyo(), "listen_port", json!(51820))),
        "portals.paris.listen_port",
        json!(51820),
    );
    expect_err(
        v,
        "portals.tokyo.listen_port",
        "port 51820 is also used by portal `paris`",
    );
    // Different ports, or random ones, are fine.
    valid(set(
        with_tokyo(set(tokyo(), "listen_port", json!(51821))),
        "portals.paris.listen_port",
        json!(51820),
    ));
    valid(with_tokyo(tokyo()));
}

#[test]
fn tables_reserved_and_clash() {
    for t in [0, 253, 254, 255] {
        expect_err(
            set(base(), "portals.paris.table", json!(t)),
            "portals.paris.table",
            "reserved by the kernel",
        );
    }
    let v = set(
        with_tokyo(set(tokyo(), "table", json!(100))),
        "portals.paris.table",
        json!(100),
    );
    expect_err(
        v,
        "portals.tokyo.table",
        "table 100 is also used by portal `paris`",
    );
    // Unset tables count up from FIRST_TABLE in name order.
    let m = valid(with_tokyo(tokyo()));
    assert_eq!(m.portal("paris").unwrap().table, FIRST_TABLE);
    assert_eq!(m.portal("tokyo").unwrap().table, FIRST_TABLE + 1);
}

#[test]
fn portal_addresses() {
    expect_err(
        set(base(), "portals.paris.address", json!([])),
        "portals.paris.address",
        "at least one tunnel address",
    );
    let v = set(
        base(),
        "portals.paris.address",
        json!(["fd00:99::2/64", "10.99.0.0/24"]),
    );
    expect_err(
        v,
        "portals.paris.address[1]",
        "network or broadcast address",
    );
    valid(set(
        base(),
        "portals.paris.address",
        json!(["10.99.0.2/24", "fd00:99::2/64"]),
    ));
}

// ---- peers ---------------------------------------------------------------

#[test]
fn public_keys_must_be_wireguard_keys() {
    let bad = |k: &str| {
        let v = set(base(), "portals.paris.peers.0.public_key", json!(k));
        expect_err(
            v,
            "portals.paris.peers[0].public_key",
            "not a WireGuard key",
        )
    };
    bad("not-a-key");
    bad("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="); // base64 of 31 bytes
    bad("");
}

#[test]
fn duplicate_peer_key() {
    let v = set(
        base(),
        "portals.paris.peers",
        json!([peer(1, &["0.0.0.0/0"]), peer(1, &["10.20.0.0/16"])]),
    );
    expect_err(
        v,
        "portals.paris.peers[1].public_key",
        "the same key as portals.paris.peers[0]",
    );
}

#[test]
fn same_allowed_ips_on_two_peers_of_a_portal() {
    // WireGuard would silently move 10.20.0.0/16 to the last peer.
    let peers = json!([
        peer(1, &["0.0.0.0/0"]),
        peer(2, &["10.20.0.0/16"]),
        peer(3, &["10.20.0.0/16"])
    ]);
    let v = set(base(), "portals.paris.peers", peers);
    expect_err(
        v,
        "portals.paris.peers[2].allowed_ips[0]",
        "10.20.0.0/16 is also claimed by portals.paris.peers[1]",
    );
    let v = set(
        base(),
        "portals.paris.peers",
        json!([peer(1, &["0.0.0.0/0"]), peer(2, &["0.0.0.0/0"])]),
    );
    expect_err(
        v,
        "portals.paris.peers[1].allowed_ips[0]",
        "0.0.0.0/0 is also claimed by portals.paris.peers[0]",
    );
}

#[test]
fn nested_allowed_ips_on_two_peers_of_a_portal_are_valid() {
    // Longest prefix wins in WireGuard: an exit peer with 0.0.0.0/0 next to a
    // site peer with its subnet is the usual hub setup, not a conflict.
    let peers = json!([
        peer(1, &["0.0.0.0/0"]),
        peer(2, &["10.20.0.0/16"]),
        peer(3, &["10.20.5.0/24"])
    ]);
    let v = set(
        set(base(), "portals.paris.peers", peers),
        "portals.paris.remote_subnets",
        json!(["10.20.0.0/16"]),
    );
    valid(v);
}

#[test]
fn overlapping_allowed_ips_within_one_peer() {
    let peers = json!([
        peer(1, &["0.0.0.0/0"]),
        peer(2, &["10.20.0.0/16", "10.20.5.0/24"])
    ]);
    let v = set(base(), "portals.paris.peers", peers);
    expect_err(
        v,
        "portals.paris.peers[1].allowed_ips[1]",
        "10.20.5.0/24 overlaps 10.20.0.0/16 of the same peer",
    );
}

#[test]
fn allowed_ips_across_portals() {
    // Each portal: an exit peer and a site peer; the two sites overlap.
    let v = set(base(), "portals.paris.peers.1", peer(3, &["10.50.0.0/16"]));
    let v = set(
        v,
        "portals.tokyo",
        set(tokyo(), "peers.1", peer(4, &["10.50.1.0/24"])),
    );
    assert_eq!(
        errors(v),
        [ConfigError {
            path: "portals.tokyo.peers[1].allowed_ips[0]".into(),
            reason: "10.50.1.0/24 overlaps 10.50.0.0/16 of portals.paris.peers[1].allowed_ips[0] (another portal)"
                .into(),
        }]
    );
    // Several exits: each portal has its own default route, in its own table.
    let m = valid(with_tokyo(tokyo()));
    assert_eq!(m.lans_via("tokyo").count(), 1);
    valid(set(
        with_tokyo(tokyo()),
        "portals.tokyo.peers.0.allowed_ips",
        json!(["0.0.0.0/0", "::/0"]),
    ));
}

#[test]
fn remote_subnets_must_be_covered_by_a_peer() {
    let office = set(
        portal(
            "wg-office",
            "10.88.0.2/24",
            vec![peer(2, &["10.20.0.0/16"])],
        ),
        "masquerade",
        json!(false),
    );
    let v = set(
        base(),
        "portals.office",
        set(office.clone(), "remote_subnets", json!(["10.30.0.0/16"])),
    );
    expect_err(
        v,
        "portals.office.remote_subnets[0]",
        "10.30.0.0/16 is not inside any peer's allowed_ips",
    );
    valid(set(
        base(),
        "portals.office",
        set(office, "remote_subnets", json!(["10.20.4.0/24"])),
    ));
}

#[test]
fn networks_must_not_have_host_bits() {
    let v = set(
        base(),
        "portals.paris.remote_subnets",
        json!(["192.168.50.1/24"]),
    );
    expect_err(
        v,
        "portals.paris.remote_subnets[0]",
        "has host bits set; did you mean 192.168.50.0/24?",
    );
    let v = set(
        base(),
        "portals.paris.peers.0.allowed_ips",
        json!(["0.0.0.0/0", "10.20.0.1/16"]),
    );
    expect_err(
        v,
        "portals.paris.peers[0].allowed_ips[1]",
        "did you mean 10.20.0.0/16?",
    );
    let v = set(
        base(),
        "portals.paris.peers.0.allowed_ips",
        json!(["0.0.0.0"]),
    );
    expect_err(
        v,
        "portals.paris.peers[0].allowed_ips[0]",
        "the /prefix is required",
    );
}

#[test]
fn endpoints() {
    let ep = |e: &str| set(base(), "portals.paris.peers.0.endpoint", json!(e));
    let path = "portals.paris.peers[0].endpoint";
    expect_err(ep("198.51.100.7"), path, "is not HOST:PORT");
    expect_err(ep("198.51.100.7:0"), path, "port 0 is not a port");
    expect_err(ep("198.51.100.7:65536"), path, "is not HOST:PORT");
    expect_err(
        ep("exit_1.example.net:51820"),
        path,
        "host `exit_1.example.net`",
    );
    expect_err(ep(":51820"), path, "host ``");
    expect_err(ep("[2001:db8::zz]:51820"), path, "not an IPv6 address");
    expect_err(ep("2001:db8::7:51820"), path, "host `2001:db8::7`");
    for good in ["exit.example.net:51820", "[2001:db8::7]:51820"] {
        let e = valid(ep(good)).portal("paris").unwrap().peers[0]
            .endpoint
            .clone()
            .unwrap();
        assert_eq!(e.to_string(), good);
    }
}

// ---- parsing (config.rs) -------------------------------------------------

/// Asserts that config::parse refuses `v` with an error starting `start`.
#[track_caller]
fn expect_parse_err(v: Value, start: &str) {
    let err = config::parse(&v.to_string()).expect_err("expected a parse error");
    assert!(err.starts_with(start), "expected `{start}...`, got `{err}`");
}

#[test]
fn unknown_field_is_refused_with_its_path() {
    let v = set(base(), "portals.paris.listen_prot", json!(51820));
    expect_parse_err(
        v,
        "portals.paris.listen_prot: unknown field `listen_prot`, expected one of",
    );
    expect_parse_err(
        set(base(), "lans.home.kilswitch", json!(true)),
        "lans.home.kilswitch: unknown field",
    );
    expect_parse_err(
        set(base(), "wan.static.dns_servers", json!([])),
        "wan.static.dns_servers: unknown field",
    );
}

#[test]
fn wrong_type_names_its_path() {
    let v = set(base(), "portals.paris.listen_port", json!("51820"));
    expect_parse_err(
        v,
        "portals.paris.listen_port: expected a port 1..65535, found string \"51820\" (line ",
    );
    let v = set(
        base(),
        "portals.paris.peers.0.allowed_ips",
        json!("0.0.0.0/0"),
    );
    expect_parse_err(
        v,
        "portals.paris.peers[0].allowed_ips: expected a list [...], found string",
    );
    expect_parse_err(
        set(base(), "portals.paris.listen_port", json!(70000)),
        "portals.paris.listen_port: expected a port 1..65535, found integer 70000",
    );
    expect_parse_err(
        set(base(), "wireguard_backend", json!("kernal")),
        "wireguard_backend: unknown variant `kernal`",
    );
    expect_parse_err(
        cut(base(), "wan.interface"),
        "wan: missing field `interface`",
    );
}

#[test]
fn syntax_error_names_the_line() {
    let err = config::parse("{\n  \"wan\": {\n    \"interface\": \"eth0\",\n  }\n}").unwrap_err();
    assert_eq!(
        err,
        "config: not valid JSON (line 4, column 3, inside wan): trailing comma"
    );
    // The position of a syntax error has no name: no `?` in the path.
    let err = config::parse("{\n  \"wan\": {\n    \"interface\": \"eth0\"\n").unwrap_err();
    assert_eq!(
        err,
        "config: not valid JSON (line 4, column 0, inside wan): the file ends inside an object"
    );
}

#[test]
fn type_errors_speak_of_the_config_not_of_rust() {
    expect_parse_err(
        set(base(), "portals.paris.exit", json!(1)),
        "portals.paris.exit: expected true or false, found integer 1",
    );
    expect_parse_err(
        set(base(), "portals.paris.mtu", json!(-1)),
        "portals.paris.mtu: expected a whole number 0..4294967295, found integer -1",
    );
    expect_parse_err(
        set(base(), "portals.paris.peers", json!({})),
        "portals.paris.peers: expected a list [...], found an object",
    );
}

// ---- all at once ---------------------------------------------------------

#[test]
fn every_error_is_reported_in_one_go() {
    let v = set(base(), "portals.paris.mtu", json!(100));
    let v = set(v, "portals.paris.table", json!(254));
    let v = set(v, "portals.paris.peers.0.public_key", json!("nope"));
    let v = set(v, "lans.guest.via", json!("tokyo"));
    let v = set(v, "wan.static.gateway", json!("198.51.100.1"));
    let v = set(v, "lans.home.interface", json!("eth2"));
    let mut paths: Vec<String> = errors(v).into_iter().map(|e| e.path).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "lans.guest.via",
            "lans.home.interface",
            "portals.paris.mtu",
            "portals.paris.peers[0].public_key",
            "portals.paris.table",
            "wan.static.gateway",
        ]
    );
}

#[test]
fn errors_print_as_path_colon_reason() {
    let e = &errors(set(base(), "portals.paris.mtu", json!(100)))[0];
    assert_eq!(
        e.to_string(),
        "portals.paris.mtu: 100 is outside 1280..9000 (below 1280 breaks IPv6 in the tunnel)"
    );
}

// ---- golden plans --------------------------------------------------------

/// Compares `plan_text` for `config` with the golden file, or rewrites the
/// file when UPDATE_GOLDEN=1 (then check the diff by eye before committing).
fn check_golden(config: &str, public_keys: &[(&str, &str)], golden: &str, golden_file: &str) {
    let m = valid(serde_json::from_str(config).unwrap());
    let inputs = Inputs {
        public_keys: public_keys
            .iter()
            .map(|(p, k)| (p.to_string(), k.to_string()))
            .collect(),
        endpoints: BTreeMap::new(),
        wan_lease: None,
        ..Inputs::default()
    };
    let plan = crate::plan_text(&m, &inputs, None);
    let path = format!("{}/tests/golden/{golden_file}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::write(&path, &plan).unwrap();
        return;
    }
    if plan != golden {
        let (got, want): (Vec<&str>, Vec<&str>) =
            (plan.lines().collect(), golden.lines().collect());
        let i = (0..got.len().max(want.len()))
            .find(|&i| got.get(i) != want.get(i))
            .unwrap_or(0);
        panic!(
            "plan differs from {path} at line {}:\n  want: {:?}\n  got:  {:?}\n\
             If the change is intended, rerun with UPDATE_GOLDEN=1 and review the diff.\n--- plan ---\n{plan}",
            i + 1,
            want.get(i),
            got.get(i),
        );
    }
}

/// The safety properties of the order, so that a careless UPDATE_GOLDEN
/// cannot bless a plan that opens a leak.
#[test]
fn plan_order_is_safe() {
    let m = valid(serde_json::from_str(include_str!("../../../examples/site.json")).unwrap());
    let plan = crate::plan_text(&m, &Inputs::default(), None);
    let lines: Vec<&str> = plan.lines().collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in:\n{plan}"))
    };
    let kill_route = at("ip route add unreachable default table 51820 metric 4000");
    assert!(at("nft -f -") < kill_route);
    assert!(
        at("iifname \"eth1\" counter name \"drop_kill_switch\" reject") < kill_route,
        "kill switch rule is in the nft table"
    );
    assert!(
        at("type filter hook forward priority filter; policy drop;") < kill_route,
        "forwarding is closed by default"
    );
    assert!(kill_route < at("ip link add dev wg-paris"));
    assert!(kill_route < at("ip rule add priority 10000"));
    assert!(
        at("ip rule add priority 10000")
            < at("ip rule add priority 10100 from 192.168.10.0/24 lookup 51820")
    );
    assert_eq!(lines.last(), Some(&"sysctl -w net.ipv4.ip_forward=1"));
}

#[test]
fn plan_matches_golden() {
    check_golden(
        include_str!("../../../examples/site.json"),
        &[("paris", "FPnHB4iuckL0hZg5b2hK0fhXOsTjSAGf2fXuj3pLmTw=")],
        include_str!("../../../tests/golden/site.plan"),
        "site.plan",
    );
}

#[test]
fn two_exits_plan_matches_golden() {
    check_golden(
        include_str!("../../../examples/two-exits.json"),
        &[
            ("office", "FPnHB4iuckL0hZg5b2hK0fhXOsTjSAGf2fXuj3pLmTw="),
            ("roam", "hQ1yeyBaFmWh0wXg1xoY3ugLd6JhA1s6HzNsB2nd1Eo="),
        ],
        include_str!("../../../tests/golden/two-exits.plan"),
        "two-exits.plan",
    );
}

#[test]
fn automatic_tables_skip_explicit_ones() {
    let cfg = set(base(), "portals.paris.table", json!(51821));
    let tokyo = portal("wg-tokyo", "10.98.0.2/24", vec![peer(2, &["0.0.0.0/0"])]);
    let cfg = set(cfg, "portals.tokyo", tokyo);
    let m = validate(&crate::core::config::parse(&cfg.to_string()).unwrap()).unwrap();
    let tables: Vec<(String, u32)> = m
        .portals
        .iter()
        .map(|p| (p.name.clone(), p.table))
        .collect();
    assert_eq!(
        tables,
        vec![("paris".into(), 51821), ("tokyo".into(), 51820)]
    );
}

#[test]
fn firewall_opens_dhcp_only_where_it_runs() {
    let nft = |v: Value| crate::core::firewall::ruleset(&valid(v)).to_string();
    let none = nft(base());
    assert!(
        !none.contains("dport 67"),
        "no DHCP server configured: port 67 stays closed"
    );
    assert!(!none.contains("dport 68"));
    let lan = nft(set(base(), "lans.home.dhcp", json!({})));
    assert!(
        lan.contains("iifname { \"eth1\" } udp dport 67 accept"),
        "{lan}"
    );
    let wan = nft(set(cut(base(), "wan.static"), "wan.dhcp", json!({})));
    assert!(
        wan.contains("iifname \"eth0\" udp sport 67 udp dport 68 accept"),
        "{wan}"
    );
    assert!(!wan.contains("dport 67 accept"));
}

// ---- status page -----------------------------------------------------------

#[test]
fn status_page_defaults_to_every_lan_on_port_80() {
    let m = valid(base());
    let page = m.status_page.expect("on by default");
    assert_eq!(page.port, 80);
    assert_eq!(page.lans, vec!["guest".to_string(), "home".to_string()]);
    assert_eq!(page.probe, None);
}

#[test]
fn status_page_can_be_switched_off_or_narrowed() {
    let off = set(base(), "status_page", json!({ "enabled": false }));
    assert_eq!(valid(off).status_page, None);
    let v = set(
        base(),
        "status_page",
        json!({ "port": 8081, "lans": ["home"], "probe_url": "http://198.51.100.1:8080/", "probe_interval": 30 }),
    );
    let page = valid(v).status_page.unwrap();
    assert_eq!((page.port, page.lans), (8081, vec!["home".to_string()]));
    let probe = page.probe.unwrap();
    assert_eq!(probe.url(), "http://198.51.100.1:8080/");
    assert_eq!(probe.interval_secs, 30);
}

#[test]
fn status_page_without_lans_is_off() {
    let v = cut(base(), "lans");
    assert_eq!(valid(v).status_page, None);
}

#[test]
fn status_page_errors_name_the_field() {
    let page = |x: Value| set(base(), "status_page", x);
    expect_err(page(json!({ "port": 0 })), "status_page.port", "port 0");
    expect_err(
        page(json!({ "lans": ["home", "lobby"] })),
        "status_page.lans[1]",
        "no LAN named `lobby`",
    );
    expect_err(page(json!({ "lans": [] })), "status_page.lans", "empty");
    expect_err(
        page(json!({ "probe_url": "https://ip.example.net/" })),
        "status_page.probe_url",
        "https is not supported",
    );
    expect_err(
        page(json!({ "probe_url": "http://ip.example.net/", "probe_interval": 5 })),
        "status_page.probe_interval",
        "outside",
    );
    expect_err(
        page(json!({ "probe_interval": 60 })),
        "status_page.probe_interval",
        "without `probe_url`",
    );
}

// ---- WiFi ------------------------------------------------------------------

/// `base()` plus a WiFi LAN `air` on wlan0 via paris.
fn with_wifi() -> Value {
    set(
        base(),
        "lans.air",
        json!({ "interface": "wlan0", "address": "192.168.30.1/24", "via": "paris",
                "wifi": { "ssid": "Portal", "passphrase": "correct horse battery" } }),
    )
}

#[cfg(feature = "wifi")]
#[test]
fn wifi_defaults() {
    let m = valid(with_wifi());
    assert_eq!(m.radios.len(), 1);
    let r = &m.radios[0];
    assert_eq!(
        (r.interface.as_str(), r.band, r.channel),
        ("wlan0", wifi::Band::Ghz2, 6)
    );
    assert_eq!(r.country, None);
    assert_eq!(r.bsses[0].security, wifi::Security::Wpa2);
    assert_eq!(
        (r.bsses[0].lan.as_str(), r.bsses[0].ssid.as_str()),
        ("air", "Portal")
    );
    // The passphrase never shows in Debug output (logs, error dumps).
    let debug = format!("{m:?}");
    assert!(!debug.contains("correct horse"), "{debug}");
}

#[cfg(feature = "wifi")]
#[test]
fn wifi_passphrase_length_and_charset() {
    let at = "lans.air.wifi.passphrase";
    expect_err(
        set(with_wifi(), at, json!("short12")),
        at,
        "7 characters: a passphrase has 8 to 63",
    );
    expect_err(
        set(with_wifi(), at, json!("x".repeat(64))),
        at,
        "64 characters",
    );
    expect_err(
        set(with_wifi(), at, json!("tab\there ok?")),
        at,
        "printable ASCII",
    );
    valid(set(with_wifi(), at, json!("12345678")));
    valid(set(with_wifi(), at, json!("y".repeat(63))));
    // The error names the length, never the value.
    let errs = errors(set(with_wifi(), at, json!("secret!")));
    assert!(
        errs.iter().all(|e| !e.reason.contains("secret!")),
        "{errs:?}"
    );
}

#[cfg(feature = "wifi")]
#[test]
fn wifi_ssid_and_security() {
    expect_err(
        set(with_wifi(), "lans.air.wifi.ssid", json!("")),
        "lans.air.wifi.ssid",
        "1 to 32 bytes",
    );
    expect_err(
        set(with_wifi(), "lans.air.wifi.ssid", json!("s".repeat(33))),
        "lans.air.wifi.ssid",
        "33 bytes",
    );
    expect_err(
        set(with_wifi(), "lans.air.wifi.ssid", json!("a\nb")),
        "lans.air.wifi.ssid",
        "control character",
    );
    expect_err(
        set(with_wifi(), "lans.air.wifi.security", json!("wep")),
        "lans.air.wifi.security",
        "wpa2, wpa3, wpa2-wpa3",
    );
    let m = valid(set(
        with_wifi(),
        "lans.air.wifi.security",
        json!("wpa2-wpa3"),
    ));
    assert_eq!(m.radios[0].bsses[0].security, wifi::Security::Wpa2Wpa3);
}

#[cfg(feature = "wifi")]
#[test]
fn wifi_band_channel_country() {
    let radio = |r: Value| set(with_wifi(), "radios.wlan0", r);
    expect_err(
        radio(json!({ "channel": 14 })),
        "radios.wlan0.channel",
        "not a 2.4 GHz channel",
    );
    expect_err(
        radio(json!({ "channel": 0 })),
        "radios.wlan0.channel",
        "not a 2.4 GHz channel",
    );
    expect_err(
        radio(json!({ "band": "5", "country": "FR", "channel": 6 })),
        "radios.wlan0.channel",
        "not a 5 GHz channel",
    );
    expect_err(
        radio(json!({ "band": "5", "channel": 36 })),
        "radios.wlan0.country",
        "required for 5 GHz",
    );
    expect_err(
        radio(json!({ "band": "6" })),
        "radios.wlan0.band",
        "\"2.4\" or \"5\"",
    );
    expect_err(
        radio(json!({ "country": "fr" })),
        "radios.wlan0.country",
        "two-letter country code",
    );
    let m = valid(radio(json!({ "band": "5", "country": "FR" })));
    assert_eq!(
        (m.radios[0].band, m.radios[0].channel),
        (wifi::Band::Ghz5, 36)
    );
    assert!(!m.radios[0].dfs());
    let m = valid(radio(
        json!({ "band": "5", "country": "US", "channel": 100 }),
    ));
    assert!(m.radios[0].dfs());
    valid(radio(json!({ "country": "DE", "channel": 13 })));
    // A radio nobody uses is a typo.
    expect_err(
        set(with_wifi(), "radios.wlan9", json!({})),
        "radios.wlan9",
        "no LAN has an SSID",
    );
}

#[cfg(feature = "wifi")]
#[test]
fn wifi_several_ssids_on_one_radio() {
    let two = set(
        with_wifi(),
        "lans.cafe",
        json!({ "interface": "wlan0-1", "address": "192.168.31.1/24", "via": "direct",
                "wifi": { "radio": "wlan0", "ssid": "Cafe", "passphrase": "another secret" } }),
    );
    let m = valid(two.clone());
    assert_eq!(m.radios.len(), 1);
    let ifaces: Vec<&str> = m.radios[0]
        .bsses
        .iter()
        .map(|b| b.interface.as_str())
        .collect();
    assert_eq!(ifaces, ["wlan0", "wlan0-1"]);
    // The same SSID twice on a radio.
    expect_err(
        set(two.clone(), "lans.cafe.wifi.ssid", json!("Portal")),
        "lans.cafe.wifi.ssid",
        "already an SSID",
    );
    // A second SSID without the first on the radio's own interface.
    let orphan = set(
        base(),
        "lans.cafe",
        json!({ "interface": "wlan0-1", "address": "192.168.31.1/24", "via": "direct",
                "wifi": { "radio": "wlan0", "ssid": "Cafe", "passphrase": "another secret" } }),
    );
    expect_err(
        orphan,
        "lans.cafe.wifi.radio",
        "no SSID on its own interface",
    );
}

#[cfg(not(feature = "wifi"))]
#[test]
fn wifi_refused_without_the_feature() {
    expect_err(with_wifi(), "lans.air.wifi", "no WiFi support");
}
