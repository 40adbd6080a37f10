//! Validation of a LAN's `split` section: destination lists that bypass its
//! portal (`direct`) or that alone use it (`portal`).
//!
//! Pure: list files are read by the loader (load.rs) and passed in as text,
//! so that `validate` never touches the file system.

use super::{parse_network, Errors, Portal};
use crate::core::cidr::Cidr;
use crate::core::config;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Split LANs get their own routing table, numbered from here in LAN name
/// order, skipping the portals' tables.
pub const FIRST_SPLIT_TABLE: u32 = 52000;
/// A list file full of mistakes is reported by its first problems only.
const MAX_ERRORS_PER_LIST: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitKind {
    /// Listed destinations leave by the WAN; the rest by the portal.
    Direct,
    /// Only listed destinations use the portal; the rest leave by the WAN.
    Portal,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub kind: SplitKind,
    /// IPv4 networks, sorted, without duplicates.
    pub prefixes: Vec<Cidr>,
    /// The LAN's own routing table.
    pub table: u32,
    /// The list files, watched by the agent for changes.
    pub files: Vec<PathBuf>,
}

/// What the loader read of each list file: its text, or why it could not.
pub type Files = BTreeMap<PathBuf, Result<String, String>>;

/// Every list file a config names (for the loader to read).
pub fn files_named(cfg: &config::Config) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for s in cfg.lans.values().filter_map(|l| l.split.as_ref()) {
        for f in [&s.direct_files, &s.portal_files].into_iter().flatten() {
            out.extend(f.iter().cloned());
        }
    }
    out
}

/// Checks one LAN's `split` (at `lans.NAME.split`); the table is numbered
/// later (`number_tables`), once every LAN is known.
pub(super) fn validate(
    at: &str,
    s: &config::Split,
    via_portal: bool,
    files: &Files,
    e: &mut Errors,
) -> Option<Split> {
    if !via_portal {
        e.add(
            at,
            "a LAN `via` direct has nothing to split: `split` needs a portal in `via`",
        );
        return None;
    }
    let direct = s.direct.is_some() || s.direct_files.is_some();
    let portal = s.portal.is_some() || s.portal_files.is_some();
    let (kind, list, list_files, name) = match (direct, portal) {
        (true, false) => (SplitKind::Direct, &s.direct, &s.direct_files, "direct"),
        (false, true) => (SplitKind::Portal, &s.portal, &s.portal_files, "portal"),
        (true, true) => {
            e.add(
                at,
                "give either `direct`/`direct_files` or `portal`/`portal_files`, not both",
            );
            return None;
        }
        (false, false) => {
            e.add(
                at,
                "give `direct`/`direct_files` (these bypass the portal) or `portal`/`portal_files` (only these use it)",
            );
            return None;
        }
    };
    let before = e.0.len();
    let mut prefixes = BTreeSet::new();
    for (i, p) in list.iter().flatten().enumerate() {
        if let Some(c) = e.parse(&format!("{at}.{name}[{i}]"), parse_prefix(p)) {
            prefixes.insert(c);
        }
    }
    for (i, f) in list_files.iter().flatten().enumerate() {
        let path = format!("{at}.{name}_files[{i}]");
        match files.get(f) {
            Some(Ok(text)) => parse_list(&path, f, text, &mut prefixes, e),
            Some(Err(why)) => e.add(&path, why.clone()),
            None => e.add(&path, format!("{} was not read", f.display())),
        }
    }
    (e.0.len() == before).then(|| Split {
        kind,
        prefixes: prefixes.into_iter().collect(),
        table: 0,
        files: list_files.clone().unwrap_or_default(),
    })
}

/// One list file: one CIDR per line, `#` starts a comment, blank lines are
/// skipped. Problems name the file and line.
fn parse_list(at: &str, file: &Path, text: &str, out: &mut BTreeSet<Cidr>, e: &mut Errors) {
    let mut problems = 0;
    for (n, line) in text.lines().enumerate() {
        let item = line.split('#').next().unwrap_or_default().trim();
        if item.is_empty() {
            continue;
        }
        match parse_prefix(item) {
            Ok(c) => {
                out.insert(c);
            }
            Err(why) => {
                problems += 1;
                if problems <= MAX_ERRORS_PER_LIST {
                    e.add(at, format!("{} line {}: {why}", file.display(), n + 1));
                }
            }
        }
    }
    if problems > MAX_ERRORS_PER_LIST {
        e.add(
            at,
            format!(
                "{}: {} more line(s) with problems",
                file.display(),
                problems - MAX_ERRORS_PER_LIST
            ),
        );
    }
}

/// A destination network: IPv4 (LANs are routed over IPv4 only), host bits
/// clear, not the default route (that is `via` itself).
fn parse_prefix(s: &str) -> Result<Cidr, String> {
    let c = parse_network(s)?;
    if c.is_v6() {
        return Err(format!(
            "`{s}` is IPv6; LANs are routed over IPv4 only (IPv6 from LANs is dropped)"
        ));
    }
    if c.is_default() {
        return Err(format!(
            "`{s}` is every destination: set the LAN's `via` instead"
        ));
    }
    Ok(c)
}

/// Gives each split LAN (in name order) the next table from
/// FIRST_SPLIT_TABLE that no portal uses.
pub(super) fn number_tables<'a>(splits: impl Iterator<Item = &'a mut Split>, portals: &[Portal]) {
    let mut free = (FIRST_SPLIT_TABLE..).filter(|t| !portals.iter().any(|p| p.table == *t));
    for s in splits {
        s.table = free.next().unwrap_or(FIRST_SPLIT_TABLE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(json: &str) -> config::Split {
        serde_json::from_str(json).unwrap()
    }

    fn run(json: &str, files: &Files) -> (Option<Split>, Vec<String>) {
        let mut e = Errors::default();
        let s = validate("lans.home.split", &split(json), true, files, &mut e);
        (s, e.0.iter().map(|x| x.to_string()).collect())
    }

    #[test]
    fn a_file_with_comments_blank_lines_and_duplicates() {
        let mut files = Files::new();
        files.insert(
            "/perm/fr.cidr".into(),
            Ok("# France\n\n192.0.2.0/24  # docs\n 198.18.0.0/15\n192.0.2.0/24\n".into()),
        );
        let (s, errs) = run(
            r#"{"direct": ["203.0.113.0/24"], "direct_files": ["/perm/fr.cidr"]}"#,
            &files,
        );
        assert!(errs.is_empty(), "{errs:?}");
        let s = s.unwrap();
        assert_eq!(s.kind, SplitKind::Direct);
        let got: Vec<String> = s.prefixes.iter().map(|c| c.to_string()).collect();
        assert_eq!(got, ["192.0.2.0/24", "198.18.0.0/15", "203.0.113.0/24"]);
        assert_eq!(s.files, [PathBuf::from("/perm/fr.cidr")]);
    }

    #[test]
    fn errors_name_the_field_file_and_line() {
        let mut files = Files::new();
        files.insert(
            "/perm/x.cidr".into(),
            Ok("10.0.0.0/8\n1.2.3/24\n10.1.1.1/16\n".into()),
        );
        files.insert(
            "/perm/gone".into(),
            Err("cannot read /perm/gone: No such file".into()),
        );
        let (s, errs) = run(
            r#"{"portal": ["0.0.0.0/0", "2001:db8::/32"], "portal_files": ["/perm/x.cidr", "/perm/gone"]}"#,
            &files,
        );
        assert!(s.is_none());
        assert_eq!(
            errs,
            [
                "lans.home.split.portal[0]: `0.0.0.0/0` is every destination: set the LAN's `via` instead",
                "lans.home.split.portal[1]: `2001:db8::/32` is IPv6; LANs are routed over IPv4 only (IPv6 from LANs is dropped)",
                "lans.home.split.portal_files[0]: /perm/x.cidr line 2: `1.2.3` is not an IP address",
                "lans.home.split.portal_files[0]: /perm/x.cidr line 3: `10.1.1.1/16` has host bits set; did you mean 10.1.0.0/16?",
                "lans.home.split.portal_files[1]: cannot read /perm/gone: No such file",
            ]
        );
    }

    #[test]
    fn exactly_one_kind_and_only_via_a_portal() {
        let (_, errs) = run(r#"{"direct": [], "portal": []}"#, &Files::new());
        assert_eq!(
            errs,
            ["lans.home.split: give either `direct`/`direct_files` or `portal`/`portal_files`, not both"]
        );
        let (_, errs) = run("{}", &Files::new());
        assert!(errs[0].starts_with("lans.home.split: give `direct`/`direct_files`"));
        let (s, errs) = run(r#"{"portal": []}"#, &Files::new());
        assert!(errs.is_empty() && s.unwrap().prefixes.is_empty());
        let mut e = Errors::default();
        validate(
            "lans.x.split",
            &split(r#"{"direct": []}"#),
            false,
            &Files::new(),
            &mut e,
        );
        assert!(e.0[0].reason.contains("needs a portal"));
    }

    #[test]
    fn a_long_bad_file_is_reported_by_its_first_problems() {
        let mut files = Files::new();
        files.insert("/l".into(), Ok("x\n".repeat(25)));
        let (_, errs) = run(r#"{"direct_files": ["/l"]}"#, &files);
        assert_eq!(errs.len(), MAX_ERRORS_PER_LIST + 1);
        assert_eq!(
            errs.last().unwrap(),
            "lans.home.split.direct_files[0]: /l: 15 more line(s) with problems"
        );
    }
}
