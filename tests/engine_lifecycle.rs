//! The engine lifecycle catalogue (`data/engine-lifecycle.json`) is what
//! `scripts/gen-engine-lifecycle.py` makes of a `DescribeDBMajorEngineVersions`
//! answer: regenerating it from the answer kept in tests/fixtures gives the
//! shipped file byte for byte.

use std::process::Command;

#[test]
fn the_catalogue_is_regenerated_from_the_api_answer() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("python3")
        .arg(format!("{root}/scripts/gen-engine-lifecycle.py"))
        .arg(format!(
            "{root}/tests/fixtures/describe-db-major-engine-versions.json"
        ))
        .output()
        .expect("python3 runs (scripts/test needs it for the emulator too)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shipped = std::fs::read_to_string(format!("{root}/data/engine-lifecycle.json")).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), shipped);
}

#[test]
fn without_an_answer_the_script_says_how_to_use_it() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("python3")
        .arg(format!("{root}/scripts/gen-engine-lifecycle.py"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("describe-db-major-engine-versions"));
}
