//! Generated files must match the code: the snapshot JSON Schema, the rules
//! reference, and the pinned list of rule ids. `DBAUDIT_BLESS=1 cargo test`
//! rewrites them; review the diff like any other change.

mod support;

use std::path::PathBuf;

use dbaudit::rules::RuleSet;
use dbaudit::snapshot::Snapshot;

fn check(path: &str, expected: &str) {
    support::check_generated(path, expected, "cargo test --test docs_fresh");
}

#[test]
fn snapshot_schema_is_fresh() {
    check("docs/snapshot.schema.json", &Snapshot::json_schema());
}

#[test]
fn config_schema_is_fresh() {
    check(
        "docs/dbaudit.schema.json",
        &dbaudit::config_keys::json_schema(),
    );
}

#[test]
fn rules_reference_is_fresh() {
    let set = RuleSet::load(&[], &[]).unwrap();
    check("docs/rules.md", &dbaudit::docs::rules_reference(&set));
}

/// A rename or removal of a rule id is a visible diff here.
#[test]
fn rule_ids_are_pinned() {
    let set = RuleSet::load(&[], &[]).unwrap();
    let ids: String = set.rules.iter().map(|r| format!("{}\n", r.id)).collect();
    check("tests/expected/rule-ids.txt", &ids);
}

/// Every rules/*.toml file is embedded in the binary.
#[test]
fn every_rule_file_is_builtin() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules");
    let embedded: Vec<String> = dbaudit::rules::builtin_files()
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let name = format!("rules/{}", p.file_name().unwrap().to_string_lossy());
        if name == "rules/params.toml" || !name.ends_with(".toml") {
            continue;
        }
        assert!(
            embedded.contains(&name),
            "{name} is not listed in src/rules/load.rs BUILTIN"
        );
    }
}

/// docs/plan.md's table of the facts a plan predicts is the one in
/// `plan::coverage` (between its markers).
#[test]
fn plan_coverage_table_is_fresh() {
    let set = RuleSet::load(&[], &[]).unwrap();
    let path = support::root().join("docs/plan.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let (begin, end) = (
        "<!-- BEGIN coverage (generated) -->\n",
        "<!-- END coverage -->",
    );
    let start = doc.find(begin).expect("docs/plan.md has the begin marker") + begin.len();
    let stop = doc.find(end).expect("docs/plan.md has the end marker");
    let expected = format!(
        "{}{}{}",
        &doc[..start],
        dbaudit::plan::coverage::markdown(&set),
        &doc[stop..]
    );
    check("docs/plan.md", &expected);
}
