//! The lease table of one LAN: plain data, changed only through `Change`s so
//! that what the handler decides, what is journaled and what is replayed
//! after a restart are the same thing.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LeaseState {
    /// Held for a client between OFFER and REQUEST; never written to disk.
    Offered,
    Bound,
    /// Given back by the client (RELEASE): free, but kept for its old owner.
    Released,
    /// Reported in use by someone else (DECLINE): quarantined until `expires`.
    Declined,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub address: Ipv4Addr,
    /// Option 61 when the client sent one, else its hardware address (hex).
    pub client: String,
    pub mac: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Unix seconds.
    pub expires: u64,
    pub state: LeaseState,
}

impl Lease {
    pub fn expired(&self, now: u64) -> bool {
        self.expires <= now
    }

    /// Whether the lease keeps its address from everyone else right now.
    pub fn holds(&self, now: u64) -> bool {
        match self.state {
            LeaseState::Released => false,
            _ => !self.expired(now),
        }
    }

    /// Offers only live in memory: a restart forgets them harmlessly.
    pub fn durable(&self) -> bool {
        self.state != LeaseState::Offered
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Put(Lease),
    Remove(Ipv4Addr),
}

impl Change {
    pub fn durable(&self) -> bool {
        match self {
            Change::Put(l) => l.durable(),
            Change::Remove(_) => true,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct LeaseTable {
    by_addr: BTreeMap<Ipv4Addr, Lease>,
    /// Client key -> its address; declined entries have no owner.
    by_client: HashMap<String, Ipv4Addr>,
    /// Every address from the pool's start up to here has an entry: a
    /// search for an unused one may start here.
    free_from: u32,
}

impl LeaseTable {
    pub fn new(pool_start: Ipv4Addr) -> LeaseTable {
        LeaseTable {
            free_from: pool_start.into(),
            ..Default::default()
        }
    }

    pub fn with_leases(
        pool_start: Ipv4Addr,
        leases: impl IntoIterator<Item = Lease>,
    ) -> LeaseTable {
        let mut t = LeaseTable::new(pool_start);
        for l in leases {
            t.apply(Change::Put(l));
        }
        t
    }

    pub fn get(&self, ip: Ipv4Addr) -> Option<&Lease> {
        self.by_addr.get(&ip)
    }

    pub fn of_client(&self, client: &str) -> Option<&Lease> {
        self.by_client
            .get(client)
            .and_then(|ip| self.by_addr.get(ip))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Lease> {
        self.by_addr.values()
    }

    pub fn len(&self) -> usize {
        self.by_addr.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_addr.is_empty()
    }

    /// The lowest address in `start..=end` with no entry that `skip` does
    /// not exclude.
    pub fn first_unused(
        &self,
        start: Ipv4Addr,
        end: Ipv4Addr,
        skip: impl Fn(Ipv4Addr) -> bool,
    ) -> Option<Ipv4Addr> {
        let (start, end) = (u32::from(start).max(self.free_from), u32::from(end));
        if start > end {
            return None;
        }
        let mut taken = self
            .by_addr
            .range(Ipv4Addr::from(start)..=Ipv4Addr::from(end))
            .map(|(ip, _)| u32::from(*ip))
            .peekable();
        let mut candidate = start;
        while candidate <= end {
            match taken.peek() {
                Some(&t) if t == candidate => {
                    taken.next();
                }
                _ if skip(Ipv4Addr::from(candidate)) => {}
                _ => return Some(Ipv4Addr::from(candidate)),
            }
            candidate = candidate.checked_add(1)?;
        }
        None
    }

    pub fn apply(&mut self, c: Change) {
        match c {
            Change::Put(l) => {
                let ip = l.address;
                if let Some(old) = self.by_addr.get(&ip) {
                    if self.by_client.get(&old.client) == Some(&ip) {
                        self.by_client.remove(&old.client);
                    }
                }
                if l.state != LeaseState::Declined {
                    // One address per client: a stale entry elsewhere loses its owner link.
                    self.by_client.insert(l.client.clone(), ip);
                }
                self.by_addr.insert(ip, l);
                if u32::from(ip) == self.free_from {
                    while self.by_addr.contains_key(&Ipv4Addr::from(self.free_from)) {
                        self.free_from = self.free_from.saturating_add(1);
                    }
                }
            }
            Change::Remove(ip) => {
                if let Some(old) = self.by_addr.remove(&ip) {
                    if self.by_client.get(&old.client) == Some(&ip) {
                        self.by_client.remove(&old.client);
                    }
                }
                self.free_from = self.free_from.min(u32::from(ip));
            }
        }
    }

    /// Durable leases only, in address order: what the snapshot holds.
    pub fn durable(&self) -> Vec<Lease> {
        self.by_addr
            .values()
            .filter(|l| l.durable())
            .cloned()
            .collect()
    }
}
