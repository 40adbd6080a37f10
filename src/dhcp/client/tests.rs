//! The client against Portal's own (pure) server, and against hand-made
//! replies for what a well-behaved server never sends.

use super::*;
use crate::core::model::DhcpServer;
use crate::dhcp::lease::LeaseTable;
use crate::dhcp::server::handle;
use crate::dhcp::wire::{encode, parse_request};

const T0: u64 = 1_700_000_000_000;
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

fn id() -> Identity {
    Identity {
        mac: [2, 0, 0, 0, 0, 9],
        hostname: Some("portal".into()),
    }
}

fn isp() -> DhcpServer {
    DhcpServer {
        router: SERVER,
        prefix_len: 24,
        pool_start: Ipv4Addr::new(198, 51, 100, 100),
        pool_end: Ipv4Addr::new(198, 51, 100, 150),
        lease_time: 600,
        dns: vec![Ipv4Addr::new(198, 51, 100, 53)],
        dns_from_wan: false,
        domain: Some("isp.example".into()),
        mtu: None,
        statics: vec![],
    }
}

/// A fake network: the ISP's server (Portal's handler) answers what the
/// client sends; returns the client's actions, answers fed back in.
struct Net {
    cfg: DhcpServer,
    table: LeaseTable,
    up: bool,
}

impl Net {
    fn new() -> Net {
        let cfg = isp();
        Net {
            table: LeaseTable::new(cfg.pool_start),
            cfg,
            up: true,
        }
    }

    /// The ISP moves its pool to .200-.210 and forgets every lease.
    fn renumber(&mut self) {
        self.cfg.pool_start = Ipv4Addr::new(198, 51, 100, 200);
        self.cfg.pool_end = Ipv4Addr::new(198, 51, 100, 210);
        self.table = LeaseTable::new(self.cfg.pool_start);
    }

    /// Delivers the client's messages to the server, the server's replies to
    /// the client, until quiet. Returns every action the client took.
    fn run(&mut self, c: &mut Client, ev: Event, now: u64) -> Vec<Action> {
        let mut all = Vec::new();
        let mut queue = vec![ev];
        let mut xid = 0x5000;
        while let Some(ev) = queue.pop() {
            xid += 1;
            for a in c.step(&id(), ev, now, xid) {
                let sent = match &a {
                    Action::Broadcast(m) | Action::Unicast(m, _) => Some(m.clone()),
                    _ => None,
                };
                all.push(a);
                if let (Some(m), true) = (sent, self.up) {
                    let req = parse_request(&encode(&m)).expect("client sends valid requests");
                    let out = handle(&self.cfg, &self.table, &req, now / 1000);
                    for ch in out.changes {
                        self.table.apply(ch);
                    }
                    if let Some((reply, _)) = out.reply {
                        queue.push(Event::Packet(reply));
                    }
                }
            }
        }
        all
    }
}

fn configured(actions: &[Action]) -> Option<WanLease> {
    actions.iter().rev().find_map(|a| match a {
        Action::Configure(l) => Some(l.clone()),
        _ => None,
    })
}

fn deconfigured(actions: &[Action]) -> bool {
    actions.contains(&Action::Deconfigure)
}

fn sends(actions: &[Action]) -> Vec<(MessageType, bool)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Broadcast(m) => Some((m.opts().msg_type().unwrap(), true)),
            Action::Unicast(m, _) => Some((m.opts().msg_type().unwrap(), false)),
            _ => None,
        })
        .collect()
}

#[test]
fn dora_binds_with_the_servers_options() {
    let mut net = Net::new();
    let mut c = Client::new(None);
    let a = net.run(&mut c, Event::Start, T0);
    assert_eq!(
        sends(&a),
        vec![(MessageType::Discover, true), (MessageType::Request, true)]
    );
    let l = configured(&a).expect("bound");
    assert_eq!(c.phase, Phase::Bound);
    assert_eq!(l.address, Ipv4Addr::new(198, 51, 100, 100));
    assert_eq!(l.prefix_len, 24);
    assert_eq!(l.gateway, Some(SERVER));
    assert_eq!(l.dns, vec![Ipv4Addr::new(198, 51, 100, 53)]);
    assert_eq!(l.domain.as_deref(), Some("isp.example"));
    assert_eq!((l.lease_secs, l.t1_secs, l.t2_secs), (600, 300, 525));
    assert_eq!(c.next_at, T0 + 300_000);
    // The server recorded our host name.
    assert_eq!(
        net.table.get(l.address).unwrap().hostname.as_deref(),
        Some("portal")
    );
}

#[test]
fn renews_by_unicast_at_t1_then_rebinds_by_broadcast_at_t2_then_expires() {
    let mut net = Net::new();
    let mut c = Client::new(None);
    let l = configured(&net.run(&mut c, Event::Start, T0)).unwrap();
    // Nothing happens before T1.
    assert!(net.run(&mut c, Event::Timeout, T0 + 1000).is_empty());
    // T1: unicast REQUEST with ciaddr, ACKed, the lease runs from now.
    let a = net.run(&mut c, Event::Timeout, l.t1_at());
    assert_eq!(sends(&a), vec![(MessageType::Request, false)]);
    match &a[0] {
        Action::Unicast(m, to) => {
            assert_eq!(*to, SERVER);
            assert_eq!(m.ciaddr(), l.address);
            assert!(!m.flags().broadcast());
        }
        other => panic!("{other:?}"),
    }
    let renewed = configured(&a).unwrap();
    assert_eq!(renewed.acquired_ms, l.t1_at());
    assert_eq!(c.phase, Phase::Bound);
    // The server goes silent: renew retries until T2, then broadcast rebinding.
    net.up = false;
    let t1 = renewed.t1_at();
    let a = net.run(&mut c, Event::Timeout, t1);
    assert_eq!(sends(&a), vec![(MessageType::Request, false)]);
    assert_eq!(c.phase, Phase::Renewing);
    assert!(c.next_at <= renewed.t2_at());
    let a = net.run(&mut c, Event::Timeout, renewed.t2_at());
    assert_eq!(sends(&a), vec![(MessageType::Request, true)]);
    assert_eq!(c.phase, Phase::Rebinding);
    assert!(c.next_at <= renewed.expires_at());
    // Expiry: stop using the address, start over.
    let a = net.run(&mut c, Event::Timeout, renewed.expires_at());
    assert!(deconfigured(&a));
    assert_eq!(sends(&a), vec![(MessageType::Discover, true)]);
    assert_eq!(c.phase, Phase::Selecting);
    assert!(c.lease.is_none());
}

#[test]
fn rebinding_answered_by_any_server_binds_again() {
    let mut net = Net::new();
    let mut c = Client::new(None);
    let l = configured(&net.run(&mut c, Event::Start, T0)).unwrap();
    net.up = false;
    net.run(&mut c, Event::Timeout, l.t1_at());
    net.up = true;
    let a = net.run(&mut c, Event::Timeout, l.t2_at());
    assert_eq!(sends(&a), vec![(MessageType::Request, true)]);
    assert_eq!(configured(&a).unwrap().address, l.address);
    assert_eq!(c.phase, Phase::Bound);
}

#[test]
fn nak_on_renewal_deconfigures_and_starts_over() {
    let mut net = Net::new();
    let mut c = Client::new(None);
    let l = configured(&net.run(&mut c, Event::Start, T0)).unwrap();
    // The ISP renumbers: our address is no longer in its pool.
    net.renumber();
    let a = net.run(&mut c, Event::Timeout, l.t1_at());
    assert!(deconfigured(&a));
    let new = configured(&a).expect("a new lease after the NAK");
    assert_eq!(new.address, Ipv4Addr::new(198, 51, 100, 200));
    assert_eq!(
        sends(&a),
        vec![
            (MessageType::Request, false),
            (MessageType::Discover, true),
            (MessageType::Request, true)
        ]
    );
}

#[test]
fn restart_confirms_the_remembered_lease_with_init_reboot() {
    let mut net = Net::new();
    let mut c = Client::new(None);
    let l = configured(&net.run(&mut c, Event::Start, T0)).unwrap();
    // A restart 100 s later, the lease read back from disk.
    let mut c = Client::new(Some(l.clone()));
    let a = net.run(&mut c, Event::Start, T0 + 100_000);
    assert_eq!(sends(&a), vec![(MessageType::Request, true)]);
    match a.iter().find_map(|x| match x {
        Action::Broadcast(m) => Some(m.clone()),
        _ => None,
    }) {
        Some(m) => {
            assert!(m.opts().get(OptionCode::ServerIdentifier).is_none());
            assert!(m.ciaddr().is_unspecified());
        }
        None => unreachable!(),
    }
    assert_eq!(configured(&a).unwrap().address, l.address);
    // An expired remembered lease is not trusted: DISCOVER (asking for it).
    let mut c = Client::new(Some(l.clone()));
    let a = net.run(&mut c, Event::Start, l.expires_at() + 1);
    assert_eq!(sends(&a)[0], (MessageType::Discover, true));
}

#[test]
fn init_reboot_naked_on_a_new_network_discovers() {
    let mut net = Net::new();
    let remembered = WanLease {
        address: Ipv4Addr::new(10, 0, 0, 7),
        prefix_len: 24,
        gateway: None,
        dns: vec![],
        domain: None,
        server: Ipv4Addr::new(10, 0, 0, 1),
        lease_secs: 3600,
        t1_secs: 1800,
        t2_secs: 3150,
        acquired_ms: T0,
    };
    let mut c = Client::new(Some(remembered));
    let a = net.run(&mut c, Event::Start, T0 + 1000);
    assert_eq!(
        sends(&a),
        vec![
            (MessageType::Request, true),
            (MessageType::Discover, true),
            (MessageType::Request, true)
        ]
    );
    assert!(!deconfigured(&a), "never configured, nothing to remove");
    assert_eq!(
        configured(&a).unwrap().address,
        Ipv4Addr::new(198, 51, 100, 100)
    );
}

#[test]
fn a_resumed_lease_naked_on_restart_is_deconfigured() {
    let mut net = Net::new();
    let mut c = Client::new(None);
    let l = configured(&net.run(&mut c, Event::Start, T0)).unwrap();
    // The ISP renumbered while the agent was down.
    net.renumber();
    let mut c = Client::resume(l);
    let a = net.run(&mut c, Event::Start, T0 + 5000);
    assert!(deconfigured(&a));
    assert_eq!(
        configured(&a).unwrap().address,
        Ipv4Addr::new(198, 51, 100, 200)
    );
}

#[test]
fn init_reboot_without_answer_keeps_the_unexpired_lease() {
    let mut net = Net::new();
    let mut c = Client::new(None);
    let l = configured(&net.run(&mut c, Event::Start, T0)).unwrap();
    net.up = false;
    let mut c = Client::new(Some(l.clone()));
    let mut now = T0 + 10_000;
    let mut all = net.run(&mut c, Event::Start, now);
    for _ in 0..REQUEST_TRIES {
        now = c.next_at;
        all.extend(net.run(&mut c, Event::Timeout, now));
    }
    assert_eq!(configured(&all).unwrap(), l);
    assert_eq!(c.phase, Phase::Bound);
}

#[test]
fn discover_is_retransmitted_with_backoff_until_an_offer() {
    let mut net = Net::new();
    net.up = false;
    let mut c = Client::new(None);
    net.run(&mut c, Event::Start, T0);
    let mut gaps = Vec::new();
    let mut now = T0;
    for _ in 0..6 {
        gaps.push(c.next_at - now);
        now = c.next_at;
        assert_eq!(
            sends(&net.run(&mut c, Event::Timeout, now)),
            vec![(MessageType::Discover, true)]
        );
    }
    assert_eq!(gaps, vec![2000, 4000, 8000, 16000, 32000, 32000]);
    net.up = true;
    let at = c.next_at;
    let a = net.run(&mut c, Event::Timeout, at);
    assert!(configured(&a).is_some());
}

#[test]
fn link_up_confirms_the_lease() {
    let mut net = Net::new();
    let mut c = Client::new(None);
    let l = configured(&net.run(&mut c, Event::Start, T0)).unwrap();
    assert!(sends(&net.run(&mut c, Event::LinkDown, T0 + 5)).is_empty());
    let a = net.run(&mut c, Event::LinkUp, T0 + 10);
    assert_eq!(sends(&a), vec![(MessageType::Request, true)]);
    assert_eq!(configured(&a).unwrap().address, l.address);
}

#[test]
fn replies_for_other_transactions_or_clients_are_ignored() {
    let mut net = Net::new();
    net.up = false;
    let mut c = Client::new(None);
    let a = net.run(&mut c, Event::Start, T0);
    let Action::Broadcast(discover) = &a[0] else {
        panic!()
    };
    let offer = |xid: u32, mac: [u8; 6]| {
        let mut m = Message::new_with_id(
            xid,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::new(198, 51, 100, 120),
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &mac,
        );
        m.set_opcode(Opcode::BootReply);
        m.opts_mut()
            .insert(DhcpOption::MessageType(MessageType::Offer));
        m.opts_mut().insert(DhcpOption::ServerIdentifier(SERVER));
        m
    };
    let before = c.clone();
    assert!(c
        .step(
            &id(),
            Event::Packet(offer(discover.xid() + 1, id().mac)),
            T0,
            1
        )
        .is_empty());
    assert!(c
        .step(
            &id(),
            Event::Packet(offer(discover.xid(), [2, 0, 0, 0, 0, 8])),
            T0,
            1
        )
        .is_empty());
    // An offer without a server identifier cannot be requested.
    let mut no_sid = offer(discover.xid(), id().mac);
    no_sid.opts_mut().remove(OptionCode::ServerIdentifier);
    assert!(c.step(&id(), Event::Packet(no_sid), T0, 1).is_empty());
    assert_eq!(c, before);
    // The right one is requested.
    let a = c.step(&id(), Event::Packet(offer(discover.xid(), id().mac)), T0, 1);
    assert_eq!(sends(&a), vec![(MessageType::Request, true)]);
    assert_eq!(c.phase, Phase::Requesting);
}
