//! DHCPv4 on dhcproto: the LAN server (pure handler in `server`, sockets in
//! `service`), its lease table and store.

pub mod client;
pub mod lease;
pub mod ratelimit;
pub mod server;
pub mod service;
pub mod store;
pub mod wan;
pub mod wire;

use crate::model::Model;
use lease::Lease;
use std::path::Path;

/// The leases on record for each LAN with a DHCP server, as on disk: what
/// `portal leases` prints and the status page shows. Offers in flight are
/// not on disk and not listed.
pub fn leases(m: &Model, state_dir: &Path) -> Vec<(String, Vec<Lease>)> {
    m.lans
        .iter()
        .filter_map(|l| {
            let cfg = l.dhcp.as_ref()?;
            let table = store::read(state_dir, &l.name, cfg.pool_start);
            Some((l.name.clone(), table.durable()))
        })
        .collect()
}
