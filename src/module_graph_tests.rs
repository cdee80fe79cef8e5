//! The dependency graph among `src/`'s top-level modules has no cycle, and ARCHITECTURE.md lists
//! it as the code has it. Edges are the `crate::<module>` paths of production code (comments,
//! `mod tests` blocks and `*tests.rs` files left out); `main.rs` and `lib.rs` are the roots.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let top = |p: &Path| -> String {
        let rel = p.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        first.trim_end_matches(".rs").to_owned()
    };
    let modules: BTreeSet<String> = files
        .iter()
        .map(|p| top(p))
        .filter(|m| m != "main" && m != "lib")
        .collect();
    let mut g = Graph::new();
    for path in &files {
        let from = top(path);
        let name = path.file_name().unwrap().to_string_lossy();
        if !modules.contains(&from) || name.ends_with("tests.rs") {
            continue;
        }
        let text = fs::read_to_string(path).unwrap();
        let code = match text.find("#[cfg(test)]\nmod tests") {
            Some(i) => &text[..i],
            None => &text,
        };
        let deps = g.entry(from.clone()).or_default();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (i, _) in line.match_indices("crate::") {
                let rest = &line[i + "crate::".len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                let to = &rest[..end];
                if to != from && modules.contains(to) {
                    deps.insert(to.to_owned());
                }
            }
        }
    }
    g
}

/// A cycle of `g`, if it has one (depth-first search).
fn cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit(
        g: &Graph,
        node: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| n == node) {
            let mut c = path[i..].to_vec();
            c.push(node.to_owned());
            return Some(c);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in g.get(node).into_iter().flatten() {
            if let Some(c) = visit(g, next, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|n| visit(g, n, &mut Vec::new(), &mut done))
}

fn listing(g: &Graph) -> String {
    g.iter()
        .map(|(m, deps)| {
            let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
            format!("{m} -> {}", deps.join(" ")).trim_end().to_owned() + "\n"
        })
        .collect()
}

#[test]
fn top_level_modules_have_no_cycle() {
    let g = graph();
    assert!(g.len() > 10, "the scan found too few modules: {g:?}");
    if let Some(c) = cycle(&g) {
        panic!(
            "module cycle: {} (move the shared type down, or the caller up)",
            c.join(" → ")
        );
    }
}

#[test]
fn architecture_md_lists_the_graph_the_code_has() {
    let doc =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md")).unwrap();
    let (start, end) = (
        "<!-- module-graph -->\n```text\n",
        "```\n<!-- /module-graph -->",
    );
    let listed = doc
        .split_once(start)
        .and_then(|(_, rest)| rest.split_once(end))
        .map(|(block, _)| block)
        .unwrap_or_else(|| panic!("ARCHITECTURE.md has no {start:?} … {end:?} block"));
    let actual = listing(&graph());
    assert_eq!(
        listed, actual,
        "ARCHITECTURE.md's module graph is out of date; it should read:\n{actual}"
    );
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let mut g = Graph::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    assert_eq!(cycle(&g), None);
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(cycle(&g).unwrap(), ["a", "b", "c", "a"]);
}
