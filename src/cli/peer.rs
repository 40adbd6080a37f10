//! The commands that edit the config for people: `portal peer add/list/
//! remove`, `portal import`, `portal export`. Every new config is validated
//! in full (keys included) before it replaces the old one, atomically; the
//! running agent sees the new file by its mtime.

use super::args::{Export, Import, PeerAdd, PeerList, PeerRemove};
use super::EXIT_USAGE;
use crate::{import, keys, load, peers, qr, state, wgquick};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// A command's outcome as its exit status: 2 for what the user must fix
/// (usage, a config that would not validate), 1 for other failures.
pub fn report(cmd: &str, r: Result<(), Failure>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(e)) => {
            eprintln!("portal {cmd}: {e}\nRun `portal {cmd} --help` for usage.");
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::Invalid(errs)) => {
            eprintln!("portal {cmd}: the new config would not be valid; nothing was changed:");
            for e in errs {
                eprintln!("  {e}");
            }
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::Other(e)) => {
            eprintln!("portal {cmd}: {e}");
            ExitCode::FAILURE
        }
    }
}

pub enum Failure {
    Usage(String),
    Invalid(Vec<String>),
    Other(String),
}

impl From<String> for Failure {
    fn from(s: String) -> Failure {
        Failure::Other(s)
    }
}

impl From<&str> for Failure {
    fn from(s: &str) -> Failure {
        Failure::Other(s.to_string())
    }
}

/// Loads and validates CONFIG in full (as the agent would).
fn load_valid(
    path: &Path,
) -> Result<
    (
        String,
        crate::core::model::Model,
        crate::core::desired::Inputs,
    ),
    Failure,
> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (m, inputs) = load::load_text(&text).map_err(Failure::Invalid)?;
    Ok((text, m, inputs))
}

/// Replaces CONFIG by `text` once it validates in full; keeps its mode.
fn replace_config(path: &Path, text: &str) -> Result<(), Failure> {
    load::load_text(text).map_err(Failure::Invalid)?;
    let mode = fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0o600);
    state::write_atomic_mode(path, text.as_bytes(), mode)?;
    Ok(())
}

pub fn add(o: &PeerAdd) -> Result<(), Failure> {
    let (name, path, portal) = (o.name.as_str(), o.config.as_path(), o.portal.as_str());
    let (text, m, inputs) = load_valid(path)?;
    let portal_public = inputs
        .public_keys
        .get(portal)
        .ok_or_else(|| format!("no portal named `{portal}`"))?;
    let key = wireguard_control::Key::generate_private();
    let (private, public) = (key.to_base64(), key.get_public().to_base64());
    let added = peers::add(
        &text,
        &m,
        portal_public,
        &peers::NewDevice {
            name,
            portal,
            all_traffic: o.all_traffic,
            private_key: &private,
            public_key: &public,
            address: o.address,
        },
    )?;
    replace_config(path, &added.config)?;
    for n in &added.notes {
        eprintln!("portal peer add: note: {n}");
    }
    eprintln!(
        "portal peer add: {name} added to portal {portal} as {} (public key {public}); \
         the running agent applies it when it sees the file change",
        added.address
    );
    // What the user asked for: the device's config, its private key included.
    let conf = wgquick::print(&added.device);
    let code = qr::encode(conf.as_bytes())?;
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{conf}\n{}", qr::terminal(&code));
    if o.page {
        let f = crate::status::peer_page::offer(&o.run_dir, name, &conf)?;
        eprintln!(
            "portal peer add: offered once on the status page at /peer/{name} for {} minutes ({})",
            crate::status::peer_page::OFFER_SECS / 60,
            f.display()
        );
    }
    Ok(())
}

pub fn list(o: &PeerList) -> Result<(), Failure> {
    let (_, m, _) = load_valid(&o.config)?;
    print!("{}", peers::list(&m));
    Ok(())
}

pub fn remove(o: &PeerRemove) -> Result<(), Failure> {
    let (name, path) = (o.name.as_str(), o.config.as_path());
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (new, portal) = peers::remove(&text, name, o.portal.as_deref())?;
    replace_config(path, &new)?;
    eprintln!("portal peer remove: {name} removed from portal {portal}");
    Ok(())
}

pub fn import(o: &Import) -> Result<(), Failure> {
    let (conf_path, path, name) = (o.conf.as_path(), o.config.as_path(), o.name.as_str());
    let key_dir = o.key_dir.clone().unwrap_or_else(|| match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    });
    let conf_text = fs::read_to_string(conf_path)
        .map_err(|e| format!("cannot read {}: {e}", conf_path.display()))?;
    let c = wgquick::parse(&conf_text).map_err(|e| format!("{}: {e}", conf_path.display()))?;
    let imported = import::to_portal(&c, name, &key_dir)
        .map_err(|e| format!("{}: {e}", conf_path.display()))?;
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let portals = v
        .as_object_mut()
        .ok_or("the config is not a JSON object")?
        .entry("portals")
        .or_insert_with(|| serde_json::json!({}))
        .as_object_mut()
        .ok_or("portals is not an object")?;
    if portals.contains_key(name) {
        return Err(Failure::Other(format!("portal `{name}` already exists")));
    }
    portals.insert(name.to_string(), imported.entry);
    let new = peers::to_text(&v)?;
    // The checks that need no key files first, so that a bad import
    // leaves no files behind; then the keys, then the whole config.
    let cfg = crate::core::config::parse(&new).map_err(|e| Failure::Invalid(vec![e]))?;
    crate::core::model::validate(&cfg)
        .map_err(|errs| Failure::Invalid(errs.iter().map(|e| e.to_string()).collect()))?;
    let mut written = Vec::new();
    for (f, key) in &imported.secrets {
        if let Err(e) = write_secret(f, key) {
            written
                .iter()
                .for_each(|w: &PathBuf| drop(fs::remove_file(w)));
            return Err(e.into());
        }
        written.push(f.clone());
    }
    if let Err(e) = replace_config(path, &new) {
        written.iter().for_each(|w| drop(fs::remove_file(w)));
        return Err(e);
    }
    for s in &imported.summary {
        println!("{s}");
    }
    for (f, _) in &imported.secrets {
        println!("key written to {} (mode 0600)", f.display());
    }
    Ok(())
}

/// A new file holding a key: mode 0600 from its creation; never overwrites.
fn write_secret(path: &Path, key: &str) -> Result<(), String> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .and_then(|_| writeln!(f, "{key}"))
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

pub fn export(o: &Export) -> Result<(), Failure> {
    let (name, path) = (o.name.as_str(), o.config.as_path());
    let out =
        match o.output.as_deref() {
            Some(p) if p != Path::new("-") => p,
            // It holds the private key: a file of mode 0600, not a terminal or a pipe.
            _ => return Err(Failure::Usage(
                "-o FILE.conf is required (the file holds the private key; it is never printed)"
                    .into(),
            )),
        };
    let (text, _, _) = load_valid(path)?;
    let cfg = crate::core::config::parse(&text).map_err(|e| Failure::Invalid(vec![e]))?;
    let p = cfg
        .portals
        .get(name)
        .ok_or_else(|| format!("no portal named `{name}`"))?;
    let private = keys::load_private_key(&p.private_key_file)?
        .key()
        .to_base64();
    let mut psks = Vec::new();
    for pe in &p.peers {
        psks.push(match &pe.preshared_key_file {
            Some(f) => Some(keys::load_private_key(f)?.key().to_base64()),
            None => None,
        });
    }
    let conf = wgquick::print(&import::to_wgquick(p, private, &psks));
    state::write_atomic_mode(out, conf.as_bytes(), 0o600)?;
    eprintln!(
        "portal export: portal {name} written to {} (mode 0600)",
        out.display()
    );
    Ok(())
}
