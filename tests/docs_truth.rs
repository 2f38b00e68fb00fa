//! Docs that tell the truth: every relative link and every repository path a
//! doc names exists (inside the repository), every `dbaudit …` command in a
//! code block parses with the current CLI, and every `cargo test --test X`
//! names a test that exists.

use std::path::{Path, PathBuf};

use clap::Parser;
use dbaudit::cli::Cli;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every Markdown file under docs/.
fn docs() -> Vec<PathBuf> {
    let mut out = vec![root().join("README.md")];
    let mut stack = vec![root().join("docs")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "md") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap().display().to_string()
}

/// `](target)` of Markdown links.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        match after.find(')') {
            Some(j) => {
                out.push(after[..j].to_string());
                rest = &after[j..];
            }
            None => break,
        }
    }
    out
}

/// Lexically normalised path (no `..` or `.`), to tell whether a link
/// stays inside the repository.
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[test]
fn every_relative_link_resolves_inside_the_repository() {
    let mut bad = Vec::new();
    for doc in docs() {
        let text = std::fs::read_to_string(&doc).unwrap();
        for link in links(&text) {
            let target = link.split('#').next().unwrap().trim();
            if target.is_empty()
                || target.contains("://")
                || target.starts_with("mailto:")
                || target.contains(' ')
            {
                continue;
            }
            let path = normalise(&doc.parent().unwrap().join(target));
            if !path.starts_with(root()) {
                bad.push(format!(
                    "{}: `{link}` points outside the repository",
                    rel(&doc)
                ));
            } else if !path.exists() {
                bad.push(format!("{}: `{link}` does not exist", rel(&doc)));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// Inline code that names a file of the repository (`docs/…`, `scripts/…`)
/// must name one that exists.
#[test]
fn every_repository_path_a_doc_names_exists() {
    const TOPS: [&str; 8] = [
        "docs/",
        "scripts/",
        "fixtures/",
        "rules/",
        "tests/",
        "src/",
        "data/",
        "benches/",
    ];
    let mut bad = Vec::new();
    for doc in docs() {
        let text = std::fs::read_to_string(&doc).unwrap();
        for (i, chunk) in text.split('`').enumerate() {
            if i % 2 == 0 || chunk.contains([' ', '\n', '*', '<', '{', '$']) {
                continue;
            }
            if !TOPS.iter().any(|t| chunk.starts_with(t)) {
                continue;
            }
            // `path:line`, `path#anchor` name the path.
            let path = chunk.split([':', '#']).next().unwrap();
            if !root().join(path).exists() {
                bad.push(format!("{}: `{chunk}` does not exist", rel(&doc)));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// Splits a command line into words (single and double quotes group).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() || any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if !cur.is_empty() || any {
        out.push(cur);
    }
    out
}

/// The shell commands of fenced code blocks, continuation lines joined.
fn commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_block = false;
    let mut shell = false;
    let mut pending = String::new();
    for line in text.lines() {
        if let Some(lang) = line.trim_start().strip_prefix("```") {
            if in_block {
                in_block = false;
            } else {
                in_block = true;
                shell = matches!(lang.trim(), "sh" | "bash" | "shell" | "console" | "");
            }
            continue;
        }
        if !in_block || !shell {
            continue;
        }
        let line = line.trim().trim_start_matches("$ ");
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        out.push(std::mem::take(&mut pending));
    }
    out
}

#[test]
fn every_dbaudit_command_in_the_docs_parses() {
    let mut bad = Vec::new();
    let mut checked = 0;
    for doc in docs() {
        let text = std::fs::read_to_string(&doc).unwrap();
        for cmd in commands(&text) {
            // The command itself: before a comment, a pipe, a redirection.
            let cmd = cmd.split(" #").next().unwrap();
            let cmd = cmd.split(['|', '>', ';']).next().unwrap();
            let cmd = cmd.split("&&").next().unwrap().trim();
            let args: Vec<String> = if let Some(rest) = cmd.strip_prefix("dbaudit ") {
                std::iter::once("dbaudit".to_string())
                    .chain(words(rest))
                    .collect()
            } else if cmd.starts_with("cargo run") && cmd.contains(" -- ") {
                std::iter::once("dbaudit".to_string())
                    .chain(words(cmd.split_once(" -- ").unwrap().1))
                    .collect()
            } else {
                continue;
            };
            checked += 1;
            if let Err(e) = Cli::try_parse_from(&args) {
                let kind = e.kind();
                if kind != clap::error::ErrorKind::DisplayHelp
                    && kind != clap::error::ErrorKind::DisplayVersion
                {
                    bad.push(format!("{}: `{cmd}`: {e}", rel(&doc)));
                }
            }
        }
    }
    assert!(checked >= 15, "only {checked} commands found");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn every_named_test_target_exists() {
    let mut bad = Vec::new();
    for doc in docs() {
        let text = std::fs::read_to_string(&doc).unwrap();
        for (i, _) in text.match_indices("cargo test --test ") {
            let name: String = text[i + "cargo test --test ".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !root().join("tests").join(format!("{name}.rs")).exists() {
                bad.push(format!("{}: `cargo test --test {name}`", rel(&doc)));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// docs/snapshot.md lists every optional field of the snapshot (those the
/// schema lets be absent or null) with what its absence means, and no
/// field that is not one: a new optional field cannot be read silently as
/// a default.
#[test]
fn every_optional_snapshot_field_says_what_its_absence_means() {
    fn nullable(p: &serde_json::Value) -> bool {
        let null = |t: &serde_json::Value| t.get("type").and_then(|t| t.as_str()) == Some("null");
        match p.get("type") {
            Some(serde_json::Value::Array(ts)) if ts.iter().any(|t| t == "null") => true,
            _ => ["anyOf", "oneOf"].iter().any(|k| {
                p.get(*k)
                    .and_then(|v| v.as_array())
                    .is_some_and(|alts| alts.iter().any(null))
            }),
        }
    }
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("docs/snapshot.schema.json")).unwrap(),
    )
    .unwrap();
    let mut optional = std::collections::BTreeSet::new();
    let mut add = |ty: &str, props: &serde_json::Value| {
        for (name, p) in props.as_object().into_iter().flatten() {
            if nullable(p) {
                optional.insert(format!("{ty}.{name}"));
            }
        }
    };
    add("Snapshot", &schema["properties"]);
    let defs = schema
        .get("$defs")
        .or_else(|| schema.get("definitions"))
        .and_then(|d| d.as_object())
        .unwrap();
    for (ty, def) in defs {
        add(ty, &def["properties"]);
    }
    assert!(optional.len() > 50, "{optional:?}");
    let doc = std::fs::read_to_string(root().join("docs/snapshot.md")).unwrap();
    let listed: std::collections::BTreeSet<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once("` | "))
        .filter(|(_, why)| !why.trim().trim_end_matches('|').trim().is_empty())
        .map(|(field, _)| field.to_string())
        .collect();
    let missing: Vec<&String> = optional.difference(&listed).collect();
    let extra: Vec<&String> = listed.difference(&optional).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "docs/snapshot.md, \"Optional fields\": not listed {missing:?}; listed but not optional {extra:?}"
    );
}

/// The rule format's `resource =` line lists every resource kind, in the
/// kinds list's order: the one user-facing list not generated from it.
#[test]
fn the_rule_format_lists_every_resource_kind() {
    let text = std::fs::read_to_string(root().join("docs/writing-rules.md")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("resource = "))
        .expect("docs/writing-rules.md shows `resource = …`");
    let listed: Vec<&str> = line
        .split('#')
        .nth(1)
        .expect("the line's comment lists the kinds")
        .split('|')
        .map(str::trim)
        .collect();
    let kinds: Vec<&str> = dbaudit::facts::ResourceKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(listed, kinds, "docs/writing-rules.md: {line}");
}
