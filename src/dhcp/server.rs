//! The DHCPv4 server's decisions (RFC 2131 section 4.3), as a pure function:
//! (request, lease table, now) -> (reply and where it goes, lease changes).
//! No sockets, no clock, no disk: the service around it does those.

use super::lease::{Change, Lease, LeaseState, LeaseTable};
use super::wire::{mac, mac_text, message_type, server_id};
use crate::core::model::DhcpServer;
use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode};
use std::net::Ipv4Addr;

/// How long an OFFER holds its address for the client.
pub const OFFER_HOLD: u64 = 60;
/// How long a DECLINEd address stays out of the pool.
pub const DECLINE_HOLD: u64 = 3600;

/// Where a reply goes (RFC 2131 section 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// 255.255.255.255:68 on the LAN.
    Broadcast,
    /// The client's own address (it has one: renewing, INFORM), port 68.
    Client(Ipv4Addr),
    /// The relay agent's address, port 67.
    Relay(Ipv4Addr),
    /// The address being offered, to a client that cannot answer ARP yet:
    /// sent to its hardware address directly.
    Hardware(Ipv4Addr, [u8; 6]),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub reply: Option<(Message, Dest)>,
    pub changes: Vec<Change>,
    /// A line for the log when something worth a person's attention happened.
    pub log: Option<String>,
}

impl Outcome {
    fn silent() -> Outcome {
        Outcome::default()
    }

    fn logged(mut self, line: String) -> Outcome {
        self.log = Some(line);
        self
    }
}

/// Who is asking: option 61 if sent, else the hardware address.
pub fn client_key(req: &Message) -> String {
    match req.opts().get(OptionCode::ClientIdentifier) {
        Some(DhcpOption::ClientIdentifier(id)) if !id.is_empty() => {
            format!("id:{}", mac_text(id))
        }
        _ => mac_text(req.chaddr()),
    }
}

fn requested_ip(req: &Message) -> Option<Ipv4Addr> {
    match req.opts().get(OptionCode::RequestedIpAddress) {
        Some(DhcpOption::RequestedIpAddress(ip)) => Some(*ip),
        _ => None,
    }
}

/// Option 12, kept only if it is a plain host name label.
fn host_name(req: &Message) -> Option<String> {
    match req.opts().get(OptionCode::Hostname) {
        Some(DhcpOption::Hostname(h)) => {
            let h = h.trim_end_matches('\0');
            let ok = !h.is_empty()
                && h.len() <= 63
                && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            ok.then(|| h.to_string())
        }
        _ => None,
    }
}

pub fn handle(cfg: &DhcpServer, table: &LeaseTable, req: &Message, now: u64) -> Outcome {
    if req.opcode() != Opcode::BootRequest || req.hlen() != 6 {
        return Outcome::silent();
    }
    // A relayed request names its subnet by giaddr; one from elsewhere is not ours.
    if !req.giaddr().is_unspecified() && !cfg.on_subnet(req.giaddr()) {
        return Outcome::silent();
    }
    let ctx = Ctx {
        cfg,
        table,
        req,
        now,
        client: client_key(req),
        mac: mac(req),
    };
    match message_type(req) {
        MessageType::Discover => ctx.discover(),
        MessageType::Request => ctx.request(),
        MessageType::Decline => ctx.decline(),
        MessageType::Release => ctx.release(),
        MessageType::Inform => ctx.inform(),
        _ => Outcome::silent(),
    }
}

struct Ctx<'a> {
    cfg: &'a DhcpServer,
    table: &'a LeaseTable,
    req: &'a Message,
    now: u64,
    client: String,
    mac: [u8; 6],
}

impl Ctx<'_> {
    fn who(&self) -> String {
        match host_name(self.req) {
            Some(h) => format!("{} ({h})", mac_text(&self.mac)),
            None => mac_text(&self.mac),
        }
    }

    /// May this client hold `ip` now?
    fn may_hold(&self, ip: Ipv4Addr) -> bool {
        if !self.cfg.assignable(ip) {
            return false;
        }
        if let Some(st) = self.cfg.static_for_mac(&self.mac) {
            return st.address == ip;
        }
        if !self.cfg.in_pool(ip) || self.cfg.static_for_addr(ip).is_some() {
            return false;
        }
        match self.table.get(ip) {
            None => true,
            Some(l) if l.state == LeaseState::Declined => !l.holds(self.now),
            Some(l) => l.client == self.client || !l.holds(self.now),
        }
    }

    /// The address to offer: RFC 2131 4.3.1's order of preference.
    fn choose(&self) -> Option<Ipv4Addr> {
        if let Some(st) = self.cfg.static_for_mac(&self.mac) {
            return Some(st.address);
        }
        if let Some(l) = self.table.of_client(&self.client) {
            if self.may_hold(l.address) {
                return Some(l.address);
            }
        }
        if let Some(ip) = requested_ip(self.req) {
            if self.may_hold(ip) {
                return Some(ip);
            }
        }
        let cfg = self.cfg;
        let skip = |ip: Ipv4Addr| !cfg.assignable(ip) || cfg.static_for_addr(ip).is_some();
        if let Some(ip) = self.table.first_unused(cfg.pool_start, cfg.pool_end, skip) {
            return Some(ip);
        }
        // Every address has had an owner: take the one free the longest.
        self.table
            .iter()
            .filter(|l| cfg.in_pool(l.address) && !l.holds(self.now) && !skip(l.address))
            .min_by_key(|l| l.expires)
            .map(|l| l.address)
    }

    /// Changes that give `ip` to this client, dropping its entry elsewhere.
    fn take(&self, ip: Ipv4Addr, state: LeaseState, expires: u64) -> Vec<Change> {
        let mut changes = Vec::new();
        if let Some(old) = self.table.of_client(&self.client) {
            if old.address != ip {
                changes.push(Change::Remove(old.address));
            }
        }
        let hostname = host_name(self.req).or_else(|| {
            self.cfg
                .static_for_mac(&self.mac)
                .and_then(|s| s.hostname.clone())
        });
        changes.push(Change::Put(Lease {
            address: ip,
            client: self.client.clone(),
            mac: mac_text(&self.mac),
            hostname,
            expires,
            state,
        }));
        changes
    }

    fn discover(&self) -> Outcome {
        let Some(ip) = self.choose() else {
            return Outcome::silent().logged(format!(
                "pool exhausted: no address to offer {}",
                self.who()
            ));
        };
        let mut changes = Vec::new();
        // A client's own binding already reserves the address; only a new
        // address needs an offer entry to keep others off it.
        let own = self.table.of_client(&self.client).map(|l| l.address) == Some(ip)
            && self
                .table
                .get(ip)
                .is_some_and(|l| l.state == LeaseState::Bound && l.holds(self.now));
        if !own {
            changes = self.take(ip, LeaseState::Offered, self.now + OFFER_HOLD);
        }
        let reply = self.reply(MessageType::Offer, ip, true);
        Outcome {
            reply: Some((reply, self.dest(ip, false))),
            changes,
            log: None,
        }
    }

    fn request(&self) -> Outcome {
        let ciaddr = self.req.ciaddr();
        let asked = match (server_id(self.req), requested_ip(self.req)) {
            // SELECTING: the client picked a server.
            (Some(sid), _) if sid != self.cfg.router => {
                // Not us: let go of what we offered it.
                return match self.table.of_client(&self.client) {
                    Some(l) if l.state == LeaseState::Offered => Outcome {
                        changes: vec![Change::Remove(l.address)],
                        ..Outcome::silent()
                    },
                    _ => Outcome::silent(),
                };
            }
            (Some(_), Some(ip)) => ip,
            (Some(_), None) => return Outcome::silent(),
            // INIT-REBOOT: a client that remembers its address.
            (None, Some(ip)) if ciaddr.is_unspecified() => ip,
            // RENEWING (unicast) or REBINDING (broadcast).
            (None, _) if !ciaddr.is_unspecified() => ciaddr,
            (None, _) => return Outcome::silent(),
        };
        if !self.may_hold(asked) {
            let why = if !self.cfg.on_subnet(asked) {
                "not on this LAN"
            } else {
                "not available to it"
            };
            return self
                .nak()
                .logged(format!("NAK {asked} to {}: {why}", self.who()));
        }
        let previous = self.table.get(asked).filter(|l| l.client == self.client);
        let log = match previous {
            Some(l) if l.state == LeaseState::Bound => None,
            _ => Some(format!("lease {asked} to {}", self.who())),
        };
        let changes = self.take(
            asked,
            LeaseState::Bound,
            self.now + self.cfg.lease_time as u64,
        );
        Outcome {
            reply: Some((
                self.reply(MessageType::Ack, asked, true),
                self.dest(asked, false),
            )),
            changes,
            log,
        }
    }

    fn decline(&self) -> Outcome {
        if server_id(self.req) != Some(self.cfg.router) {
            return Outcome::silent();
        }
        let Some(ip) = requested_ip(self.req) else {
            return Outcome::silent();
        };
        match self.table.get(ip) {
            Some(l) if l.client == self.client => {}
            _ => return Outcome::silent(),
        }
        let changes = vec![Change::Put(Lease {
            address: ip,
            client: String::new(),
            mac: mac_text(&self.mac),
            hostname: None,
            expires: self.now + DECLINE_HOLD,
            state: LeaseState::Declined,
        })];
        Outcome {
            changes,
            ..Outcome::silent()
        }
        .logged(format!(
            "{} says {ip} is already in use on the LAN: kept out of the pool for {DECLINE_HOLD} s",
            self.who()
        ))
    }

    fn release(&self) -> Outcome {
        if server_id(self.req) != Some(self.cfg.router) {
            return Outcome::silent();
        }
        let ip = self.req.ciaddr();
        match self.table.get(ip) {
            Some(l) if l.client == self.client && l.state == LeaseState::Bound => {
                let mut l = l.clone();
                l.state = LeaseState::Released;
                l.expires = self.now;
                Outcome {
                    changes: vec![Change::Put(l)],
                    ..Outcome::silent()
                }
                .logged(format!("{} released {ip}", self.who()))
            }
            _ => Outcome::silent(),
        }
    }

    /// The client has an address already and only wants the options.
    fn inform(&self) -> Outcome {
        let ciaddr = self.req.ciaddr();
        if !self.cfg.on_subnet(ciaddr) && self.req.giaddr().is_unspecified() {
            return Outcome::silent();
        }
        let reply = self.reply(MessageType::Ack, Ipv4Addr::UNSPECIFIED, false);
        let dest = match self.req.giaddr() {
            g if !g.is_unspecified() => Dest::Relay(g),
            _ => Dest::Client(ciaddr),
        };
        Outcome {
            reply: Some((reply, dest)),
            ..Outcome::silent()
        }
    }

    fn nak(&self) -> Outcome {
        let mut m = self.base(MessageType::Nak, Ipv4Addr::UNSPECIFIED);
        m.set_ciaddr(Ipv4Addr::UNSPECIFIED);
        if !self.req.giaddr().is_unspecified() {
            // The relay must broadcast it on the client's segment.
            m.set_flags(m.flags().set_broadcast());
        }
        Outcome {
            reply: Some((m, self.dest(Ipv4Addr::UNSPECIFIED, true))),
            ..Outcome::silent()
        }
    }

    fn dest(&self, yiaddr: Ipv4Addr, nak: bool) -> Dest {
        let r = self.req;
        if !r.giaddr().is_unspecified() {
            Dest::Relay(r.giaddr())
        } else if nak {
            Dest::Broadcast
        } else if !r.ciaddr().is_unspecified() {
            Dest::Client(r.ciaddr())
        } else if r.flags().broadcast() {
            Dest::Broadcast
        } else {
            Dest::Hardware(yiaddr, self.mac)
        }
    }

    fn base(&self, kind: MessageType, yiaddr: Ipv4Addr) -> Message {
        let r = self.req;
        let mut m = Message::new_with_id(
            r.xid(),
            r.ciaddr(),
            yiaddr,
            Ipv4Addr::UNSPECIFIED,
            r.giaddr(),
            r.chaddr(),
        );
        m.set_opcode(Opcode::BootReply).set_flags(r.flags());
        let o = m.opts_mut();
        o.insert(DhcpOption::MessageType(kind));
        o.insert(DhcpOption::ServerIdentifier(self.cfg.router));
        // RFC 6842: echo the client identifier.
        if let Some(id @ DhcpOption::ClientIdentifier(_)) =
            r.opts().get(OptionCode::ClientIdentifier)
        {
            o.insert(id.clone());
        }
        m
    }

    fn reply(&self, kind: MessageType, yiaddr: Ipv4Addr, with_lease: bool) -> Message {
        let cfg = self.cfg;
        let mut m = self.base(kind, yiaddr);
        let o = m.opts_mut();
        if with_lease {
            let t = cfg.lease_time;
            o.insert(DhcpOption::AddressLeaseTime(t));
            o.insert(DhcpOption::Renewal(t / 2));
            o.insert(DhcpOption::Rebinding((t as u64 * 7 / 8) as u32));
        }
        o.insert(DhcpOption::SubnetMask(cfg.mask()));
        o.insert(DhcpOption::Router(vec![cfg.router]));
        o.insert(DhcpOption::BroadcastAddr(cfg.broadcast()));
        if !cfg.dns.is_empty() {
            o.insert(DhcpOption::DomainNameServer(cfg.dns.clone()));
        }
        if let Some(d) = &cfg.domain {
            o.insert(DhcpOption::DomainName(d.clone()));
        }
        if let Some(mtu) = cfg.mtu {
            o.insert(DhcpOption::InterfaceMtu(mtu));
        }
        m
    }
}

#[cfg(test)]
mod tests;
