//! `portal trace`: the kernel's IPv4 routing decision, simulated over dumped
//! rules and routes of all tables (pure), so that it can show each step:
//! rule (priority, selector) -> table -> longest-prefix route -> device.
//!
//! Semantics follow the kernel's fib_rules_lookup and fib_table_lookup: rules
//! in priority order; a table with no matching route, or whose match is a
//! `throw` route, sends the lookup on to the next rule; `suppress_prefixlength`
//! rejects a result whose prefix is not longer; `unreachable`, `blackhole`
//! and `prohibit` (as route or as rule action) end the lookup with an error.

pub mod forward;
pub mod kernel;

use crate::core::cidr::Cidr;
use std::fmt;
use std::net::IpAddr;

pub const LOCAL_TABLE: u32 = 255;
pub const MAIN_TABLE: u32 = 254;
pub const DEFAULT_TABLE: u32 = 253;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Table(u32),
    Goto(u32),
    Nop,
    Unreachable,
    Blackhole,
    Prohibit,
    Other(u8),
}

/// One `ip rule`, as dumped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub priority: u32,
    pub invert: bool,
    pub from: Option<Cidr>,
    pub to: Option<Cidr>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    /// (mark, mask)
    pub fwmark: Option<(u32, u32)>,
    pub suppress_prefixlen: Option<u32>,
    pub action: Action,
    /// Selectors this simulator does not model (ports, uid, ipproto): such a
    /// rule is shown, and assumed not to match.
    pub unmodelled: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteType {
    Unicast,
    Local,
    Broadcast,
    Anycast,
    Multicast,
    Blackhole,
    Unreachable,
    Prohibit,
    Throw,
    Other(u8),
}

/// One route, as dumped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub table: u32,
    pub dst: Cidr,
    pub kind: RouteType,
    pub dev: Option<String>,
    pub gateway: Option<IpAddr>,
    pub metric: u32,
    pub prefsrc: Option<IpAddr>,
    /// The route's MTU metric (`ip route ... mtu N`), when set.
    pub mtu: Option<u32>,
}

/// The packet being routed: as it arrives from `iif` (None: the router's own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub iif: Option<String>,
    pub mark: u32,
}

/// One step of the lookup, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The rule matched; what it did follows.
    RuleMatched(Rule),
    /// The rule's table had no route for the destination: on to the next rule.
    NoRoute { table: u32 },
    /// The best route was `throw`: the table lookup ends, rules go on.
    Throw { table: u32, route: Route },
    /// suppress_prefixlength rejected the result: rules go on.
    Suppressed { table: u32, route: Route },
    /// The rule's selector uses something the simulator does not model.
    Skipped(Rule),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A route: unicast (forwarded out `dev`), local, broadcast, ...
    Route(Route),
    /// A route of type unreachable/blackhole/prohibit ended the lookup.
    Refused(Route),
    /// A rule whose action is unreachable/blackhole/prohibit.
    RuleRefused(Rule),
    /// No rule's table had a route: "Network is unreachable".
    NoRoute,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    pub steps: Vec<Step>,
    pub outcome: Outcome,
}

impl Trace {
    /// The device a unicast result leaves by.
    pub fn dev(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Route(r) if r.kind == RouteType::Unicast => r.dev.as_deref(),
            _ => None,
        }
    }
}

fn selector_matches(r: &Rule, p: &Packet) -> bool {
    // oif selects only locally generated lookups with an output device
    // (never set for forwarded packets or rp_filter checks here).
    let m = r.from.is_none_or(|c| c.contains(&p.src))
        && r.to.is_none_or(|c| c.contains(&p.dst))
        && r.iif
            .as_deref()
            .is_none_or(|i| i == p.iif.as_deref().unwrap_or("lo"))
        && r.oif.is_none()
        && r.fwmark.is_none_or(|(mark, mask)| p.mark & mask == mark);
    m != r.invert
}

/// The longest-prefix match in `table` (lowest metric among equal prefixes).
pub fn lookup<'a>(routes: &'a [Route], table: u32, dst: &IpAddr) -> Option<&'a Route> {
    routes
        .iter()
        .filter(|r| r.table == table && r.dst.contains(dst))
        .max_by(|a, b| a.dst.len.cmp(&b.dst.len).then(b.metric.cmp(&a.metric)))
}

/// Simulates the kernel's policy routing for `p`.
pub fn simulate(rules: &[Rule], routes: &[Route], p: &Packet) -> Trace {
    let mut sorted: Vec<&Rule> = rules.iter().collect();
    sorted.sort_by_key(|r| r.priority);
    let mut steps = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let r = sorted[i];
        i += 1;
        if r.unmodelled {
            steps.push(Step::Skipped(r.clone()));
            continue;
        }
        if !selector_matches(r, p) {
            continue;
        }
        steps.push(Step::RuleMatched(r.clone()));
        let table = match r.action {
            Action::Table(t) => t,
            Action::Goto(target) => {
                // The kernel jumps to the first rule at or after `target`.
                i = sorted
                    .iter()
                    .position(|x| x.priority >= target)
                    .unwrap_or(sorted.len());
                continue;
            }
            Action::Nop | Action::Other(_) => continue,
            Action::Unreachable | Action::Blackhole | Action::Prohibit => {
                return Trace {
                    steps,
                    outcome: Outcome::RuleRefused(r.clone()),
                }
            }
        };
        let Some(route) = lookup(routes, table, &p.dst) else {
            steps.push(Step::NoRoute { table });
            continue;
        };
        match route.kind {
            RouteType::Throw => {
                steps.push(Step::Throw {
                    table,
                    route: route.clone(),
                });
                continue;
            }
            RouteType::Unreachable | RouteType::Blackhole | RouteType::Prohibit => {
                return Trace {
                    steps,
                    outcome: Outcome::Refused(route.clone()),
                }
            }
            _ => {}
        }
        if r.suppress_prefixlen
            .is_some_and(|s| u32::from(route.dst.len) <= s)
        {
            steps.push(Step::Suppressed {
                table,
                route: route.clone(),
            });
            continue;
        }
        return Trace {
            steps,
            outcome: Outcome::Route(route.clone()),
        };
    }
    Trace {
        steps,
        outcome: Outcome::NoRoute,
    }
}

/// The reverse-path filter's verdict on `p` (`mode`: 0 off, 1 strict, 2
/// loose): the kernel looks up the route back to the source, with the
/// packet's destination as source; strict wants it to leave by the arrival
/// interface, loose by any. Some(why) when the packet is dropped.
pub fn rp_filter(rules: &[Rule], routes: &[Route], p: &Packet, mode: u8) -> Option<String> {
    let iif = p.iif.as_deref()?;
    if mode == 0 {
        return None;
    }
    let back = simulate(
        rules,
        routes,
        &Packet {
            src: p.dst,
            dst: p.src,
            iif: None,
            mark: p.mark,
        },
    );
    match back.dev() {
        Some(d) if mode == 2 || d == iif => None,
        Some(d) => Some(format!(
            "strict rp_filter on {iif}: the route back to {} leaves by {d}",
            p.src
        )),
        None => Some(format!("rp_filter on {iif}: no route back to {}", p.src)),
    }
}

pub fn table_name(t: u32) -> String {
    match t {
        LOCAL_TABLE => "local".into(),
        MAIN_TABLE => "main".into(),
        DEFAULT_TABLE => "default".into(),
        t => t.to_string(),
    }
}

impl fmt::Display for RouteType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            RouteType::Unicast => "unicast",
            RouteType::Local => "local",
            RouteType::Broadcast => "broadcast",
            RouteType::Anycast => "anycast",
            RouteType::Multicast => "multicast",
            RouteType::Blackhole => "blackhole",
            RouteType::Unreachable => "unreachable",
            RouteType::Prohibit => "prohibit",
            RouteType::Throw => "throw",
            RouteType::Other(n) => return write!(f, "type{n}"),
        };
        f.write_str(s)
    }
}

/// As `ip rule` prints it.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:\t", self.priority)?;
        if self.invert {
            f.write_str("not ")?;
        }
        match self.from {
            Some(c) if !c.is_default() => write!(f, "from {c}")?,
            _ => f.write_str("from all")?,
        }
        if let Some(c) = self.to {
            write!(f, " to {c}")?;
        }
        if let Some((mark, mask)) = self.fwmark {
            write!(f, " fwmark {mark:#x}/{mask:#x}")?;
        }
        if let Some(i) = &self.iif {
            write!(f, " iif {i}")?;
        }
        if let Some(o) = &self.oif {
            write!(f, " oif {o}")?;
        }
        match self.action {
            Action::Table(t) => write!(f, " lookup {}", table_name(t))?,
            Action::Goto(t) => write!(f, " goto {t}")?,
            Action::Nop => f.write_str(" nop")?,
            Action::Unreachable => f.write_str(" unreachable")?,
            Action::Blackhole => f.write_str(" blackhole")?,
            Action::Prohibit => f.write_str(" prohibit")?,
            Action::Other(n) => write!(f, " action {n}")?,
        }
        if let Some(s) = self.suppress_prefixlen {
            write!(f, " suppress_prefixlength {s}")?;
        }
        Ok(())
    }
}

/// As `ip route show table T` prints it.
impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind != RouteType::Unicast {
            write!(f, "{} ", self.kind)?;
        }
        if self.dst.is_default() {
            f.write_str("default")?;
        } else {
            write!(f, "{}", self.dst)?;
        }
        if let Some(g) = self.gateway {
            write!(f, " via {g}")?;
        }
        if let Some(d) = &self.dev {
            write!(f, " dev {d}")?;
        }
        write!(f, " table {}", table_name(self.table))?;
        if self.metric != 0 {
            write!(f, " metric {}", self.metric)?;
        }
        if let Some(s) = self.prefsrc {
            write!(f, " src {s}")?;
        }
        if let Some(m) = self.mtu {
            write!(f, " mtu {m}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::RuleMatched(r) => write!(f, "rule   {r}"),
            Step::NoRoute { table } => write!(
                f,
                "  table {}: no route matches; the next rule is tried",
                table_name(*table)
            ),
            Step::Throw { route, .. } => write!(
                f,
                "  route {route}: throw ends this table's lookup; the next rule is tried"
            ),
            Step::Suppressed { route, .. } => write!(
                f,
                "  route {route}: suppressed (prefix /{} not longer than suppress_prefixlength)",
                route.dst.len
            ),
            Step::Skipped(r) => write!(
                f,
                "rule   {r}  (selector not simulated: assumed not to match)"
            ),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Route(r) => match r.kind {
                RouteType::Unicast => write!(
                    f,
                    "route  {r}\n  -> out {}{}",
                    r.dev.as_deref().unwrap_or("?"),
                    r.gateway.map(|g| format!(" via {g}")).unwrap_or_default()
                ),
                RouteType::Local => write!(f, "route  {r}\n  -> delivered to the router itself"),
                _ => write!(f, "route  {r}"),
            },
            Outcome::Refused(r) => write!(
                f,
                "route  {r}\n  -> refused: {} (the sender gets {})",
                r.kind,
                refusal(r.kind)
            ),
            Outcome::RuleRefused(r) => write!(f, "  -> refused by the rule's action ({r})"),
            Outcome::NoRoute => f.write_str("  -> no route: network unreachable"),
        }
    }
}

fn refusal(k: RouteType) -> &'static str {
    match k {
        RouteType::Unreachable => "ICMP host unreachable",
        RouteType::Prohibit => "ICMP administratively prohibited",
        _ => "nothing: dropped silently",
    }
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.steps {
            writeln!(f, "{s}")?;
        }
        write!(f, "{}", self.outcome)
    }
}

#[cfg(test)]
pub(crate) mod tests;
