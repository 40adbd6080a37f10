//! The effectful edge: reads the kernel into `Observed` and writes `Change`s.
//! Links, addresses, routes and rules go through rtnetlink; WireGuard
//! through wireguard-control; nftables through nf_tables netlink (one
//! transaction per write, no `nft` command); sysctls /proc/sys.

pub mod error;
pub mod netlink;
pub mod nftables;
pub mod nlsock;
pub mod routes;
pub mod sysctl;
pub mod wireguard;

use crate::core::config::Backend;
use crate::core::desired::{Desired, Sysctl, LINK_ALIAS_PREFIX};
use crate::core::diff::batch::{RouteBatch, RouteOp};
use crate::core::diff::{Change, LinkKind, Observed};
use crate::core::firewall::NFT_TABLE;
use crate::log;
use crate::state;
use error::KernelError;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Child;

pub struct Kernel {
    net: netlink::Netlink,
    backend: Backend,
    /// Decided on the first WireGuard device created (auto mode).
    userspace: Option<bool>,
    run_dir: PathBuf,
    state_dir: PathBuf,
    /// wireguard-go processes this agent started, by interface.
    children: BTreeMap<String, Child>,
    /// (interface, peer public key) -> the endpoint last written: a peer
    /// that roamed away from it is left where it roamed (diff.rs).
    endpoints_written: BTreeMap<(String, String), std::net::SocketAddr>,
    /// Whether the kernel has flowtables: probed on first use.
    flowtables: Option<bool>,
}

/// What one pass wrote, and what failed.
#[derive(Debug, Default)]
pub struct Report {
    pub applied: Vec<String>,
    pub errors: Vec<String>,
    /// Each step's first line and how long it took (ms), for the log: where
    /// a slow pass spends its time.
    pub step_ms: Vec<(String, u64)>,
}

impl Report {
    pub fn slowest(&self) -> Option<&(String, u64)> {
        self.step_ms.iter().max_by_key(|(_, ms)| *ms)
    }
}

impl Kernel {
    pub fn new(backend: Backend, run_dir: PathBuf, state_dir: PathBuf) -> Result<Kernel, String> {
        for d in [&run_dir, &state_dir] {
            std::fs::create_dir_all(d)
                .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
        }
        let userspace = match backend {
            Backend::Auto => None,
            Backend::Kernel => Some(false),
            Backend::Userspace => Some(true),
        };
        Ok(Kernel {
            net: netlink::Netlink::new()?,
            backend,
            userspace,
            run_dir,
            state_dir,
            children: BTreeMap::new(),
            endpoints_written: BTreeMap::new(),
            flowtables: None,
        })
    }

    /// For the fast path: the interfaces the kernel has now, when it has
    /// flowtables (probed once, and said in the log); None otherwise.
    pub async fn fast_path_links(&mut self) -> Option<std::collections::BTreeSet<String>> {
        let supported = *self.flowtables.get_or_insert_with(|| {
            let yes = nftables::flowtables_supported();
            log::info(if yes {
                "fast path: on (the kernel has flowtables)"
            } else {
                "fast path: off, the kernel has no flowtables (NF_FLOW_TABLE_INET, NFT_FLOW_OFFLOAD)"
            });
            yes
        });
        if !supported {
            return None;
        }
        self.net.link_names().await.ok()
    }

    /// Whether new WireGuard devices will be wireguard-go (None: not known yet).
    pub fn userspace_hint(&self) -> Option<bool> {
        self.userspace
    }

    pub async fn observe(&mut self, d: &Desired) -> Result<Observed, String> {
        self.reap_children();
        let mut o = self.net.observe(d).await?;
        for (name, link) in &o.links {
            let ours = link
                .alias
                .as_deref()
                .is_some_and(|a| a.starts_with(LINK_ALIAS_PREFIX));
            let wanted = d.wireguard.iter().any(|w| &w.name == name);
            let userspace = match link.kind {
                LinkKind::Wireguard => false,
                LinkKind::Tun => true,
                LinkKind::Other => continue,
            };
            if ours || wanted {
                match wireguard::observe(name, userspace) {
                    Ok(mut w) => {
                        for p in &mut w.peers {
                            p.endpoint_written = self
                                .endpoints_written
                                .get(&(name.clone(), p.public_key.clone()))
                                .copied();
                        }
                        o.wireguard.insert(name.clone(), w);
                    }
                    // A TUN whose wireguard-go does not answer (yet): the
                    // WgSet that follows reports it; its exit removes the TUN.
                    Err(_) if userspace => {}
                    Err(e) => return Err(e),
                }
            }
        }
        for s in &d.sysctls {
            if let Some(v) = sysctl::read(&s.key) {
                o.sysctls.insert(s.key.clone(), v);
            }
        }
        let listing = nftables::listing(NFT_TABLE)?;
        o.nft_present = listing.is_some();
        let record = state::load_nft(&self.state_dir);
        o.nft_current = match (&listing, &record) {
            (Some(l), Some(r)) => r.ruleset == d.nft.to_string() && &r.listing == l,
            _ => false,
        };
        Ok(o)
    }

    /// Applies changes in order. A failed kill-switch step stops the pass
    /// (nothing may open without it); other failures are reported and the
    /// pass goes on, so one missing interface does not block the rest.
    pub async fn apply(&mut self, changes: &[Change]) -> Report {
        let mut report = Report::default();
        for c in changes {
            let shown = c.to_string();
            let started = std::time::Instant::now();
            let result = self.apply_one(c).await;
            report.step_ms.push((
                shown.lines().next().unwrap_or_default().to_string(),
                started.elapsed().as_millis() as u64,
            ));
            match result {
                Ok(()) => report.applied.push(shown),
                // Removing what is already gone (an interface that left
                // with its routes, a rule deleted by hand) leaves the
                // state the diff wanted: done, not a failure.
                Err(e) if c.is_removal() && e.already_gone() => {
                    log::info(&format!(
                        "{}: already gone ({e})",
                        shown.lines().next().unwrap_or_default()
                    ));
                    report.applied.push(shown);
                }
                Err(e) => {
                    let first = shown.lines().next().unwrap_or_default().to_string();
                    report.errors.push(format!("step `{first}` failed: {e}"));
                    if c.is_kill_switch() {
                        report.errors.push(
                            "stopped: the kill switch is not in place, so nothing else was applied"
                                .into(),
                        );
                        break;
                    }
                }
            }
        }
        report
    }

    async fn apply_one(&mut self, c: &Change) -> Result<(), KernelError> {
        match c {
            Change::NftReplace(ruleset) => {
                let written = match nftables::replace(ruleset) {
                    // An interface the flowtable names may have gone since
                    // it was listed (kernels before 6.16 then refuse the
                    // whole table): the kill switch must not wait for a
                    // speed-up. Written without the fast path; the record
                    // differs from the wish, so the next pass, with the
                    // interfaces listed again, writes it in full.
                    Err(e) if !ruleset.flowtables.is_empty() => {
                        log::warn(&format!("nftables: fast path left out of this write: {e}"));
                        let plain = crate::core::firewall::without_fast_path(ruleset);
                        nftables::replace(&plain)?;
                        plain
                    }
                    other => {
                        other?;
                        ruleset.clone()
                    }
                };
                let listing = nftables::listing(NFT_TABLE)?.unwrap_or_default();
                Ok(state::save_nft(
                    &self.state_dir,
                    &written.to_string(),
                    &listing,
                )?)
            }
            Change::NftDelete => {
                nftables::delete(NFT_TABLE)?;
                state::clear_nft(&self.state_dir);
                Ok(())
            }
            Change::WgCreate { name, .. } => self.create_wireguard(name).await,
            Change::WgSet {
                name,
                private_key_file,
                listen_port,
                peers,
                remove_peers,
            } => {
                let userspace = self.net.link(name).await?.kind == LinkKind::Tun;
                wireguard::set(
                    name,
                    userspace,
                    private_key_file.as_deref(),
                    *listen_port,
                    peers,
                    remove_peers,
                )?;
                for p in peers {
                    let key = (name.clone(), p.public_key.clone());
                    match p.endpoint_addr {
                        Some(a) => self.endpoints_written.insert(key, a),
                        None => self.endpoints_written.remove(&key),
                    };
                }
                for k in remove_peers {
                    self.endpoints_written.remove(&(name.clone(), k.clone()));
                }
                Ok(())
            }
            Change::LinkDel(name) => {
                let pid = wireguard::userspace_pid(name);
                // Its wireguard-go is ended whether or not the link is
                // still there (a TUN goes with its process).
                let deleted = self.net.link_del(name).await;
                if let Some(mut child) = self.children.remove(name) {
                    let _ = child.kill();
                    let _ = child.wait();
                } else if let Some(pid) = pid {
                    // Started by an earlier agent: identified by its socket's
                    // peer credentials, so this is exactly that process.
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGTERM,
                    );
                }
                deleted
            }
            Change::Sysctl(s) => {
                if let Some(prior) = sysctl::read(&s.key) {
                    state::remember_sysctl(&self.state_dir, &s.key, &prior)?;
                }
                Ok(sysctl::write(&s.key, &s.value)?)
            }
            Change::Routes(b) => {
                let w = routes::write(b)?;
                log::info(&w.summary(b));
                Ok(w.outcome(b.routes.len())?)
            }
            // One route is a batch of one: a single route encoder.
            Change::RouteAdd(r) | Change::RouteReplace(r) | Change::RouteDel(r) => {
                let op = match c {
                    Change::RouteAdd(_) => RouteOp::Add,
                    Change::RouteReplace(_) => RouteOp::Replace,
                    _ => RouteOp::Del,
                };
                let b = RouteBatch {
                    op,
                    routes: vec![r.clone()],
                };
                Ok(routes::write(&b)?.outcome(1)?)
            }
            Change::LinkSet {
                name,
                mtu,
                alias,
                up,
            } => self.net.link_set(name, *mtu, alias.as_deref(), *up).await,
            Change::AddrAdd(a) => self.net.addr_add(a).await,
            Change::AddrDel(a) => self.net.addr_del(a).await,
            Change::RuleAdd(r) => self.net.rule_add(r).await,
            Change::RuleDel(r) => self.net.rule_del(r).await,
        }
    }

    /// Kernel WireGuard when the backend allows and the kernel has it;
    /// wireguard-go otherwise (auto: decided once, by the first device).
    async fn create_wireguard(&mut self, name: &str) -> Result<(), KernelError> {
        if self.userspace != Some(true) {
            match self.net.wireguard_add(name).await {
                Ok(()) => {
                    self.userspace = Some(false);
                    return Ok(());
                }
                Err(e) if self.backend == Backend::Kernel || !e.unsupported() => return Err(e),
                Err(e) => {
                    if self.userspace.is_none() {
                        log::info(&format!(
                            "kernel WireGuard unavailable ({e}); using wireguard-go"
                        ));
                    }
                    self.userspace = Some(true);
                }
            }
        }
        if let Some(mut old) = self.children.remove(name) {
            let _ = old.kill();
            let _ = old.wait();
        }
        let child = wireguard::start_userspace(name, &self.run_dir)?;
        self.children.insert(name.to_string(), child);
        Ok(())
    }

    /// Collects exited wireguard-go children (no zombies); the next pass
    /// sees the missing device and recreates it.
    fn reap_children(&mut self) {
        self.children.retain(|name, child| match child.try_wait() {
            Ok(Some(status)) => {
                log::warn(&format!(
                    "wireguard-go for {name} exited ({status}); the next pass restarts it"
                ));
                crate::counters::add(&crate::counters::RESTARTS, 1);
                false
            }
            _ => true,
        });
    }

    /// Sysctl values from before Portal changed them, for `down`.
    pub fn sysctl_priors(&self) -> Vec<Sysctl> {
        state::sysctl_priors(&self.state_dir)
    }

    pub fn forget_sysctl_priors(&self) {
        state::clear_sysctls(&self.state_dir);
    }
}

#[cfg(test)]
mod apply_tests;
