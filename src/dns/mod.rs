//! The LAN DNS forwarder: a pure core (`forwarder`: events in, actions
//! out) over a hand-written reader of the header and question (`wire`),
//! and a thread per LAN around it (`service`).

pub mod forwarder;
pub mod service;
pub mod tcp;
pub mod wire;

#[cfg(test)]
mod tests;
