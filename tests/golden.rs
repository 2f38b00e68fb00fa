//! Golden files: the demo's table, JSON, SARIF, JUnit and Markdown outputs
//! are pinned byte for byte (tests/golden/), so a refactoring of the
//! renderers or the report model shows every change it makes to what users
//! see. Volatile fields (the build's commit) are redacted.
//! `DBAUDIT_BLESS=1 cargo test --test golden` rewrites them; review the diff.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn output(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_dbaudit"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env_remove("COLUMNS")
        .env_remove("DBAUDIT_CONFIG")
        .output()
        .unwrap();
    assert!(
        matches!(o.status.code(), Some(0..=3)),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The build's commit is the one volatile field (JSON `tool.commit`).
    String::from_utf8(o.stdout).unwrap().replace(
        &format!("\"commit\": \"{}\"", dbaudit::COMMIT),
        "\"commit\": \"COMMIT\"",
    )
}

fn check(name: &str, actual: &str) {
    let path = root().join("tests/golden").join(name);
    if std::env::var_os("DBAUDIT_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "tests/golden/{name} differs from the output at line {}:\n  golden: {:?}\n  output: {:?}\n\
             run `DBAUDIT_BLESS=1 cargo test --test golden` if the change is intended",
            first + 1,
            expected.lines().nth(first),
            actual.lines().nth(first)
        );
    }
}

const DEMO: [&str; 4] = [
    "evaluate",
    "fixtures/demo/snapshot.json",
    "--config",
    "fixtures/demo/dbaudit.toml",
];

#[test]
fn demo_outputs_are_pinned() {
    for (format, file) in [
        ("table", "demo.txt"),
        ("json", "demo.json"),
        ("sarif", "demo.sarif"),
        ("junit", "demo.junit.xml"),
        ("markdown", "demo.md"),
    ] {
        let mut args = DEMO.to_vec();
        args.extend(["--format", format, "--as-of", "2026-11-30"]);
        check(file, &output(&args));
    }
}
