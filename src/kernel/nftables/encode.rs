//! Ruleset (crate::core::ruleset) -> one nfnetlink batch: pure, no sockets.
//!
//! The encoding is the one `nft -f` produces for the same text (checked
//! against nft by tests/nft-test): the same expressions, the same protocol
//! dependencies (`ip saddr` in an inet table first matches `meta nfproto
//! ipv4`), an anonymous set of one element compiled to a comparison,
//! interval sets for prefixes with nft's element layout (sorted, adjacent
//! intervals merged, a leading end element at 0), and the set and rule
//! user data (key typeof, comment) nft stores so that `nft list` prints the
//! table as it does for its own.
//!
//! A form this encoder does not know how to write as nft would is an error
//! naming the rule, never an approximation.

use super::wire::*;
use crate::core::ruleset::{
    Chain, ChainKind, CtState, Dir, Family, Flowtable, Hook, IpField, IpValue, Item, Match, Op,
    PortField, Reject, Rule, Stmt, Table, TcpFlag, Verdict, L4,
};
use std::net::IpAddr;

/// A batch to send in one write, and what each of its messages does (by
/// sequence number), to name the one the kernel refuses.
#[derive(Debug, Clone)]
pub struct Batch {
    pub bytes: Vec<u8>,
    pub parts: Vec<(u32, String)>,
}

/// The batch end message: a netlink header and an nfgenmsg, no attributes.
const BATCH_END_LEN: usize = 20;

impl Batch {
    /// The batch without its end message: the kernel checks every message,
    /// answers each, then aborts the transaction, as `nft -c` does. Nothing
    /// is committed and no event is sent.
    pub fn dry_run(mut self) -> Batch {
        self.bytes.truncate(self.bytes.len() - BATCH_END_LEN);
        self
    }

    pub fn what(&self, seq: u32) -> Option<&str> {
        self.parts
            .iter()
            .find(|(s, _)| *s == seq)
            .map(|(_, w)| w.as_str())
    }
}

/// Looks up an interface index by name (for `iif`).
pub type IfIndex<'a> = &'a dyn Fn(&str) -> Option<u32>;

/// `table inet T; delete table inet T; table inet T { ... }` in one
/// transaction: the table is replaced atomically, other tables untouched.
pub fn replace(t: &Table, ifindex: IfIndex, seq: u32) -> Result<Batch, String> {
    let mut b = Builder::new(seq);
    b.table_add_delete(&t.name);
    b.msg(
        NFT_MSG_NEWTABLE,
        NLM_F_CREATE,
        format!("table inet {}", t.name),
        |a| {
            a.str(NFTA_TABLE_NAME, &t.name).be32(NFTA_TABLE_FLAGS, 0);
        },
    );
    // Before the chains: a rule's `flow add @NAME` needs its flowtable.
    for f in &t.flowtables {
        b.flowtable(&t.name, f)?;
    }
    for c in &t.chains {
        b.chain(&t.name, c);
    }
    for c in &t.counters {
        b.msg(NFT_MSG_NEWOBJ, NLM_F_CREATE, format!("counter {c}"), |a| {
            a.str(NFTA_OBJ_TABLE, &t.name)
                .str(NFTA_OBJ_NAME, c)
                .be32(NFTA_OBJ_TYPE, NFT_OBJECT_COUNTER)
                .nest(NFTA_OBJ_DATA, |a| {
                    a.be64(NFTA_COUNTER_BYTES, 0).be64(NFTA_COUNTER_PACKETS, 0);
                });
        });
    }
    for c in &t.chains {
        for (i, r) in c.rules.iter().enumerate() {
            let what = format!("chain {}, rule {} ({r})", c.name, i + 1);
            let enc = rule(t, r, ifindex).map_err(|e| format!("{what}: {e}"))?;
            b.rule(&t.name, &c.name, &what, enc);
        }
    }
    Ok(b.finish())
}

/// `table inet T; delete table inet T`: removes the table if it exists.
pub fn delete(table: &str, seq: u32) -> Batch {
    let mut b = Builder::new(seq);
    b.table_add_delete(table);
    b.finish()
}

// ---- expressions ----------------------------------------------------------

/// One nf_tables expression, as `nft --debug=netlink` shows them. Loads go
/// to register 1, comparisons read it.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Meta(u32),
    Cmp(CmpOp, Vec<u8>),
    Payload {
        base: u32,
        offset: u32,
        len: u32,
    },
    /// `reg1 = (reg1 & mask) ^ xor`; `op` says whether nft sent the
    /// (default, boolean) operation attribute.
    Bitwise {
        mask: Vec<u8>,
        xor: Vec<u8>,
        op: bool,
    },
    /// Lookup in the anonymous set of this rule at index `set`.
    Lookup {
        set: usize,
        inv: bool,
    },
    Ct(u32),
    Connlimit {
        count: u32,
        inv: bool,
    },
    FibSaddrType,
    Objref(String),
    Reject {
        ty: u32,
        code: u8,
    },
    Verdict(u32),
    /// Loads a value into register 1.
    Immediate(Vec<u8>),
    TcpOptLoad {
        kind: u8,
        offset: u32,
        len: u32,
    },
    TcpOptWrite {
        kind: u8,
        offset: u32,
        len: u32,
    },
    Masq,
    /// Offloads the connection to the named flowtable.
    FlowOffload(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq = 0,
    Neq = 1,
    Gt = 4,
}

// meta keys
const META_IIF: u32 = 4;
const META_IIFNAME: u32 = 6;
const META_OIFNAME: u32 = 7;
const META_NFPROTO: u32 = 15;
const META_L4PROTO: u32 = 16;
// payload bases
const BASE_NETWORK: u32 = 1;
const BASE_TRANSPORT: u32 = 2;
const CT_STATE: u32 = 0;
// reject types and codes
const REJECT_TCP_RST: u32 = 1;
const REJECT_ICMPX: u32 = 2;
const ICMPX_PORT_UNREACH: u8 = 1;
const ICMPX_ADMIN_PROHIBITED: u8 = 3;
const TCPOPT_MAXSEG: u8 = 2;
const IFNAMSIZ: usize = 16;
/// nft's limit on a rule comment.
const COMMENT_MAX: usize = 128;

/// An anonymous set a rule looks up in; written before the rule.
#[derive(Debug, Clone, PartialEq)]
pub struct AnonSet {
    pub flags: u32,
    /// nft's datatype id of the key (it prints elements by it).
    pub key_type: u32,
    pub key_len: u32,
    /// nft's set user data: key byte order, merge flag, key typeof.
    pub userdata: Vec<u8>,
    pub elements: Vec<Element>,
    /// NFTA_SET_DESC_SIZE as nft computes it.
    pub size: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub key: Vec<u8>,
    pub end: bool,
    /// The last interval reaches the top of the key space (no end element).
    pub open: bool,
}

/// A rule in nf_tables terms.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedRule {
    pub exprs: Vec<Expr>,
    pub sets: Vec<AnonSet>,
    pub userdata: Vec<u8>,
}

/// What earlier parts of the rule established, as nft tracks it to add
/// protocol dependencies only where needed.
#[derive(Default)]
struct Ctx {
    net: Option<Family>,
    l4: Option<u8>,
}

struct RuleEnc<'a> {
    table: &'a Table,
    ifindex: IfIndex<'a>,
    ctx: Ctx,
    exprs: Vec<Expr>,
    /// Where each statement (a match, a dependency, a statement) starts in
    /// `exprs`, and whether nft would merge it with an adjacent one.
    groups: Vec<(usize, Merge)>,
    sets: Vec<AnonSet>,
}

/// nft merges matches of adjacent payload fields against constants
/// (`udp sport 67 udp dport 68`) into one load and one comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Merge {
    No,
    /// A payload field compared (== or !=) with a constant.
    Field,
    /// A statement (counter, verdict, ...), not a match.
    Statement,
}

pub fn rule(table: &Table, r: &Rule, ifindex: IfIndex) -> Result<EncodedRule, String> {
    let mut e = RuleEnc {
        table,
        ifindex,
        ctx: Ctx::default(),
        exprs: Vec::new(),
        groups: Vec::new(),
        sets: Vec::new(),
    };
    for item in &r.items {
        e.begin();
        match item {
            Item::Match(m) => e.matches(m)?,
            Item::Stmt(s) => {
                e.mark(Merge::Statement);
                e.stmt(s)?
            }
        }
    }
    let exprs = merge_payloads(&e.exprs, &e.groups)?;
    let userdata = match &r.comment {
        None => Vec::new(),
        Some(c) => {
            if c.len() > COMMENT_MAX {
                return Err(format!(
                    "comment longer than {COMMENT_MAX} bytes (nft's limit)"
                ));
            }
            if c.contains('\0') || c.contains('"') {
                return Err("comment holds a NUL or a quote".into());
            }
            // NFTNL_UDATA_RULE_COMMENT: type 0, length with the NUL.
            let mut u = vec![0, (c.len() + 1) as u8];
            u.extend_from_slice(c.as_bytes());
            u.push(0);
            u
        }
    };
    Ok(EncodedRule {
        exprs,
        sets: e.sets,
        userdata,
    })
}

fn family_number(f: Family) -> u8 {
    match f {
        Family::Ipv4 => 2,  // NFPROTO_IPV4
        Family::Ipv6 => 10, // NFPROTO_IPV6
    }
}

fn ifname_key(name: &str) -> Result<Vec<u8>, String> {
    if name.is_empty() || name.len() >= IFNAMSIZ || name.contains(['\0', '*', '"']) {
        return Err(format!("`{name}` is not an interface name"));
    }
    let mut k = name.as_bytes().to_vec();
    k.resize(IFNAMSIZ, 0);
    Ok(k)
}

// nft datatype ids (enum datatypes) and set user data (libnftnl udata).
const TYPE_IPADDR: u32 = 7;
const TYPE_INET_SERVICE: u32 = 13;
const TYPE_ICMP_TYPE: u32 = 14;
const TYPE_ICMP6_TYPE: u32 = 29;
const TYPE_IFNAME: u32 = 41;
const UDATA_SET_KEYBYTEORDER: u8 = 0;
const UDATA_SET_MERGE_ELEMENTS: u8 = 2;
const UDATA_SET_KEY_TYPEOF: u8 = 3;
const UDATA_TYPEOF_EXPR: u8 = 0;
const UDATA_TYPEOF_DATA: u8 = 1;
const UDATA_SET_ELEM_FLAGS: u8 = 1;
const UDATA_SET_ELEM_F_INTERVAL_OPEN: u32 = 1;
const BYTEORDER_HOST: u32 = 1;
const BYTEORDER_BIG: u32 = 2;
const EXPR_PAYLOAD: u32 = 7;
const EXPR_META: u32 = 9;
// nft's protocol descriptions (enum proto_desc_id) and their fields.
const DESC_ICMP: u32 = 4;
const DESC_UDP: u32 = 6;
const DESC_TCP: u32 = 8;
const DESC_IP: u32 = 12;
const DESC_ICMPV6: u32 = 14;

fn udata_u32(out: &mut Vec<u8>, ty: u8, v: u32) {
    out.extend_from_slice(&[ty, 4]);
    out.extend_from_slice(&v.to_ne_bytes());
}

fn udata_nest(out: &mut Vec<u8>, ty: u8, inner: &[u8]) {
    out.extend_from_slice(&[ty, inner.len() as u8]);
    out.extend_from_slice(inner);
}

/// The key typeof of a set whose key is a meta expression.
fn typeof_meta(key: u32) -> Vec<u8> {
    let mut data = Vec::new();
    udata_u32(&mut data, 0, key); // NFTNL_UDATA_META_KEY
    let mut t = Vec::new();
    udata_u32(&mut t, UDATA_TYPEOF_EXPR, EXPR_META);
    udata_nest(&mut t, UDATA_TYPEOF_DATA, &data);
    t
}

/// The key typeof of a set whose key is a payload field (nft's protocol
/// description id and field index).
fn typeof_payload(desc: u32, field: u32) -> Vec<u8> {
    let mut data = Vec::new();
    udata_u32(&mut data, 0, desc); // NFTNL_UDATA_SET_KEY_PAYLOAD_DESC
    udata_u32(&mut data, 1, field); // NFTNL_UDATA_SET_KEY_PAYLOAD_TYPE
    let mut t = Vec::new();
    udata_u32(&mut t, UDATA_TYPEOF_EXPR, EXPR_PAYLOAD);
    udata_nest(&mut t, UDATA_TYPEOF_DATA, &data);
    t
}

fn set_userdata(byteorder: u32, merge: bool, typeof_: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    udata_u32(&mut u, UDATA_SET_KEYBYTEORDER, byteorder);
    if merge {
        udata_u32(&mut u, UDATA_SET_MERGE_ELEMENTS, 1);
    }
    udata_nest(&mut u, UDATA_SET_KEY_TYPEOF, typeof_);
    u
}

/// A hash set of plain values, in the order given (duplicates refused).
fn hash_set(
    key_type: u32,
    key_len: u32,
    userdata: Vec<u8>,
    keys: Vec<Vec<u8>>,
) -> Result<AnonSet, String> {
    for (i, k) in keys.iter().enumerate() {
        if keys[..i].contains(k) {
            return Err("the same element twice in a set".into());
        }
    }
    Ok(AnonSet {
        flags: NFT_SET_ANONYMOUS | NFT_SET_CONSTANT,
        key_type,
        key_len,
        userdata,
        size: keys.len() as u32,
        elements: keys
            .into_iter()
            .map(|key| Element {
                key,
                end: false,
                open: false,
            })
            .collect(),
    })
}

/// IPv4 start and (exclusive) end of an address or prefix.
fn v4_range(v: &IpValue) -> Result<(u32, u64), String> {
    let (addr, len) = match v {
        IpValue::Addr(IpAddr::V4(a)) => (u32::from(*a), 32),
        IpValue::Net(c) => match c.addr {
            IpAddr::V4(a) => {
                if !c.is_network() {
                    return Err(format!("{c} has host bits set"));
                }
                (u32::from(a), c.len)
            }
            IpAddr::V6(_) => return Err(format!("`ip` match on the IPv6 prefix {c}")),
        },
        IpValue::Addr(a) => return Err(format!("`ip` match on the IPv6 address {a}")),
    };
    Ok((addr, u64::from(addr) + (1u64 << (32 - len))))
}

/// An interval set as nft builds it for an anonymous set of prefixes:
/// sorted, overlapping or adjacent intervals merged, each interval a start
/// element and an end element (its first address past), a leading end
/// element at 0 when the first interval starts above it.
fn interval_set(values: &[IpValue], field: u32) -> Result<AnonSet, String> {
    let mut ranges = values.iter().map(v4_range).collect::<Result<Vec<_>, _>>()?;
    ranges.sort();
    let mut merged: Vec<(u32, u64)> = Vec::new();
    for (start, end) in ranges {
        match merged.last_mut() {
            Some(last) if u64::from(start) <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    let mut elements = Vec::new();
    let mut size = 0;
    if merged.first().is_some_and(|r| r.0 != 0) {
        elements.push(Element {
            key: vec![0; 4],
            end: true,
            open: false,
        });
        size += 1;
    }
    for (start, end) in merged {
        let open = end > u64::from(u32::MAX);
        elements.push(Element {
            key: start.to_be_bytes().to_vec(),
            end: false,
            open,
        });
        if !open {
            elements.push(Element {
                key: (end as u32).to_be_bytes().to_vec(),
                end: true,
                open: false,
            });
        }
        size += 2;
    }
    Ok(AnonSet {
        flags: NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | NFT_SET_INTERVAL,
        key_type: TYPE_IPADDR,
        key_len: 4,
        userdata: set_userdata(BYTEORDER_BIG, true, &typeof_payload(DESC_IP, field)),
        elements,
        size,
    })
}

impl RuleEnc<'_> {
    fn push(&mut self, e: Expr) {
        self.exprs.push(e);
    }

    /// Starts the next statement.
    fn begin(&mut self) {
        self.groups.push((self.exprs.len(), Merge::No));
    }

    fn mark(&mut self, m: Merge) {
        if let Some(g) = self.groups.last_mut() {
            g.1 = m;
        }
    }

    fn add_set(&mut self, s: AnonSet, inv: bool) {
        self.sets.push(s);
        self.push(Expr::Lookup {
            set: self.sets.len() - 1,
            inv,
        });
    }

    fn need_net(&mut self, f: Family) -> Result<(), String> {
        match self.ctx.net {
            Some(have) if have == f => Ok(()),
            Some(have) => Err(format!("conflicting protocols: {have} then {f}")),
            None => {
                self.begin();
                self.push(Expr::Meta(META_NFPROTO));
                self.push(Expr::Cmp(CmpOp::Eq, vec![family_number(f)]));
                self.ctx.net = Some(f);
                self.begin();
                Ok(())
            }
        }
    }

    fn need_l4(&mut self, proto: u8) -> Result<(), String> {
        match self.ctx.l4 {
            Some(have) if have == proto => Ok(()),
            Some(have) => Err(format!(
                "conflicting protocols: {have} then {proto} (IP protocol numbers)"
            )),
            None => {
                self.begin();
                self.push(Expr::Meta(META_L4PROTO));
                self.push(Expr::Cmp(CmpOp::Eq, vec![proto]));
                self.ctx.l4 = Some(proto);
                self.begin();
                Ok(())
            }
        }
    }

    fn cmp_op(op: Op) -> CmpOp {
        match op {
            Op::Eq => CmpOp::Eq,
            Op::Ne => CmpOp::Neq,
        }
    }

    /// One match expression: each kind is written by a method of its own.
    fn matches(&mut self, m: &Match) -> Result<(), String> {
        match m {
            Match::Iif(name) => self.iif(name)?,
            Match::IfName { dir, op, names } => self.ifname(*dir, *op, names.as_slice())?,
            Match::Ip { field, op, values } => self.ip(*field, *op, values.as_slice())?,
            Match::Port {
                proto,
                field,
                ports,
            } => self.port(*proto, *field, ports.as_slice())?,
            Match::IcmpType(types) => {
                self.need_net(Family::Ipv4)?;
                self.need_l4(1)?;
                self.type_byte(
                    types.as_slice().iter().map(|t| t.number()).collect(),
                    TYPE_ICMP_TYPE,
                    DESC_ICMP,
                )?;
            }
            Match::Icmpv6Type(types) => {
                self.need_net(Family::Ipv6)?;
                self.need_l4(58)?;
                self.type_byte(
                    types.as_slice().iter().map(|t| t.number()).collect(),
                    TYPE_ICMP6_TYPE,
                    DESC_ICMPV6,
                )?;
            }
            Match::Ip6Hoplimit(h) => self.ip6_hoplimit(*h)?,
            Match::L4proto(p) => self.l4proto(*p)?,
            Match::Nfproto(f) => self.nfproto(*f)?,
            Match::CtState(states) => self.ct_state(states)?,
            Match::CtCountOver(n) => self.push(Expr::Connlimit {
                count: *n,
                inv: true,
            }),
            Match::FibSaddrType { op, ty } => {
                self.push(Expr::FibSaddrType);
                self.push(Expr::Cmp(
                    Self::cmp_op(*op),
                    ty.number().to_ne_bytes().to_vec(),
                ));
            }
            Match::TcpFlags { mask, equals } => self.tcp_flags(mask, equals)?,
            Match::TcpMssAbove(n) => self.tcp_mss_above(*n)?,
        }
        Ok(())
    }

    /// `iif "lo"`: the interface's index, looked up now.
    fn iif(&mut self, name: &str) -> Result<(), String> {
        let index =
            (self.ifindex)(name).ok_or_else(|| format!("iif \"{name}\": no such interface"))?;
        self.push(Expr::Meta(META_IIF));
        self.push(Expr::Cmp(CmpOp::Eq, index.to_ne_bytes().to_vec()));
        Ok(())
    }

    /// `iifname` / `oifname`: one name compared, several looked up in a set.
    fn ifname(&mut self, dir: Dir, op: Op, names: &[String]) -> Result<(), String> {
        let key = match dir {
            Dir::In => META_IIFNAME,
            Dir::Out => META_OIFNAME,
        };
        self.push(Expr::Meta(key));
        match names {
            [one] => self.push(Expr::Cmp(Self::cmp_op(op), ifname_key(one)?)),
            [] => return Err("empty set".into()),
            many => {
                let keys = many
                    .iter()
                    .map(|n| ifname_key(n))
                    .collect::<Result<_, _>>()?;
                let typeof_ = typeof_meta(key);
                let ud = set_userdata(BYTEORDER_HOST, false, &typeof_);
                let set = hash_set(TYPE_IFNAME, IFNAMSIZ as u32, ud, keys)?;
                self.add_set(set, op == Op::Ne);
            }
        }
        Ok(())
    }

    /// `ip saddr` / `ip daddr`: one value compared; several in a hash set,
    /// or in an interval set when any is a prefix.
    fn ip(&mut self, field: IpField, op: Op, values: &[IpValue]) -> Result<(), String> {
        self.need_net(Family::Ipv4)?;
        let (offset, field_id) = match field {
            IpField::Saddr => (12, 11), // IPHDR_SADDR
            IpField::Daddr => (16, 12), // IPHDR_DADDR
        };
        match values {
            [one] => self.ip_value(offset, Self::cmp_op(op), one)?,
            [] => return Err("empty set".into()),
            many => {
                self.push(Expr::Payload {
                    base: BASE_NETWORK,
                    offset,
                    len: 4,
                });
                let set = if many.iter().any(|v| matches!(v, IpValue::Net(_))) {
                    interval_set(many, field_id)?
                } else {
                    let keys = many
                        .iter()
                        .map(|v| v4_range(v).map(|r| r.0.to_be_bytes().to_vec()))
                        .collect::<Result<_, _>>()?;
                    let ud = set_userdata(BYTEORDER_BIG, false, &typeof_payload(DESC_IP, field_id));
                    hash_set(TYPE_IPADDR, 4, ud, keys)?
                };
                self.add_set(set, op == Op::Ne);
            }
        }
        Ok(())
    }

    /// `tcp dport` / `udp sport`: the port in the transport header.
    fn port(&mut self, proto: L4, field: PortField, ports: &[u16]) -> Result<(), String> {
        self.need_l4(proto.number())?;
        let (offset, field_id) = match field {
            PortField::Sport => (0, 1),
            PortField::Dport => (2, 2),
        };
        let desc = match proto {
            L4::Tcp => DESC_TCP,
            L4::Udp => DESC_UDP,
        };
        self.push(Expr::Payload {
            base: BASE_TRANSPORT,
            offset,
            len: 2,
        });
        let keys: Vec<Vec<u8>> = ports.iter().map(|p| p.to_be_bytes().to_vec()).collect();
        let ud = set_userdata(BYTEORDER_BIG, false, &typeof_payload(desc, field_id));
        self.values(keys, TYPE_INET_SERVICE, 2, ud)
    }

    /// `ip6 hoplimit N`: the eighth byte of the IPv6 header.
    fn ip6_hoplimit(&mut self, h: u8) -> Result<(), String> {
        self.need_net(Family::Ipv6)?;
        self.push(Expr::Payload {
            base: BASE_NETWORK,
            offset: 7,
            len: 1,
        });
        self.push(Expr::Cmp(CmpOp::Eq, vec![h]));
        self.mark(Merge::Field);
        Ok(())
    }

    /// `meta l4proto P`: refused after a match on another transport protocol.
    fn l4proto(&mut self, p: L4) -> Result<(), String> {
        if self.ctx.l4.is_some_and(|have| have != p.number()) {
            return Err(format!("meta l4proto {p} after another transport protocol"));
        }
        self.push(Expr::Meta(META_L4PROTO));
        self.push(Expr::Cmp(CmpOp::Eq, vec![p.number()]));
        self.ctx.l4 = Some(p.number());
        Ok(())
    }

    /// `meta nfproto F`: refused after a match on another network protocol.
    fn nfproto(&mut self, f: Family) -> Result<(), String> {
        if self.ctx.net.is_some_and(|have| have != f) {
            return Err(format!("meta nfproto {f} after another network protocol"));
        }
        self.push(Expr::Meta(META_NFPROTO));
        self.push(Expr::Cmp(CmpOp::Eq, vec![family_number(f)]));
        self.ctx.net = Some(f);
        Ok(())
    }

    /// `ct state a,b`: any of the states' bits set.
    fn ct_state(&mut self, states: &[CtState]) -> Result<(), String> {
        if states.is_empty() {
            return Err("ct state without a state".into());
        }
        let bits = states.iter().fold(0u32, |b, s| b | s.bit());
        self.push(Expr::Ct(CT_STATE));
        self.push(Expr::Bitwise {
            mask: bits.to_ne_bytes().to_vec(),
            xor: vec![0; 4],
            op: false,
        });
        self.push(Expr::Cmp(CmpOp::Neq, vec![0; 4]));
        Ok(())
    }

    /// `tcp flags & (mask) == equals`: the flags byte, masked then compared.
    fn tcp_flags(&mut self, mask: &[TcpFlag], equals: &[TcpFlag]) -> Result<(), String> {
        self.need_l4(L4::Tcp.number())?;
        let bits = |f: &[TcpFlag]| f.iter().fold(0u8, |b, x| b | x.bit());
        let (mask, equals) = (bits(mask), bits(equals));
        if equals & !mask != 0 {
            return Err("tcp flags: compared flags outside the mask".into());
        }
        self.push(Expr::Payload {
            base: BASE_TRANSPORT,
            offset: 13,
            len: 1,
        });
        self.push(Expr::Bitwise {
            mask: vec![mask],
            xor: vec![0],
            op: true,
        });
        self.push(Expr::Cmp(CmpOp::Eq, vec![equals]));
        Ok(())
    }

    /// `tcp option maxseg size > N`.
    fn tcp_mss_above(&mut self, n: u32) -> Result<(), String> {
        let n = mss(n)?;
        self.push(Expr::TcpOptLoad {
            kind: TCPOPT_MAXSEG,
            offset: 2,
            len: 2,
        });
        self.push(Expr::Cmp(CmpOp::Gt, n.to_be_bytes().to_vec()));
        Ok(())
    }

    /// A comparison with one value, or a lookup in a hash set of several.
    fn values(
        &mut self,
        keys: Vec<Vec<u8>>,
        key_type: u32,
        key_len: u32,
        ud: Vec<u8>,
    ) -> Result<(), String> {
        match keys.len() {
            0 => Err("empty set".into()),
            1 => {
                self.push(Expr::Cmp(CmpOp::Eq, keys.into_iter().next().unwrap()));
                self.mark(Merge::Field);
                Ok(())
            }
            _ => {
                let set = hash_set(key_type, key_len, ud, keys)?;
                self.add_set(set, false);
                Ok(())
            }
        }
    }

    /// `icmp type` / `icmpv6 type`: the first byte of the ICMP header.
    fn type_byte(&mut self, types: Vec<u8>, key_type: u32, desc: u32) -> Result<(), String> {
        self.push(Expr::Payload {
            base: BASE_TRANSPORT,
            offset: 0,
            len: 1,
        });
        let keys = types.into_iter().map(|t| vec![t]).collect();
        let ud = set_userdata(BYTEORDER_BIG, false, &typeof_payload(desc, 1));
        self.values(keys, key_type, 1, ud)
    }

    /// `ip saddr 10.0.0.1`, `ip saddr != 10.0.0.0/24`: a prefix on whole
    /// bytes loads only those bytes; any other length masks all four.
    fn ip_value(&mut self, offset: u32, op: CmpOp, v: &IpValue) -> Result<(), String> {
        let (start, end) = v4_range(v)?;
        let len = 32 - (end - u64::from(start)).trailing_zeros();
        let addr = start.to_be_bytes();
        if len % 8 == 0 && len > 0 {
            let bytes = len / 8;
            self.push(Expr::Payload {
                base: BASE_NETWORK,
                offset,
                len: bytes,
            });
            self.push(Expr::Cmp(op, addr[..bytes as usize].to_vec()));
            if let IpValue::Addr(_) = v {
                // A prefix is not a constant to nft, even a /32 (which
                // could not merge anyway: 4 bytes are the limit).
                self.mark(Merge::Field);
            }
        } else {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            self.push(Expr::Payload {
                base: BASE_NETWORK,
                offset,
                len: 4,
            });
            self.push(Expr::Bitwise {
                mask: mask.to_be_bytes().to_vec(),
                xor: vec![0; 4],
                op: false,
            });
            self.push(Expr::Cmp(op, addr.to_vec()));
        }
        Ok(())
    }

    fn stmt(&mut self, s: &Stmt) -> Result<(), String> {
        match s {
            Stmt::Counter(name) => {
                if !self.table.counters.contains(name) {
                    return Err(format!("counter \"{name}\" is not a counter of the table"));
                }
                self.push(Expr::Objref(name.clone()));
            }
            Stmt::SetTcpMss(n) => {
                let n = mss(*n)?;
                self.push(Expr::Immediate(n.to_be_bytes().to_vec()));
                self.push(Expr::TcpOptWrite {
                    kind: TCPOPT_MAXSEG,
                    offset: 2,
                    len: 2,
                });
            }
            Stmt::Reject(Reject::PortUnreachable) => {
                if self.ctx.net.is_some() {
                    // nft then writes a family-specific ICMP reject: not
                    // needed by Portal, so not written here.
                    return Err("plain `reject` after an IPv4/IPv6 match".into());
                }
                self.push(Expr::Reject {
                    ty: REJECT_ICMPX,
                    code: ICMPX_PORT_UNREACH,
                });
            }
            Stmt::Reject(Reject::TcpReset) => {
                self.need_l4(L4::Tcp.number())?;
                self.push(Expr::Reject {
                    ty: REJECT_TCP_RST,
                    code: 0,
                });
            }
            Stmt::Reject(Reject::AdminProhibited) => self.push(Expr::Reject {
                ty: REJECT_ICMPX,
                code: ICMPX_ADMIN_PROHIBITED,
            }),
            Stmt::Masquerade => self.push(Expr::Masq),
            Stmt::FlowAdd(name) => {
                if !self.table.flowtables.iter().any(|f| &f.name == name) {
                    return Err(format!(
                        "flowtable \"{name}\" is not a flowtable of the table"
                    ));
                }
                self.push(Expr::FlowOffload(name.clone()));
            }
            Stmt::Verdict(v) => self.push(Expr::Verdict(match v {
                Verdict::Accept => NF_ACCEPT,
                Verdict::Drop => NF_DROP,
            })),
        }
        Ok(())
    }
}

/// nft's payload merge (as nft 1.0 does it): the rule's matches of a
/// payload field against a constant (`udp sport 67 udp dport 68`), taken
/// in header order, merge with the next field when it is adjacent (same
/// header, right after), has the same operator, and the two still fit the
/// kernel's fast 4-byte load. The merged match takes the place of the
/// first field's; other matches in between keep theirs.
fn merge_payloads(exprs: &[Expr], groups: &[(usize, Merge)]) -> Result<Vec<Expr>, String> {
    let mut stmts: Vec<(Vec<Expr>, Merge)> = Vec::new();
    for (i, (start, m)) in groups.iter().enumerate() {
        let end = groups.get(i + 1).map_or(exprs.len(), |g| g.0);
        if end > *start {
            stmts.push((exprs[*start..end].to_vec(), *m));
        }
    }
    // (statement index, base, offset, len, op, value)
    let mut fields: Vec<(usize, u32, u32, u32, CmpOp, Vec<u8>)> = Vec::new();
    let mut after_statement = false;
    for (i, (s, m)) in stmts.iter().enumerate() {
        match (m, s.as_slice()) {
            (Merge::Statement, _) => after_statement = true,
            (Merge::Field, [Expr::Payload { base, offset, len }, Expr::Cmp(op, data)]) => {
                if after_statement {
                    return Err(
                        "a field match after a statement: nft's merge of it is not known here"
                            .into(),
                    );
                }
                fields.push((i, *base, *offset, *len, *op, data.clone()));
            }
            _ => {}
        }
    }
    fields.sort_by_key(|f| f.2);
    let mut removed = vec![false; stmts.len()];
    let mut last = 0;
    for j in 1..fields.len() {
        let (a, b) = (&fields[last], &fields[j]);
        if a.1 == b.1 && a.2 + a.3 == b.2 && a.4 == b.4 && a.3 + b.3 <= 4 {
            let (len, mut data) = (b.3, b.5.clone());
            let (at, base, offset, op) = (a.0, a.1, a.2, a.4);
            removed[b.0] = true;
            let a = &mut fields[last];
            a.3 += len;
            a.5.append(&mut data);
            stmts[at].0 = vec![
                Expr::Payload {
                    base,
                    offset,
                    len: a.3,
                },
                Expr::Cmp(op, a.5.clone()),
            ];
        } else {
            last = j;
        }
    }
    Ok(stmts
        .into_iter()
        .zip(removed)
        .filter(|(_, gone)| !gone)
        .flat_map(|((s, _), _)| s)
        .collect())
}

fn mss(n: u32) -> Result<u16, String> {
    u16::try_from(n).map_err(|_| format!("maxseg size {n} does not fit 16 bits"))
}

// ---- messages -----------------------------------------------------------------

struct Builder {
    bytes: Vec<u8>,
    seq: u32,
    parts: Vec<(u32, String)>,
    set_id: u32,
}

impl Builder {
    fn new(seq: u32) -> Builder {
        let mut bytes = Vec::new();
        message(
            &mut bytes,
            NFNL_MSG_BATCH_BEGIN,
            0,
            seq,
            NFPROTO_UNSPEC,
            NFNL_SUBSYS_NFTABLES,
            |_| {},
        );
        Builder {
            bytes,
            seq,
            parts: Vec::new(),
            set_id: 0,
        }
    }

    /// One acknowledged nf_tables message of the inet family.
    fn msg(&mut self, ty: u16, flags: u16, what: String, f: impl FnOnce(&mut Attrs)) {
        self.seq += 1;
        message(
            &mut self.bytes,
            nft_type(ty),
            flags | NLM_F_ACK,
            self.seq,
            NFPROTO_INET,
            0,
            f,
        );
        self.parts.push((self.seq, what));
    }

    fn finish(mut self) -> Batch {
        self.seq += 1;
        message(
            &mut self.bytes,
            NFNL_MSG_BATCH_END,
            0,
            self.seq,
            NFPROTO_UNSPEC,
            NFNL_SUBSYS_NFTABLES,
            |_| {},
        );
        Batch {
            bytes: self.bytes,
            parts: self.parts,
        }
    }

    /// `flowtable NAME { hook ingress priority filter; devices = { ... } }`.
    fn flowtable(&mut self, table: &str, f: &Flowtable) -> Result<(), String> {
        for d in &f.devices {
            ifname_key(d).map_err(|e| format!("flowtable {}: {e}", f.name))?;
        }
        self.msg(
            NFT_MSG_NEWFLOWTABLE,
            NLM_F_CREATE,
            format!("flowtable {} (devices {})", f.name, f.devices.join(", ")),
            |a| {
                a.str(NFTA_FLOWTABLE_TABLE, table)
                    .str(NFTA_FLOWTABLE_NAME, &f.name)
                    .nest(NFTA_FLOWTABLE_HOOK, |a| {
                        a.be32(NFTA_FLOWTABLE_HOOK_NUM, NF_NETDEV_INGRESS)
                            .be32(NFTA_FLOWTABLE_HOOK_PRIORITY, 0)
                            .nest(NFTA_FLOWTABLE_HOOK_DEVS, |a| {
                                for d in &f.devices {
                                    a.str(NFTA_DEVICE_NAME, d);
                                }
                            });
                    })
                    // Software only (no NFT_FLOWTABLE_HW_OFFLOAD), as nft writes it.
                    .be32(NFTA_FLOWTABLE_FLAGS, 0);
            },
        );
        Ok(())
    }

    /// `table inet T` then `delete table inet T`: deletes it whether or
    /// not it exists.
    fn table_add_delete(&mut self, name: &str) {
        self.msg(
            NFT_MSG_NEWTABLE,
            NLM_F_CREATE,
            format!("table inet {name}"),
            |a| {
                a.str(NFTA_TABLE_NAME, name).be32(NFTA_TABLE_FLAGS, 0);
            },
        );
        self.msg(
            NFT_MSG_DELTABLE,
            0,
            format!("delete table inet {name}"),
            |a| {
                a.str(NFTA_TABLE_NAME, name);
            },
        );
    }

    fn chain(&mut self, table: &str, c: &Chain) {
        let hooknum = match c.hook {
            Hook::Prerouting => 0,
            Hook::Input => 1,
            Hook::Forward => 2,
            Hook::Output => 3,
            Hook::Postrouting => 4,
        };
        let kind = match c.kind {
            ChainKind::Filter => "filter",
            ChainKind::Nat => "nat",
        };
        let policy = match c.policy {
            Verdict::Accept => NF_ACCEPT,
            Verdict::Drop => NF_DROP,
        };
        self.msg(
            NFT_MSG_NEWCHAIN,
            NLM_F_CREATE,
            format!("chain {} ({kind} hook {})", c.name, c.hook),
            |a| {
                a.str(NFTA_CHAIN_TABLE, table)
                    .str(NFTA_CHAIN_NAME, &c.name)
                    .str(NFTA_CHAIN_TYPE, kind)
                    .be32(NFTA_CHAIN_POLICY, policy)
                    .nest(NFTA_CHAIN_HOOK, |a| {
                        a.be32(NFTA_HOOK_HOOKNUM, hooknum)
                            .be32(NFTA_HOOK_PRIORITY, c.priority.value() as u32);
                    });
            },
        );
    }

    fn rule(&mut self, table: &str, chain: &str, what: &str, r: EncodedRule) {
        let mut ids = Vec::new();
        for s in &r.sets {
            self.set_id += 1;
            let id = self.set_id;
            ids.push(id);
            self.msg(
                NFT_MSG_NEWSET,
                NLM_F_CREATE,
                format!("the anonymous set of {what}"),
                |a| {
                    a.str(NFTA_SET_TABLE, table)
                        .str(NFTA_SET_NAME, "__set%d")
                        .be32(NFTA_SET_FLAGS, s.flags)
                        .be32(NFTA_SET_KEY_TYPE, s.key_type)
                        .be32(NFTA_SET_KEY_LEN, s.key_len)
                        .be32(NFTA_SET_ID, id)
                        .nest(NFTA_SET_DESC, |a| {
                            a.be32(NFTA_SET_DESC_SIZE, s.size);
                        })
                        .bytes(NFTA_SET_USERDATA, &s.userdata);
                },
            );
            self.msg(
                NFT_MSG_NEWSETELEM,
                NLM_F_CREATE,
                format!("the elements of the anonymous set of {what}"),
                |a| {
                    a.str(NFTA_SET_ELEM_LIST_TABLE, table)
                        .str(NFTA_SET_ELEM_LIST_SET, "__set%d")
                        .be32(NFTA_SET_ELEM_LIST_SET_ID, id)
                        .nest(NFTA_SET_ELEM_LIST_ELEMENTS, |a| {
                            for (i, e) in s.elements.iter().enumerate() {
                                a.nest(i as u16 + 1, |a| {
                                    if e.end {
                                        a.be32(NFTA_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
                                    }
                                    a.nest(NFTA_SET_ELEM_KEY, |a| {
                                        a.bytes(NFTA_DATA_VALUE, &e.key);
                                    });
                                    if e.open {
                                        let mut u = Vec::new();
                                        udata_u32(
                                            &mut u,
                                            UDATA_SET_ELEM_FLAGS,
                                            UDATA_SET_ELEM_F_INTERVAL_OPEN,
                                        );
                                        a.bytes(NFTA_SET_ELEM_USERDATA, &u);
                                    }
                                });
                            }
                        });
                },
            );
        }
        self.msg(
            NFT_MSG_NEWRULE,
            NLM_F_CREATE | NLM_F_APPEND,
            what.to_string(),
            |a| {
                a.str(NFTA_RULE_TABLE, table)
                    .str(NFTA_RULE_CHAIN, chain)
                    .nest(NFTA_RULE_EXPRESSIONS, |a| {
                        for e in &r.exprs {
                            write_expr(a, e, &ids);
                        }
                    });
                if !r.userdata.is_empty() {
                    a.bytes(NFTA_RULE_USERDATA, &r.userdata);
                }
            },
        );
    }
}

/// One expression as an NFTA_LIST_ELEM of NFTA_RULE_EXPRESSIONS, with the
/// attributes in the order nft writes them. `set_ids`: the batch ids of the
/// rule's anonymous sets.
fn write_expr(a: &mut Attrs, e: &Expr, set_ids: &[u32]) {
    a.nest(NFTA_LIST_ELEM, |a| {
        a.str(NFTA_EXPR_NAME, e.name())
            .nest(NFTA_EXPR_DATA, |a| expr_data(a, e, set_ids));
    });
}

impl Expr {
    /// The kernel's name of the expression type.
    pub fn name(&self) -> &'static str {
        match self {
            Expr::Meta(_) => "meta",
            Expr::Cmp(..) => "cmp",
            Expr::Payload { .. } => "payload",
            Expr::Bitwise { .. } => "bitwise",
            Expr::Lookup { .. } => "lookup",
            Expr::Ct(_) => "ct",
            Expr::Connlimit { .. } => "connlimit",
            Expr::FibSaddrType => "fib",
            Expr::Objref(_) => "objref",
            Expr::Reject { .. } => "reject",
            Expr::Verdict(_) | Expr::Immediate(_) => "immediate",
            Expr::TcpOptLoad { .. } | Expr::TcpOptWrite { .. } => "exthdr",
            Expr::Masq => "masq",
            Expr::FlowOffload(_) => "flow_offload",
        }
    }
}

fn expr_data(a: &mut Attrs, e: &Expr, set_ids: &[u32]) {
    match e {
        Expr::Meta(key) => {
            a.be32(2, *key).be32(1, NFT_REG_1); // KEY, DREG
        }
        Expr::Cmp(op, data) => {
            a.be32(1, NFT_REG_1).be32(2, *op as u32).nest(3, |a| {
                a.bytes(NFTA_DATA_VALUE, data);
            });
        }
        Expr::Payload { base, offset, len } => {
            a.be32(1, NFT_REG_1)
                .be32(2, *base)
                .be32(3, *offset)
                .be32(4, *len);
        }
        Expr::Bitwise { mask, xor, op } => {
            a.be32(1, NFT_REG_1).be32(2, NFT_REG_1);
            if *op {
                a.be32(6, 0); // NFT_BITWISE_BOOL
            }
            a.be32(3, mask.len() as u32)
                .nest(4, |a| {
                    a.bytes(NFTA_DATA_VALUE, mask);
                })
                .nest(5, |a| {
                    a.bytes(NFTA_DATA_VALUE, xor);
                });
        }
        Expr::Lookup { set, inv } => {
            a.be32(2, NFT_REG_1)
                .str(1, "__set%d")
                .be32(4, set_ids[*set]);
            if *inv {
                a.be32(5, 1); // NFT_LOOKUP_F_INV
            }
        }
        Expr::Ct(key) => {
            a.be32(2, *key).be32(1, NFT_REG_1);
        }
        Expr::Connlimit { count, inv } => {
            a.be32(1, *count).be32(2, u32::from(*inv));
        }
        Expr::FibSaddrType => {
            // FLAGS = NFTA_FIB_F_SADDR, RESULT = NFT_FIB_RESULT_ADDRTYPE
            a.be32(3, 1).be32(2, 3).be32(1, NFT_REG_1);
        }
        Expr::Objref(name) => {
            // nft writes the name without its NUL.
            a.be32(1, NFT_OBJECT_COUNTER).bytes(2, name.as_bytes());
        }
        Expr::Reject { ty, code } => {
            a.be32(1, *ty).u8(2, *code);
        }
        Expr::Verdict(code) => {
            a.be32(1, NFT_REG_VERDICT).nest(2, |a| {
                a.nest(NFTA_DATA_VERDICT, |a| {
                    a.be32(NFTA_VERDICT_CODE, *code);
                });
            });
        }
        Expr::Immediate(v) => {
            a.be32(1, NFT_REG_1).nest(2, |a| {
                a.bytes(NFTA_DATA_VALUE, v);
            });
        }
        Expr::TcpOptLoad { kind, offset, len } => {
            // DREG, TYPE, OFFSET, LEN, OP = NFT_EXTHDR_OP_TCPOPT, FLAGS
            a.be32(1, NFT_REG_1)
                .u8(2, *kind)
                .be32(3, *offset)
                .be32(4, *len)
                .be32(6, 1)
                .be32(5, 0);
        }
        Expr::TcpOptWrite { kind, offset, len } => {
            // SREG, TYPE, OFFSET, LEN, OP = NFT_EXTHDR_OP_TCPOPT
            a.be32(7, NFT_REG_1)
                .u8(2, *kind)
                .be32(3, *offset)
                .be32(4, *len)
                .be32(6, 1);
        }
        Expr::Masq => {}
        Expr::FlowOffload(name) => {
            a.str(NFTA_FLOW_TABLE_NAME, name);
        }
    }
}

#[cfg(test)]
mod tests;
