use super::*;
use crate::core::cidr::Cidr;
use crate::core::ruleset::{AddrType, CtState, Icmpv6Type, TcpFlag, Values};
use std::net::Ipv4Addr;

fn table(counters: &[&str]) -> Table {
    Table {
        name: "portal".into(),
        counters: counters.iter().map(|c| c.to_string()).collect(),
        flowtables: Vec::new(),
        chains: Vec::new(),
    }
}

fn lo(name: &str) -> Option<u32> {
    (name == "lo").then_some(1)
}

fn enc(r: Rule) -> EncodedRule {
    rule(&table(&["drop_spoof", "drop_input_lan"]), &r, &lo).unwrap()
}

fn iifname(n: &str) -> Item {
    Match::IfName {
        dir: Dir::In,
        op: Op::Eq,
        names: Values::One(n.into()),
    }
    .into()
}

fn name16(n: &str) -> Vec<u8> {
    let mut v = n.as_bytes().to_vec();
    v.resize(16, 0);
    v
}

fn net(a: [u8; 4], len: u8) -> IpValue {
    IpValue::Net(Cidr::v4(a, len))
}

/// `table inet portal; delete table inet portal`, byte by byte as checked
/// against `nft --debug=mnl` (plus NLM_F_ACK on the acknowledged messages).
#[test]
fn delete_batch_bytes() {
    let b = delete("portal", 1);
    #[rustfmt::skip]
    let want: Vec<u8> = [
        // batch begin: len 20, type 0x10, REQUEST, seq 1; nfgenmsg AF_UNSPEC, res_id 10 (BE)
        &[20, 0, 0, 0, 0x10, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10][..],
        // NEWTABLE (0x0a00), REQUEST|ACK|CREATE, seq 2; nfgenmsg NFPROTO_INET
        &[40, 0, 0, 0, 0, 10, 0x05, 0x04, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0],
        &[11, 0, 1, 0], b"portal\0\0",  // NFTA_TABLE_NAME, padded
        &[8, 0, 2, 0, 0, 0, 0, 0],       // NFTA_TABLE_FLAGS 0
        // DELTABLE (0x0a02), REQUEST|ACK, seq 3
        &[32, 0, 0, 0, 2, 10, 0x05, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0],
        &[11, 0, 1, 0], b"portal\0\0",
        // batch end: type 0x11, seq 4
        &[20, 0, 0, 0, 0x11, 0, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10],
    ]
    .concat();
    assert_eq!(b.bytes, want);
    assert_eq!(b.what(2), Some("table inet portal"));
    assert_eq!(b.what(3), Some("delete table inet portal"));
}

/// One expression's attributes, byte by byte: `cmp eq reg 1 "eth2"`.
#[test]
fn cmp_expression_bytes() {
    let mut buf = Vec::new();
    write_expr(
        &mut Attrs::new(&mut buf),
        &Expr::Cmp(CmpOp::Eq, name16("eth2")),
        &[],
    );
    #[rustfmt::skip]
    let want: Vec<u8> = [
        &[56, 0, 1, 0x80][..],              // NFTA_LIST_ELEM (nested): 4 + 8 + 44
        &[8, 0, 1, 0], b"cmp\0",            // NFTA_EXPR_NAME
        &[44, 0, 2, 0x80],                  // NFTA_EXPR_DATA (nested): 4 + 8 + 8 + 24
        &[8, 0, 1, 0, 0, 0, 0, 1],          // NFTA_CMP_SREG 1 (BE)
        &[8, 0, 2, 0, 0, 0, 0, 0],          // NFTA_CMP_OP eq
        &[24, 0, 3, 0x80],                  // NFTA_CMP_DATA (nested)
        &[20, 0, 1, 0], b"eth2", &[0; 12],  // NFTA_DATA_VALUE: IFNAMSIZ bytes
    ]
    .concat();
    assert_eq!(buf, want);
}

/// As `nft --debug=netlink` shows the golden site plan's first rule:
/// `iifname "eth2" ip saddr != { 192.168.20.0/24, 0.0.0.0 } counter name
/// "drop_spoof" drop comment "..."`.
#[test]
fn spoof_rule_as_nft_encodes_it() {
    let r = Rule::new(vec![
        iifname("eth2"),
        Match::Ip {
            field: IpField::Saddr,
            op: Op::Ne,
            values: Values::Set(vec![
                net([192, 168, 20, 0], 24),
                IpValue::Addr(Ipv4Addr::UNSPECIFIED.into()),
            ]),
        }
        .into(),
        Stmt::Counter("drop_spoof".into()).into(),
        Verdict::Drop.into(),
    ])
    .comment("lan guest: source outside its prefix");
    let e = enc(r);
    assert_eq!(
        e.exprs,
        vec![
            Expr::Meta(META_IIFNAME),
            Expr::Cmp(CmpOp::Eq, name16("eth2")),
            Expr::Meta(META_NFPROTO),
            Expr::Cmp(CmpOp::Eq, vec![2]),
            Expr::Payload {
                base: BASE_NETWORK,
                offset: 12,
                len: 4
            },
            Expr::Lookup { set: 0, inv: true },
            Expr::Objref("drop_spoof".into()),
            Expr::Verdict(NF_DROP),
        ]
    );
    let s = &e.sets[0];
    assert_eq!(s.flags, 7);
    assert_eq!((s.key_type, s.key_len, s.size), (7, 4, 4));
    let elems: Vec<(Vec<u8>, bool)> = s.elements.iter().map(|e| (e.key.clone(), e.end)).collect();
    assert_eq!(
        elems,
        vec![
            (vec![0, 0, 0, 0], false),
            (vec![0, 0, 0, 1], true),
            (vec![192, 168, 20, 0], false),
            (vec![192, 168, 21, 0], true),
        ]
    );
    // nft's user data: key byte order big endian, merge, typeof ip saddr.
    #[rustfmt::skip]
    let ud: Vec<u8> = [
        &[0, 4][..], &2u32.to_ne_bytes(),
        &[2, 4], &1u32.to_ne_bytes(),
        &[3, 20, 0, 4], &7u32.to_ne_bytes(), &[1, 12, 0, 4], &12u32.to_ne_bytes(), &[1, 4], &11u32.to_ne_bytes(),
    ]
    .concat();
    assert_eq!(s.userdata, ud);
    let mut comment = vec![0, 37];
    comment.extend_from_slice(b"lan guest: source outside its prefix\0");
    assert_eq!(e.userdata, comment);
}

#[test]
fn status_page_limit_as_nft_encodes_it() {
    let r = Rule::new(vec![
        Match::IfName {
            dir: Dir::In,
            op: Op::Eq,
            names: Values::Set(vec!["eth2".into(), "eth1".into()]),
        }
        .into(),
        Match::Port {
            proto: L4::Tcp,
            field: PortField::Dport,
            ports: Values::One(80),
        }
        .into(),
        Match::CtCountOver(64).into(),
        Stmt::Counter("drop_input_lan".into()).into(),
        Stmt::Reject(Reject::TcpReset).into(),
    ]);
    let e = enc(r);
    assert_eq!(
        e.exprs,
        vec![
            Expr::Meta(META_IIFNAME),
            Expr::Lookup { set: 0, inv: false },
            Expr::Meta(META_L4PROTO),
            Expr::Cmp(CmpOp::Eq, vec![6]),
            Expr::Payload {
                base: BASE_TRANSPORT,
                offset: 2,
                len: 2
            },
            Expr::Cmp(CmpOp::Eq, vec![0, 80]),
            Expr::Connlimit {
                count: 64,
                inv: true
            },
            Expr::Objref("drop_input_lan".into()),
            Expr::Reject { ty: 1, code: 0 },
        ]
    );
    let s = &e.sets[0];
    assert_eq!((s.flags, s.key_type, s.key_len, s.size), (3, 41, 16, 2));
    assert_eq!(s.elements[0].key, name16("eth2"));
    assert_eq!(s.elements[1].key, name16("eth1"));
    assert!(e.userdata.is_empty());
}

#[test]
fn icmpv6_types_with_their_dependencies_and_a_hop_limit() {
    // icmpv6 type { ... } ip6 hoplimit 255 accept
    let e = enc(Rule::new(vec![
        Match::Icmpv6Type(Values::Set(vec![
            Icmpv6Type::NdNeighborSolicit,
            Icmpv6Type::NdNeighborAdvert,
            Icmpv6Type::NdRouterAdvert,
        ]))
        .into(),
        Match::Ip6Hoplimit(255).into(),
        Verdict::Accept.into(),
    ]));
    assert_eq!(
        e.exprs[..4],
        [
            Expr::Meta(META_NFPROTO),
            Expr::Cmp(CmpOp::Eq, vec![10]),
            Expr::Meta(META_L4PROTO),
            Expr::Cmp(CmpOp::Eq, vec![58]),
        ]
    );
    assert_eq!(
        e.exprs[6..8],
        [
            Expr::Payload {
                base: BASE_NETWORK,
                offset: 7,
                len: 1
            },
            Expr::Cmp(CmpOp::Eq, vec![255]),
        ]
    );
    let keys: Vec<u8> = e.sets[0].elements.iter().map(|e| e.key[0]).collect();
    assert_eq!(keys, vec![135, 136, 134]);
}

#[test]
fn ct_state_fib_and_iif() {
    // ct state established,related / fib saddr type != local / iif "lo"
    let e = enc(Rule::new(vec![
        Match::Iif("lo".into()).into(),
        Match::CtState(vec![CtState::Established, CtState::Related]).into(),
        Match::FibSaddrType {
            op: Op::Ne,
            ty: AddrType::Local,
        }
        .into(),
    ]));
    assert_eq!(
        e.exprs,
        vec![
            Expr::Meta(META_IIF),
            Expr::Cmp(CmpOp::Eq, 1u32.to_ne_bytes().to_vec()),
            Expr::Ct(CT_STATE),
            Expr::Bitwise {
                mask: 6u32.to_ne_bytes().to_vec(),
                xor: vec![0; 4],
                op: false
            },
            Expr::Cmp(CmpOp::Neq, vec![0; 4]),
            Expr::FibSaddrType,
            Expr::Cmp(CmpOp::Neq, 2u32.to_ne_bytes().to_vec()),
        ]
    );
}

#[test]
fn the_mss_clamp_masks_flags_and_writes_the_option() {
    // The MSS clamp: meta nfproto ipv4 tcp flags & (syn | rst) == syn ...
    let e = enc(Rule::new(vec![
        Match::Nfproto(Family::Ipv4).into(),
        Match::TcpFlags {
            mask: vec![TcpFlag::Syn, TcpFlag::Rst],
            equals: vec![TcpFlag::Syn],
        }
        .into(),
        Match::TcpMssAbove(1240).into(),
        Stmt::SetTcpMss(1240).into(),
    ]));
    assert_eq!(
        e.exprs,
        vec![
            Expr::Meta(META_NFPROTO),
            Expr::Cmp(CmpOp::Eq, vec![2]),
            Expr::Meta(META_L4PROTO),
            Expr::Cmp(CmpOp::Eq, vec![6]),
            Expr::Payload {
                base: BASE_TRANSPORT,
                offset: 13,
                len: 1
            },
            Expr::Bitwise {
                mask: vec![6],
                xor: vec![0],
                op: true
            },
            Expr::Cmp(CmpOp::Eq, vec![2]),
            Expr::TcpOptLoad {
                kind: 2,
                offset: 2,
                len: 2
            },
            Expr::Cmp(CmpOp::Gt, vec![0x04, 0xd8]),
            Expr::Immediate(vec![0x04, 0xd8]),
            Expr::TcpOptWrite {
                kind: 2,
                offset: 2,
                len: 2
            },
        ]
    );
}

#[test]
fn prefixes_load_whole_bytes_or_mask() {
    let one = |v| {
        enc(Rule::new(vec![Match::Ip {
            field: IpField::Daddr,
            op: Op::Eq,
            values: Values::Set(vec![v]),
        }
        .into()]))
        .exprs[2..]
            .to_vec()
    };
    let payload = |len| Expr::Payload {
        base: BASE_NETWORK,
        offset: 16,
        len,
    };
    assert_eq!(
        one(net([10, 1, 0, 0], 16)),
        vec![payload(2), Expr::Cmp(CmpOp::Eq, vec![10, 1])]
    );
    assert_eq!(
        one(IpValue::Addr("10.1.2.3".parse().unwrap())),
        vec![payload(4), Expr::Cmp(CmpOp::Eq, vec![10, 1, 2, 3])]
    );
    assert_eq!(
        one(net([10, 0, 0, 0], 20)),
        vec![
            payload(4),
            Expr::Bitwise {
                mask: vec![255, 255, 240, 0],
                xor: vec![0; 4],
                op: false
            },
            Expr::Cmp(CmpOp::Eq, vec![10, 0, 0, 0]),
        ]
    );
    assert_eq!(
        one(net([0, 0, 0, 0], 0)),
        vec![
            payload(4),
            Expr::Bitwise {
                mask: vec![0; 4],
                xor: vec![0; 4],
                op: false
            },
            Expr::Cmp(CmpOp::Eq, vec![0; 4]),
        ]
    );
}

/// Property: the interval elements, read as the kernel reads them (a key
/// is in the set when the nearest element at or below it is a start),
/// hold exactly the addresses of the prefixes; elements strictly ascend.
#[test]
fn interval_sets_hold_exactly_their_prefixes() {
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..300 {
        let n = 1 + rnd() % 6;
        let prefixes: Vec<Cidr> = (0..n)
            .map(|_| {
                let len = (rnd() % 33) as u8;
                // Few distinct high bits, so that prefixes touch and nest.
                let a = ((rnd() % 4) as u32) << 30 | (rnd() as u32 & 0x00ff_ffff);
                Cidr::new(IpAddr::V4(a.into()), len).unwrap().network()
            })
            .collect();
        let values: Vec<IpValue> = prefixes.iter().map(|c| IpValue::Net(*c)).collect();
        let s = interval_set(&values, 11).unwrap();
        let keys: Vec<u32> = s
            .elements
            .iter()
            .map(|e| u32::from_be_bytes(e.key[..4].try_into().unwrap()))
            .collect();
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "{prefixes:?}: {keys:?}"
        );
        let in_set = |a: u32| {
            s.elements
                .iter()
                .zip(&keys)
                .rev()
                .find(|(_, k)| **k <= a)
                .is_some_and(|(e, _)| !e.end)
        };
        let mut probes: Vec<u32> = vec![0, u32::MAX];
        for &k in &keys {
            probes.extend([k, k.wrapping_sub(1), k.wrapping_add(1)]);
        }
        probes.extend((0..50).map(|_| rnd() as u32));
        for a in probes {
            let want = prefixes.iter().any(|c| c.contains(&IpAddr::V4(a.into())));
            assert_eq!(in_set(a), want, "{prefixes:?} at {}", Ipv4Addr::from(a));
        }
    }
}

#[test]
fn what_nft_would_refuse_is_an_error() {
    let t = table(&["drop_spoof"]);
    let err = |items: Vec<Item>| rule(&t, &Rule::new(items), &lo).unwrap_err();
    assert!(err(vec![Stmt::Counter("nope".into()).into()]).contains("nope"));
    assert!(err(vec![
        Match::Nfproto(Family::Ipv6).into(),
        Match::Ip {
            field: IpField::Saddr,
            op: Op::Eq,
            values: Values::One(net([10, 0, 0, 0], 8))
        }
        .into(),
    ])
    .contains("conflicting"));
    assert!(err(vec![Match::Iif("eth9".into()).into()]).contains("eth9"));
    assert!(err(vec![iifname("a-name-too-long-for-linux")]).contains("interface name"));
    let long = Rule::new(vec![Verdict::Accept.into()]).comment("x".repeat(129));
    assert!(rule(&t, &long, &lo).is_err());
}

/// The golden site ruleset encodes, and every message frames correctly:
/// one acknowledged message per part, between batch begin and end.
#[test]
fn site_ruleset_frames_one_message_per_part() {
    let cfg = crate::core::config::parse(include_str!("../../../../examples/site.json")).unwrap();
    let m = crate::core::model::validate(&cfg).unwrap();
    let t = crate::core::firewall::ruleset(&m);
    let b = replace(&t, &lo, 100).unwrap();
    let msgs = messages(&b.bytes);
    assert_eq!(msgs.len(), b.parts.len() + 2);
    assert_eq!(msgs[0].ty, NFNL_MSG_BATCH_BEGIN);
    assert_eq!(msgs.last().unwrap().ty, NFNL_MSG_BATCH_END);
    let framed: usize = msgs.iter().map(|m| (m.payload.len() + 16 + 3) & !3).sum();
    assert_eq!(framed, b.bytes.len());
    for (m, (seq, _)) in msgs[1..].iter().zip(&b.parts) {
        assert_eq!(m.seq, *seq);
        assert_ne!(m.flags & NLM_F_ACK, 0);
    }
    let rules = msgs
        .iter()
        .filter(|m| m.ty == nft_type(NFT_MSG_NEWRULE))
        .count();
    assert_eq!(rules, t.chains.iter().map(|c| c.rules.len()).sum::<usize>());
    assert!(b.parts.iter().any(|(_, w)| w.starts_with(
        "chain input, rule 5 (iifname \"eth0\" udp dport { 51820 } accept comment \"wireguard\")"
    )));
}

/// nft merges adjacent constant field matches: `udp sport 67 udp dport 68`
/// is one 4-byte load (as `nft --debug=netlink` shows), also in the other
/// order or with a match between (checked with nft); 8 bytes (two addresses) are not merged.
#[test]
fn adjacent_field_matches_merge_as_nft_merges_them() {
    let port = |field, p| {
        Item::from(Match::Port {
            proto: L4::Udp,
            field,
            ports: Values::One(p),
        })
    };
    let merged = [
        Expr::Meta(META_L4PROTO),
        Expr::Cmp(CmpOp::Eq, vec![17]),
        Expr::Payload {
            base: BASE_TRANSPORT,
            offset: 0,
            len: 4,
        },
        Expr::Cmp(CmpOp::Eq, vec![0, 67, 0, 68]),
    ];
    let e = enc(Rule::new(vec![
        iifname("eth0"),
        port(PortField::Sport, 67),
        port(PortField::Dport, 68),
        Verdict::Accept.into(),
    ]));
    assert_eq!(e.exprs[2..6], merged);
    assert_eq!(e.exprs[6], Expr::Verdict(NF_ACCEPT));
    let e = enc(Rule::new(vec![
        port(PortField::Dport, 68),
        iifname("x"),
        port(PortField::Sport, 67),
    ]));
    // As nft: the merged match stands where the first field (sport) was.
    assert_eq!(e.exprs[..2], merged[..2]);
    assert_eq!(
        e.exprs[2..4],
        [Expr::Meta(META_IIFNAME), Expr::Cmp(CmpOp::Eq, name16("x"))]
    );
    assert_eq!(e.exprs[4..], merged[2..]);
    let host = |field, a: &str| {
        Item::from(Match::Ip {
            field,
            op: Op::Eq,
            values: Values::One(IpValue::Addr(a.parse().unwrap())),
        })
    };
    let e = enc(Rule::new(vec![
        host(IpField::Saddr, "10.0.0.1"),
        host(IpField::Daddr, "10.0.0.2"),
    ]));
    assert_eq!(e.exprs.len(), 6);
    // A match after a statement: not known, refused.
    let t = table(&["drop_spoof"]);
    let r = Rule::new(vec![
        port(PortField::Sport, 67),
        Stmt::Counter("drop_spoof".into()).into(),
        port(PortField::Dport, 68),
    ]);
    assert!(rule(&t, &r, &lo).is_err());
}

/// `flowtable fastpath { hook ingress priority filter; devices = { va }; }`
/// as `nft --debug=mnl` writes it (nft 1.0.6), after the table's messages.
#[test]
fn flowtable_message_bytes() {
    let mut t = table(&[]);
    t.flowtables.push(Flowtable {
        name: "fastpath".into(),
        devices: vec!["va".into()],
    });
    let b = replace(&t, &lo, 1).unwrap();
    #[rustfmt::skip]
    let want: Vec<u8> = [
        // NEWFLOWTABLE (0x0a16), REQUEST|ACK|CREATE, seq 5; nfgenmsg NFPROTO_INET
        &[88, 0, 0, 0, 0x16, 10, 0x05, 0x04, 5, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0][..],
        &[11, 0, 1, 0], b"portal\0\0",               // NFTA_FLOWTABLE_TABLE
        &[13, 0, 2, 0], b"fastpath\0\0\0\0",         // NFTA_FLOWTABLE_NAME
        &[32, 0, 3, 0x80],                           // NFTA_FLOWTABLE_HOOK (nested)
        &[8, 0, 1, 0, 0, 0, 0, 0],                   //   HOOK_NUM: ingress
        &[8, 0, 2, 0, 0, 0, 0, 0],                   //   HOOK_PRIORITY: filter (0)
        &[12, 0, 3, 0x80],                           //   HOOK_DEVS (nested)
        &[7, 0, 1, 0], b"va\0\0",                    //     NFTA_DEVICE_NAME
        &[8, 0, 7, 0, 0, 0, 0, 0],                   // NFTA_FLOWTABLE_FLAGS: 0
    ]
    .concat();
    let at = b
        .bytes
        .windows(want.len())
        .position(|w| w == want.as_slice());
    assert!(at.is_some(), "no such message in {:02x?}", b.bytes);
    assert_eq!(b.what(5), Some("flowtable fastpath (devices va)"));
}

#[test]
fn flow_add_needs_its_flowtable_and_encodes_as_nft_does() {
    let r = Rule::new(vec![
        Match::CtState(vec![CtState::Established]).into(),
        Stmt::FlowAdd("fastpath".into()).into(),
    ]);
    let e = rule(&table(&[]), &r, &lo).unwrap_err();
    assert!(
        e.contains("flowtable \"fastpath\" is not a flowtable"),
        "{e}"
    );
    let mut t = table(&[]);
    t.flowtables.push(Flowtable {
        name: "fastpath".into(),
        devices: vec!["eth0".into()],
    });
    // nft --debug=netlink: ct load state, bitwise & 0x2, cmp neq 0,
    // flow_offload flowtable fastpath.
    assert_eq!(
        rule(&t, &r, &lo).unwrap().exprs,
        vec![
            Expr::Ct(CT_STATE),
            Expr::Bitwise {
                mask: 2u32.to_ne_bytes().to_vec(),
                xor: vec![0; 4],
                op: false
            },
            Expr::Cmp(CmpOp::Neq, vec![0; 4]),
            Expr::FlowOffload("fastpath".into()),
        ]
    );
}

#[test]
fn a_flowtable_device_must_be_an_interface_name() {
    let mut t = table(&[]);
    t.flowtables.push(Flowtable {
        name: "fastpath".into(),
        devices: vec!["a-name-far-too-long".into()],
    });
    let e = replace(&t, &lo, 1).unwrap_err();
    assert!(e.starts_with("flowtable fastpath: "), "{e}");
}

#[test]
fn a_dry_run_is_the_batch_without_its_end_message() {
    let b = delete("portal", 1);
    let d = b.clone().dry_run();
    assert_eq!(d.bytes.len(), b.bytes.len() - 20);
    assert_eq!(&b.bytes[..d.bytes.len()], &d.bytes[..]);
    // What was cut is the batch end (type 0x11, seq 4).
    assert_eq!(
        &b.bytes[d.bytes.len()..][..8],
        &[20, 0, 0, 0, 0x11, 0, 1, 0]
    );
    assert_eq!(d.parts, b.parts);
}
