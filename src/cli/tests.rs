//! The command line as a user types it: parsed by the one parser.

use super::args::*;
use argh::FromArgs;
use std::path::Path;

fn parse(words: &[&str]) -> Result<Cli, argh::EarlyExit> {
    Cli::from_args(&["portal"], words)
}

fn command(words: &[&str]) -> Command {
    parse(words).unwrap().command.unwrap()
}

#[test]
fn options_may_follow_the_config_as_the_services_write_them() {
    let Command::Agent(a) = command(&[
        "agent",
        "/c.json",
        "--state-dir",
        "/s",
        "--run-dir",
        "/r",
        "--interval",
        "5",
    ]) else {
        panic!("not agent");
    };
    assert_eq!(a.config, Path::new("/c.json"));
    assert_eq!(
        (a.state_dir.as_path(), a.run_dir.as_path()),
        (Path::new("/s"), Path::new("/r"))
    );
    assert_eq!((a.interval, a.resolve_interval), (5, 60));
}

#[test]
fn defaults_are_the_readmes() {
    let Command::Apply(a) = command(&["apply", "c.json"]) else {
        panic!("not apply");
    };
    assert_eq!(a.state_dir, Path::new(STATE_DIR));
    assert_eq!(a.run_dir, Path::new(RUN_DIR));
    assert_eq!((STATE_DIR, RUN_DIR), ("/var/lib/portal", "/run/portal"));
    let Command::Doctor(d) = command(&["doctor", "c.json"]) else {
        panic!("not doctor");
    };
    assert_eq!((d.watch, d.json, d.no_probe), (1000, false, false));
}

#[test]
fn nested_and_positional_commands() {
    let Command::Peer(Peer {
        command: PeerCommand::Add(a),
    }) = command(&[
        "peer",
        "add",
        "phone",
        "--portal",
        "roam",
        "--address",
        "10.77.0.9",
        "c.json",
    ])
    else {
        panic!("not peer add");
    };
    assert_eq!((a.name.as_str(), a.portal.as_str()), ("phone", "roam"));
    assert_eq!(a.address, Some("10.77.0.9".parse().unwrap()));
    let Command::Trace(t) = command(&["trace", "1.1.1.1", "--from", "home", "c.json"]) else {
        panic!("not trace");
    };
    assert_eq!(
        (t.addr.to_string(), t.from.as_str()),
        ("1.1.1.1".into(), "home")
    );
    let Command::Export(e) = command(&["export", "paris", "c.json", "-o", "p.conf"]) else {
        panic!("not export");
    };
    assert_eq!(e.output.as_deref(), Some(Path::new("p.conf")));
    let Command::Init(i) = command(&["init"]) else {
        panic!("not init");
    };
    assert!(i.config.is_none());
}

/// Regression: `portal peer --help` exited 2, and the top-level help's
/// doctor line was not indented.
#[test]
fn help_succeeds_for_every_command() {
    for words in [
        &["--help"][..],
        &["peer", "--help"],
        &["peer", "add", "--help"],
        &["doctor", "--help"],
        &["trace", "--help"],
        &["upgrade", "--help"],
    ] {
        let e = parse(words).unwrap_err();
        assert_eq!(e.status, Ok(()), "{words:?}");
        assert!(e.output.starts_with("Usage: portal"), "{}", e.output);
    }
    let top = parse(&["--help"]).unwrap_err().output;
    for line in top.lines().skip_while(|l| *l != "Commands:").skip(1) {
        assert!(line.starts_with("  "), "not indented: {line:?}");
    }
    assert!(top.contains("  doctor "), "{top}");
}

#[test]
fn bad_arguments_are_errors_naming_them() {
    let e = parse(&["agent", "c.json", "--interval", "soon"]).unwrap_err();
    assert_eq!(e.status, Err(()));
    assert!(e.output.contains("--interval"), "{}", e.output);
    let e = parse(&["peer", "add", "phone", "c.json"]).unwrap_err();
    assert!(e.output.contains("--portal"), "{}", e.output);
    assert!(parse(&["frob"]).is_err());
    assert!(parse(&["check"]).is_err());
    assert!(parse(&["--version"]).unwrap().version);
}
