//! Any datagram to port 68 (the packet socket hands over the IP packet):
//! find the UDP payload, parse it as a reply, and give it to the WAN client
//! in each phase. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portal::dhcp::client::{Client, Event, Identity, WanLease};
use portal::dhcp::wire::{parse_reply, udp_in_ipv4};
use std::net::Ipv4Addr;

const T0: u64 = 1_700_000_000_000;

fn lease() -> WanLease {
    WanLease {
        address: Ipv4Addr::new(198, 51, 100, 100),
        prefix_len: 24,
        gateway: Some(Ipv4Addr::new(198, 51, 100, 1)),
        dns: vec![],
        domain: None,
        server: Ipv4Addr::new(198, 51, 100, 1),
        lease_secs: 600,
        t1_secs: 300,
        t2_secs: 525,
        acquired_ms: T0,
    }
}

fuzz_target!(|data: &[u8]| {
    // Either a whole IP packet or a bare DHCP payload.
    let payload = match udp_in_ipv4(data) {
        Some((_, _, _, p)) => p,
        None => data,
    };
    let Ok(msg) = parse_reply(payload) else { return };
    let id = Identity { mac: [2, 0, 0, 0, 0, 9], hostname: None };
    let xid = msg.xid();
    // Selecting and InitReboot, with the client's xid made to match.
    let mut fresh = Client::new(None);
    fresh.step(&id, Event::Start, T0, xid);
    fresh.step(&id, Event::Packet(msg.clone()), T0 + 1, xid);
    let mut reboot = Client::resume(lease());
    reboot.step(&id, Event::Start, T0 + 10, xid);
    reboot.step(&id, Event::Packet(msg.clone()), T0 + 11, xid);
    // Whatever it became, time moves on through T1, T2 and expiry.
    for at in [300_000, 525_000, 600_000] {
        reboot.step(&id, Event::Timeout, T0 + 11 + at, xid);
    }
    reboot.step(&id, Event::Packet(msg), T0 + 700_000, xid);
});
