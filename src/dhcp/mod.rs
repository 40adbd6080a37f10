//! DHCPv4 on dhcproto: the LAN server (pure handler in `server`, sockets in
//! `service`), its lease table and store.

pub mod lease;
pub mod ratelimit;
pub mod server;
pub mod store;
pub mod wire;
