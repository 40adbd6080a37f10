//! One hostapd per radio, run by the agent: its config written (0600), the
//! process started, watched through the control interface (PING every few
//! seconds; one that stops answering is killed and restarted), station
//! events logged, and the station list kept for the status page. The
//! restart backoff is the Worker's.

use super::conf;
use super::ctrl::Ctrl;
use super::{parse_event, parse_station, parse_status, Event, Station};
use crate::core::model::wifi::{Radio, Security};
use crate::log;
use crate::worker::{lock, Worker};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the status page shows for one SSID.
#[derive(Serialize, Debug, Clone, PartialEq, Default)]
pub struct BssStatus {
    pub lan: String,
    pub interface: String,
    pub ssid: String,
    pub radio: String,
    pub band: String,
    pub channel: u8,
    pub security: String,
    /// "starting", "running", or why not.
    pub state: String,
    /// hostapd's own interface state from `STATUS` (ENABLED, DFS...).
    pub hostapd_state: Option<String>,
    pub freq_mhz: Option<u32>,
    pub stations: Vec<Station>,
}

/// LAN name -> its SSID's status; written by the radios' workers.
pub type WifiView = Arc<Mutex<BTreeMap<String, BssStatus>>>;

#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub radio: Radio,
    pub run_dir: PathBuf,
    /// The hostapd program (PATH is searched).
    pub program: String,
}

const PING_EVERY: Duration = Duration::from_secs(5);
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// PINGs missed in a row before hostapd counts as hung.
const PING_MISSES: u32 = 2;
const START_TIMEOUT: Duration = Duration::from_secs(15);

pub fn start(spec: Spec, view: WifiView) -> Worker {
    let label = format!("hostapd {}", spec.radio.interface);
    Worker::spawn(label, move |stop| run(&spec, &view, stop))
}

fn security_label(s: Security) -> &'static str {
    match s {
        Security::Wpa2 => "WPA2",
        Security::Wpa3 => "WPA3",
        Security::Wpa2Wpa3 => "WPA2/WPA3",
    }
}

fn set_state(view: &WifiView, radio: &Radio, state: &str) {
    let mut v = lock(view);
    for b in &radio.bsses {
        let entry = v.entry(b.lan.clone()).or_default();
        *entry = BssStatus {
            lan: b.lan.clone(),
            interface: b.interface.clone(),
            ssid: b.ssid.clone(),
            radio: radio.interface.clone(),
            band: radio.band.label().to_string(),
            channel: radio.channel,
            security: security_label(b.security).to_string(),
            state: state.to_string(),
            hostapd_state: None,
            freq_mhz: None,
            stations: if state == "running" {
                std::mem::take(&mut entry.stations)
            } else {
                Vec::new()
            },
        };
    }
}

/// The hostapd process, ended (TERM, then KILL) when dropped.
struct Hostapd(Child);

impl Drop for Hostapd {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        if let Ok(None) = self.0.try_wait() {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.0.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// One BSS's two connections: requests, and attached for events.
struct Link {
    lan: String,
    requests: Ctrl,
    events: Ctrl,
}

fn run(spec: &Spec, view: &WifiView, stop: &AtomicBool) -> Result<(), String> {
    let radio = &spec.radio;
    set_state(view, radio, "starting");
    let (ctrl_dir, conf_path) = write_conf(spec)?;
    let mut child = spawn(spec, view, &conf_path)?;
    let label = format!("hostapd {}", radio.interface);
    forward_output(&mut child, &label);
    let pid = child.id();
    let mut hostapd = Hostapd(child);
    log::info(&format!("{label}: started (pid {pid})"));

    let mut links = connect(spec, &ctrl_dir, &mut hostapd, stop)?;
    if stop.load(Ordering::Relaxed) {
        set_state(view, radio, "stopped");
        return Ok(());
    }
    set_state(view, radio, "running");
    for b in &radio.bsses {
        log::info(&format!(
            "{label}: SSID `{}` up on {} (LAN {}, {})",
            b.ssid,
            b.interface,
            b.lan,
            security_label(b.security)
        ));
    }
    refresh_stations(&mut links, view);
    watch(radio, view, stop, hostapd, links, pid, &label)
}

/// Makes the control directory (0700) and writes the config; returns both.
fn write_conf(spec: &Spec) -> Result<(PathBuf, PathBuf), String> {
    let radio = &spec.radio;
    let ctrl_dir = conf::ctrl_dir(&spec.run_dir);
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&ctrl_dir)
            .map_err(|e| format!("{}: {e}", ctrl_dir.display()))?;
    }
    let conf_path = spec
        .run_dir
        .join(format!("hostapd-{}.conf", radio.interface));
    // Readable by root only: it holds the passphrase.
    crate::state::write_atomic_mode(&conf_path, conf::render(radio, &ctrl_dir).as_bytes(), 0o600)?;
    Ok((ctrl_dir, conf_path))
}

/// Starts hostapd on its config, its output piped.
fn spawn(spec: &Spec, view: &WifiView, conf_path: &Path) -> Result<Child, String> {
    Command::new(&spec.program)
        .arg(conf_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            set_state(view, &spec.radio, "hostapd did not start");
            format!("cannot start {}: {e}", spec.program)
        })
}

/// hostapd's own lines (interface state, station events) into our log.
fn forward_output(child: &mut Child, label: &str) {
    for out in [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let label = label.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                log::info(&format!("{label}: {line}"));
            }
        });
    }
}

/// Until stopped or hostapd fails: station events logged, a PING every
/// PING_EVERY, the station list refreshed on any change.
fn watch(
    radio: &Radio,
    view: &WifiView,
    stop: &AtomicBool,
    mut hostapd: Hostapd,
    mut links: Vec<Link>,
    pid: u32,
    label: &str,
) -> Result<(), String> {
    let mut last_ping = Instant::now();
    let mut misses = 0;
    loop {
        if stop.load(Ordering::Relaxed) {
            drop(hostapd);
            set_state(view, radio, "stopped");
            log::info(&format!("{label}: stopped"));
            return Ok(());
        }
        if let Ok(Some(status)) = hostapd.0.try_wait() {
            set_state(
                view,
                radio,
                &format!("restarting: hostapd exited ({status})"),
            );
            return Err(format!("hostapd exited ({status})"));
        }
        let mut changed = log_events(&mut links);
        if last_ping.elapsed() >= PING_EVERY {
            last_ping = Instant::now();
            if ping(&mut links[0], &mut misses, label)? {
                set_state(view, radio, "restarting: hostapd stopped answering");
                let _ = hostapd.0.kill();
                return Err(format!(
                    "hostapd (pid {pid}) stopped answering PING: killed"
                ));
            }
            changed = true;
        }
        if changed {
            refresh_stations(&mut links, view);
        }
    }
}

/// Logs the station events waiting on each SSID; true if a station came
/// or went.
fn log_events(links: &mut [Link]) -> bool {
    let mut changed = false;
    for link in links {
        while let Ok(Some(msg)) = link.events.recv(Duration::from_millis(100)) {
            match parse_event(&msg) {
                Some(Event::Connected(mac)) => {
                    log::info(&format!("wifi {}: station {mac} connected", link.lan));
                    changed = true;
                }
                Some(Event::Disconnected(mac)) => {
                    log::info(&format!("wifi {}: station {mac} disconnected", link.lan));
                    changed = true;
                }
                Some(Event::WrongPassphrase(mac)) => {
                    log::info(&format!(
                        "wifi {}: station {mac} failed the handshake: wrong passphrase?",
                        link.lan
                    ));
                }
                None => {}
            }
        }
    }
    changed
}

/// One PING: a PONG clears the misses; true once PING_MISSES in a row
/// went unanswered (hostapd is hung).
fn ping(link: &mut Link, misses: &mut u32, label: &str) -> Result<bool, String> {
    match link.requests.request("PING", PING_TIMEOUT) {
        Ok(r) if r == "PONG\n" => *misses = 0,
        Ok(r) => return Err(format!("PING answered `{}`", r.trim())),
        Err(e) => {
            *misses += 1;
            log::error(&format!("{label}: {e} ({misses} of {PING_MISSES})"));
            return Ok(*misses >= PING_MISSES);
        }
    }
    Ok(false)
}

/// Waits for hostapd's control sockets (made once the radio is
/// configured) and opens two connections per SSID.
fn connect(
    spec: &Spec,
    ctrl_dir: &Path,
    hostapd: &mut Hostapd,
    stop: &AtomicBool,
) -> Result<Vec<Link>, String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut links = Vec::new();
    for b in &spec.radio.bsses {
        let socket = ctrl_dir.join(&b.interface);
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(links);
            }
            if let Ok(Some(status)) = hostapd.0.try_wait() {
                return Err(format!(
                    "hostapd exited ({status}) before its control interface came up; its messages are above"
                ));
            }
            let opened = Ctrl::open(&socket).and_then(|requests| {
                let mut events = Ctrl::open(&socket)?;
                events.attach(PING_TIMEOUT)?;
                Ok((requests, events))
            });
            match opened {
                Ok((requests, events)) => {
                    links.push(Link {
                        lan: b.lan.clone(),
                        requests,
                        events,
                    });
                    break;
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("no control interface for {}: {e}", b.interface));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
    Ok(links)
}

/// Asks hostapd for its state (`STATUS`, radio-wide) and each SSID for
/// its stations (`STA-FIRST`, `STA-NEXT MAC`).
fn refresh_stations(links: &mut [Link], view: &WifiView) {
    let status = links
        .first_mut()
        .and_then(|l| l.requests.request("STATUS", PING_TIMEOUT).ok())
        .and_then(|r| parse_status(&r));
    for link in links {
        let mut stations = Vec::new();
        let mut reply = link.requests.request("STA-FIRST", PING_TIMEOUT);
        while let Ok(text) = &reply {
            let Some(st) = parse_station(text) else { break };
            let next = format!("STA-NEXT {}", st.mac);
            stations.push(st);
            if stations.len() > 1024 {
                break;
            }
            reply = link.requests.request(&next, PING_TIMEOUT);
        }
        if let Some(b) = lock(view).get_mut(&link.lan) {
            b.stations = stations;
            b.hostapd_state = status.as_ref().map(|s| s.state.clone());
            b.freq_mhz = status.as_ref().and_then(|s| s.freq_mhz);
        }
    }
}
