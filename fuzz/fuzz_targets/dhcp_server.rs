//! Any datagram on port 67: parse it, and when it parses, run the server's
//! handler on it against a table with leases in every state. Nothing may
//! panic; the handler's changes must keep the table consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portal::dhcp::lease::{Change, Lease, LeaseState, LeaseTable};
use portal::dhcp::server::handle;
use portal::dhcp::wire::{encode, parse_request};
use portal::core::model::dhcp::StaticLease;
use portal::core::model::DhcpServer;
use std::net::Ipv4Addr;

const NOW: u64 = 1_700_000_000;

fn server() -> DhcpServer {
    DhcpServer {
        router: Ipv4Addr::new(192, 168, 10, 1),
        prefix_len: 24,
        pool_start: Ipv4Addr::new(192, 168, 10, 100),
        pool_end: Ipv4Addr::new(192, 168, 10, 104),
        lease_time: 3600,
        dns: vec![Ipv4Addr::new(192, 168, 10, 1)],
        dns_from_wan: false,
        domain: Some("lan".into()),
        mtu: Some(1400),
        statics: vec![StaticLease {
            mac: [2, 0, 0, 0, 0, 0x50],
            address: Ipv4Addr::new(192, 168, 10, 50),
            hostname: None,
        }],
    }
}

fn table() -> LeaseTable {
    let states = [LeaseState::Offered, LeaseState::Bound, LeaseState::Released, LeaseState::Declined];
    LeaseTable::with_leases(
        Ipv4Addr::new(192, 168, 10, 100),
        states.iter().enumerate().map(|(i, s)| Lease {
            address: Ipv4Addr::new(192, 168, 10, 100 + i as u8),
            client: format!("02:00:00:00:00:0{i}"),
            mac: format!("02:00:00:00:00:0{i}"),
            hostname: None,
            expires: NOW - 10 + 10 * i as u64,
            state: *s,
        }),
    )
}

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = parse_request(data) else { return };
    let cfg = server();
    let mut t = table();
    let out = handle(&cfg, &t, &msg, NOW);
    if let Some((reply, _)) = &out.reply {
        let _ = encode(reply);
    }
    for c in out.changes {
        if let Change::Put(l) = &c {
            assert!(cfg.on_subnet(l.address), "a lease off the LAN: {l:?}");
        }
        t.apply(c);
    }
});
