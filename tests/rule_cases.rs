//! One test per rule-fixture case file (fixtures/rules/cases/<rule>/<case>.json),
//! named after it, so a failure names its file and `cargo test --test
//! rule_cases db.network` runs one rule's cases. Adding a case adds no Rust.

mod support;

use support::rule_cases::{RuleCase, case_files, root};

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let files = case_files();
    assert!(
        files.len() >= 66,
        "expected at least 66 cases, found {}",
        files.len()
    );
    let trials = files
        .into_iter()
        .map(|path| {
            let name = path
                .strip_prefix(root().join("fixtures/rules/cases"))
                .unwrap()
                .with_extension("")
                .display()
                .to_string();
            libtest_mimic::Trial::test(name, move || {
                RuleCase::load(&path)
                    .check()
                    .map_err(|e| format!("{}: {e}", path.display()).into())
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
