//! The commands that edit the config for people: `portal peer add/list/
//! remove`, `portal import`, `portal export`. Every new config is validated
//! in full (keys included) before it replaces the old one, atomically; the
//! running agent sees the new file by its mtime.

use crate::{import, keys, load, peers, qr, state, wgquick};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub const USAGE: &str = "\
  peer add NAME --portal P [--all-traffic] [--page] [--address A] CONFIG
                    new device key pair and address (the next free one, or
                    A) in portal P (which has `clients`); prints the device's wg-quick .conf and its QR
                    code (--page: also on the status page, once, 15 minutes)
  peer list CONFIG  every peer: portal, name, allowed IPs, endpoint, public key
  peer remove NAME [--portal P] CONFIG
  import FILE.conf --name NAME [--key-dir DIR] CONFIG
                    add a wg-quick config as portal NAME (keys to files in
                    DIR, mode 0600; default: CONFIG's directory)
  export NAME CONFIG -o FILE.conf
                    write portal NAME as a wg-quick config (mode 0600)
";

/// The agent's default `--run-dir`.
const DEFAULT_RUN_DIR: &str = "/run/portal";

/// Handles these commands; None when `args[0]` is none of them.
pub fn run(args: &[String]) -> Option<ExitCode> {
    let cmd = args.first()?.as_str();
    if !matches!(cmd, "peer" | "import" | "export") {
        return None;
    }
    let r = Opts::parse(&args[1..]).and_then(|o| match (cmd, o.pos.first().map(String::as_str)) {
        ("peer", Some("add")) => peer_add(&o),
        ("peer", Some("list")) => peer_list(&o),
        ("peer", Some("remove")) => peer_remove(&o),
        ("import", _) => import_conf(&o),
        ("export", _) => export(&o),
        _ => Err(Failure::Usage("peer: add, list or remove".into())),
    });
    Some(match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(e)) => {
            eprintln!("portal {cmd}: {e}\nusage:\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Failure::Invalid(errs)) => {
            eprintln!("portal {cmd}: the new config would not be valid; nothing was changed:");
            for e in errs {
                eprintln!("  {e}");
            }
            ExitCode::from(2)
        }
        Err(Failure::Other(e)) => {
            eprintln!("portal {cmd}: {e}");
            ExitCode::FAILURE
        }
    })
}

enum Failure {
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

#[derive(Default)]
struct Opts {
    pos: Vec<String>,
    portal: Option<String>,
    name: Option<String>,
    key_dir: Option<PathBuf>,
    output: Option<PathBuf>,
    all_traffic: bool,
    page: bool,
    /// The device's tunnel address, instead of the next free one.
    address: Option<std::net::IpAddr>,
    /// Where `--page` leaves its offers: the agent's run directory.
    run_dir: Option<PathBuf>,
}

impl Opts {
    fn parse(args: &[String]) -> Result<Opts, Failure> {
        let mut o = Opts::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = || {
                it.next()
                    .cloned()
                    .ok_or_else(|| Failure::Usage(format!("{a} needs a value")))
            };
            match a.as_str() {
                "--portal" => o.portal = Some(value()?),
                "--name" => o.name = Some(value()?),
                "--key-dir" => o.key_dir = Some(value()?.into()),
                "-o" | "--output" => o.output = Some(value()?.into()),
                "--all-traffic" => o.all_traffic = true,
                "--page" => o.page = true,
                "--run-dir" => o.run_dir = Some(value()?.into()),
                "--address" => {
                    let v = value()?;
                    o.address =
                        Some(v.parse().map_err(|_| {
                            Failure::Usage(format!("--address {v}: not an IP address"))
                        })?)
                }
                "-h" | "--help" => return Err(Failure::Usage("help".into())),
                _ if a.starts_with('-') && a.len() > 1 => {
                    return Err(Failure::Usage(format!("unknown option {a}")))
                }
                _ => o.pos.push(a.clone()),
            }
        }
        Ok(o)
    }

    /// The positional arguments after the sub-command word(s).
    fn want(&self, skip: usize, names: &[&str]) -> Result<Vec<&str>, Failure> {
        let got: Vec<&str> = self.pos.iter().skip(skip).map(String::as_str).collect();
        if got.len() != names.len() {
            return Err(Failure::Usage(format!("expected {}", names.join(" "))));
        }
        Ok(got)
    }
}

/// Loads and validates CONFIG in full (as the agent would).
fn load_valid(
    path: &Path,
) -> Result<(String, crate::model::Model, crate::desired::Inputs), Failure> {
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

fn peer_add(o: &Opts) -> Result<(), Failure> {
    let a = o.want(1, &["NAME", "CONFIG"])?;
    let (name, path) = (a[0], Path::new(a[1]));
    let portal = o
        .portal
        .as_deref()
        .ok_or(Failure::Usage("--portal P is required".into()))?;
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
        let f = crate::status::peer_page::offer(
            o.run_dir.as_deref().unwrap_or(Path::new(DEFAULT_RUN_DIR)),
            name,
            &conf,
        )?;
        eprintln!(
            "portal peer add: offered once on the status page at /peer/{name} for {} minutes ({})",
            crate::status::peer_page::OFFER_SECS / 60,
            f.display()
        );
    }
    Ok(())
}

fn peer_list(o: &Opts) -> Result<(), Failure> {
    let a = o.want(1, &["CONFIG"])?;
    let (_, m, _) = load_valid(Path::new(a[0]))?;
    print!("{}", peers::list(&m));
    Ok(())
}

fn peer_remove(o: &Opts) -> Result<(), Failure> {
    let a = o.want(1, &["NAME", "CONFIG"])?;
    let (name, path) = (a[0], Path::new(a[1]));
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (new, portal) = peers::remove(&text, name, o.portal.as_deref())?;
    replace_config(path, &new)?;
    eprintln!("portal peer remove: {name} removed from portal {portal}");
    Ok(())
}

fn import_conf(o: &Opts) -> Result<(), Failure> {
    let a = o.want(0, &["FILE.conf", "CONFIG"])?;
    let (conf_path, path) = (Path::new(a[0]), Path::new(a[1]));
    let name = o
        .name
        .as_deref()
        .ok_or(Failure::Usage("--name NAME is required".into()))?;
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
    let cfg = crate::config::parse(&new).map_err(|e| Failure::Invalid(vec![e]))?;
    crate::model::validate(&cfg)
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

fn export(o: &Opts) -> Result<(), Failure> {
    let a = o.want(0, &["NAME", "CONFIG"])?;
    let (name, path) = (a[0], Path::new(a[1]));
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
    let cfg = crate::config::parse(&text).map_err(|e| Failure::Invalid(vec![e]))?;
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
