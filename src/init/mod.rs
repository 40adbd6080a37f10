//! `portal` as PID 1: mount, load modules, first-boot key, start and
//! supervise the services, reap every zombie, and on a shutdown request
//! stop services in reverse order, end the remaining processes, sync,
//! unmount and reboot(2). PID 1 must never exit or panic (a dead PID 1 is a
//! kernel panic): every failure here is logged and lived with.
//!
//! Signals follow busybox init, so busybox's `poweroff`, `reboot` and
//! `halt` work from the console: SIGUSR2 or SIGPWR power off, SIGTERM
//! reboots, SIGUSR1 halts; SIGINT (Ctrl-Alt-Del) reboots.

pub mod config;
pub mod root;
pub mod supervise;

use crate::log;
use config::{InitConfig, Mount, ServiceSpec};
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::reboot::RebootMode;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use supervise::{Exit, Supervisor};

/// Set in every service's environment.
pub const UNDER_INIT_ENV: &str = "PORTAL_INIT";

/// This process was started by Portal's own PID 1.
pub fn under_portal_init() -> bool {
    std::env::var_os(UNDER_INIT_ENV).is_some() && nix::unistd::getppid().as_raw() == 1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    PowerOff,
    Reboot,
    Halt,
}

impl Shutdown {
    fn from_signal(s: Signal) -> Option<Shutdown> {
        match s {
            Signal::SIGUSR2 | Signal::SIGPWR => Some(Shutdown::PowerOff),
            Signal::SIGTERM | Signal::SIGINT => Some(Shutdown::Reboot),
            Signal::SIGUSR1 => Some(Shutdown::Halt),
            _ => None,
        }
    }

    fn mode(self) -> RebootMode {
        match self {
            Shutdown::PowerOff => RebootMode::RB_POWER_OFF,
            Shutdown::Reboot => RebootMode::RB_AUTOBOOT,
            Shutdown::Halt => RebootMode::RB_HALT_SYSTEM,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Shutdown::PowerOff => "power off",
            Shutdown::Reboot => "reboot",
            Shutdown::Halt => "halt",
        }
    }

    /// The signal PID 1 understands as this request (for `portal poweroff`).
    pub fn signal(self) -> Signal {
        match self {
            Shutdown::PowerOff => Signal::SIGUSR2,
            Shutdown::Reboot => Signal::SIGTERM,
            Shutdown::Halt => Signal::SIGUSR1,
        }
    }
}

fn say(msg: &str) {
    log::info(&format!("init: {msg}"));
}

fn complain(msg: &str) {
    log::error(&format!("init: {msg}"));
}

/// Monotonic milliseconds since PID 1 started.
struct Clock(Instant);
impl Clock {
    fn now(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }
}

/// Runs PID 1 with the config at `path`. Never returns.
pub fn run(path: &Path) -> ! {
    let clock = Clock(Instant::now());
    let sfd = take_signals();

    // The config is on the root file system: readable before any mount.
    let cfg = load_config(path);
    let mounted = bring_up(&cfg);
    if let Some(key) = &cfg.first_boot_key {
        first_boot_key(key);
    }

    let trial = cfg.slots.as_ref().and_then(start_trial);

    let names: Vec<String> = cfg.services.iter().map(|s| s.name.clone()).collect();
    let sup = Supervisor::new(&names);
    let Ok(sfd) = sfd else {
        complain("no signalfd: cannot supervise; services run unsupervised");
        for s in &cfg.services {
            let _ = spawn(s);
        }
        park();
    };
    supervise_forever(&cfg, sup, &sfd, &clock, trial, &mounted)
}

/// Blocks the signals PID 1 acts on, to read them from a signalfd (no
/// handler ever runs inside PID 1), and turns Ctrl-Alt-Del into SIGINT.
fn take_signals() -> nix::Result<SignalFd> {
    let signals = [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGPWR,
    ];
    let mut mask = SigSet::empty();
    for s in signals {
        mask.add(s);
        // An ignored signal never reaches the signalfd: undo what the
        // starter may have set (a shell ignores SIGINT for background jobs).
        // SAFETY: no handler is installed, only the default disposition.
        let _ = unsafe { nix::sys::signal::signal(s, nix::sys::signal::SigHandler::SigDfl) };
    }
    // Blocked and read from a signalfd: no handler runs inside PID 1.
    if let Err(e) = mask.thread_block() {
        complain(&format!("cannot block signals: {e}"));
    }
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC);
    // Ctrl-Alt-Del becomes SIGINT to us instead of an immediate reboot.
    let _ = nix::sys::reboot::set_cad_enabled(false);
    sfd
}

/// The system made usable, in this order: pseudo file systems, host name,
/// interface names, kernel modules, the mounts that needed them, then the
/// switch to the real root (which returns only if it failed). Returns
/// what was mounted, to unmount at shutdown.
fn bring_up(cfg: &InitConfig) -> Vec<Mount> {
    // Block devices need their drivers: those mounts wait for the modules.
    let (devices, pseudo): (Vec<Mount>, Vec<Mount>) = cfg
        .mounts
        .iter()
        .cloned()
        .partition(|m| root::is_device(&m.source));
    // A file system whose driver is a module (efivarfs, ...) is unknown
    // to the kernel until the modules load: those mounts wait for them.
    let (mut mounted, after_modules) = mount_all(&pseudo, true);
    if let Ok(up) = std::fs::read_to_string("/proc/uptime") {
        let secs = up.split_whitespace().next().unwrap_or("?");
        say(&format!("PID 1 running {secs} s after the kernel started"));
    }
    name_host_and_links(cfg);
    load_modules(&cfg.modules);
    wait_for_devices(&devices, Duration::from_secs(5));
    mounted.extend(mount_all(&after_modules, false).0);
    mounted.extend(mount_all(&devices, false).0);
    if let Some(sr) = &cfg.switch_root {
        let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
        let why = match root::parse_cmdline(&cmdline) {
            Some(args) => root::switch(&args, &sr.init, Duration::from_secs(sr.wait_secs)),
            None => "no root= on the kernel command line".into(),
        };
        complain(&format!(
            "cannot switch to the root file system: {why}; staying in the initramfs"
        ));
    }
    mounted
}

/// The host name, then the interfaces renamed as init.json says.
fn name_host_and_links(cfg: &InitConfig) {
    if let Some(h) = &cfg.hostname {
        match nix::unistd::sethostname(h) {
            Ok(()) => say(&format!("host name {h}")),
            Err(e) => complain(&format!("cannot set host name {h}: {e}")),
        }
    }
    for r in &cfg.rename_links {
        match rename_link(&r.from, &r.to) {
            Ok(()) => say(&format!("interface {} renamed {}", r.from, r.to)),
            Err(e) => complain(&format!(
                "cannot rename interface {} to {}: {e}",
                r.from, r.to
            )),
        }
    }
}

/// PID 1's main loop: start the services that are due, wait for a signal
/// or the next start, reap, and shut down on a request.
fn supervise_forever(
    cfg: &InitConfig,
    mut sup: Supervisor,
    sfd: &SignalFd,
    clock: &Clock,
    mut trial: Option<Trial>,
    mounted: &[Mount],
) -> ! {
    loop {
        let now = clock.now();
        start_due(&mut sup, &cfg.services, now);
        // A slot on trial is checked every second.
        let longest = if trial.is_some() { 1_000 } else { 60_000 };
        let wait = sup
            .next_due()
            .map(|at| at.saturating_sub(clock.now()).min(longest))
            .unwrap_or(longest);
        let request = shutdown_request(&mut trial, sfd, wait);
        reap(&mut sup, clock);
        if let Some(r) = request {
            shutdown(r, &mut sup, cfg, mounted, sfd, clock);
        }
    }
}

/// Starts the services whose (re)start is due.
fn start_due(sup: &mut Supervisor, services: &[ServiceSpec], now: u64) {
    for i in sup.due(now) {
        let Some(spec) = services.get(i) else {
            continue;
        };
        match spawn(spec) {
            Ok(pid) => {
                sup.started(i, pid, now);
                say(&format!("started {} (pid {pid})", spec.name));
            }
            Err(e) => {
                complain(&format!("cannot start {}: {e}", spec.name));
                if let Some(x) = sup.start_failed(i, now) {
                    log_exit(&x, None);
                }
            }
        }
    }
}

/// A shutdown asked for: by a slot on trial that failed (reboot into the
/// old one) or by a signal received within `wait` ms.
fn shutdown_request(trial: &mut Option<Trial>, sfd: &SignalFd, wait: u64) -> Option<Shutdown> {
    let mut request = None;
    if let Some(ended) = trial.as_ref().and_then(poll_trial) {
        *trial = None;
        if !ended {
            request = Some(Shutdown::Reboot);
        }
    }
    for sig in wait_for_signals(sfd, wait) {
        if let Some(r) = Shutdown::from_signal(sig) {
            request = Some(r);
        } else if sig == Signal::SIGHUP {
            say("SIGHUP: nothing to reload in init (the agent reloads on its own SIGHUP)");
        }
    }
    request
}

/// A slot on trial after `portal upgrade` (upgrade::trial). Builds without
/// the `upgrade` feature (the EdgeRouter X) have none.
#[cfg(feature = "upgrade")]
type Trial = crate::upgrade::trial::Trial;
#[cfg(not(feature = "upgrade"))]
enum Trial {}

#[cfg(feature = "upgrade")]
fn start_trial(slots: &config::SlotsConfig) -> Option<Trial> {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let (trial, lines) = crate::upgrade::trial::on_boot(slots, &cmdline);
    for l in lines {
        say(&l);
    }
    trial
}

#[cfg(not(feature = "upgrade"))]
fn start_trial(_: &config::SlotsConfig) -> Option<Trial> {
    complain("init.json has slots, but this build has no A/B upgrades");
    None
}

/// None while waiting; Some(true) when the slot is confirmed, Some(false)
/// when it failed and PID 1 must reboot into the old slot.
#[cfg(feature = "upgrade")]
fn poll_trial(t: &Trial) -> Option<bool> {
    use crate::upgrade::trial::Step;
    match t.poll() {
        Step::Wait => None,
        Step::Confirmed(msg) => {
            say(&msg);
            Some(true)
        }
        Step::Failed(msg) => {
            complain(&msg);
            Some(false)
        }
    }
}

#[cfg(not(feature = "upgrade"))]
fn poll_trial(t: &Trial) -> Option<bool> {
    match *t {}
}

fn load_config(path: &Path) -> InitConfig {
    let loaded = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
        .and_then(|text| config::parse(&text).map_err(|e| format!("{}: {e}", path.display())));
    match loaded {
        Ok(c) => {
            say(&format!("config {}", path.display()));
            c
        }
        Err(e) => {
            complain(&format!("{e}; booting with no services"));
            InitConfig::default()
        }
    }
}

/// Mounts what is not mounted yet; returns what it mounted and, with
/// `defer_unknown_fs`, the mounts whose file system type the kernel does
/// not know yet (ENODEV), to try again later without complaining now.
fn mount_all(mounts: &[Mount], defer_unknown_fs: bool) -> (Vec<Mount>, Vec<Mount>) {
    let mut deferred = Vec::new();
    let present =
        config::mount_points(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default());
    let mut done = Vec::new();
    for m in mounts {
        let target = m.target.to_string_lossy().to_string();
        if present.contains(&target) {
            continue;
        }
        let source = if root::is_device(&m.source) {
            match root::resolve(&m.source) {
                Some(dev) => dev.to_string_lossy().into_owned(),
                None => {
                    complain(&format!("{} on {target}: no such device", m.source));
                    continue;
                }
            }
        } else {
            m.source.clone()
        };
        let _ = std::fs::create_dir_all(&m.target);
        let mut flags = MsFlags::empty();
        if m.read_only {
            flags |= MsFlags::MS_RDONLY;
        }
        let r = nix::mount::mount(
            Some(source.as_str()),
            &m.target,
            Some(m.fstype.as_str()),
            flags,
            m.options.as_deref(),
        );
        match r {
            Ok(()) => {
                let from = if source == m.source {
                    source
                } else {
                    format!("{} ({source})", m.source)
                };
                say(&format!("mounted {from} ({}) on {target}", m.fstype));
                done.push(m.clone());
            }
            Err(Errno::ENODEV) if defer_unknown_fs => deferred.push(m.clone()),
            Err(e) if m.optional => complain(&format!(
                "optional mount {} on {target} failed: {e}",
                m.source
            )),
            Err(e) => complain(&format!("mount {} on {target} failed: {e}", m.source)),
        }
    }
    (done, deferred)
}

/// Drivers create their device nodes as they probe, which can lag behind
/// the module load: give them a moment.
fn wait_for_devices(mounts: &[Mount], limit: Duration) {
    let deadline = Instant::now() + limit;
    for m in mounts {
        root::wait_for(
            &m.source,
            deadline.saturating_duration_since(Instant::now()),
        );
    }
}

/// SIOCSIFNAME: the interface must be down, as every interface is before
/// anything configures it.
fn rename_link(from: &str, to: &str) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain data; both names fit (checked when init.json
    // was parsed) and stay NUL-terminated in the zeroed arrays.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(from.bytes().take(15)) {
        *dst = src as libc::c_char;
    }
    let newname = unsafe { &mut req.ifr_ifru.ifru_newname };
    for (dst, src) in newname.iter_mut().zip(to.bytes().take(15)) {
        *dst = src as libc::c_char;
    }
    // SAFETY: a valid socket and a valid ifreq for SIOCSIFNAME.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFNAME as _, &req) };
    Errno::result(r).map(drop)
}

fn load_modules(modules: &[String]) {
    if modules.is_empty() {
        return;
    }
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().to_string())
        .unwrap_or_default();
    let mut loaded = 0;
    for m in modules {
        let path = if m.starts_with('/') {
            std::path::PathBuf::from(m)
        } else {
            Path::new("/lib/modules").join(&release).join(m)
        };
        let r = std::fs::File::open(&path)
            .map_err(|e| e.to_string())
            .and_then(|f| {
                nix::kmod::finit_module(&f, c"", nix::kmod::ModuleInitFlags::empty())
                    .or_else(|e| if e == Errno::EEXIST { Ok(()) } else { Err(e) })
                    .map_err(|e| e.to_string())
            });
        match r {
            Ok(()) => loaded += 1,
            Err(e) => complain(&format!("module {}: {e}", path.display())),
        }
    }
    say(&format!(
        "loaded {loaded} of {} kernel modules",
        modules.len()
    ));
}

fn first_boot_key(path: &Path) {
    if path.exists() {
        return;
    }
    if let Some(dir) = path.parent() {
        use std::os::unix::fs::DirBuilderExt;
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir);
    }
    match crate::keys::generate(path) {
        Ok(public) => say(&format!(
            "first boot: new WireGuard key {}; public key: {public}",
            path.display()
        )),
        Err(e) => complain(&format!("first boot: {e}")),
    }
}

fn console() -> Result<Stdio, String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/console")
        .map(Stdio::from)
        .map_err(|e| format!("/dev/console: {e}"))
}

fn spawn(s: &ServiceSpec) -> Result<i32, String> {
    let (program, args) = s.argv.split_first().ok_or("empty argv")?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", "/sbin:/usr/sbin:/bin:/usr/bin")
        .env("HOME", "/")
        // Lets the agent tell it runs under Portal's own init (the status
        // page says "firmware"): reading /proc/1/exe needs privileges the
        // agent drops.
        .env(UNDER_INIT_ENV, "1")
        .current_dir("/");
    if s.console {
        cmd.stdin(console()?).stdout(console()?).stderr(console()?);
    } else {
        cmd.stdin(Stdio::null());
    }
    // The child must not inherit PID 1's blocked signals (a service that
    // cannot get SIGTERM or SIGHUP) nor ignored ones.
    // SAFETY: between fork and exec only async-signal-safe calls
    // (sigprocmask, sigaction) are made, and nothing is allocated.
    unsafe {
        cmd.pre_exec(|| {
            for sig in Signal::iterator() {
                if sig != Signal::SIGKILL && sig != Signal::SIGSTOP {
                    let _ = nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl);
                }
            }
            nix::sys::signal::sigprocmask(
                nix::sys::signal::SigmaskHow::SIG_SETMASK,
                Some(&SigSet::empty()),
                None,
            )
            .map_err(std::io::Error::from)
        });
    }
    // The Child handle is dropped without waiting: PID 1 reaps every
    // child itself.
    let child = cmd.spawn().map_err(|e| e.to_string())?;
    Ok(child.id() as i32)
}

/// Reaps every exited child: services (restart scheduled) and orphans.
fn reap(sup: &mut Supervisor, clock: &Clock) {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => {
                let x = sup.exited(pid.as_raw(), clock.now());
                log_exit(&x, Some(format!("exit status {code}")));
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) => {
                let x = sup.exited(pid.as_raw(), clock.now());
                log_exit(&x, Some(format!("killed by {sig}")));
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

fn log_exit(x: &Exit, how: Option<String>) {
    let Exit::Service {
        name,
        ran_ms,
        restart_in,
        restarts,
    } = x
    else {
        return; // orphans are reaped silently
    };
    let how = how.unwrap_or_else(|| "did not start".into());
    match restart_in {
        Some(ms) => {
            crate::counters::add(&crate::counters::RESTARTS, 1);
            complain(&format!(
                "{name} ended ({how}) after {:.1} s; restart #{restarts} in {:.0} s",
                *ran_ms as f64 / 1000.0,
                *ms as f64 / 1000.0
            ));
        }
        None => say(&format!("{name} stopped ({how})")),
    }
}

/// Waits up to `ms` for signals and returns those that arrived.
fn wait_for_signals(sfd: &SignalFd, ms: u64) -> Vec<Signal> {
    let mut fds = [PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(ms.min(i32::MAX as u64) as i32).unwrap_or(PollTimeout::MAX);
    let _ = poll(&mut fds, timeout);
    let mut got = Vec::new();
    while let Ok(Some(info)) = sfd.read_signal() {
        if let Ok(sig) = Signal::try_from(info.ssi_signo as i32) {
            got.push(sig);
        }
    }
    got
}

/// Waits up to `limit` for SIGCHLDs, reaping, until `done` holds.
fn reap_until(
    sfd: &SignalFd,
    sup: &mut Supervisor,
    clock: &Clock,
    limit: Duration,
    done: impl Fn(&Supervisor) -> bool,
) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        reap(sup, clock);
        if done(sup) {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        wait_for_signals(sfd, left.as_millis().min(1000) as u64);
    }
}

/// Sends `first` to `target` and waits up to `limit` for `done`; if it does
/// not hold, logs `why_kill`, sends SIGKILL and waits 2 s more.
#[allow(clippy::too_many_arguments)]
fn end(
    target: Pid,
    first: Signal,
    limit: Duration,
    why_kill: impl FnOnce() -> String,
    sfd: &SignalFd,
    sup: &mut Supervisor,
    clock: &Clock,
    done: impl Fn(&Supervisor) -> bool,
) {
    let _ = kill(target, first);
    if !reap_until(sfd, sup, clock, limit, &done) {
        complain(&why_kill());
        let _ = kill(target, Signal::SIGKILL);
        reap_until(sfd, sup, clock, Duration::from_secs(2), &done);
    }
}

/// PID 1's children as "pid (name)", from /proc.
fn children() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // "pid (comm) state ppid ...": comm may hold spaces, so split at ')'.
            let (head, rest) = stat.rsplit_once(')')?;
            let comm = head.split_once('(')?.1;
            let ppid: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == 1).then(|| format!("{pid} ({comm})"))
        })
        .collect()
}

fn shutdown(
    kind: Shutdown,
    sup: &mut Supervisor,
    cfg: &InitConfig,
    mounted: &[Mount],
    sfd: &SignalFd,
    clock: &Clock,
) -> ! {
    say(&format!("{}: stopping services", kind.name()));
    let stop_timeout = Duration::from_secs(cfg.stop_timeout_secs);
    for (name, pid) in sup.shutdown() {
        say(&format!("stopping {name} (pid {pid})"));
        // An interactive shell ignores SIGTERM but ends on a hang-up.
        let console = cfg.services.iter().any(|s| s.name == name && s.console);
        let signal = if console {
            Signal::SIGHUP
        } else {
            Signal::SIGTERM
        };
        let why_kill = || {
            let secs = stop_timeout.as_secs();
            format!("{name} did not stop within {secs} s: SIGKILL")
        };
        let gone = |s: &Supervisor| !s.is_running(pid);
        end(
            Pid::from_raw(pid),
            signal,
            stop_timeout,
            why_kill,
            sfd,
            sup,
            clock,
            gone,
        );
    }
    // Whatever is left (orphans, children of services): TERM, then KILL.
    // (Checked in /proc: waitpid cannot ask "any child left?", WNOWAIT is
    // a waitid flag.)
    say("ending the remaining processes");
    let why_kill = || {
        format!(
            "still running after SIGTERM: {}; SIGKILL",
            children().join(", ")
        )
    };
    let none_left = |_: &Supervisor| children().is_empty();
    end(
        Pid::from_raw(-1),
        Signal::SIGTERM,
        Duration::from_secs(2),
        why_kill,
        sfd,
        sup,
        clock,
        none_left,
    );
    say("sync");
    nix::unistd::sync();
    for m in mounted.iter().rev() {
        match nix::mount::umount2(&m.target, MntFlags::empty()) {
            Ok(()) => say(&format!("unmounted {}", m.target.display())),
            Err(e) => {
                // Busy: at least make it read-only so that nothing is lost.
                let ro = nix::mount::mount(
                    None::<&str>,
                    &m.target,
                    None::<&str>,
                    MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                    None::<&str>,
                );
                complain(&format!(
                    "cannot unmount {} ({e}); read-only remount: {}",
                    m.target.display(),
                    if ro.is_ok() { "done" } else { "failed" }
                ));
            }
        }
    }
    nix::unistd::sync();
    say(&format!("{}: reboot(2)", kind.name()));
    let Err(e) = nix::sys::reboot::reboot(kind.mode());
    complain(&format!("reboot(2) failed: {e}; halting here"));
    park();
}

/// PID 1 must not exit: wait forever, still reaping.
fn park() -> ! {
    loop {
        let _ = waitpid(Pid::from_raw(-1), None);
        std::thread::sleep(Duration::from_secs(1));
    }
}
