//! The `doctor` and `trace` commands: run them and print their findings.

use super::args::{Doctor, Trace};
use super::{load_or_report, runtime, EXIT_USAGE};
use crate::doctor::{checks, gather, Facts, Finding, Severity};
use crate::kernel::netlink::Netlink;
use crate::trace::{self, forward, Outcome, Packet, RouteType};
use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::time::Duration;

fn usage(e: &str) -> ExitCode {
    eprintln!("portal: {e}");
    ExitCode::from(EXIT_USAGE)
}

fn load(path: &std::path::Path) -> Result<crate::core::model::Model, ExitCode> {
    load_or_report(path).map(|(m, _)| m)
}

/// `portal doctor CONFIG [--json] [--watch MS] [--no-probe]`.
pub fn doctor(a: &Doctor) -> ExitCode {
    let json = a.json;
    let opts = gather::Options {
        watch: Duration::from_millis(a.watch),
        probes: !a.no_probe,
    };
    let config = &a.config;
    let m = match load(config) {
        Ok(m) => m,
        Err(c) => return c,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return usage(&e),
    };
    let facts = match rt.block_on(gather::facts(&m, &opts)) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("portal doctor: {e}");
            return ExitCode::from(2);
        }
    };
    let mut findings = checks::run(&m, &facts);
    findings.sort_by_key(|f| f.severity);
    for (dev, e) in &facts.wireguard_errors {
        eprintln!("portal doctor: WireGuard device {dev} not read: {e}");
    }
    if json {
        match serde_json::to_string_pretty(&findings) {
            Ok(t) => println!("{t}"),
            Err(e) => eprintln!("portal doctor: {e}"),
        }
    } else {
        print!("{}", render(&findings, &facts));
    }
    if findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn render(findings: &[Finding], f: &Facts) -> String {
    let mut out = String::new();
    for x in findings {
        out.push_str(&x.to_string());
        out.push('\n');
    }
    let errors = findings
        .iter()
        .filter(|x| x.severity == Severity::Error)
        .count();
    out.push_str(&format!(
        "doctor: {} finding(s) ({errors} error(s)); read {} links, {} rules, {} routes, {} WireGuard device(s), {} probe(s), {} DNS query(ies)\n",
        findings.len(),
        f.kernel.links.len(),
        f.kernel.rules.len(),
        f.kernel.routes.len(),
        f.wireguard.len(),
        f.probes.len(),
        f.dns.len()
    ));
    out
}

/// `portal trace ADDR --from LAN [--src ADDR] CONFIG`.
pub fn trace(a: &Trace) -> ExitCode {
    let (dst, lan_name, src, config) = (a.addr, a.from.as_str(), a.src, &a.config);
    let m = match load(config) {
        Ok(m) => m,
        Err(c) => return c,
    };
    let Some(lan) = m.lans.iter().find(|l| l.name == lan_name) else {
        let names: Vec<&str> = m.lans.iter().map(|l| l.name.as_str()).collect();
        return usage(&format!(
            "--from {lan_name}: no such LAN (lans: {})",
            names.join(", ")
        ));
    };
    let src = src.unwrap_or_else(|| host_in(lan));
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return usage(&e),
    };
    let result = rt.block_on(async {
        let rtnl = Netlink::new()?;
        let snap = rtnl.snapshot().await?;
        let kernel = rtnl.route_get(&snap, src, dst, Some(&lan.interface)).await;
        Ok::<_, String>((snap, kernel))
    });
    let (snap, kernel) = match result {
        Ok(x) => x,
        Err(e) => {
            eprintln!("portal trace: {e}");
            return ExitCode::from(2);
        }
    };
    let packet = Packet {
        src: IpAddr::V4(src),
        dst: IpAddr::V4(dst),
        iif: Some(lan.interface.clone()),
        mark: 0,
    };
    let t = trace::simulate(&snap.rules, &snap.routes, &packet);
    let rp_mode = ["all", lan.interface.as_str()]
        .iter()
        .filter_map(|i| crate::kernel::sysctl::read(&format!("net.ipv4.conf.{i}.rp_filter")))
        .filter_map(|v| v.parse::<u8>().ok())
        .max()
        .unwrap_or(0);
    let rp = trace::rp_filter(&snap.rules, &snap.routes, &packet, rp_mode);
    let tables: std::collections::BTreeSet<u32> = snap.routes.iter().map(|r| r.table).collect();
    println!(
        "packet: {src} -> {dst}, arriving on {} (LAN {})",
        lan.interface, lan.name
    );
    println!(
        "simulated over {} rules and {} routes in {} tables:",
        snap.rules.len(),
        snap.routes.len(),
        tables.len()
    );
    for line in t.to_string().lines() {
        println!("  {line}");
    }
    if let Some(why) = &rp {
        println!("  -> DROPPED before forwarding: {why} (rp_filter = {rp_mode})");
    }
    println!(
        "firewall (table inet portal, forward chain): {}",
        forward::verdict(&m, lan, &IpAddr::V4(dst), &t)
    );
    let shown = match &kernel {
        Ok(r) => r.to_string(),
        Err(e) => format!("refused: {}", e.text),
    };
    println!(
        "kernel (ip route get {dst} from {src} iif {}): {shown}",
        lan.interface
    );
    // The kernel answers a reverse-path-filtered source with EINVAL.
    let verdict = match (&rp, &kernel) {
        (Some(_), Err(e)) if e.errno == Some(libc::EINVAL) => Ok(()),
        (Some(why), _) => Err(format!("simulated a drop ({why}), the kernel: {shown}")),
        (None, _) => agree(&t.outcome, &kernel),
    };
    match verdict {
        Ok(()) => {
            println!("agreement: the simulation and the kernel agree");
            ExitCode::SUCCESS
        }
        Err(why) => {
            println!("DISAGREEMENT: {why}");
            ExitCode::FAILURE
        }
    }
}

/// A host address in the LAN other than the router's: the first one.
fn host_in(lan: &crate::core::model::Lan) -> Ipv4Addr {
    let IpAddr::V4(net) = lan.address.network().addr else {
        return Ipv4Addr::UNSPECIFIED;
    };
    let mut h = u32::from(net) + 1;
    if IpAddr::V4(Ipv4Addr::from(h)) == lan.address.addr {
        h += 1;
    }
    Ipv4Addr::from(h)
}

/// Whether the kernel's answer is the simulated outcome.
pub fn agree(
    sim: &Outcome,
    kernel: &Result<trace::Route, trace::kernel::Refusal>,
) -> Result<(), String> {
    match (sim, kernel) {
        (Outcome::Route(s), Ok(k)) => {
            if s.kind == k.kind && s.dev == k.dev && s.table == k.table {
                Ok(())
            } else {
                Err(format!(
                    "simulated {} out {} (table {}), the kernel says {} out {} (table {})",
                    s.kind,
                    s.dev.as_deref().unwrap_or("-"),
                    trace::table_name(s.table),
                    k.kind,
                    k.dev.as_deref().unwrap_or("-"),
                    trace::table_name(k.table)
                ))
            }
        }
        (Outcome::Refused(s), Err(e)) => {
            let expected = match s.kind {
                RouteType::Unreachable => libc::EHOSTUNREACH,
                RouteType::Prohibit => libc::EACCES,
                _ => libc::EINVAL,
            };
            if e.errno == Some(expected) {
                Ok(())
            } else {
                Err(format!(
                    "simulated a {} route, the kernel: {}",
                    s.kind, e.text
                ))
            }
        }
        (Outcome::RuleRefused(_), Err(_)) => Ok(()),
        (Outcome::NoRoute, Err(e)) if e.errno == Some(libc::ENETUNREACH) => Ok(()),
        (s, Ok(k)) => Err(format!(
            "simulated \"{}\", the kernel routes it: {k}",
            s.to_string().replace('\n', " ")
        )),
        (s, Err(e)) => Err(format!(
            "simulated \"{}\", the kernel refuses it: {}",
            s.to_string().replace('\n', " "),
            e.text
        )),
    }
}
