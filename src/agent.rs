//! The agent: apply, then keep it applied. A pass is observe -> diff ->
//! apply; passes run at start, on netlink link/address/route/rule events,
//! on SIGHUP or a changed config file, and every `interval`.

use crate::core::desired::{desired, Inputs};
use crate::core::diff::{diff, teardown, Observed};
use crate::core::model::{Model, WanMode};
use crate::counters;
use crate::dhcp::client::WanLease;
use crate::dhcp::service::Servers;
use crate::dhcp::wan::WanClient;
use crate::dns;
use crate::kernel::{Kernel, Report};
use crate::load::load;
use crate::log;
use crate::resolve::Resolver;
use crate::status::collect::{kill_switch_armed, AgentView, Shared};
use crate::status::{probe, server::Pages};
use crate::wifi::hostapd::{self, WifiView};
use crate::worker::{lock, WorkerSet};
use futures::StreamExt;
use rtnetlink::MulticastGroup;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::signal::unix::{signal, SignalKind};

pub struct Options {
    pub state_dir: PathBuf,
    pub run_dir: PathBuf,
    pub interval: Duration,
    /// How often endpoint host names are resolved again (sooner while their
    /// peer does not answer).
    pub resolve_interval: Duration,
}

/// One pass. Returns what it wrote; an empty `applied` means the kernel
/// already matched and nothing was written.
pub async fn pass(kernel: &mut Kernel, m: &Model, inputs: &Inputs) -> Result<Report, String> {
    Ok(checked_pass(kernel, m, inputs).await?.0)
}

/// A pass that also returns the kernel's state after it (observed again if
/// anything was written), for the status page's kill-switch check.
async fn checked_pass(
    kernel: &mut Kernel,
    m: &Model,
    inputs: &Inputs,
) -> Result<(Report, Observed), String> {
    let d = desired(m, inputs);
    let started = Instant::now();
    let o = kernel.observe(&d).await?;
    let observe_ms = started.elapsed().as_millis() as u64;
    let changes = diff(&d, &o, kernel.userspace_hint());
    if changes.is_empty() {
        return Ok((Report::default(), o));
    }
    let mut r = kernel.apply(&changes).await;
    r.step_ms.insert(0, ("observe".into(), observe_ms));
    Ok((r, kernel.observe(&d).await?))
}

pub fn log_report(r: &Report) {
    for a in &r.applied {
        log::info(&format!(
            "applied: {}",
            a.lines().next().unwrap_or_default()
        ));
    }
    for e in &r.errors {
        log::error(e);
    }
}

pub async fn down(kernel: &mut Kernel) -> Result<Report, String> {
    let o = kernel.observe(&Default::default()).await?;
    let r = kernel.apply(&teardown(&o, &kernel.sysctl_priors())).await;
    if r.errors.is_empty() {
        kernel.forget_sysctl_priors();
    }
    Ok(r)
}

/// The router's own resolver list, `RUN_DIR/resolv.conf`, from the static
/// WAN's `dns` or the DHCP lease's; the firmware links /etc/resolv.conf to
/// it. Written only when it changes.
fn write_resolv_conf(run_dir: &Path, m: &Model, lease: Option<&WanLease>) {
    let (dns, domain): (Vec<String>, Option<&String>) = match (&m.wan.mode, lease) {
        (WanMode::Static { dns, .. }, _) => (dns.iter().map(|a| a.to_string()).collect(), None),
        (WanMode::Dhcp { .. }, Some(l)) => (
            l.dns.iter().map(|a| a.to_string()).collect(),
            l.domain.as_ref(),
        ),
        (WanMode::Dhcp { .. }, None) => (Vec::new(), None),
    };
    let mut text = String::from("# written by portal from the WAN's DNS servers\n");
    if let Some(d) = domain {
        text.push_str(&format!("search {d}\n"));
    }
    for a in dns {
        text.push_str(&format!("nameserver {a}\n"));
    }
    let path = run_dir.join("resolv.conf");
    if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
        return;
    }
    let written = std::fs::create_dir_all(run_dir)
        .map_err(|e| format!("cannot create {}: {e}", run_dir.display()))
        .and_then(|_| crate::state::write_atomic(&path, text.as_bytes()));
    if let Err(e) = written {
        log::warn(&e);
    }
}

/// Runs the WAN DHCP client when the config asks for one, restarted if the
/// interface or host name changed.
fn sync_wan_client(wan: &mut Option<WanClient>, m: &Model, state_dir: &Path) {
    let want = match &m.wan.mode {
        WanMode::Dhcp { hostname } => Some((m.wan.interface.as_str(), hostname)),
        WanMode::Static { .. } => None,
    };
    match (want, wan.as_ref()) {
        (Some((iface, host)), Some(w)) if w.serves(iface, host) => {}
        (Some((iface, host)), _) => {
            if let Some(old) = wan.take() {
                old.stop();
            }
            *wan = Some(WanClient::start(iface, host.clone(), state_dir));
        }
        (None, _) => {
            if let Some(old) = wan.take() {
                old.stop();
            }
        }
    }
}

/// One hostapd per radio in the model; a changed radio (SSID, passphrase,
/// channel...) gets a new hostapd with the new config.
fn sync_radios(radios: &mut WorkerSet<hostapd::Spec>, m: &Model, run_dir: &Path, view: &WifiView) {
    let wanted = m
        .radios
        .iter()
        .map(|r| {
            let spec = hostapd::Spec {
                radio: r.clone(),
                run_dir: run_dir.to_path_buf(),
                program: "hostapd".into(),
            };
            (r.interface.clone(), spec)
        })
        .collect();
    radios.sync(wanted, |spec| hostapd::start(spec.clone(), view.clone()));
    // Workers of removed radios have ended (sync waits for them): their
    // SSIDs leave the page with them.
    lock(view).retain(|lan, _| {
        m.radios
            .iter()
            .any(|r| r.bsses.iter().any(|b| &b.lan == lan))
    });
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Modification times of the config and of the split list files it uses:
/// a change to any of them reloads the config.
fn mtimes(config: &Path, m: &Model) -> Vec<Option<SystemTime>> {
    std::iter::once(config)
        .chain(m.split_files())
        .map(mtime)
        .collect()
}

/// The first pass that applied everything without an error: written for
/// PID 1, which confirms a freshly upgraded slot on it (upgrade::trial).
fn mark_healthy(run_dir: &Path) -> bool {
    let text = format!("{}\n", crate::clock::unix_ms() / 1000);
    match std::fs::create_dir_all(run_dir)
        .map_err(|e| e.to_string())
        .and_then(|_| crate::state::write_atomic(&run_dir.join("healthy"), text.as_bytes()))
    {
        Ok(()) => {
            log::info("healthy: the first pass applied everything");
            true
        }
        Err(e) => {
            log::error(&format!("cannot write the health file: {e}"));
            false
        }
    }
}

pub async fn run(
    config: &Path,
    opts: Options,
    mut m: Model,
    mut inputs: Inputs,
) -> Result<(), String> {
    let mut kernel = Kernel::new(m.backend, opts.run_dir.clone(), opts.state_dir.clone())?;
    let (conn, _handle, mut events) = rtnetlink::new_multicast_connection(&[
        MulticastGroup::Link,
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv4Route,
        MulticastGroup::Ipv4Rule,
    ])
    .map_err(|e| format!("netlink events: {e}"))?;
    tokio::spawn(conn);
    let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut config_mtime = mtimes(config, &m);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_pass = Instant::now() - opts.interval;
    let mut reason = "start";
    let mut healthy = false;
    let mut dhcp = Servers::default();
    let mut dns_forwarders = dns::service::Servers::default();
    let mut wan: Option<WanClient> = None;
    let shared: Shared = Arc::new(Mutex::new(AgentView {
        model: Some(Arc::new(m.clone())),
        ..AgentView::default()
    }));
    let mut pages = Pages::new(shared.clone(), &opts.state_dir);
    pages.offer_peers(&opts.run_dir);
    let wifi_view = lock(&shared).wifi.clone();
    dns_forwarders.set_view(lock(&shared).dns.clone());
    let mut radios: WorkerSet<hostapd::Spec> = WorkerSet::default();
    let prober = probe::start(shared.clone());
    let resolver = Resolver::start(opts.resolve_interval);
    resolver.set_model(&m);
    let mut resolved = resolver.watch();
    log::info(&format!(
        "agent started: {} LAN(s), {} portal(s), config {}",
        m.lans.len(),
        m.portals.len(),
        config.display()
    ));
    loop {
        sync_wan_client(&mut wan, &m, &opts.state_dir);
        if !reason.is_empty() {
            let started = Instant::now();
            inputs.endpoints = resolver.endpoints(&m);
            inputs.wan_lease = wan.as_ref().and_then(|w| w.lease());
            let outcome = checked_pass(&mut kernel, &m, &inputs).await;
            counters::add(&counters::PASSES, 1);
            if let Ok((r, after)) = &outcome {
                counters::add(&counters::CHANGES_APPLIED, r.applied.len() as u64);
                counters::add(&counters::APPLY_ERRORS, r.errors.len() as u64);
                lock(&shared).kill_switch = kill_switch_armed(&m, after);
            }
            if !healthy && matches!(&outcome, Ok((r, _)) if r.errors.is_empty()) {
                healthy = mark_healthy(&opts.run_dir);
            }
            match outcome.map(|(r, _)| r) {
                Ok(r) if r.applied.is_empty() && r.errors.is_empty() => {}
                Ok(r) => {
                    log_report(&r);
                    let slowest = r
                        .slowest()
                        .map(|(step, ms)| format!(" (slowest: {step} {ms} ms)"))
                        .unwrap_or_default();
                    log::info(&format!(
                        "pass ({reason}): {} change(s), {} error(s) in {} ms{slowest}",
                        r.applied.len(),
                        r.errors.len(),
                        started.elapsed().as_millis()
                    ));
                }
                Err(e) => log::error(&format!("pass ({reason}): {e}")),
            }
            // Servers follow the config; a stopped one is restarted here.
            let wan_dns = inputs
                .wan_lease
                .as_ref()
                .map(|l| l.dns.clone())
                .unwrap_or_default();
            dhcp.sync(&m, &opts.state_dir, &wan_dns);
            dns_forwarders.sync(&m, &wan_dns);
            pages.sync(&m);
            sync_radios(&mut radios, &m, &opts.run_dir, &wifi_view);
            write_resolv_conf(&opts.run_dir, &m, inputs.wan_lease.as_ref());
            last_pass = Instant::now();
            reason = "";
        }
        let mut lease_rx = wan.as_ref().map(|w| w.watch());
        let lease_changed = async {
            match lease_rx.as_mut() {
                Some(rx) => {
                    // A clone starts from the original's last-seen version:
                    // compare against what the last pass used instead.
                    if *rx.borrow_and_update() != inputs.wan_lease {
                        return Some(());
                    }
                    rx.changed().await.ok()
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Ok(()) = resolved.changed() => reason = "endpoint address changed",
            Some(()) = lease_changed => {
                if wan.as_ref().and_then(|w| w.lease()) != inputs.wan_lease {
                    reason = "WAN lease";
                }
            }
            Some(_) = events.next() => {
                // Let a burst of events (often our own writes) settle, then
                // do one pass: it writes nothing if nothing is off.
                tokio::time::sleep(Duration::from_millis(50)).await;
                while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(1), events.next()).await {}
                reason = "netlink event";
            }
            _ = hup.recv() => reason = "SIGHUP",
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = tick.tick() => {
                let now_mtime = mtimes(config, &m);
                if now_mtime != config_mtime {
                    config_mtime = now_mtime;
                    reason = "config changed";
                } else if last_pass.elapsed() >= opts.interval {
                    reason = "periodic";
                }
            }
        }
        if reason == "SIGHUP" || reason == "config changed" {
            match load(config) {
                Ok((nm, ni)) => {
                    log::info(&format!("{reason}: config reloaded"));
                    lock(&shared).model = Some(Arc::new(nm.clone()));
                    resolver.set_model(&nm);
                    m = nm;
                    inputs = ni;
                    // The new config may name other list files.
                    config_mtime = mtimes(config, &m);
                }
                Err(errs) => {
                    for e in errs {
                        log::error(&format!("config not applied: {e}"));
                    }
                    log::error("keeping the previous config in force");
                }
            }
        }
    }
    // Every thread is told at once, then each is waited for: stopping
    // takes as long as the slowest thread, not the sum.
    let stopping = Instant::now();
    prober.tell_to_stop();
    resolver.tell_to_stop();
    if let Some(w) = &wan {
        w.tell_to_stop();
    }
    dhcp.tell_all_to_stop();
    dns_forwarders.tell_all_to_stop();
    pages.tell_all_to_stop();
    radios.tell_all_to_stop();
    dhcp.stop_all();
    dns_forwarders.stop_all();
    pages.stop_all();
    radios.stop_all();
    prober.stop();
    resolver.stop();
    if let Some(w) = wan.take() {
        w.stop();
    }
    log::info(&format!(
        "agent stopping (threads ended in {} ms); the applied state stays in place (use `portal down` to remove it)",
        stopping.elapsed().as_millis()
    ));
    Ok(())
}
