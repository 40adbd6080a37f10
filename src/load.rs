//! Config file -> validated model, plus the inputs the pure core needs from
//! the outside world (public keys of the key files, resolved endpoints).

use crate::config;
use crate::desired::Inputs;
use crate::keys;
use crate::log;
use crate::model::{self, Model};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::Path;

/// Reads, parses and validates; key files are checked too (mode, content).
/// Every problem is returned, each naming its field or file.
pub fn load(path: &Path) -> Result<(Model, Inputs), Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("cannot read {}: {e}", path.display())])?;
    let cfg = config::parse(&text).map_err(|e| vec![e])?;
    let m = model::validate_with(&cfg, &read_split_files(&cfg))
        .map_err(|errs| errs.iter().map(|e| e.to_string()).collect::<Vec<_>>())?;
    let mut inputs = Inputs::default();
    let mut errors = Vec::new();
    for p in &m.portals {
        match keys::load_private_key(&p.private_key_file) {
            Ok(k) => {
                let public = k.public_base64();
                if let Some(j) = p.peers.iter().position(|peer| peer.public_key == public) {
                    errors.push(format!(
                        "portals.{}.peers[{j}].public_key: is this portal's own public key",
                        p.name
                    ));
                }
                inputs.public_keys.insert(p.name.clone(), public);
            }
            Err(e) => errors.push(format!("portals.{}.private_key_file: {e}", p.name)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    resolve_endpoints(&m, &mut inputs);
    Ok((m, inputs))
}

/// The split list files the config names, read now (the model stays pure).
fn read_split_files(cfg: &config::Config) -> model::split::Files {
    model::split::files_named(cfg)
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f)
                .map_err(|e| format!("cannot read {}: {e}", f.display()));
            (f, text)
        })
        .collect()
}

/// Resolves every peer endpoint now. A name that does not resolve is logged
/// and left out: the device keeps its current endpoint until it does.
pub fn resolve_endpoints(m: &Model, inputs: &mut Inputs) {
    inputs.endpoints.clear();
    for p in &m.portals {
        for (i, peer) in p.peers.iter().enumerate() {
            let Some(e) = &peer.endpoint else { continue };
            let resolved = match e.host.parse::<IpAddr>() {
                Ok(ip) => Some(SocketAddr::new(ip, e.port)),
                Err(_) => match (e.host.as_str(), e.port).to_socket_addrs() {
                    // Prefer IPv4: the WAN is IPv4 today.
                    Ok(addrs) => {
                        let all: Vec<SocketAddr> = addrs.collect();
                        all.iter().find(|a| a.is_ipv4()).or(all.first()).copied()
                    }
                    Err(err) => {
                        log::warn(&format!(
                            "portals.{}.peers[{i}].endpoint: cannot resolve {e}: {err}",
                            p.name
                        ));
                        None
                    }
                },
            };
            if let Some(a) = resolved {
                inputs.endpoints.insert((p.name.clone(), i), a);
            }
        }
    }
}
