//! The pure core: config -> validated model -> desired state -> diff. It
//! reads no files and talks to no kernel (tests/module_graph.rs checks that
//! it imports nothing outside itself), so all of it is tested as plain data.
//!
//! - `config`: the JSON file as written by a person (serde);
//! - `model`: the validated config, every error naming its JSON path;
//! - `desired`: the kernel state the model asks for (links, addresses,
//!   routes, rules, WireGuard, sysctls, the nft table);
//! - `firewall` and `ruleset`: that nft table, built and encoded;
//! - `diff`: the changes from an observed kernel state to the desired one,
//!   in a safe order, printable as `ip`/`wg`/`nft` commands;
//! - `cidr`: prefixes.

pub mod cidr;
pub mod config;
pub mod desired;
pub mod diff;
pub mod firewall;
pub mod model;
pub mod ruleset;
