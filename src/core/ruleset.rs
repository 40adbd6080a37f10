//! An nftables table as plain data: named counters, base chains, and rules
//! as sequences of typed matches and statements. Pure.
//!
//! Only the forms Portal's firewall uses exist here, each with one meaning:
//! the kernel encoding (src/kernel/nftables/encode.rs) and the `nft` text
//! (Display, printed by `portal plan` and accepted by `nft -f`) are both
//! derived from this one description.

use std::fmt;
use std::net::IpAddr;

use crate::core::cidr::Cidr;

/// `table inet NAME { ... }`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub name: String,
    /// Named counters (`counter NAME { }`), referenced by `counter name "NAME"`.
    pub counters: Vec<String>,
    /// Flowtables (`flowtable NAME { hook ingress priority filter; devices
    /// = { ... } }`), filled by `flow add @NAME`.
    pub flowtables: Vec<Flowtable>,
    pub chains: Vec<Chain>,
}

/// A software flowtable: established flows between its devices are
/// forwarded from their ingress hook, past the IP stack's chains.
#[derive(Debug, Clone, PartialEq)]
pub struct Flowtable {
    pub name: String,
    pub devices: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    pub name: String,
    pub kind: ChainKind,
    pub hook: Hook,
    pub priority: Priority,
    pub policy: Verdict,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainKind {
    Filter,
    Nat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

/// The named chain priorities of the inet family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Raw,
    Mangle,
    DstNat,
    Filter,
    Security,
    SrcNat,
}

impl Priority {
    pub fn value(self) -> i32 {
        match self {
            Priority::Raw => -300,
            Priority::Mangle => -150,
            Priority::DstNat => -100,
            Priority::Filter => 0,
            Priority::Security => 50,
            Priority::SrcNat => 100,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
}

/// Matches and statements in the order nft reads (and the kernel runs) them.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub items: Vec<Item>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Match(Match),
    Stmt(Stmt),
}

/// One value (`"eth0"`) or an anonymous set (`{ "eth0", "eth1" }`); a set
/// of one is kept as written (nft compiles it to a plain comparison).
#[derive(Debug, Clone, PartialEq)]
pub enum Values<T> {
    One(T),
    Set(Vec<T>),
}

impl<T> Values<T> {
    pub fn as_slice(&self) -> &[T] {
        match self {
            Values::One(v) => std::slice::from_ref(v),
            Values::Set(v) => v,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    In,
    Out,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpField {
    Saddr,
    Daddr,
}

/// An address (`10.0.0.1`) or a prefix (`10.0.0.0/24`) in an `ip` match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpValue {
    Addr(IpAddr),
    Net(Cidr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    Tcp,
    Udp,
}

impl L4 {
    pub fn number(self) -> u8 {
        match self {
            L4::Tcp => 6,
            L4::Udp => 17,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortField {
    Sport,
    Dport,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Ipv4,
    Ipv6,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtState {
    Invalid,
    Established,
    Related,
    New,
}

impl CtState {
    /// The kernel's NF_CT_STATE_* bit.
    pub fn bit(self) -> u32 {
        match self {
            CtState::Invalid => 1,
            CtState::Established => 2,
            CtState::Related => 4,
            CtState::New => 8,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpType {
    EchoReply,
    EchoRequest,
}

impl IcmpType {
    pub fn number(self) -> u8 {
        match self {
            IcmpType::EchoReply => 0,
            IcmpType::EchoRequest => 8,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv6Type {
    EchoRequest,
    EchoReply,
    NdRouterSolicit,
    NdRouterAdvert,
    NdNeighborSolicit,
    NdNeighborAdvert,
}

impl Icmpv6Type {
    pub fn number(self) -> u8 {
        match self {
            Icmpv6Type::EchoRequest => 128,
            Icmpv6Type::EchoReply => 129,
            Icmpv6Type::NdRouterSolicit => 133,
            Icmpv6Type::NdRouterAdvert => 134,
            Icmpv6Type::NdNeighborSolicit => 135,
            Icmpv6Type::NdNeighborAdvert => 136,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpFlag {
    Fin,
    Syn,
    Rst,
    Ack,
}

impl TcpFlag {
    pub fn bit(self) -> u8 {
        match self {
            TcpFlag::Fin => 0x01,
            TcpFlag::Syn => 0x02,
            TcpFlag::Rst => 0x04,
            TcpFlag::Ack => 0x10,
        }
    }
}

/// Address types of `fib ... type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrType {
    Unicast,
    Local,
}

impl AddrType {
    /// The kernel's RTN_* value.
    pub fn number(self) -> u32 {
        match self {
            AddrType::Unicast => 1,
            AddrType::Local => 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Match {
    /// `iif "lo"`: the input interface by index, resolved when written.
    Iif(String),
    /// `iifname "x"`, `oifname != "x"`, `iifname { "a", "b" }`.
    IfName {
        dir: Dir,
        op: Op,
        names: Values<String>,
    },
    /// `ip saddr 10.0.0.0/8`, `ip daddr != { ... }`.
    Ip {
        field: IpField,
        op: Op,
        values: Values<IpValue>,
    },
    /// `udp dport 67`, `tcp dport { 80, 443 }`.
    Port {
        proto: L4,
        field: PortField,
        ports: Values<u16>,
    },
    IcmpType(Values<IcmpType>),
    Icmpv6Type(Values<Icmpv6Type>),
    Ip6Hoplimit(u8),
    /// `meta l4proto udp`.
    L4proto(L4),
    /// `meta nfproto ipv4`.
    Nfproto(Family),
    /// `ct state a,b`: any of them.
    CtState(Vec<CtState>),
    /// `ct count over N`.
    CtCountOver(u32),
    /// `fib saddr type != local`.
    FibSaddrType {
        op: Op,
        ty: AddrType,
    },
    /// `tcp flags & (syn | rst) == syn`.
    TcpFlags {
        mask: Vec<TcpFlag>,
        equals: Vec<TcpFlag>,
    },
    /// `tcp option maxseg size > N`.
    TcpMssAbove(u32),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// `counter name "x"`: counts into a named counter of the table.
    Counter(String),
    /// `tcp option maxseg size set N`.
    SetTcpMss(u32),
    Reject(Reject),
    Masquerade,
    /// `flow add @NAME`: offloads the packet's (established) connection
    /// to the table's flowtable NAME.
    FlowAdd(String),
    Verdict(Verdict),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// `reject`: ICMP(v6) port unreachable.
    PortUnreachable,
    /// `reject with tcp reset`.
    TcpReset,
    /// `reject with icmpx type admin-prohibited`.
    AdminProhibited,
}

// ---- building -----------------------------------------------------------

impl Rule {
    pub fn new(items: Vec<Item>) -> Rule {
        Rule {
            items,
            comment: None,
        }
    }

    pub fn comment(mut self, c: impl Into<String>) -> Rule {
        self.comment = Some(c.into());
        self
    }
}

impl From<Match> for Item {
    fn from(m: Match) -> Item {
        Item::Match(m)
    }
}

impl From<Stmt> for Item {
    fn from(s: Stmt) -> Item {
        Item::Stmt(s)
    }
}

impl From<Verdict> for Item {
    fn from(v: Verdict) -> Item {
        Item::Stmt(Stmt::Verdict(v))
    }
}

// ---- nft text -----------------------------------------------------------

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "table inet {} {{", self.name)?;
        for c in &self.counters {
            writeln!(f, "\tcounter {c} {{\n\t}}")?;
        }
        for t in &self.flowtables {
            writeln!(
                f,
                "\tflowtable {} {{\n\t\thook ingress priority filter\n\t\tdevices = {{ {} }}\n\t}}",
                t.name,
                t.devices.join(", ")
            )?;
        }
        for c in &self.chains {
            writeln!(f, "\tchain {} {{", c.name)?;
            writeln!(
                f,
                "\t\ttype {} hook {} priority {}; policy {};",
                c.kind, c.hook, c.priority, c.policy
            )?;
            for r in &c.rules {
                writeln!(f, "\t\t{r}")?;
            }
            writeln!(f, "\t}}")?;
        }
        writeln!(f, "}}")
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            match item {
                Item::Match(m) => write!(f, "{m}")?,
                Item::Stmt(s) => write!(f, "{s}")?,
            }
        }
        if let Some(c) = &self.comment {
            write!(f, " comment \"{c}\"")?;
        }
        Ok(())
    }
}

impl<T: fmt::Display> fmt::Display for Values<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Values::One(v) => write!(f, "{v}"),
            Values::Set(vs) => {
                f.write_str("{ ")?;
                for (i, v) in vs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str(" }")
            }
        }
    }
}

/// An interface name, quoted as nft writes it.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0)
    }
}

fn op(o: Op) -> &'static str {
    match o {
        Op::Eq => "",
        Op::Ne => "!= ",
    }
}

fn flags(f: &mut fmt::Formatter<'_>, fl: &[TcpFlag]) -> fmt::Result {
    if fl.len() == 1 {
        return write!(f, "{}", fl[0]);
    }
    f.write_str("(")?;
    for (i, x) in fl.iter().enumerate() {
        if i > 0 {
            f.write_str(" | ")?;
        }
        write!(f, "{x}")?;
    }
    f.write_str(")")
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Match::Iif(name) => write!(f, "iif {}", Quoted(name)),
            Match::IfName { dir, op: o, names } => {
                let key = match dir {
                    Dir::In => "iifname",
                    Dir::Out => "oifname",
                };
                let names = match names {
                    Values::One(n) => Quoted(n).to_string(),
                    Values::Set(ns) => {
                        let q: Vec<String> = ns.iter().map(|n| Quoted(n).to_string()).collect();
                        format!("{{ {} }}", q.join(", "))
                    }
                };
                write!(f, "{key} {}{names}", op(*o))
            }
            Match::Ip {
                field,
                op: o,
                values,
            } => write!(f, "ip {field} {}{values}", op(*o)),
            Match::Port {
                proto,
                field,
                ports,
            } => write!(f, "{proto} {field} {ports}"),
            Match::IcmpType(t) => write!(f, "icmp type {t}"),
            Match::Icmpv6Type(t) => write!(f, "icmpv6 type {t}"),
            Match::Ip6Hoplimit(h) => write!(f, "ip6 hoplimit {h}"),
            Match::L4proto(p) => write!(f, "meta l4proto {p}"),
            Match::Nfproto(p) => write!(f, "meta nfproto {p}"),
            Match::CtState(s) => {
                let s: Vec<String> = s.iter().map(|s| s.to_string()).collect();
                write!(f, "ct state {}", s.join(","))
            }
            Match::CtCountOver(n) => write!(f, "ct count over {n}"),
            Match::FibSaddrType { op: o, ty } => write!(f, "fib saddr type {}{ty}", op(*o)),
            Match::TcpFlags { mask, equals } => {
                f.write_str("tcp flags & ")?;
                flags(f, mask)?;
                f.write_str(" == ")?;
                flags(f, equals)
            }
            Match::TcpMssAbove(n) => write!(f, "tcp option maxseg size > {n}"),
        }
    }
}

impl fmt::Display for Stmt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stmt::Counter(name) => write!(f, "counter name {}", Quoted(name)),
            Stmt::SetTcpMss(n) => write!(f, "tcp option maxseg size set {n}"),
            Stmt::Reject(Reject::PortUnreachable) => f.write_str("reject"),
            Stmt::Reject(Reject::TcpReset) => f.write_str("reject with tcp reset"),
            Stmt::Reject(Reject::AdminProhibited) => {
                f.write_str("reject with icmpx type admin-prohibited")
            }
            Stmt::Masquerade => f.write_str("masquerade"),
            Stmt::FlowAdd(name) => write!(f, "flow add @{name}"),
            Stmt::Verdict(v) => write!(f, "{v}"),
        }
    }
}

macro_rules! names {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $(<$t>::$v => $s),* })
            }
        }
    };
}

names!(ChainKind { Filter => "filter", Nat => "nat" });
names!(Hook {
    Prerouting => "prerouting",
    Input => "input",
    Forward => "forward",
    Output => "output",
    Postrouting => "postrouting",
});
names!(Priority {
    Raw => "raw",
    Mangle => "mangle",
    DstNat => "dstnat",
    Filter => "filter",
    Security => "security",
    SrcNat => "srcnat",
});
names!(Verdict { Accept => "accept", Drop => "drop" });
names!(IpField { Saddr => "saddr", Daddr => "daddr" });
names!(L4 { Tcp => "tcp", Udp => "udp" });
names!(PortField { Sport => "sport", Dport => "dport" });
names!(Family { Ipv4 => "ipv4", Ipv6 => "ipv6" });
names!(CtState {
    Invalid => "invalid",
    Established => "established",
    Related => "related",
    New => "new",
});
names!(IcmpType { EchoReply => "echo-reply", EchoRequest => "echo-request" });
names!(Icmpv6Type {
    EchoRequest => "echo-request",
    EchoReply => "echo-reply",
    NdRouterSolicit => "nd-router-solicit",
    NdRouterAdvert => "nd-router-advert",
    NdNeighborSolicit => "nd-neighbor-solicit",
    NdNeighborAdvert => "nd-neighbor-advert",
});
names!(TcpFlag { Fin => "fin", Syn => "syn", Rst => "rst", Ack => "ack" });
names!(AddrType { Unicast => "unicast", Local => "local" });

impl fmt::Display for IpValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpValue::Addr(a) => write!(f, "{a}"),
            IpValue::Net(c) => write!(f, "{c}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_print_as_nft_reads_them() {
        let r = Rule::new(vec![
            Match::IfName {
                dir: Dir::In,
                op: Op::Eq,
                names: Values::Set(vec!["a".into(), "b".into()]),
            }
            .into(),
            Match::Ip {
                field: IpField::Saddr,
                op: Op::Ne,
                values: Values::Set(vec![
                    IpValue::Net(Cidr::v4([10, 0, 0, 0], 8)),
                    IpValue::Addr("0.0.0.0".parse().unwrap()),
                ]),
            }
            .into(),
            Match::TcpFlags {
                mask: vec![TcpFlag::Syn, TcpFlag::Rst],
                equals: vec![TcpFlag::Syn],
            }
            .into(),
            Stmt::Counter("x".into()).into(),
            Verdict::Drop.into(),
        ])
        .comment("why");
        assert_eq!(
            r.to_string(),
            "iifname { \"a\", \"b\" } ip saddr != { 10.0.0.0/8, 0.0.0.0 } \
             tcp flags & (syn | rst) == syn counter name \"x\" drop comment \"why\""
        );
    }
}
