//! Config file -> validated model, plus the inputs the pure core needs from
//! the outside world (public keys of the key files; endpoints are resolved
//! by the caller: `resolve_endpoints` once, or the agent's resolver).

use crate::core::config;
use crate::core::desired::Inputs;
use crate::core::model::{self, Model};
use crate::keys;
use crate::log;
use crate::resolve;
use std::fmt;
use std::path::{Path, PathBuf};

/// Why a config did not load. Callers act on the kind: a file that cannot
/// be read is no fault of its content (the agent keeps the config in force
/// until the file changes again), an invalid one lists every problem.
#[derive(Debug)]
pub enum LoadError {
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Every problem, each naming its JSON path or key file.
    Invalid(Vec<String>),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Read { path, error } => write!(f, "cannot read {}: {error}", path.display()),
            LoadError::Invalid(errs) => write!(f, "{}", errs.join("; ")),
        }
    }
}

/// Reads, parses and validates; key files are checked too (mode, content).
pub fn load(path: &Path) -> Result<(Model, Inputs), LoadError> {
    let text = std::fs::read_to_string(path).map_err(|error| LoadError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    load_text(&text).map_err(LoadError::Invalid)
}

/// [`load`] of a config's text (a new version checked before it is written).
pub fn load_text(text: &str) -> Result<(Model, Inputs), Vec<String>> {
    let cfg = config::parse(text).map_err(|e| vec![e])?;
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
        for (j, peer) in p.peers.iter().enumerate() {
            let Some(f) = &peer.preshared_key_file else {
                continue;
            };
            match keys::load_private_key(f) {
                Ok(k) => {
                    if let Some(id) = keys::psk_fingerprint(k.key()) {
                        inputs.preshared_key_ids.insert((p.name.clone(), j), id);
                    }
                }
                Err(e) => errors.push(format!(
                    "portals.{}.peers[{j}].preshared_key_file: {e}",
                    p.name
                )),
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
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

/// Resolves every peer endpoint now, for the one-shot commands (`plan`,
/// `apply`); the agent resolves on a thread of its own (resolve.rs). A name
/// that does not resolve is logged and left out: the device keeps its
/// current endpoint.
pub fn resolve_endpoints(m: &Model, inputs: &mut Inputs) {
    inputs.endpoints = resolve::literal_endpoints(m);
    for t in resolve::targets(m) {
        match resolve::resolve(&t.host, t.port) {
            Ok(a) => {
                inputs.endpoints.insert(t.key, a);
            }
            Err(err) => log::warn(&format!(
                "portals.{}.peers[{}].endpoint: cannot resolve {}: {err}",
                t.key.0, t.key.1, t.host
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;

    #[test]
    fn an_unreadable_file_and_an_invalid_one_are_told_apart() {
        let d = TestDir::new("load-kinds");
        let missing = d.path().join("none.json");
        match load(&missing) {
            Err(LoadError::Read { path, error }) => {
                assert_eq!(path, missing);
                assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("{other:?}"),
        }
        let bad = d.path().join("bad.json");
        std::fs::write(
            &bad,
            r#"{ "wan": { "interface": "eth0" }, "lans": { "x": 1 } }"#,
        )
        .unwrap();
        match load(&bad) {
            Err(LoadError::Invalid(errs)) => {
                assert!(
                    errs[0].starts_with("lans.x: expected an object"),
                    "{errs:?}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
}
