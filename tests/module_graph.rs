//! The crate's module graph, read from the source: no import loops between
//! modules, and the pure core (`src/core/`) imports nothing outside itself.
//! A loop means two modules can only be read together; the core staying
//! pure is what lets it be tested without a kernel.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The node a file belongs to: its top-level module, or `core::X` inside
/// the core (each core module is a node of its own).
fn node_of(rel: &Path) -> String {
    let parts: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    match parts.as_slice() {
        [core, sub, ..] if core == "core" && sub != "mod" => format!("core::{sub}"),
        [first, ..] => first.clone(),
        [] => String::new(),
    }
}

/// Every `crate::a::b` path in `text` (and each of `crate::{a, b::c}`), as
/// the node it names.
fn targets(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let paths: Vec<String> = if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            group[..end]
                .split(',')
                .map(|p| p.trim().to_string())
                .collect()
        } else {
            vec![rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect()]
        };
        for path in paths {
            let mut segs = path.split("::").map(str::trim).filter(|s| !s.is_empty());
            match segs.next() {
                Some("core") => {
                    if let Some(sub) = segs.next() {
                        let sub: String = sub
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        out.insert(format!("core::{sub}"));
                    }
                }
                // A module, not an item of the crate root (`crate::plan_text` is lib.rs's).
                Some(first) if first.chars().all(|c| c.is_lowercase() || c == '_') => {
                    out.insert(first.to_string());
                }
                _ => {}
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Test files may import anything: only the code's own graph counts.
fn is_test_file(p: &Path) -> bool {
    let name = p.file_name().unwrap().to_string_lossy();
    name == "tests.rs" || name.ends_with("_tests.rs") || name == "testdir.rs"
}

/// The code before its `#[cfg(test)]` module, if any.
fn without_tests(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod tests {")
        .map_or(text, |i| &text[..i])
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files.iter().filter(|f| !is_test_file(f)) {
        let rel = f.strip_prefix(&src).unwrap();
        let from = node_of(rel);
        if from == "lib" || from == "main" {
            continue;
        }
        let text = fs::read_to_string(f).unwrap();
        let deps = g.entry(from.clone()).or_default();
        for t in targets(without_tests(&text)) {
            if t != from {
                deps.insert(t);
            }
        }
    }
    g
}

/// One loop in `g`, as the path that closes it, if there is any.
fn find_loop(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, g, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in g.keys() {
        if let Some(c) = visit(n, g, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn no_module_imports_itself_back() {
    // Every loop, each found after cutting the last edge of the one before.
    let mut g = graph();
    let mut loops = Vec::new();
    while let Some(c) = find_loop(&g) {
        let (a, b) = (&c[c.len() - 2], &c[c.len() - 1]);
        g.get_mut(a).unwrap().remove(b);
        loops.push(c.join(" -> "));
    }
    assert!(loops.is_empty(), "import loops:\n{}", loops.join("\n"));
}

#[test]
fn the_core_imports_only_the_core() {
    let g = graph();
    let core: Vec<_> = g.iter().filter(|(n, _)| n.starts_with("core::")).collect();
    assert!(
        core.len() >= 7,
        "core modules: {:?}",
        g.keys().collect::<Vec<_>>()
    );
    for (n, deps) in core {
        let outside: Vec<_> = deps.iter().filter(|d| !d.starts_with("core::")).collect();
        assert!(outside.is_empty(), "{n} imports {outside:?}");
    }
}

#[test]
fn the_checker_sees_a_loop() {
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    g.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(find_loop(&g).unwrap(), ["a", "b", "c", "a"]);
    g.get_mut("c").unwrap().clear();
    assert_eq!(find_loop(&g), None);
    assert_eq!(
        targets(
            "use crate::core::model::{Lan}; crate::dns::PORT; crate::Foo; crate::{log, kernel::x}"
        ),
        BTreeSet::from(["core::model", "dns", "kernel", "log"].map(String::from))
    );
}
