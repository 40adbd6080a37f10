//! The LAN DNS forwarder: a pure core (`forwarder`: events in, actions
//! out) over a hand-written reader of the header and question (`wire`),
//! and a thread per LAN around it (`service`). The core keeps answers in a
//! cache of its own (`cache`, over the record walker `records`).

pub mod cache;
pub mod forwarder;
pub mod records;
pub mod service;
pub mod tcp;
pub mod wire;

#[cfg(test)]
mod cache_tests;
#[cfg(test)]
mod tests;
