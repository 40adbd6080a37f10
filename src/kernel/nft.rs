//! Portal's nftables table, through the `nft` command: the whole table is
//! replaced in one transaction (`nft -f`), never touching other tables.
//!
//! To know whether the kernel still has what was written without rewriting
//! it, the listing taken right after a write is kept (in memory and in the
//! state directory, to survive an agent restart) and compared with a fresh
//! listing on each pass; counter values are ignored in that comparison.

use crate::desired::NFT_TABLE;
use std::io::Write;
use std::process::{Command, Stdio};

/// The table as the kernel lists it, or None when it does not exist.
pub fn list() -> Result<Option<String>, String> {
    let out = Command::new("nft")
        .args(["list", "table", "inet", NFT_TABLE])
        .output()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if out.status.success() {
        Ok(Some(normalize(&String::from_utf8_lossy(&out.stdout))))
    } else {
        Ok(None)
    }
}

/// Drops what changes without anyone writing: counter values, inline
/// (`counter packets 3 bytes 180`) and in named counters (a line of their own).
fn normalize(listing: &str) -> String {
    let mut out = String::with_capacity(listing.len());
    for line in listing.lines() {
        let indent = &line[..line.len() - line.trim_start().len()];
        let mut kept: Vec<&str> = Vec::new();
        let mut words = line.split_whitespace().peekable();
        while let Some(w) = words.next() {
            let is_number = |n: &&str| n.chars().all(|c| c.is_ascii_digit());
            if (w == "packets" || w == "bytes") && words.peek().is_some_and(is_number) {
                words.next();
                continue;
            }
            kept.push(w);
        }
        if kept.is_empty() && !line.trim().is_empty() {
            continue;
        }
        out.push_str(indent);
        out.push_str(&kept.join(" "));
        out.push('\n');
    }
    out
}

/// Replaces Portal's table with `ruleset` atomically.
pub fn replace(ruleset: &str) -> Result<(), String> {
    run_script(&format!(
        "table inet {NFT_TABLE}\ndelete table inet {NFT_TABLE}\n{ruleset}"
    ))
}

pub fn delete() -> Result<(), String> {
    run_script(&format!(
        "table inet {NFT_TABLE}\ndelete table inet {NFT_TABLE}\n"
    ))
}

fn run_script(script: &str) -> Result<(), String> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| format!("cannot write to nft: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft refused the ruleset: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counters_do_not_count_as_changes() {
        let a = "\t\tiifname \"lan0\" counter packets 3 bytes 180 reject\n";
        let b = "\t\tiifname \"lan0\" counter packets 0 bytes 0 reject\n";
        assert_eq!(super::normalize(a), super::normalize(b));
        assert_ne!(
            super::normalize(a),
            super::normalize("\t\tiifname \"lan1\" counter reject\n")
        );
    }
}
