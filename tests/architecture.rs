//! The shape of the crate: no import cycle between its top-level modules.
//!
//! Every `crate::` path counts, inline ones included (`crate::report::X` in
//! an expression is as much a dependency as a `use` line), and so do
//! grouped imports (`use crate::{a, b}`). Comments do not. A cycle makes
//! modules impossible to change, test or split apart one at a time; the
//! intended layering is drawn in docs/architecture.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → modules it names, with a file that names each.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            // Not inside a string literal that holds a URL (`"https://…"`).
            Some(i) if !l[..i].ends_with(':') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level modules a file's text names through `crate::`.
fn named_modules(text: &str) -> BTreeSet<String> {
    let text = strip_comments(text);
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name = ident(part.trim());
                if !name.is_empty() && name != "self" {
                    out.insert(name.to_string());
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name.to_string());
            }
        }
    }
    out
}

fn graph(files: &[(String, String, String)]) -> Graph {
    let mut g = Graph::new();
    for (module, file, text) in files {
        let entry = g.entry(module.clone()).or_default();
        for target in named_modules(text) {
            if &target != module {
                entry.entry(target).or_insert_with(|| file.clone());
            }
        }
    }
    g
}

/// Strongly connected components with more than one module.
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    fn reach(g: &Graph, from: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(m) = stack.pop() {
            for next in g.get(&m).into_iter().flat_map(|e| e.keys()) {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    }
    let reachable: BTreeMap<&String, BTreeSet<String>> =
        g.keys().map(|m| (m, reach(g, m))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for m in g.keys() {
        if done.contains(m) || !reachable[m].contains(m) {
            continue;
        }
        let scc: Vec<String> = reachable[m]
            .iter()
            .filter(|o| reachable.get(o).is_some_and(|r| r.contains(m)))
            .cloned()
            .collect();
        done.extend(scc.iter().cloned());
        if scc.len() > 1 {
            out.push(scc);
        }
    }
    out
}

fn crate_files() -> Vec<(String, String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = p.strip_prefix(&src).unwrap();
            let first = rel.components().next().unwrap().as_os_str();
            let module = first.to_string_lossy().trim_end_matches(".rs").to_string();
            // The binary and the crate root only declare and re-export.
            if module == "main" || module == "lib" {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            out.push((module, rel.display().to_string(), text));
        }
    }
    out
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let g = graph(&crate_files());
    assert!(g.len() > 20, "found only {} modules", g.len());
    let found = cycles(&g);
    let g = &g;
    let explain: Vec<String> = found
        .iter()
        .map(|scc| {
            let edges: Vec<String> = scc
                .iter()
                .flat_map(|a| {
                    scc.iter().filter_map(move |b| {
                        g[a].get(b)
                            .map(|file| format!("{a} -> {b} (in src/{file})"))
                    })
                })
                .collect();
            format!("cycle {scc:?}: {}", edges.join(", "))
        })
        .collect();
    assert!(found.is_empty(), "{}", explain.join("\n"));
}

/// The check sees inline paths and grouped imports, not only `use` lines.
#[test]
fn the_check_finds_a_cycle_through_an_inline_path() {
    let files = vec![
        (
            "report".to_string(),
            "report/mod.rs".to_string(),
            "pub waiver: Option<crate::waivers::WaiverRef>,".to_string(),
        ),
        (
            "waivers".to_string(),
            "waivers.rs".to_string(),
            "use crate::{error::Error, report::Finding};\n// crate::config in a comment"
                .to_string(),
        ),
        (
            "config".to_string(),
            "config.rs".to_string(),
            "// crate::report is only mentioned".to_string(),
        ),
    ];
    let g = graph(&files);
    assert_eq!(
        cycles(&g),
        vec![vec!["report".to_string(), "waivers".to_string()]]
    );
    assert!(
        !g["waivers"].contains_key("config"),
        "comments do not count"
    );
    assert!(g["config"].is_empty());
}

/// Each top-level module's place in the drawing of docs/architecture.md:
/// (line from the top, position along the line's arrows). Text in
/// parentheses and after two spaces is commentary.
fn documented_layers() -> BTreeMap<String, (usize, usize)> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md"))
            .unwrap();
    let start = doc
        .find("```\napp/")
        .expect("the module drawing in docs/architecture.md")
        + 4;
    let end = start + doc[start..].find("```").unwrap();
    let mut layers = BTreeMap::new();
    for (line, text) in doc[start..end].lines().enumerate() {
        // The drawing is left of the first run of three spaces or `(`.
        let drawing = text.split("   ").next().unwrap_or_default();
        let drawing = drawing.split('(').next().unwrap_or_default();
        for (along, part) in drawing.split('─').enumerate() {
            for name in part
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '/' || c == '.'))
            {
                let name = name.trim_end_matches('/').trim_end_matches(".rs");
                if !name.is_empty() && name != "►" {
                    layers.entry(name.to_string()).or_insert((line, along));
                }
            }
        }
    }
    layers
}

/// A module names only modules at its level or below in the documented
/// drawing (along an arrow, only those to its right), and every top-level
/// module is in the drawing: the layers are checked, not only the cycles.
#[test]
fn every_module_names_only_modules_below_it_as_documented() {
    let layers = documented_layers();
    let files = crate_files();
    let modules: BTreeSet<&str> = files.iter().map(|(m, _, _)| m.as_str()).collect();
    let unplaced: Vec<&&str> = modules
        .iter()
        .filter(|m| !layers.contains_key(**m))
        .collect();
    assert!(
        unplaced.is_empty(),
        "modules missing from the drawing in docs/architecture.md: {unplaced:?}"
    );
    let g = graph(&files);
    let mut upward = Vec::new();
    for (from, names) in &g {
        for (to, file) in names {
            // Items of the crate root (`crate::VERSION`) are no module.
            let (Some(a), Some(b)) = (layers.get(from), layers.get(to)) else {
                continue;
            };
            let up = b.0 < a.0 || (b.0 == a.0 && b.1 < a.1);
            if up {
                upward.push(format!("{from} -> {to} (in src/{file})"));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "modules naming a module above them in docs/architecture.md:\n{}",
        upward.join("\n")
    );
}

/// The layer check sees an upward name.
#[test]
fn the_layer_check_finds_an_upward_name() {
    let layers = documented_layers();
    assert!(layers["app"].0 < layers["report"].0);
    assert!(layers["rules"].1 < layers["iam"].1 && layers["rules"].0 == layers["iam"].0);
    // `report` naming `app` would be upward.
    let (a, b) = (layers["report"], layers["app"]);
    assert!(b.0 < a.0 || (b.0 == a.0 && b.1 < a.1));
}

/// The enums named once with `names!` (src/names.rs): serde's name of every
/// variant, and clap's for the output formats, is its `as_str`.
#[test]
fn enum_names_declared_once_agree_with_serde_and_clap() {
    fn check<T: serde::Serialize + Copy>(all: &[T], name: fn(T) -> &'static str) {
        for v in all {
            assert_eq!(serde_json::to_value(v).unwrap(), name(*v));
        }
    }
    check(&dbaudit::finding::Severity::ALL, |v| v.as_str());
    check(&dbaudit::finding::Outcome::ALL, |v| v.as_str());
    check(&dbaudit::report::gate::GateStatus::ALL, |v| v.as_str());
    check(&dbaudit::vocab::Service::ALL, |v| v.as_str());
    check(&dbaudit::facts::ResourceKind::ALL, |v| v.as_str());
    check(&dbaudit::waivers::WaiverState::ALL, |v| v.as_str());
    for f in dbaudit::report::render::Format::ALL {
        let clap = clap::ValueEnum::to_possible_value(&f).unwrap();
        assert_eq!(clap.get_name(), f.as_str());
        assert_eq!(dbaudit::report::render::Format::parse(f.as_str()), Some(f));
    }
    // ResourceKind is a clap value too (`rules fields KIND`).
    for k in dbaudit::facts::ResourceKind::ALL {
        let clap = clap::ValueEnum::to_possible_value(&k).unwrap();
        assert_eq!(clap.get_name(), k.as_str());
    }
}
