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
use crate::load::{load, LoadError};
use crate::log;
use crate::resolve::Resolver;
use crate::status::collect::{kill_switch_armed, AgentView, Shared};
use crate::status::{probe, server::Pages};
use crate::wifi::hostapd::{self, WifiView};
use crate::worker::{lock, Worker, WorkerSet};
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
    let fast_path_links = match m.fast_path {
        true => kernel.fast_path_links().await,
        false => None,
    };
    let d = desired(
        m,
        &Inputs {
            fast_path_links,
            ..inputs.clone()
        },
    );
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

/// What a running agent holds: the config in force, the kernel handle, and
/// the servers and threads that follow the config.
struct Agent<'a> {
    config: &'a Path,
    opts: Options,
    m: Model,
    inputs: Inputs,
    kernel: Kernel,
    shared: Shared,
    dhcp: Servers,
    dns_forwarders: dns::service::Servers,
    wan: Option<WanClient>,
    pages: Pages,
    radios: WorkerSet<hostapd::Spec>,
    wifi_view: WifiView,
    prober: Worker,
    resolver: Resolver,
    /// The config's (and its list files') modification times, as loaded.
    config_mtime: Vec<Option<SystemTime>>,
    last_pass: Instant,
    /// The health file is written (after the first pass without errors).
    healthy: bool,
}

/// What wakes the agent: the kernel's events and the signals it obeys.
struct Wakers {
    events: futures::channel::mpsc::UnboundedReceiver<(
        rtnetlink::packet_core::NetlinkMessage<rtnetlink::packet_route::RouteNetlinkMessage>,
        rtnetlink::sys::SocketAddr,
    )>,
    hup: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    tick: tokio::time::Interval,
    resolved: tokio::sync::watch::Receiver<u64>,
}

pub async fn run(config: &Path, opts: Options, m: Model, inputs: Inputs) -> Result<(), String> {
    let (mut agent, mut wakers) = Agent::start(config, opts, m, inputs)?;
    let mut reason = Some("start");
    while let Some(why) = reason {
        agent.sync_wan_client();
        if !why.is_empty() {
            agent.pass(why).await;
            agent.sync_services();
        }
        reason = agent.wait(&mut wakers).await;
        if let Some(why @ ("SIGHUP" | "config changed")) = reason {
            agent.reload(why);
        }
    }
    agent.stop();
    Ok(())
}

impl<'a> Agent<'a> {
    /// The kernel handle, the event subscription and the threads that do
    /// not depend on the config (prober, resolver, status pages).
    fn start(
        config: &'a Path,
        opts: Options,
        m: Model,
        inputs: Inputs,
    ) -> Result<(Agent<'a>, Wakers), String> {
        let kernel = Kernel::new(m.backend, opts.run_dir.clone(), opts.state_dir.clone())?;
        let (conn, _handle, events) = rtnetlink::new_multicast_connection(&[
            MulticastGroup::Link,
            MulticastGroup::Ipv4Ifaddr,
            MulticastGroup::Ipv4Route,
            MulticastGroup::Ipv4Rule,
        ])
        .map_err(|e| format!("netlink events: {e}"))?;
        tokio::spawn(conn);
        let on = |kind| signal(kind).map_err(|e| e.to_string());
        let shared: Shared = Arc::new(Mutex::new(AgentView {
            model: Some(Arc::new(m.clone())),
            ..AgentView::default()
        }));
        let pages = Pages::new(shared.clone(), &opts.state_dir);
        pages.offer_peers(&opts.run_dir);
        let wifi_view = lock(&shared).wifi.clone();
        let mut dns_forwarders = dns::service::Servers::default();
        dns_forwarders.set_view(lock(&shared).dns.clone());
        let prober = probe::start(shared.clone());
        let resolver = Resolver::start(opts.resolve_interval);
        resolver.set_model(&m);
        let wakers = Wakers {
            events,
            hup: on(SignalKind::hangup())?,
            term: on(SignalKind::terminate())?,
            int: on(SignalKind::interrupt())?,
            tick: tokio::time::interval(Duration::from_secs(1)),
            resolved: resolver.watch(),
        };
        log::info(&format!(
            "agent started: {} LAN(s), {} portal(s), config {}",
            m.lans.len(),
            m.portals.len(),
            config.display()
        ));
        let agent = Agent {
            config,
            config_mtime: mtimes(config, &m),
            last_pass: Instant::now() - opts.interval,
            wifi_view,
            prober,
            opts,
            m,
            inputs,
            kernel,
            shared,
            dhcp: Servers::default(),
            dns_forwarders,
            wan: None,
            pages,
            radios: WorkerSet::default(),
            resolver,
            healthy: false,
        };
        Ok((agent, wakers))
    }

    fn sync_wan_client(&mut self) {
        sync_wan_client(&mut self.wan, &self.m, &self.opts.state_dir);
    }

    /// One pass with the latest endpoints and WAN lease; counted, logged
    /// when it wrote or failed, and published to the status page.
    async fn pass(&mut self, reason: &str) {
        let started = Instant::now();
        self.inputs.endpoints = self.resolver.endpoints(&self.m);
        self.inputs.wan_lease = self.wan.as_ref().and_then(|w| w.lease());
        let outcome = checked_pass(&mut self.kernel, &self.m, &self.inputs).await;
        counters::add(&counters::PASSES, 1);
        if let Ok((r, after)) = &outcome {
            counters::add(&counters::CHANGES_APPLIED, r.applied.len() as u64);
            counters::add(&counters::APPLY_ERRORS, r.errors.len() as u64);
            lock(&self.shared).kill_switch = kill_switch_armed(&self.m, after);
        }
        if !self.healthy && matches!(&outcome, Ok((r, _)) if r.errors.is_empty()) {
            self.healthy = mark_healthy(&self.opts.run_dir);
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
    }

    /// Servers follow the config; a stopped one is restarted here.
    fn sync_services(&mut self) {
        let wan_dns = self
            .inputs
            .wan_lease
            .as_ref()
            .map(|l| l.dns.clone())
            .unwrap_or_default();
        let (m, opts) = (&self.m, &self.opts);
        self.dhcp.sync(m, &opts.state_dir, &wan_dns);
        self.dns_forwarders.sync(m, &wan_dns);
        self.pages.sync(m);
        sync_radios(&mut self.radios, m, &opts.run_dir, &self.wifi_view);
        write_resolv_conf(&opts.run_dir, m, self.inputs.wan_lease.as_ref());
        self.last_pass = Instant::now();
    }

    /// Waits for the next reason to pass ("" when a wake-up needs none);
    /// None on SIGTERM or SIGINT.
    async fn wait(&mut self, w: &mut Wakers) -> Option<&'static str> {
        let mut lease_rx = self.wan.as_ref().map(|w| w.watch());
        let used = &self.inputs.wan_lease;
        let lease_changed = async {
            match lease_rx.as_mut() {
                Some(rx) => {
                    // A clone starts from the original's last-seen version:
                    // compare against what the last pass used instead.
                    if *rx.borrow_and_update() != *used {
                        return Some(());
                    }
                    rx.changed().await.ok()
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Ok(()) = w.resolved.changed() => Some("endpoint address changed"),
            Some(()) = lease_changed => {
                let now = self.wan.as_ref().and_then(|w| w.lease());
                Some(if now != self.inputs.wan_lease { "WAN lease" } else { "" })
            }
            Some(_) = w.events.next() => {
                // Let a burst of events (often our own writes) settle, then
                // do one pass: it writes nothing if nothing is off.
                tokio::time::sleep(Duration::from_millis(50)).await;
                while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(1), w.events.next()).await {}
                Some("netlink event")
            }
            _ = w.hup.recv() => Some("SIGHUP"),
            _ = w.term.recv() => None,
            _ = w.int.recv() => None,
            _ = w.tick.tick() => {
                let now_mtime = mtimes(self.config, &self.m);
                if now_mtime != self.config_mtime {
                    self.config_mtime = now_mtime;
                    Some("config changed")
                } else if self.last_pass.elapsed() >= self.opts.interval {
                    Some("periodic")
                } else {
                    Some("")
                }
            }
        }
    }

    /// A new config replaces the one in force only if it validates in full.
    fn reload(&mut self, reason: &str) {
        match load(self.config) {
            Ok((nm, ni)) => {
                log::info(&format!("{reason}: config reloaded"));
                lock(&self.shared).model = Some(Arc::new(nm.clone()));
                self.resolver.set_model(&nm);
                self.m = nm;
                self.inputs = ni;
                // The new config may name other list files.
                self.config_mtime = mtimes(self.config, &self.m);
            }
            Err(LoadError::Read { path, error }) => log::error(&format!(
                "config not applied: cannot read {}: {error}; keeping the previous config in \
                 force (it is read again when it changes)",
                path.display()
            )),
            Err(LoadError::Invalid(errs)) => {
                for e in errs {
                    log::error(&format!("config not applied: {e}"));
                }
                log::error("keeping the previous config in force");
            }
        }
    }

    /// Every thread is told at once, then each is waited for: stopping
    /// takes as long as the slowest thread, not the sum.
    fn stop(mut self) {
        let stopping = Instant::now();
        self.prober.tell_to_stop();
        self.resolver.tell_to_stop();
        if let Some(w) = &self.wan {
            w.tell_to_stop();
        }
        self.dhcp.tell_all_to_stop();
        self.dns_forwarders.tell_all_to_stop();
        self.pages.tell_all_to_stop();
        self.radios.tell_all_to_stop();
        self.dhcp.stop_all();
        self.dns_forwarders.stop_all();
        self.pages.stop_all();
        self.radios.stop_all();
        self.prober.stop();
        self.resolver.stop();
        if let Some(w) = self.wan.take() {
            w.stop();
        }
        log::info(&format!(
            "agent stopping (threads ended in {} ms); the applied state stays in place (use `portal down` to remove it)",
            stopping.elapsed().as_millis()
        ));
    }
}
