//! OCSF outputs (`--report ocsf=PATH`, `--report ocsf-detection=PATH`):
//! every line of both golden estates validated with py-ocsf-models 0.10.0
//! (OCSF 1.5.0; scripts/setup-ocsf installs it) as a Compliance Finding
//! (2003) or a Detection Finding (2004), and the fields dbaudit promises
//! checked here: the compliance object in its own fields, uids that are the
//! findings' fingerprints, a fixed failure closed and resolved. Outside CI a
//! missing model environment skips the validation loudly.

// A skipped test says so on stderr, loudly.
#![allow(clippy::print_stderr)]

mod support;

use serde_json::Value;
use support::{dbaudit, root};

fn lines(format: &str, unhappy: bool) -> Vec<Value> {
    let dir = root().join(if unhappy {
        "fixtures/unhappy"
    } else {
        "fixtures/demo"
    });
    let snapshot = dir.join("snapshot.json").display().to_string();
    let config = dir.join("dbaudit.toml").display().to_string();
    let baseline = dir.join("baseline.json").display().to_string();
    let mut args = vec![
        "evaluate",
        &snapshot,
        "-c",
        &config,
        "--no-history",
        "--format",
        format,
        "--as-of",
        "2026-11-30",
    ];
    if unhappy {
        args.extend(["--baseline", &baseline]);
    }
    let out = dbaudit(&args);
    assert!(
        matches!(out.status.code(), Some(0..=3)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Validates every line with py-ocsf-models, as `class` (the model's name).
fn validate(class: &str, events: &[Value]) {
    let Ok(python) = std::env::var("DBAUDIT_OCSF_PYTHON") else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true and no py-ocsf-models (scripts/setup-ocsf)");
        }
        eprintln!(
            "\n*** SKIPPED the OCSF model validation: DBAUDIT_OCSF_PYTHON is not set (run the tests with scripts/test) ***\n"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    let text: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    std::fs::write(&file, text.join("\n")).unwrap();
    let module = if class == "ComplianceFinding" {
        "compliance_finding"
    } else {
        "detection_finding"
    };
    let script = format!(
        r#"
import json, sys
from py_ocsf_models.events.findings.{module} import {class}
n = 0
for line in open(sys.argv[1]):
    {class}.model_validate(json.loads(line))
    n += 1
print(n)
"#
    );
    let out = std::process::Command::new(python)
        .args(["-c", &script, file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "py-ocsf-models rejected a {class}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        events.len().to_string()
    );
}

#[test]
fn compliance_findings_validate_and_carry_the_controls() {
    for unhappy in [false, true] {
        let events = lines("ocsf", unhappy);
        assert!(!events.is_empty());
        validate("ComplianceFinding", &events);
        for e in &events {
            assert_eq!(e["class_uid"], 2003);
            assert_eq!(e["metadata"]["version"], "1.5.0");
            assert_eq!(e["finding_info"]["uid"], e["metadata"]["uid"]);
            assert!(e["compliance"]["control"].is_string(), "{e}");
        }
        let failed = events
            .iter()
            .find(|e| {
                e["compliance"]["control"] == "db.deletion-protection"
                    && e["compliance"]["status_id"] == 3
            })
            .expect("the estates fail db.deletion-protection");
        assert_eq!(failed["compliance"]["status"], "Fail");
        assert!(
            failed["compliance"]["requirements"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == "fsbp RDS.7")
        );
        assert!(
            failed["compliance"]["standards"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == "AWS Foundational Security Best Practices v1.0.0")
        );
        if unhappy {
            let closed: Vec<&Value> = events.iter().filter(|e| e["activity_id"] == 3).collect();
            assert!(
                !closed.is_empty(),
                "the unhappy baseline has fixed findings"
            );
            assert!(
                closed
                    .iter()
                    .all(|e| e["status"] == "Resolved" && e["type_uid"] == 200303)
            );
            // An error is unknown, never a pass.
            assert!(events.iter().any(|e| e["compliance"]["status_id"] == 0
                && e["unmapped"]["dbaudit"]["outcome"] == "error"));
        }
    }
}

#[test]
fn detection_findings_validate_with_compliance_unmapped() {
    for unhappy in [false, true] {
        let events = lines("ocsf-detection", unhappy);
        validate("DetectionFinding", &events);
        for e in &events {
            assert_eq!(e["class_uid"], 2004);
            assert!(e.get("compliance").is_none());
            assert!(e["unmapped"]["compliance"]["control"].is_string());
        }
    }
}

/// A second, independent check: every line of both formats and both golden
/// estates validates against the JSON Schema compiled from the OCSF 1.5.0
/// schema's own source files (tests/fixtures/ocsf/, made once by
/// scripts/ocsf-json-schema; unknown attributes refused, closed enums,
/// required attributes, a profile's required attributes when the event names
/// it), with the jsonschema package of the emulator's Python environment.
/// The check is not vacuous: an unknown attribute, an enum value OCSF does
/// not define and a missing required attribute are each refused.
#[test]
fn every_line_validates_against_the_ocsf_json_schema() {
    let python = support::moto_server_path().with_file_name("python");
    let schema = root().join("tests/fixtures/ocsf/ocsf-1.5.0.schema.json");
    let check = |events: &[Value]| -> (bool, String) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("events.jsonl");
        let text: Vec<String> = events.iter().map(|e| e.to_string()).collect();
        std::fs::write(&file, text.join("\n")).unwrap();
        let out = std::process::Command::new(&python)
            .arg("-c")
            .arg(
                "import json,sys,jsonschema\n\
                 schema=json.load(open(sys.argv[1]))\n\
                 by_uid={d['properties']['class_uid']['const']: n for n, d in schema['$defs'].items() if n.startswith('class_')}\n\
                 bad=0\n\
                 for i, line in enumerate(open(sys.argv[2])):\n\
                 \x20   doc=json.loads(line)\n\
                 \x20   one=dict(schema); one.pop('oneOf'); one['$ref']='#/$defs/'+by_uid[doc['class_uid']]\n\
                 \x20   for e in jsonschema.Draft202012Validator(one).iter_errors(doc):\n\
                 \x20       bad+=1; print(i+1, e.json_path, e.message[:200])\n\
                 sys.exit(1 if bad else 0)",
            )
            .arg(&schema)
            .arg(&file)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    for format in ["ocsf", "ocsf-detection"] {
        for unhappy in [false, true] {
            let events = lines(format, unhappy);
            assert!(!events.is_empty());
            let (ok, why) = check(&events);
            assert!(
                ok,
                "{format} (unhappy: {unhappy}) does not validate:\n{why}"
            );
        }
    }
    let good = lines("ocsf", true)[0].clone();
    let mut unknown = good.clone();
    unknown["not_an_ocsf_attribute"] = Value::from(1);
    let mut enum_value = good.clone();
    enum_value["severity_id"] = Value::from(42);
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("metadata");
    for (what, bad) in [
        ("an unknown attribute", unknown),
        ("severity_id 42", enum_value),
        ("no metadata", missing),
    ] {
        assert!(!check(&[bad]).0, "the schema accepted {what}");
    }
}
