//! The commands that read a config and act on the kernel or the key files:
//! check, plan, apply, agent, down, firewall, firewall-dump, firewall-delete, keygen, pubkey,
//! leases, and asking PID 1 to shut down or upgrade.

use super::args::{Agent, Apply, Down, Leases, Upgrade};
use super::{fail, load_or_report, runtime};
use crate::core::config;
use crate::{agent, dhcp, kernel, keys, load, log, plan_text, privileges};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

pub fn check(path: &Path) -> ExitCode {
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

pub fn plan(path: &Path) -> ExitCode {
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

fn kernel_for(
    backend: config::Backend,
    run_dir: &Path,
    state_dir: &Path,
) -> Result<kernel::Kernel, String> {
    kernel::Kernel::new(backend, run_dir.to_path_buf(), state_dir.to_path_buf())
}

pub fn apply(a: &Apply) -> ExitCode {
    if let Err(e) = privileges::drop_unneeded() {
        return fail(&e);
    }
    let (m, mut inputs) = match load_or_report(&a.config) {
        Ok(x) => x,
        Err(code) => return code,
    };
    // A one-shot apply runs no DHCP client: it keeps the address the
    // agent's client last leased, if unexpired, rather than remove it.
    inputs.wan_lease = dhcp::wan::remembered_valid(&a.state_dir);
    load::resolve_endpoints(&m, &mut inputs);
    on_runtime(|| async {
        match kernel_for(m.backend, &a.run_dir, &a.state_dir) {
            Ok(mut k) => report("apply", agent::pass(&mut k, &m, &inputs).await),
            Err(e) => fail(&e),
        }
    })
}

/// `down` needs no valid config: it removes what the kernel shows as
/// Portal's (marked objects), so it also cleans up after a config that
/// has since changed.
pub fn down(a: &Down) -> ExitCode {
    if let Err(e) = privileges::drop_unneeded() {
        return fail(&e);
    }
    on_runtime(|| async {
        match kernel_for(config::Backend::Auto, &a.run_dir, &a.state_dir) {
            Ok(mut k) => report("down", agent::down(&mut k).await),
            Err(e) => fail(&e),
        }
    })
}

pub fn agent(a: &Agent) -> ExitCode {
    if let Err(e) = privileges::drop_unneeded() {
        return fail(&e);
    }
    let (m, inputs) = match load_or_report(&a.config) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let opts = agent::Options {
        state_dir: a.state_dir.clone(),
        run_dir: a.run_dir.clone(),
        interval: Duration::from_secs(a.interval.max(1)),
        resolve_interval: Duration::from_secs(a.resolve_interval.max(1)),
    };
    on_runtime(|| async {
        match agent::run(&a.config, opts, m, inputs).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        }
    })
}

fn on_runtime<F, Fut>(f: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ExitCode>,
{
    match runtime() {
        Ok(rt) => rt.block_on(f()),
        Err(e) => fail(&e),
    }
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

/// `portal firewall CONFIG`: the agent's nftables write, alone.
pub fn firewall(path: &Path) -> ExitCode {
    let m = match load_or_report(path) {
        Ok((m, _)) => m,
        Err(code) => return code,
    };
    let table = crate::core::firewall::ruleset(&m);
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

pub fn firewall_dump() -> ExitCode {
    match kernel::nftables::listing(crate::core::firewall::NFT_TABLE) {
        Ok(Some(l)) => {
            print!("{l}");
            ExitCode::SUCCESS
        }
        Ok(None) => fail(&format!(
            "no table inet {}",
            crate::core::firewall::NFT_TABLE
        )),
        Err(e) => fail(&e),
    }
}

pub fn firewall_delete() -> ExitCode {
    let table = crate::core::firewall::NFT_TABLE;
    match kernel::nftables::delete(table) {
        Ok(()) => {
            log::info(&format!(
                "firewall: table inet {table} deleted (if it was there)"
            ));
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

pub fn keygen(file: &Path) -> ExitCode {
    match keys::generate(file) {
        Ok(public) => {
            println!("{public}");
            eprintln!(
                "portal: private key written to {} (mode 0600)",
                file.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

pub fn pubkey(file: &Path) -> ExitCode {
    match keys::load_private_key(file) {
        Ok(k) => {
            println!("{}", k.public_base64());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

pub fn leases(a: &Leases) -> ExitCode {
    let m = match load_or_report(&a.config) {
        Ok((m, _)) => m,
        Err(code) => return code,
    };
    let status = dhcp::status(&m, &a.state_dir);
    if a.json {
        match serde_json::to_string_pretty(&status) {
            Ok(t) => println!("{t}"),
            Err(e) => return fail(&e.to_string()),
        }
        return ExitCode::SUCCESS;
    }
    print!("{}", dhcp::render(&status, crate::clock::unix_ms() / 1000));
    ExitCode::SUCCESS
}

/// Signals PID 1 the way busybox's poweroff/reboot/halt do.
pub fn ask_init(kind: crate::init::Shutdown) -> ExitCode {
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(1), kind.signal()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("cannot signal PID 1: {e}")),
    }
}

#[cfg(feature = "upgrade")]
pub fn upgrade(a: &Upgrade) -> ExitCode {
    let paths = crate::upgrade::write::Paths::default();
    let mut say = |m: &str| eprintln!("portal upgrade: {m}");
    match crate::upgrade::write::run(&a.bundle, &paths, &mut say) {
        Ok(p) if a.no_reboot => {
            eprintln!(
                "portal upgrade: {} is in slot {}; reboot to try it",
                p.version,
                p.to.name()
            );
            ExitCode::SUCCESS
        }
        Ok(_) => {
            eprintln!("portal upgrade: rebooting");
            ask_init(crate::init::Shutdown::Reboot)
        }
        Err(e) => fail(&format!("upgrade: {e}")),
    }
}

/// The ER-X's binary is built without upgrades (its kernel cannot write
/// its flash): say so rather than pretend the command does not exist.
#[cfg(not(feature = "upgrade"))]
pub fn upgrade(a: &Upgrade) -> ExitCode {
    fail(&format!(
        "upgrade {}: this build has no upgrade support (the ER-X firmware is replaced by flashing)",
        a.bundle.display()
    ))
}
