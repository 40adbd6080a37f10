use super::*;
use crate::core::model::dhcp::StaticLease;
use crate::dhcp::wire::{encode, parse_request};
use dhcproto::v4::Flags;

const NOW: u64 = 1_700_000_000;
const ROUTER: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 1);

fn cfg() -> DhcpServer {
    DhcpServer {
        router: ROUTER,
        prefix_len: 24,
        pool_start: Ipv4Addr::new(192, 168, 10, 100),
        pool_end: Ipv4Addr::new(192, 168, 10, 102),
        lease_time: 3600,
        dns: vec![Ipv4Addr::new(9, 9, 9, 9)],
        dns_from_wan: false,
        domain: Some("home.lan".into()),
        mtu: Some(1400),
        statics: vec![StaticLease {
            mac: [2, 0, 0, 0, 0, 0x50],
            address: Ipv4Addr::new(192, 168, 10, 50),
            hostname: Some("nas".into()),
        }],
    }
}

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 10, last)
}

fn mac_of(n: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, n]
}

/// A request from client `n`, put through the wire format and back so the
/// handler sees exactly what a socket would give it.
fn req(n: u8, kind: MessageType, opts: Vec<DhcpOption>) -> Message {
    req_with(n, kind, opts, |_| {})
}

fn req_with(n: u8, kind: MessageType, opts: Vec<DhcpOption>, f: impl Fn(&mut Message)) -> Message {
    let mut m = Message::new_with_id(
        0x1000 + n as u32,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        &mac_of(n),
    );
    m.opts_mut().insert(DhcpOption::MessageType(kind));
    for o in opts {
        m.opts_mut().insert(o);
    }
    f(&mut m);
    parse_request(&encode(&m)).expect("a well-formed request")
}

/// A message from client `n` naming this server and `addr` (REQUEST in
/// SELECTING, DECLINE).
fn naming_us(n: u8, kind: MessageType, addr: Ipv4Addr) -> Message {
    req(
        n,
        kind,
        vec![
            DhcpOption::ServerIdentifier(ROUTER),
            DhcpOption::RequestedIpAddress(addr),
        ],
    )
}

/// REQUEST in INIT-REBOOT: client `n` asks for `addr` back, no server named.
fn reboot(n: u8, addr: Ipv4Addr) -> Message {
    req(
        n,
        MessageType::Request,
        vec![DhcpOption::RequestedIpAddress(addr)],
    )
}

fn run(t: &mut LeaseTable, c: &DhcpServer, m: &Message, now: u64) -> Outcome {
    let out = handle(c, t, m, now);
    for ch in out.changes.clone() {
        t.apply(ch);
    }
    out
}

fn kind(o: &Outcome) -> Option<MessageType> {
    o.reply.as_ref().map(|(m, _)| message_type(m))
}

fn yiaddr(o: &Outcome) -> Ipv4Addr {
    o.reply.as_ref().unwrap().0.yiaddr()
}

fn opt(o: &Outcome, code: OptionCode) -> Option<DhcpOption> {
    o.reply.as_ref().unwrap().0.opts().get(code).cloned()
}

/// DISCOVER then REQUEST (SELECTING): the address the client ends up with.
fn dora(t: &mut LeaseTable, c: &DhcpServer, n: u8, now: u64) -> Ipv4Addr {
    let offer = run(t, c, &req(n, MessageType::Discover, vec![]), now);
    assert_eq!(kind(&offer), Some(MessageType::Offer));
    let a = yiaddr(&offer);
    let ack = run(t, c, &naming_us(n, MessageType::Request, a), now);
    assert_eq!(kind(&ack), Some(MessageType::Ack));
    assert_eq!(yiaddr(&ack), a);
    a
}

#[test]
fn discover_offers_the_first_free_address_with_all_options() {
    let c = cfg();
    let mut t = LeaseTable::new(c.pool_start);
    let o = run(&mut t, &c, &req(1, MessageType::Discover, vec![]), NOW);
    assert_eq!(kind(&o), Some(MessageType::Offer));
    assert_eq!(yiaddr(&o), ip(100));
    assert_eq!(
        opt(&o, OptionCode::ServerIdentifier),
        Some(DhcpOption::ServerIdentifier(ROUTER))
    );
    assert_eq!(
        opt(&o, OptionCode::SubnetMask),
        Some(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)))
    );
    assert_eq!(
        opt(&o, OptionCode::Router),
        Some(DhcpOption::Router(vec![ROUTER]))
    );
    assert_eq!(
        opt(&o, OptionCode::DomainNameServer),
        Some(DhcpOption::DomainNameServer(vec![Ipv4Addr::new(
            9, 9, 9, 9
        )]))
    );
    assert_eq!(
        opt(&o, OptionCode::DomainName),
        Some(DhcpOption::DomainName("home.lan".into()))
    );
    assert_eq!(
        opt(&o, OptionCode::AddressLeaseTime),
        Some(DhcpOption::AddressLeaseTime(3600))
    );
    assert_eq!(
        opt(&o, OptionCode::Renewal),
        Some(DhcpOption::Renewal(1800))
    );
    assert_eq!(
        opt(&o, OptionCode::Rebinding),
        Some(DhcpOption::Rebinding(3150))
    );
    assert_eq!(
        opt(&o, OptionCode::BroadcastAddr),
        Some(DhcpOption::BroadcastAddr(ip(255)))
    );
    assert_eq!(
        opt(&o, OptionCode::InterfaceMtu),
        Some(DhcpOption::InterfaceMtu(1400))
    );
    // No broadcast flag, no ciaddr: straight to the client's MAC.
    assert_eq!(
        o.reply.as_ref().unwrap().1,
        Dest::Hardware(ip(100), mac_of(1))
    );
    // The offer holds the address in memory only.
    assert_eq!(o.changes.len(), 1);
    assert!(!o.changes[0].durable());
    // A second client is offered another address while the first is held.
    let o2 = run(&mut t, &c, &req(2, MessageType::Discover, vec![]), NOW);
    assert_eq!(yiaddr(&o2), ip(101));
}

#[test]
fn broadcast_flag_makes_the_reply_broadcast() {
    let c = cfg();
    let t = LeaseTable::new(c.pool_start);
    let m = req_with(1, MessageType::Discover, vec![], |m| {
        m.set_flags(Flags::default().set_broadcast());
    });
    let o = handle(&c, &t, &m, NOW);
    assert_eq!(o.reply.unwrap().1, Dest::Broadcast);
}

#[test]
fn full_dora_binds_durably_and_logs_once() {
    let c = cfg();
    let mut t = LeaseTable::new(c.pool_start);
    let a = dora(&mut t, &c, 1, NOW);
    let l = t.get(a).unwrap();
    assert_eq!(l.state, LeaseState::Bound);
    assert_eq!(l.expires, NOW + 3600);
    assert_eq!(l.mac, "02:00:00:00:00:01");
    // Renewing (unicast, ciaddr set): extended, replied to ciaddr, not logged.
    let renew = req_with(1, MessageType::Request, vec![], |m| {
        m.set_ciaddr(a);
    });
    let o = run(&mut t, &c, &renew, NOW + 1800);
    assert_eq!(kind(&o), Some(MessageType::Ack));
    assert_eq!(o.reply.as_ref().unwrap().1, Dest::Client(a));
    assert_eq!(o.reply.as_ref().unwrap().0.ciaddr(), a);
    assert_eq!(t.get(a).unwrap().expires, NOW + 1800 + 3600);
    assert!(o.log.is_none());
    assert!(o.changes.iter().all(|c| c.durable()));
}

#[test]
fn rediscover_by_a_bound_client_gets_its_address_without_a_change() {
    let c = cfg();
    let mut t = LeaseTable::new(c.pool_start);
    let a = dora(&mut t, &c, 1, NOW);
    let o = run(&mut t, &c, &req(1, MessageType::Discover, vec![]), NOW + 10);
    assert_eq!(yiaddr(&o), a);
    assert!(o.changes.is_empty());
    assert_eq!(t.get(a).unwrap().state, LeaseState::Bound);
}

#[test]
fn requested_address_is_honoured_when_free_and_in_the_pool() {
    let c = cfg();
    let t = LeaseTable::new(c.pool_start);
    let o = handle(
        &c,
        &t,
        &req(
            1,
            MessageType::Discover,
            vec![DhcpOption::RequestedIpAddress(ip(102))],
        ),
        NOW,
    );
    assert_eq!(yiaddr(&o), ip(102));
    let o = handle(
        &c,
        &t,
        &req(
            1,
            MessageType::Discover,
            vec![DhcpOption::RequestedIpAddress(ip(7))],
        ),
        NOW,
    );
    assert_eq!(yiaddr(&o), ip(100), "outside the pool: ignored");
}

#[test]
fn selecting_another_server_frees_our_offer() {
    let c = cfg();
    let mut t = LeaseTable::new(c.pool_start);
    let o = run(&mut t, &c, &req(1, MessageType::Discover, vec![]), NOW);
    let a = yiaddr(&o);
    let other = req(
        1,
        MessageType::Request,
        vec![
            DhcpOption::ServerIdentifier(Ipv4Addr::new(192, 168, 10, 2)),
            DhcpOption::RequestedIpAddress(a),
        ],
    );
    let o = run(&mut t, &c, &other, NOW);
    assert!(o.reply.is_none());
    assert!(t.get(a).is_none());
}

#[test]
fn request_outside_the_pool_or_lan_is_naked() {
    let c = cfg();
    let mut t = LeaseTable::new(c.pool_start);
    for bad in [ip(7), Ipv4Addr::new(10, 0, 0, 5), ROUTER, ip(255)] {
        let o = run(&mut t, &c, &naming_us(1, MessageType::Request, bad), NOW);
        assert_eq!(kind(&o), Some(MessageType::Nak), "{bad}");
        assert_eq!(o.reply.as_ref().unwrap().1, Dest::Broadcast);
        assert!(o.changes.is_empty());
        assert!(o.log.is_some());
    }
}

#[test]
fn another_clients_address_is_naked_in_every_state() {
    let c = cfg();
    let mut t = LeaseTable::new(c.pool_start);
    let a = dora(&mut t, &c, 1, NOW);
    let selecting = naming_us(2, MessageType::Request, a);
    let init_reboot = reboot(2, a);
    let renewing = req_with(2, MessageType::Request, vec![], |m| {
        m.set_ciaddr(a);
    });
    for r in [selecting, init_reboot, renewing] {
        let o = run(&mut t, &c, &r, NOW + 5);
        assert_eq!(kind(&o), Some(MessageType::Nak));
        assert_eq!(t.get(a).unwrap().mac, "02:00:00:00:00:01");
    }
    // Once client 1's lease has expired, client 2 may take it.
    let o = run(&mut t, &c, &reboot(2, a), NOW + 3601);
    assert_eq!(kind(&o), Some(MessageType::Ack));
}

#[test]
fn init_reboot_confirms_the_clients_own_address_and_naks_a_foreign_network() {
    let c = cfg();
    let mut t = LeaseTable::new(c.pool_start);
    let a = dora(&mut t, &c, 1, NOW);
    let o = run(&mut t, &c, &reboot(1, a), NOW + 100);
    assert_eq!(kind(&o), Some(MessageType::Ack));
    assert_eq!(yiaddr(&o), a);
    // Moved from another network: told to start over.
    let o = run(&mut t, &c, &reboot(3, Ipv4Addr::new(10, 1, 1, 9)), NOW);
    assert_eq!(kind(&o), Some(MessageType::Nak));
}

#[test]
fn rebinding_is_broadcast_and_acked_to_ciaddr() {
    let c = cfg();
    let mut t = LeaseTable::new(c.pool_start);
    let a = dora(&mut t, &c, 1, NOW);
    let rebind = req_with(1, MessageType::Request, vec![], |m| {
        m.set_ciaddr(a);
        m.set_flags(Flags::default().set_broadcast());
    });
    let o = run(&mut t, &c, &rebind, NOW + 3200);
    assert_eq!(kind(&o), Some(MessageType::Ack));
    assert_eq!(o.reply.as_ref().unwrap().1, Dest::Client(a));
}

#[test]
fn decline_quarantines_the_address() {
    let c = cfg();
    let mut t = LeaseTable::new(c.pool_start);
    let a = dora(&mut t, &c, 1, NOW);
    // A decline naming another server, or another client's address, is ignored.
    let wrong_sid = req(
        1,
        MessageType::Decline,
        vec![
            DhcpOption::ServerIdentifier(ip(2)),
            DhcpOption::RequestedIpAddress(a),
        ],
    );
    assert!(run(&mut t, &c, &wrong_sid, NOW).changes.is_empty());
    let not_its = naming_us(2, MessageType::Decline, a);
    assert!(run(&mut t, &c, &not_its, NOW).changes.is_empty());
    let decline = naming_us(1, MessageType::Decline, a);
    let o = run(&mut t, &c, &decline, NOW);
    assert!(o.reply.is_none());
    assert!(o.log.unwrap().contains("in use"));
    assert_eq!(t.get(a).unwrap().state, LeaseState::Declined);
    assert!(o.changes[0].durable());
    // Client 1 now gets another address; nobody gets `a` during the hold.
    let b = dora(&mut t, &c, 1, NOW + 1);
    assert_ne!(a, b);
    let o = run(
        &mut t,
        &c,
        &req(
            3,
            MessageType::Discover,
            vec![DhcpOption::RequestedIpAddress(a)],
        ),
        NOW + 2,
    );
    assert_ne!(yiaddr(&o), a);
    let o = run(&mut t, &c, &reboot(4, a), NOW + 3);
    assert_eq!(kind(&o), Some(MessageType::Nak));
    // After the hold it returns to the pool.
    let o = run(&mut t, &c, &reboot(4, a), NOW + DECLINE_HOLD + 1);
    assert_eq!(kind(&o), Some(MessageType::Ack));
}

#[test]
fn release_frees_the_address_but_remembers_the_client() {
    let c = cfg();
    let mut t = LeaseTable::new(c.pool_start);
    let a = dora(&mut t, &c, 1, NOW);
    let release = req_with(
        1,
        MessageType::Release,
        vec![DhcpOption::ServerIdentifier(ROUTER)],
        |m| {
            m.set_ciaddr(a);
        },
    );
    // Someone else cannot release it.
    let forged = req_with(
        2,
        MessageType::Release,
        vec![DhcpOption::ServerIdentifier(ROUTER)],
        |m| {
            m.set_ciaddr(a);
        },
    );
    assert!(run(&mut t, &c, &forged, NOW).changes.is_empty());
    let o = run(&mut t, &c, &release, NOW + 10);
    assert!(o.reply.is_none());
    assert_eq!(t.get(a).unwrap().state, LeaseState::Released);
    // It comes back to the same address.
    assert_eq!(dora(&mut t, &c, 1, NOW + 20), a);
}

#[test]
fn inform_answers_options_without_an_address() {
    let c = cfg();
    let t = LeaseTable::new(c.pool_start);
    let m = req_with(9, MessageType::Inform, vec![], |m| {
        m.set_ciaddr(ip(20));
    });
    let o = handle(&c, &t, &m, NOW);
    assert_eq!(kind(&o), Some(MessageType::Ack));
    assert_eq!(yiaddr(&o), Ipv4Addr::UNSPECIFIED);
    assert_eq!(opt(&o, OptionCode::AddressLeaseTime), None);
    assert!(opt(&o, OptionCode::DomainNameServer).is_some());
    assert_eq!(o.reply.unwrap().1, Dest::Client(ip(20)));
    assert!(o.changes.is_empty());
}

#[test]
fn static_lease_is_honoured_and_kept_from_others() {
    let c = cfg();
    let mut t = LeaseTable::new(c.pool_start);
    let a = dora(&mut t, &c, 0x50, NOW);
    assert_eq!(a, ip(50));
    assert_eq!(t.get(a).unwrap().hostname.as_deref(), Some("nas"));
    // The static client asking for a pool address is told no.
    let o = run(&mut t, &c, &reboot(0x50, ip(100)), NOW);
    assert_eq!(kind(&o), Some(MessageType::Nak));
    // Another client asking for the static address is told no.
    let o = run(&mut t, &c, &reboot(1, ip(50)), NOW);
    assert_eq!(kind(&o), Some(MessageType::Nak));
}

#[test]
fn pool_exhaustion_offers_nothing_and_logs_then_reclaims_expired() {
    let c = cfg();
    let mut t = LeaseTable::new(c.pool_start);
    for n in 1..=3 {
        dora(&mut t, &c, n, NOW);
    }
    let o = run(&mut t, &c, &req(4, MessageType::Discover, vec![]), NOW + 5);
    assert!(o.reply.is_none());
    assert!(o.log.unwrap().contains("pool exhausted"));
    // Client 2's lease was renewed, 1's and 3's ran out: 1's (oldest) is reused.
    let renew = req_with(2, MessageType::Request, vec![], |m| {
        m.set_ciaddr(ip(101));
    });
    run(&mut t, &c, &renew, NOW + 1000);
    let o = run(
        &mut t,
        &c,
        &req(4, MessageType::Discover, vec![]),
        NOW + 3700,
    );
    assert_eq!(yiaddr(&o), ip(100));
}

#[test]
fn host_name_is_recorded_when_it_is_a_plain_label() {
    let c = cfg();
    let mut t = LeaseTable::new(c.pool_start);
    let named = |h: &str| vec![DhcpOption::Hostname(h.into())];
    run(
        &mut t,
        &c,
        &req(1, MessageType::Discover, named("laptop")),
        NOW,
    );
    let o = run(
        &mut t,
        &c,
        &req(
            1,
            MessageType::Request,
            [
                named("laptop"),
                vec![
                    DhcpOption::ServerIdentifier(ROUTER),
                    DhcpOption::RequestedIpAddress(ip(100)),
                ],
            ]
            .concat(),
        ),
        NOW,
    );
    assert!(o.log.unwrap().contains("(laptop)"));
    assert_eq!(t.get(ip(100)).unwrap().hostname.as_deref(), Some("laptop"));
    let o = handle(&c, &t, &req(2, MessageType::Discover, named("a b;rm")), NOW);
    assert!(o
        .changes
        .iter()
        .all(|ch| matches!(ch, Change::Put(l) if l.hostname.is_none())));
}

#[test]
fn client_identifier_keys_the_lease_and_is_echoed() {
    let c = cfg();
    let mut t = LeaseTable::new(c.pool_start);
    let id = vec![1, 2, 0, 0, 0, 0, 1];
    let o = run(
        &mut t,
        &c,
        &req(
            1,
            MessageType::Discover,
            vec![DhcpOption::ClientIdentifier(id.clone())],
        ),
        NOW,
    );
    assert_eq!(
        opt(&o, OptionCode::ClientIdentifier),
        Some(DhcpOption::ClientIdentifier(id.clone()))
    );
    assert_eq!(t.get(ip(100)).unwrap().client, "id:01:02:00:00:00:00:01");
}

#[test]
fn relayed_requests_are_answered_to_the_relay_and_foreign_subnets_ignored() {
    let c = cfg();
    let mut t = LeaseTable::new(c.pool_start);
    let relayed = req_with(1, MessageType::Discover, vec![], |m| {
        m.set_giaddr(ip(2));
    });
    let o = run(&mut t, &c, &relayed, NOW);
    assert_eq!(o.reply.as_ref().unwrap().1, Dest::Relay(ip(2)));
    assert_eq!(o.reply.as_ref().unwrap().0.giaddr(), ip(2));
    let foreign = req_with(2, MessageType::Discover, vec![], |m| {
        m.set_giaddr(Ipv4Addr::new(10, 9, 9, 1));
    });
    assert_eq!(handle(&c, &t, &foreign, NOW), Outcome::default());
    // A relayed NAK asks the relay to broadcast.
    let nak = req_with(
        3,
        MessageType::Request,
        vec![DhcpOption::RequestedIpAddress(ip(7))],
        |m| {
            m.set_giaddr(ip(2));
        },
    );
    let o = handle(&c, &t, &nak, NOW);
    assert_eq!(kind(&o), Some(MessageType::Nak));
    assert!(o.reply.as_ref().unwrap().0.flags().broadcast());
    assert_eq!(o.reply.unwrap().1, Dest::Relay(ip(2)));
}

#[test]
fn replies_and_other_message_types_are_ignored() {
    let c = cfg();
    let t = LeaseTable::new(c.pool_start);
    for k in [
        MessageType::Offer,
        MessageType::Ack,
        MessageType::Nak,
        MessageType::Unknown(99),
    ] {
        assert_eq!(handle(&c, &t, &req(1, k, vec![]), NOW), Outcome::default());
    }
}
