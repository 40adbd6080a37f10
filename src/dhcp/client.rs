//! The WAN's DHCPv4 client (RFC 2131 section 4.4) as a pure state machine:
//! `step(event, now, fresh xid)` changes the state and returns actions (send
//! this, configure that). The service (`wan.rs`) owns sockets, clock and disk.

use super::wire::server_id;
use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};

use std::net::Ipv4Addr;

/// First retransmission delay; doubles up to `MAX_BACKOFF` (RFC: 4 s, 64 s).
const FIRST_BACKOFF_MS: u64 = 2_000;
const MAX_BACKOFF_MS: u64 = 32_000;
/// REQUESTs sent before falling back to DISCOVER (or, when rebooting, to
/// the remembered lease).
const REQUEST_TRIES: u32 = 4;
/// Shortest wait between renew/rebind retransmissions (RFC: 60 s; shorter
/// here so that short test leases still see retries).
const MIN_RENEW_RETRY_MS: u64 = 10_000;

/// What the client needs to know about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub mac: [u8; 6],
    pub hostname: Option<String>,
}

/// The lease type lives in the core: it is an input of the desired state.
pub use crate::core::desired::WanLease;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Init,
    Selecting,
    Requesting,
    Bound,
    Renewing,
    Rebinding,
    InitReboot,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Start,
    Packet(Message),
    Timeout,
    LinkUp,
    LinkDown,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// To 255.255.255.255:67 (from 0.0.0.0, or from ciaddr when set).
    Broadcast(Message),
    /// To the server's address, port 67 (renewing).
    Unicast(Message, Ipv4Addr),
    /// Use this lease (address, gateway, DNS) and remember it.
    Configure(WanLease),
    /// Stop using the lease: it ended or the server refused it.
    Deconfigure,
    /// A line for the log.
    Log(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub phase: Phase,
    /// The lease in use (Bound, Renewing, Rebinding) or being verified
    /// (InitReboot).
    pub lease: Option<WanLease>,
    /// The offer being requested (Requesting).
    offer: Option<WanLease>,
    /// The lease the kernel is configured with, if any.
    configured: bool,
    xid: u32,
    tries: u32,
    /// When the transaction began, for the `secs` field.
    began_ms: u64,
    pub next_at: u64,
}

fn backoff(tries: u32) -> u64 {
    (FIRST_BACKOFF_MS << tries.saturating_sub(1).min(8)).min(MAX_BACKOFF_MS)
}

/// The lease an OFFER or ACK describes, or None if it lacks what a lease
/// needs (an address and a server identifier).
pub fn lease_from(m: &Message, now_ms: u64) -> Option<WanLease> {
    let address = m.yiaddr();
    let server = server_id(m)?;
    if address.is_unspecified() || address.is_broadcast() || address.is_multicast() {
        return None;
    }
    let prefix_len = match m.opts().get(OptionCode::SubnetMask) {
        Some(DhcpOption::SubnetMask(mask)) => Some(u32::from(*mask).leading_ones() as u8),
        _ => None,
    }
    .filter(|l| (8..=32).contains(l))
    .unwrap_or(24);
    let gateway = match m.opts().get(OptionCode::Router) {
        Some(DhcpOption::Router(r)) => r.first().copied().filter(|g| !g.is_unspecified()),
        _ => None,
    };
    let dns = match m.opts().get(OptionCode::DomainNameServer) {
        Some(DhcpOption::DomainNameServer(d)) => d.clone(),
        _ => Vec::new(),
    };
    let domain = match m.opts().get(OptionCode::DomainName) {
        Some(DhcpOption::DomainName(d)) if !d.is_empty() => Some(d.clone()),
        _ => None,
    };
    let lease_secs = match m.opts().get(OptionCode::AddressLeaseTime) {
        Some(DhcpOption::AddressLeaseTime(t)) => (*t).max(10),
        _ => 3600,
    };
    let t1_secs = match m.opts().get(OptionCode::Renewal) {
        Some(DhcpOption::Renewal(t)) if *t < lease_secs => *t,
        _ => lease_secs / 2,
    };
    let t2_secs = match m.opts().get(OptionCode::Rebinding) {
        Some(DhcpOption::Rebinding(t)) if *t < lease_secs && *t >= t1_secs => *t,
        _ => ((lease_secs as u64 * 7 / 8) as u32).max(t1_secs),
    };
    Some(WanLease {
        address,
        prefix_len,
        gateway,
        dns,
        domain,
        server,
        lease_secs,
        t1_secs,
        t2_secs,
        acquired_ms: now_ms,
    })
}

impl Client {
    /// A client that will start from `remembered` (INIT-REBOOT) if it has
    /// not expired by the time it starts, else from INIT.
    pub fn new(remembered: Option<WanLease>) -> Client {
        Client {
            phase: Phase::Init,
            lease: remembered,
            offer: None,
            configured: false,
            xid: 0,
            tries: 0,
            began_ms: 0,
            next_at: 0,
        }
    }

    /// A client restarted while its remembered lease is still valid and
    /// still configured on the WAN (RFC 2131 3.2 lets it keep using it until
    /// a server says otherwise): it confirms the lease, and a NAK
    /// deconfigures it.
    pub fn resume(lease: WanLease) -> Client {
        Client {
            configured: true,
            ..Client::new(Some(lease))
        }
    }

    /// Handles one event. `xid` is a fresh random number, used if this step
    /// begins a new transaction.
    pub fn step(&mut self, id: &Identity, ev: Event, now: u64, xid: u32) -> Vec<Action> {
        match ev {
            Event::Start => match &self.lease {
                Some(l) if l.expires_at() > now => self.reboot(id, now, xid),
                _ => self.discover(id, now, xid),
            },
            Event::LinkDown => vec![Action::Log("WAN link down".into())],
            // Maybe moved to another network: confirm the lease, or start over.
            Event::LinkUp => match &self.lease {
                Some(l) if l.expires_at() > now => self.reboot(id, now, xid),
                _ => self.discover(id, now, xid),
            },
            Event::Timeout if now < self.next_at => Vec::new(),
            Event::Timeout => self.timeout(id, now, xid),
            Event::Packet(m) => self.packet(id, m, now, xid),
        }
    }

    fn timeout(&mut self, id: &Identity, now: u64, xid: u32) -> Vec<Action> {
        match self.phase {
            Phase::Init => self.discover(id, now, xid),
            Phase::Selecting => {
                self.tries += 1;
                self.next_at = now + backoff(self.tries);
                vec![Action::Broadcast(self.discover_msg(id, now))]
            }
            Phase::Requesting => {
                if self.tries >= REQUEST_TRIES {
                    let mut a = vec![Action::Log("no ACK to our REQUEST: starting over".into())];
                    a.extend(self.discover(id, now, xid));
                    return a;
                }
                self.tries += 1;
                self.next_at = now + backoff(self.tries);
                let offer = self.offer.clone().expect("Requesting has an offer");
                vec![Action::Broadcast(self.request_msg(id, now, &offer))]
            }
            Phase::InitReboot => {
                if self.tries < REQUEST_TRIES {
                    self.tries += 1;
                    self.next_at = now + backoff(self.tries);
                    let l = self.lease.clone().expect("InitReboot has a lease");
                    return vec![Action::Broadcast(self.reboot_msg(id, now, &l))];
                }
                // RFC 2131 3.2: no answer; keep using the unexpired lease.
                match self.lease.clone() {
                    Some(l) if l.expires_at() > now => {
                        let mut a = vec![Action::Log(format!(
                            "no server answered; keeping {}/{} until it expires",
                            l.address, l.prefix_len
                        ))];
                        a.extend(self.bind(l));
                        a
                    }
                    _ => self.discover(id, now, xid),
                }
            }
            Phase::Bound | Phase::Renewing | Phase::Rebinding => self.renew_timer(id, now, xid),
        }
    }

    /// T1, T2 and expiry, and the retransmissions between them.
    fn renew_timer(&mut self, id: &Identity, now: u64, xid: u32) -> Vec<Action> {
        let Some(l) = self.lease.clone() else {
            return self.discover(id, now, xid);
        };
        if now >= l.expires_at() {
            let mut a = vec![Action::Log(format!("lease on {} expired", l.address))];
            a.extend(self.drop_lease());
            a.extend(self.discover(id, now, xid));
            return a;
        }
        let msg = |c: &mut Client| c.renew_msg(id, now, &l);
        if now >= l.t2_at() {
            if self.phase != Phase::Rebinding {
                self.phase = Phase::Rebinding;
                self.new_transaction(now, xid);
            }
            self.next_at = now + MIN_RENEW_RETRY_MS.max((l.expires_at() - now) / 2);
            self.next_at = self.next_at.min(l.expires_at());
            return vec![Action::Broadcast(msg(self))];
        }
        if self.phase == Phase::Bound {
            self.phase = Phase::Renewing;
            self.new_transaction(now, xid);
        }
        self.next_at = now + MIN_RENEW_RETRY_MS.max((l.t2_at() - now) / 2);
        self.next_at = self.next_at.min(l.t2_at());
        vec![Action::Unicast(msg(self), l.server)]
    }

    fn packet(&mut self, id: &Identity, m: Message, now: u64, xid: u32) -> Vec<Action> {
        if m.opcode() != Opcode::BootReply
            || m.xid() != self.xid
            || m.chaddr().get(..6) != Some(&id.mac[..])
        {
            return Vec::new();
        }
        let kind = m.opts().msg_type();
        match (self.phase, kind) {
            (Phase::Selecting, Some(MessageType::Offer)) => {
                let Some(offer) = lease_from(&m, now) else {
                    return Vec::new();
                };
                let req = self.request_msg(id, now, &offer);
                self.phase = Phase::Requesting;
                self.tries = 1;
                self.next_at = now + backoff(1);
                let log = format!("offer of {} from {}", offer.address, offer.server);
                self.offer = Some(offer);
                vec![Action::Log(log), Action::Broadcast(req)]
            }
            (
                Phase::Requesting | Phase::InitReboot | Phase::Renewing | Phase::Rebinding,
                Some(MessageType::Ack),
            ) => {
                let Some(mut l) = lease_from(&m, now) else {
                    return Vec::new();
                };
                if self.phase == Phase::Requesting {
                    if let Some(o) = &self.offer {
                        if o.address != l.address {
                            return Vec::new();
                        }
                    }
                }
                l.acquired_ms = now;
                let renewed = matches!(self.phase, Phase::Renewing | Phase::Rebinding)
                    && self.lease.as_ref().map(|o| o.address) == Some(l.address);
                let mut a = vec![Action::Log(if renewed {
                    format!("renewed {} for {} s", l.address, l.lease_secs)
                } else {
                    format!(
                        "leased {}/{} from {} for {} s (gateway {})",
                        l.address,
                        l.prefix_len,
                        l.server,
                        l.lease_secs,
                        l.gateway.map(|g| g.to_string()).unwrap_or("none".into())
                    )
                })];
                a.extend(self.bind(l));
                a
            }
            (
                Phase::Requesting | Phase::InitReboot | Phase::Renewing | Phase::Rebinding,
                Some(MessageType::Nak),
            ) => {
                let mut a = vec![Action::Log(format!(
                    "server {} refused (NAK){}: starting over",
                    server_id(&m).map(|s| s.to_string()).unwrap_or("?".into()),
                    self.lease
                        .as_ref()
                        .map(|l| format!(" {}", l.address))
                        .unwrap_or_default()
                ))];
                a.extend(self.drop_lease());
                a.extend(self.discover(id, now, xid));
                a
            }
            _ => Vec::new(),
        }
    }

    fn bind(&mut self, l: WanLease) -> Vec<Action> {
        self.phase = Phase::Bound;
        self.next_at = l.t1_at();
        self.offer = None;
        self.tries = 0;
        self.configured = true;
        self.lease = Some(l.clone());
        vec![Action::Configure(l)]
    }

    fn drop_lease(&mut self) -> Vec<Action> {
        self.lease = None;
        self.offer = None;
        if std::mem::take(&mut self.configured) {
            vec![Action::Deconfigure]
        } else {
            Vec::new()
        }
    }

    fn new_transaction(&mut self, now: u64, xid: u32) {
        self.xid = xid;
        self.tries = 1;
        self.began_ms = now;
    }

    fn discover(&mut self, id: &Identity, now: u64, xid: u32) -> Vec<Action> {
        self.phase = Phase::Selecting;
        self.offer = None;
        self.new_transaction(now, xid);
        self.next_at = now + backoff(1);
        vec![Action::Broadcast(self.discover_msg(id, now))]
    }

    fn reboot(&mut self, id: &Identity, now: u64, xid: u32) -> Vec<Action> {
        let l = self.lease.clone().expect("reboot needs a lease");
        self.phase = Phase::InitReboot;
        self.new_transaction(now, xid);
        self.next_at = now + backoff(1);
        vec![
            Action::Log(format!("confirming the lease on {}", l.address)),
            Action::Broadcast(self.reboot_msg(id, now, &l)),
        ]
    }

    fn base(&self, id: &Identity, now: u64, kind: MessageType, ciaddr: Ipv4Addr) -> Message {
        let mut m = Message::new_with_id(
            self.xid,
            ciaddr,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &id.mac,
        );
        m.set_opcode(Opcode::BootRequest);
        m.set_secs(((now.saturating_sub(self.began_ms)) / 1000).min(u16::MAX as u64) as u16);
        // Without an address we can only hear broadcasts.
        if ciaddr.is_unspecified() {
            m.set_flags(Flags::default().set_broadcast());
        }
        let o = m.opts_mut();
        o.insert(DhcpOption::MessageType(kind));
        o.insert(DhcpOption::ParameterRequestList(vec![
            OptionCode::SubnetMask,
            OptionCode::Router,
            OptionCode::DomainNameServer,
            OptionCode::DomainName,
            OptionCode::InterfaceMtu,
            OptionCode::AddressLeaseTime,
            OptionCode::ServerIdentifier,
            OptionCode::Renewal,
            OptionCode::Rebinding,
        ]));
        if let Some(h) = &id.hostname {
            o.insert(DhcpOption::Hostname(h.clone()));
        }
        m
    }

    fn discover_msg(&self, id: &Identity, now: u64) -> Message {
        let mut m = self.base(id, now, MessageType::Discover, Ipv4Addr::UNSPECIFIED);
        if let Some(l) = &self.lease {
            m.opts_mut()
                .insert(DhcpOption::RequestedIpAddress(l.address));
        }
        m
    }

    /// REQUEST in SELECTING: names the chosen server and address.
    fn request_msg(&self, id: &Identity, now: u64, offer: &WanLease) -> Message {
        let mut m = self.base(id, now, MessageType::Request, Ipv4Addr::UNSPECIFIED);
        m.opts_mut()
            .insert(DhcpOption::ServerIdentifier(offer.server));
        m.opts_mut()
            .insert(DhcpOption::RequestedIpAddress(offer.address));
        m
    }

    /// REQUEST in INIT-REBOOT: the remembered address, no server named.
    fn reboot_msg(&self, id: &Identity, now: u64, l: &WanLease) -> Message {
        let mut m = self.base(id, now, MessageType::Request, Ipv4Addr::UNSPECIFIED);
        m.opts_mut()
            .insert(DhcpOption::RequestedIpAddress(l.address));
        m
    }

    /// REQUEST in RENEWING/REBINDING: the address in ciaddr, nothing else.
    fn renew_msg(&self, id: &Identity, now: u64, l: &WanLease) -> Message {
        self.base(id, now, MessageType::Request, l.address)
    }
}

#[cfg(test)]
mod tests;
