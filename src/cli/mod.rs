//! The command line: one parser (args.rs), one way to load a config or
//! report it, one runtime, and each command's effects. Everything a command
//! does beyond reading its arguments and printing lives in the library.

pub mod args;
mod doctor;
mod kernel_cmds;
mod peer;

use crate::core::{desired, model};
use crate::load;
use args::{Cli, Command, PeerCommand};
use std::path::Path;
use std::process::ExitCode;

/// Exit status of a command line or config the user must fix.
pub const EXIT_USAGE: u8 = 2;

/// Runs the command line `argv` (argv[0] first).
pub fn run(argv: &[String]) -> ExitCode {
    // `-h` as most tools take it (argh knows only --help).
    let words: Vec<&str> = argv
        .iter()
        .skip(1)
        .map(|w| if w == "-h" { "--help" } else { w.as_str() })
        .collect();
    let cli = match <Cli as argh::FromArgs>::from_args(&["portal"], &words) {
        Ok(c) => c,
        // --help: the text on stdout, exit 0.
        Err(argh::EarlyExit {
            output,
            status: Ok(()),
        }) => {
            println!("{}", output.trim_end());
            return ExitCode::SUCCESS;
        }
        Err(argh::EarlyExit {
            output,
            status: Err(()),
        }) => {
            eprintln!("portal: {}", output.trim_end());
            eprintln!("Run `portal --help` (or `portal COMMAND --help`) for usage.");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if cli.version {
        println!("portal {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let Some(command) = cli.command else {
        eprintln!("portal: no command given. Run `portal --help` for the list.");
        return ExitCode::from(EXIT_USAGE);
    };
    match command {
        Command::Check(a) => kernel_cmds::check(&a.config),
        Command::Plan(a) => kernel_cmds::plan(&a.config),
        Command::Apply(a) => kernel_cmds::apply(&a),
        Command::Agent(a) => kernel_cmds::agent(&a),
        Command::Down(a) => kernel_cmds::down(&a),
        Command::Firewall(a) => kernel_cmds::firewall(&a.config),
        Command::FirewallDump(_) => kernel_cmds::firewall_dump(),
        Command::FirewallDelete(_) => kernel_cmds::firewall_delete(),
        Command::Keygen(a) => kernel_cmds::keygen(&a.file),
        Command::Pubkey(a) => kernel_cmds::pubkey(&a.file),
        Command::Leases(a) => kernel_cmds::leases(&a),
        Command::Peer(p) => match p.command {
            PeerCommand::Add(a) => peer::report("peer add", peer::add(&a)),
            PeerCommand::List(a) => peer::report("peer list", peer::list(&a)),
            PeerCommand::Remove(a) => peer::report("peer remove", peer::remove(&a)),
        },
        Command::Import(a) => peer::report("import", peer::import(&a)),
        Command::Export(a) => peer::report("export", peer::export(&a)),
        Command::Doctor(a) => doctor::doctor(&a),
        Command::Trace(a) => doctor::trace(&a),
        Command::Init(a) => {
            let cfg = a
                .config
                .unwrap_or_else(|| crate::init::config::DEFAULT_PATH.into());
            crate::init::run(&cfg)
        }
        Command::Poweroff(_) => kernel_cmds::ask_init(crate::init::Shutdown::PowerOff),
        Command::Reboot(_) => kernel_cmds::ask_init(crate::init::Shutdown::Reboot),
        Command::Halt(_) => kernel_cmds::ask_init(crate::init::Shutdown::Halt),
        Command::Upgrade(a) => kernel_cmds::upgrade(&a),
    }
}

/// Prints `portal: ERROR` and returns exit status 1.
pub fn fail(e: &str) -> ExitCode {
    eprintln!("portal: {e}");
    ExitCode::FAILURE
}

/// Loads the config, or prints every problem and returns exit status 2.
pub fn load_or_report(path: &Path) -> Result<(model::Model, desired::Inputs), ExitCode> {
    load::load(path).map_err(|e| {
        match e {
            load::LoadError::Read { .. } => eprintln!("portal: {e}"),
            load::LoadError::Invalid(errs) => {
                eprintln!("portal: {} is not valid:", path.display());
                for e in &errs {
                    eprintln!("  {e}");
                }
            }
        }
        ExitCode::from(EXIT_USAGE)
    })
}

/// The single-threaded runtime every command that talks netlink runs on.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start runtime: {e}"))
}

#[cfg(test)]
mod tests;
