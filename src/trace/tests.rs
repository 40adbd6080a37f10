use super::*;
use std::net::Ipv4Addr;

pub(crate) fn c(s: &str) -> Cidr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub(crate) fn rule(priority: u32, from: Option<&str>, to: Option<&str>, action: Action) -> Rule {
    Rule {
        priority,
        invert: false,
        from: from.map(c),
        to: to.map(c),
        iif: None,
        oif: None,
        fwmark: None,
        suppress_prefixlen: None,
        action,
        unmodelled: false,
    }
}

/// A route as the dump gives it (doctor's tests build theirs with it too).
pub(crate) fn route(
    table: u32,
    dst: &str,
    kind: RouteType,
    dev: Option<&str>,
    metric: u32,
) -> Route {
    Route {
        table,
        dst: c(dst),
        kind,
        dev: dev.map(str::to_string),
        gateway: None,
        metric,
        prefsrc: None,
        mtu: None,
    }
}

/// The kernel's three default rules plus Portal's for one LAN via table 51820.
fn portal_rules() -> Vec<Rule> {
    vec![
        rule(0, None, None, Action::Table(LOCAL_TABLE)),
        rule(
            10000,
            None,
            Some("192.168.10.0/24"),
            Action::Table(MAIN_TABLE),
        ),
        rule(10100, Some("192.168.10.0/24"), None, Action::Table(51820)),
        rule(32766, None, None, Action::Table(MAIN_TABLE)),
        rule(32767, None, None, Action::Table(DEFAULT_TABLE)),
    ]
}

fn portal_routes() -> Vec<Route> {
    let mut gw = route(MAIN_TABLE, "0.0.0.0/0", RouteType::Unicast, Some("wan0"), 0);
    gw.gateway = Some(ip("198.51.100.1"));
    vec![
        route(
            LOCAL_TABLE,
            "192.168.10.1/32",
            RouteType::Local,
            Some("lan0"),
            0,
        ),
        gw,
        route(
            MAIN_TABLE,
            "192.168.10.0/24",
            RouteType::Unicast,
            Some("lan0"),
            0,
        ),
        route(
            MAIN_TABLE,
            "198.51.100.0/24",
            RouteType::Unicast,
            Some("wan0"),
            0,
        ),
        route(51820, "0.0.0.0/0", RouteType::Unreachable, None, 4000),
        route(51820, "0.0.0.0/0", RouteType::Unicast, Some("wg0"), 0),
    ]
}

fn from_lan(dst: &str) -> Packet {
    Packet {
        src: ip("192.168.10.10"),
        dst: ip(dst),
        iif: Some("lan0".into()),
        mark: 0,
    }
}

#[test]
fn lan_traffic_takes_the_portal_table_and_the_tunnel() {
    let t = simulate(&portal_rules(), &portal_routes(), &from_lan("1.1.1.1"));
    assert_eq!(t.dev(), Some("wg0"));
    let matched: Vec<u32> = t
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::RuleMatched(r) => Some(r.priority),
            _ => None,
        })
        .collect();
    // local (no route), then the LAN's rule.
    assert_eq!(matched, vec![0, 10100]);
    assert!(t.steps.contains(&Step::NoRoute { table: LOCAL_TABLE }));
}

#[test]
fn lowest_metric_wins_among_equal_prefixes_and_kill_switch_answers_without_the_device() {
    let mut routes = portal_routes();
    let t = simulate(&portal_rules(), &routes, &from_lan("1.1.1.1"));
    assert_eq!(t.dev(), Some("wg0"));
    // The device gone: its route goes, the unreachable one answers.
    routes.retain(|r| r.dev.as_deref() != Some("wg0"));
    let t = simulate(&portal_rules(), &routes, &from_lan("1.1.1.1"));
    assert!(matches!(&t.outcome, Outcome::Refused(r) if r.kind == RouteType::Unreachable));
    assert!(t.to_string().contains("ICMP host unreachable"));
}

#[test]
fn traffic_to_a_lan_stays_in_main() {
    let t = simulate(
        &portal_rules(),
        &portal_routes(),
        &from_lan("192.168.10.20"),
    );
    assert_eq!(t.dev(), Some("lan0"));
    let t = simulate(&portal_rules(), &portal_routes(), &from_lan("192.168.10.1"));
    assert!(matches!(&t.outcome, Outcome::Route(r) if r.kind == RouteType::Local));
}

#[test]
fn a_host_outside_portal_lans_uses_main_and_the_wan() {
    let mut p = from_lan("1.1.1.1");
    p.src = ip("10.0.0.5");
    let t = simulate(&portal_rules(), &portal_routes(), &p);
    assert_eq!(t.dev(), Some("wan0"));
    match &t.outcome {
        Outcome::Route(r) => assert_eq!(r.gateway, Some(ip("198.51.100.1"))),
        o => panic!("{o:?}"),
    }
}

#[test]
fn throw_ends_the_table_and_rules_continue() {
    // Split routing: 203.0.113.0/24 goes direct (throw in the portal table).
    let mut routes = portal_routes();
    routes.push(route(51820, "203.0.113.0/24", RouteType::Throw, None, 0));
    let t = simulate(&portal_rules(), &routes, &from_lan("203.0.113.9"));
    assert_eq!(t.dev(), Some("wan0"));
    assert!(t
        .steps
        .iter()
        .any(|s| matches!(s, Step::Throw { table: 51820, .. })));
    assert!(t.to_string().contains("throw ends this table's lookup"));
    // Other destinations still take the tunnel.
    assert_eq!(
        simulate(&portal_rules(), &routes, &from_lan("1.1.1.1")).dev(),
        Some("wg0")
    );
}

#[test]
fn blackhole_and_prohibit_routes_and_rule_actions_refuse() {
    let mut routes = portal_routes();
    routes.push(route(51820, "8.8.8.0/24", RouteType::Blackhole, None, 0));
    routes.push(route(51820, "9.9.9.0/24", RouteType::Prohibit, None, 0));
    let t = simulate(&portal_rules(), &routes, &from_lan("8.8.8.8"));
    assert!(matches!(&t.outcome, Outcome::Refused(r) if r.kind == RouteType::Blackhole));
    let t = simulate(&portal_rules(), &routes, &from_lan("9.9.9.9"));
    assert!(matches!(&t.outcome, Outcome::Refused(r) if r.kind == RouteType::Prohibit));
    let mut rules = portal_rules();
    rules.push(rule(5, None, Some("4.4.4.0/24"), Action::Prohibit));
    let t = simulate(&rules, &routes, &from_lan("4.4.4.4"));
    assert!(matches!(t.outcome, Outcome::RuleRefused(_)));
}

#[test]
fn suppress_prefixlength_skips_the_default_route_as_wg_quick_uses_it() {
    let mut rules = portal_rules();
    let mut s = rule(9000, None, None, Action::Table(MAIN_TABLE));
    s.suppress_prefixlen = Some(0);
    rules.push(s);
    let mut p = from_lan("1.1.1.1");
    p.src = ip("10.0.0.5");
    let t = simulate(&rules, &portal_routes(), &p);
    assert!(t.steps.iter().any(|s| matches!(s, Step::Suppressed { .. })));
    // Then rule 32766 (main) takes it anyway.
    assert_eq!(t.dev(), Some("wan0"));
    // A more specific route in main is not suppressed.
    let t = simulate(&rules, &portal_routes(), &from_lan("198.51.100.7"));
    assert_eq!(t.dev(), Some("wan0"));
}

#[test]
fn iif_fwmark_invert_and_goto_selectors() {
    let mut rules = portal_rules();
    let mut by_iif = rule(100, None, None, Action::Table(7));
    by_iif.iif = Some("lan1".into());
    let mut marked = rule(200, None, None, Action::Table(8));
    marked.fwmark = Some((0x10, 0xff));
    marked.invert = true; // not fwmark 0x10: everything unmarked
    rules.push(by_iif);
    rules.push(marked);
    let mut routes = portal_routes();
    routes.push(route(7, "0.0.0.0/0", RouteType::Unicast, Some("x7"), 0));
    routes.push(route(8, "0.0.0.0/0", RouteType::Unicast, Some("x8"), 0));
    assert_eq!(
        simulate(&rules, &routes, &from_lan("1.1.1.1")).dev(),
        Some("x8")
    );
    let mut p = from_lan("1.1.1.1");
    p.iif = Some("lan1".into());
    assert_eq!(simulate(&rules, &routes, &p).dev(), Some("x7"));
    p.iif = Some("lan0".into());
    p.mark = 0x10;
    assert_eq!(simulate(&rules, &routes, &p).dev(), Some("wg0"));
    // goto jumps over rule 200 to 10100.
    rules.push(rule(150, None, None, Action::Goto(10100)));
    p.mark = 0;
    assert_eq!(simulate(&rules, &routes, &p).dev(), Some("wg0"));
}

#[test]
fn no_rule_finds_a_route() {
    let t = simulate(&portal_rules()[..1], &portal_routes(), &from_lan("1.1.1.1"));
    assert_eq!(t.outcome, Outcome::NoRoute);
    assert!(t.to_string().contains("network unreachable"));
}

#[test]
fn rules_and_routes_print_as_ip_does() {
    let r = &portal_rules()[2];
    assert_eq!(r.to_string(), "10100:\tfrom 192.168.10.0/24 lookup 51820");
    let mut gw = route(MAIN_TABLE, "0.0.0.0/0", RouteType::Unicast, Some("wan0"), 0);
    gw.gateway = Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)));
    assert_eq!(
        gw.to_string(),
        "default via 198.51.100.1 dev wan0 table main"
    );
    assert_eq!(
        route(51820, "0.0.0.0/0", RouteType::Unreachable, None, 4000).to_string(),
        "unreachable default table 51820 metric 4000"
    );
}

#[test]
fn reverse_path_filter_strict_and_loose() {
    let (rules, routes) = (portal_rules(), portal_routes());
    let mut p = from_lan("1.1.1.1");
    assert_eq!(rp_filter(&rules, &routes, &p, 1), None);
    // A source that is not the LAN's: the way back is the WAN.
    p.src = ip("10.1.2.3");
    let why = rp_filter(&rules, &routes, &p, 1).unwrap();
    assert!(why.contains("leaves by wan0"), "{why}");
    assert_eq!(rp_filter(&rules, &routes, &p, 2), None);
    assert_eq!(rp_filter(&rules, &routes, &p, 0), None);
}
