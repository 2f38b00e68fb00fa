//! The JSON Schema of dbaudit.toml (docs/dbaudit.schema.json, generated from
//! the same key declarations the validator uses) accepts the configs the
//! project ships and rejects the malformed ones it can express, checked with
//! the `jsonschema` package of the emulator's Python environment (as editors
//! using taplo would).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::moto_server_path;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Validates TOML files against the schema: the paths that fail.
fn rejected(files: &[PathBuf]) -> Vec<String> {
    let python = moto_server_path().parent().unwrap().join("python");
    let out = Command::new(python)
        .arg("-c")
        .arg(
            "import json,sys,tomllib,jsonschema\n\
             v=jsonschema.Draft7Validator(json.load(open(sys.argv[1])))\n\
             for f in sys.argv[2:]:\n\
             \x20   try:\n\
             \x20       doc=tomllib.load(open(f,'rb'))\n\
             \x20   except Exception:\n\
             \x20       continue\n\
             \x20   if any(True for _ in v.iter_errors(json.loads(json.dumps(doc, default=str)))):\n\
             \x20       print(f)",
        )
        .arg(root().join("docs/dbaudit.schema.json"))
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn shipped_configs_validate() {
    let dir = std::env::temp_dir().join(format!("dbaudit-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let example = dir.join("example.toml");
    std::fs::write(&example, dbaudit::config::EXAMPLE).unwrap();
    let files = vec![example, root().join("fixtures/demo/dbaudit.toml")];
    assert_eq!(rejected(&files), Vec::<String>::new());
}

/// Every malformed config is either rejected by the schema, or its problem
/// is one a schema cannot state (listed here, so each new case is classified).
#[test]
fn malformed_configs_are_rejected_where_a_schema_can_tell() {
    const SEMANTIC: &[&str] = &[
        // Not TOML at all, or not UTF-8: the schema never sees them.
        "bad-bytes.config.toml",
        "syntax-error.config.toml",
        "duplicate-key.config.toml",
        "deep-nesting.config.toml",
        // Checked against the rules, not the schema.
        "param-unknown.config.toml",
        "param-wrong-type.config.toml",
        // Two accounts with the same name.
        "duplicate-account.config.toml",
    ];
    let files: Vec<PathBuf> = std::fs::read_dir(root().join("tests/malformed"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| name(p).ends_with(".config.toml"))
        .collect();
    assert!(files.len() >= 10);
    let bad: std::collections::BTreeSet<String> = rejected(&files)
        .iter()
        .map(|f| name(Path::new(f)))
        .collect();
    let mut missed = Vec::new();
    for f in &files {
        let n = name(f);
        if !SEMANTIC.contains(&n.as_str()) && !bad.contains(&n) {
            missed.push(n);
        }
    }
    assert!(missed.is_empty(), "the schema accepts: {missed:?}");
}
