//! `portal`: the router agent. See README.md for the config reference and
//! src/cli/ for the commands.

use std::path::Path;
use std::process::ExitCode;

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
    let argv: Vec<String> = std::env::args().collect();
    portal::cli::run(&argv)
}
