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
