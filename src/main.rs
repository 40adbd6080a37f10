//! `portal`: the router agent. See README.md for the config reference.

use portal::{agent, config, desired, dhcp, kernel, keys, load, log, model, plan_text, privileges};

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "\
usage: portal <command> [options]

commands:
  check CONFIG      validate the config; exit 0 if valid, 2 if not
  plan CONFIG       print the commands (sysctl, ip, wg, nft) that set up CONFIG
  apply CONFIG      bring the kernel to CONFIG once, by diff, and exit
  agent CONFIG      apply, then keep it applied (netlink events, SIGHUP,
                    config file changes, every --interval seconds)
  down CONFIG       remove everything Portal added, and nothing else
  firewall CONFIG   write only CONFIG's nftables table (inet portal), through
                    netlink as the agent does, and exit
  firewall-dump     print the kernel's table inet portal as the agent reads
                    it (normalized netlink dump); exit 1 if it is absent
  keygen FILE       write a new WireGuard private key to FILE (mode 0600)
                    and print its public key
  pubkey FILE       print the public key of a private key file
  leases CONFIG     print the WAN's DHCP lease and the leases on record
                    for each LAN (--json for machine-readable output)
  init [INITCONFIG] run as PID 1 (also when started as PID 1 with no
                    arguments): mounts, modules, services, shutdown;
                    INITCONFIG defaults to /etc/portal/init.json
  poweroff | reboot | halt
                    ask PID 1 to shut down
  peer add|list|remove, import, export
                    devices and wg-quick configs: `portal peer --help`
  upgrade BUNDLE    (installed disk form) write BUNDLE (a file, or a disk
                    holding it) to the slot not running, boot it once, and
                    reboot (--no-reboot: not now); it becomes the default
                    when its agent reports healthy, else the next boot is
                    the old slot again

options:
  --state-dir DIR   persistent state (default /var/lib/portal)
  --run-dir DIR     runtime files, wireguard-go logs (default /run/portal)
  --interval SECS   agent: seconds between periodic passes (default 30)
  --resolve-interval SECS
                    agent: seconds between resolutions of endpoint host
                    names (default 60; every 15 while a peer's latest
                    handshake is over 135 s old)
";

struct Args {
    command: String,
    target: Option<PathBuf>,
    state_dir: PathBuf,
    run_dir: PathBuf,
    interval: Duration,
    resolve_interval: Duration,
    json: bool,
    no_reboot: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut args = Args {
        command: String::new(),
        target: None,
        state_dir: PathBuf::from("/var/lib/portal"),
        run_dir: PathBuf::from("/run/portal"),
        interval: Duration::from_secs(30),
        resolve_interval: Duration::from_secs(60),
        json: false,
        no_reboot: false,
    };
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--state-dir" => args.state_dir = value("--state-dir")?.into(),
            "--run-dir" => args.run_dir = value("--run-dir")?.into(),
            "--interval" => {
                let v = value("--interval")?;
                let secs: u64 = v
                    .parse()
                    .map_err(|_| format!("--interval: `{v}` is not a number of seconds"))?;
                args.interval = Duration::from_secs(secs.max(1));
            }
            "--resolve-interval" => {
                let v = value("--resolve-interval")?;
                let secs: u64 = v
                    .parse()
                    .map_err(|_| format!("--resolve-interval: `{v}` is not a number of seconds"))?;
                args.resolve_interval = Duration::from_secs(secs.max(1));
            }
            "--json" => args.json = true,
            "--no-reboot" => args.no_reboot = true,
            "-h" | "--help" => return Err(String::new()),
            _ if a.starts_with('-') => return Err(format!("unknown option {a}")),
            _ if args.command.is_empty() => args.command = a,
            _ if args.target.is_none() => args.target = Some(a.into()),
            _ => return Err(format!("unexpected argument {a}")),
        }
    }
    if args.command.is_empty() {
        return Err(String::new());
    }
    Ok(args)
}

fn main() -> ExitCode {
    // The kernel starts init with no arguments (or only its own): PID 1 is
    // init whatever argv[0] is.
    if nix::unistd::getpid().as_raw() == 1 {
        let arg = std::env::args().nth(1);
        let cfg = match arg.as_deref() {
            Some("init") => std::env::args().nth(2),
            _ => None,
        };
        portal::init::run(Path::new(
            cfg.as_deref().unwrap_or(portal::init::config::DEFAULT_PATH),
        ));
    }
    // peer add/list/remove, import, export, doctor and trace: their own
    // arguments (src/peer_cli.rs, src/doctor/cli.rs).
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match argv.first().map(String::as_str) {
        Some("doctor") => return portal::doctor::cli::doctor(&argv[1..]),
        Some("trace") => return portal::doctor::cli::trace(&argv[1..]),
        _ => {}
    }
    if let Some(code) = portal::peer_cli::run(&argv) {
        return code;
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("portal: {e}");
            }
            eprint!("{USAGE}{}", portal::doctor::cli::USAGE);
            return ExitCode::from(2);
        }
    };
    match args.command.as_str() {
        "init" => {
            let cfg = args
                .target
                .clone()
                .unwrap_or_else(|| PathBuf::from(portal::init::config::DEFAULT_PATH));
            portal::init::run(&cfg);
        }
        "poweroff" | "reboot" | "halt" => return ask_init(&args.command),
        "firewall-dump" => return firewall_dump(),
        _ => {}
    }
    let Some(target) = args.target.clone() else {
        eprintln!("portal {}: missing file argument", args.command);
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    match args.command.as_str() {
        "check" => check(&target),
        "plan" => plan(&target),
        "apply" | "agent" | "down" => runtime(&args, &target),
        "firewall" => firewall(&target),
        "leases" => leases(&args, &target),
        #[cfg(feature = "upgrade")]
        "upgrade" => upgrade(&args, &target),
        "keygen" => match keys::generate(&target) {
            Ok(public) => {
                println!("{public}");
                eprintln!(
                    "portal: private key written to {} (mode 0600)",
                    target.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        "pubkey" => match keys::load_private_key(&target) {
            Ok(k) => {
                println!("{}", k.public_base64());
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        other => {
            eprintln!("portal: unknown command `{other}`");
            eprint!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// `portal firewall CONFIG`: the agent's nftables write, alone.
fn firewall(path: &Path) -> ExitCode {
    let m = match load_or_report(path) {
        Ok((m, _)) => m,
        Err(code) => return code,
    };
    let table = portal::firewall::ruleset(&m);
    match kernel::nftables::replace(&table) {
        Ok(w) => {
            let rules: usize = table.chains.iter().map(|c| c.rules.len()).sum();
            log::info(&format!(
                "firewall: table inet {} ({rules} rules) written through netlink: {} messages, \
                 {} bytes, encoded and acknowledged in {:.2} ms",
                table.name,
                w.messages,
                w.bytes,
                w.elapsed.as_secs_f64() * 1000.0
            ));
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn firewall_dump() -> ExitCode {
    match kernel::nftables::listing(desired::NFT_TABLE) {
        Ok(Some(l)) => {
            print!("{l}");
            ExitCode::SUCCESS
        }
        Ok(None) => fail(&format!("no table inet {}", desired::NFT_TABLE)),
        Err(e) => fail(&e),
    }
}

/// Signals PID 1 the way busybox's poweroff/reboot/halt do.
fn ask_init(what: &str) -> ExitCode {
    use portal::init::Shutdown;
    let kind = match what {
        "poweroff" => Shutdown::PowerOff,
        "reboot" => Shutdown::Reboot,
        _ => Shutdown::Halt,
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(1), kind.signal()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("cannot signal PID 1: {e}")),
    }
}

#[cfg(feature = "upgrade")]
fn upgrade(args: &Args, bundle: &Path) -> ExitCode {
    let paths = portal::upgrade::write::Paths::default();
    let mut say = |m: &str| eprintln!("portal upgrade: {m}");
    match portal::upgrade::write::run(bundle, &paths, &mut say) {
        Ok(p) if args.no_reboot => {
            eprintln!(
                "portal upgrade: {} is in slot {}; reboot to try it",
                p.version,
                p.to.name()
            );
            ExitCode::SUCCESS
        }
        Ok(_) => {
            eprintln!("portal upgrade: rebooting");
            ask_init("reboot")
        }
        Err(e) => fail(&format!("upgrade: {e}")),
    }
}

fn fail(e: &str) -> ExitCode {
    eprintln!("portal: {e}");
    ExitCode::FAILURE
}

/// Loads the config or prints every error and returns exit code 2.
fn load_or_report(path: &Path) -> Result<(model::Model, desired::Inputs), ExitCode> {
    load::load(path).map_err(|errs| {
        eprintln!("portal: {} is not valid:", path.display());
        for e in &errs {
            eprintln!("  {e}");
        }
        ExitCode::from(2)
    })
}

fn leases(args: &Args, path: &Path) -> ExitCode {
    let m = match load_or_report(path) {
        Ok((m, _)) => m,
        Err(code) => return code,
    };
    let status = dhcp::status(&m, &args.state_dir);
    if args.json {
        match serde_json::to_string_pretty(&status) {
            Ok(t) => println!("{t}"),
            Err(e) => return fail(&e.to_string()),
        }
        return ExitCode::SUCCESS;
    }
    print!("{}", dhcp::render(&status, portal::clock::unix_ms() / 1000));
    ExitCode::SUCCESS
}

fn check(path: &Path) -> ExitCode {
    match load_or_report(path) {
        Ok((m, _)) => {
            println!(
                "{}: valid ({} LAN(s), {} portal(s))",
                path.display(),
                m.lans.len(),
                m.portals.len()
            );
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn plan(path: &Path) -> ExitCode {
    match load_or_report(path) {
        Ok((m, mut inputs)) => {
            load::resolve_endpoints(&m, &mut inputs);
            let userspace = match m.backend {
                config::Backend::Auto => None,
                config::Backend::Kernel => Some(false),
                config::Backend::Userspace => Some(true),
            };
            print!("{}", plan_text(&m, &inputs, userspace));
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn runtime(args: &Args, path: &Path) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start runtime: {e}")),
    };
    if let Err(e) = privileges::drop_unneeded() {
        return fail(&e);
    }
    rt.block_on(async {
        let new_kernel =
            |backend| kernel::Kernel::new(backend, args.run_dir.clone(), args.state_dir.clone());
        if args.command == "down" {
            // `down` needs no valid config: it removes what the kernel shows
            // as Portal's (marked objects), so it also cleans up after a
            // config that has since changed.
            return match new_kernel(config::Backend::Auto) {
                Ok(mut k) => report("down", agent::down(&mut k).await),
                Err(e) => fail(&e),
            };
        }
        let (m, mut inputs) = match load_or_report(path) {
            Ok(x) => x,
            Err(code) => return code,
        };
        if args.command == "agent" {
            let opts = agent::Options {
                state_dir: args.state_dir.clone(),
                run_dir: args.run_dir.clone(),
                interval: args.interval,
                resolve_interval: args.resolve_interval,
            };
            return match agent::run(path, opts, m, inputs).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            };
        }
        // A one-shot apply runs no DHCP client: it keeps the address the
        // agent's client last leased, if unexpired, rather than remove it.
        inputs.wan_lease = dhcp::wan::remembered_valid(&args.state_dir);
        load::resolve_endpoints(&m, &mut inputs);
        match new_kernel(m.backend) {
            Ok(mut k) => report("apply", agent::pass(&mut k, &m, &inputs).await),
            Err(e) => fail(&e),
        }
    })
}

/// Logs what a one-shot `apply`/`down` did; exit 1 if any step failed.
fn report(what: &str, r: Result<kernel::Report, String>) -> ExitCode {
    match r {
        Ok(r) => {
            agent::log_report(&r);
            log::info(&format!(
                "{what}: {} change(s), {} error(s)",
                r.applied.len(),
                r.errors.len()
            ));
            if r.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => fail(&e),
    }
}
