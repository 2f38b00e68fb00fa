//! ASFF output (`--report asff=PATH`, docs/ci-outputs.md): every finding of
//! both golden estates validated against botocore's own `securityhub`
//! model (`AwsSecurityFinding`: required members, known members only,
//! types, enums, patterns' non-emptiness, list and map shapes), read with
//! the emulator's Python (botocore ships with moto); the customer's fields
//! never set; a fixed finding PASSED and ARCHIVED under its old `Id`.
//! Outside CI a missing emulator environment skips the model check loudly.

// A skipped test says so on stderr, loudly.
#![allow(clippy::print_stderr)]

mod support;

use serde_json::Value;
use support::{dbaudit, root};

/// botocore's `securityhub` shapes, or `None` (skipped loudly).
fn model() -> Option<Value> {
    let Ok(moto) = std::env::var("DBAUDIT_MOTO_SERVER") else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true and no emulator environment (scripts/setup-moto)");
        }
        eprintln!("\n*** SKIPPED the ASFF model check: DBAUDIT_MOTO_SERVER is not set ***\n");
        return None;
    };
    let python = std::path::PathBuf::from(moto).with_file_name("python");
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import botocore.loaders, json; print(json.dumps(botocore.loaders.Loader().load_service_model('securityhub', 'service-2')['shapes']))",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// Checks `v` against shape `name`; problems go to `out` with their path.
fn validate(shapes: &Value, name: &str, v: &Value, path: &str, out: &mut Vec<String>) {
    let shape = &shapes[name];
    match shape["type"].as_str().unwrap_or_default() {
        "structure" => {
            let Some(obj) = v.as_object() else {
                out.push(format!("{path}: {name} must be an object"));
                return;
            };
            for req in shape["required"].as_array().into_iter().flatten() {
                if !obj.contains_key(req.as_str().unwrap()) {
                    out.push(format!("{path}: {name} lacks required {req}"));
                }
            }
            let members = shape["members"].as_object().unwrap();
            for (k, val) in obj {
                match members.get(k) {
                    Some(m) => validate(
                        shapes,
                        m["shape"].as_str().unwrap(),
                        val,
                        &format!("{path}.{k}"),
                        out,
                    ),
                    None => out.push(format!("{path}: {name} has no member {k}")),
                }
            }
        }
        "list" => match v.as_array() {
            Some(items) => {
                let member = shape["member"]["shape"].as_str().unwrap();
                if let Some(max) = shape["max"].as_u64()
                    && items.len() as u64 > max
                {
                    out.push(format!("{path}: more than {max} items"));
                }
                for (i, item) in items.iter().enumerate() {
                    validate(shapes, member, item, &format!("{path}[{i}]"), out);
                }
            }
            None => out.push(format!("{path}: {name} must be a list")),
        },
        "map" => match v.as_object() {
            Some(m) => {
                let value = shape["value"]["shape"].as_str().unwrap();
                for (k, val) in m {
                    validate(shapes, value, val, &format!("{path}.{k}"), out);
                }
            }
            None => out.push(format!("{path}: {name} must be a map")),
        },
        "string" => match v.as_str() {
            Some(s) => {
                if let Some(values) = shape["enum"].as_array()
                    && !values.iter().any(|e| e == s)
                {
                    out.push(format!("{path}: `{s}` is not one of {values:?}"));
                }
                if shape["pattern"] == ".*\\S.*" && s.trim().is_empty() {
                    out.push(format!("{path}: must not be blank"));
                }
            }
            None => out.push(format!("{path}: {name} must be a string")),
        },
        "integer" | "long" => {
            if !v.is_i64() && !v.is_u64() {
                out.push(format!("{path}: {name} must be an integer"));
            }
        }
        "double" | "float" => {
            if !v.is_number() {
                out.push(format!("{path}: {name} must be a number"));
            }
        }
        "boolean" => {
            if !v.is_boolean() {
                out.push(format!("{path}: {name} must be a boolean"));
            }
        }
        other => out.push(format!(
            "{path}: shape {name} of type {other} is not checked here"
        )),
    }
}

fn asff(args: &[&str]) -> Vec<Value> {
    let mut all = args.to_vec();
    all.extend(["--no-history", "--format", "asff"]);
    let out = dbaudit(&all);
    assert!(
        matches!(out.status.code(), Some(0..=3)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn demo() -> Vec<Value> {
    asff(&[
        "evaluate",
        "fixtures/demo/snapshot.json",
        "-c",
        "fixtures/demo/dbaudit.toml",
    ])
}

/// The unhappy estate, judged against its baseline: fixed findings too.
fn unhappy() -> Vec<Value> {
    let dir = root().join("fixtures/unhappy");
    let args: Vec<String> = vec![
        "evaluate".into(),
        dir.join("snapshot.json").display().to_string(),
        "-c".into(),
        dir.join("dbaudit.toml").display().to_string(),
        "--baseline".into(),
        dir.join("baseline.json").display().to_string(),
        "--as-of".into(),
        "2026-12-01".into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    asff(&args)
}

#[test]
fn every_finding_is_valid_against_botocores_model() {
    let Some(shapes) = model() else {
        return;
    };
    for (estate, findings) in [("demo", demo()), ("unhappy", unhappy())] {
        assert!(!findings.is_empty());
        let mut problems = Vec::new();
        for (i, f) in findings.iter().enumerate() {
            validate(
                &shapes,
                "AwsSecurityFinding",
                f,
                &format!("{estate}[{i}]"),
                &mut problems,
            );
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
    // The check itself can fail: a missing required member, a value
    // outside an enum, a member the model does not have.
    let mut bad = demo()[0].clone();
    bad.as_object_mut().unwrap().remove("Title");
    bad["RecordState"] = "GONE".into();
    bad["Colour"] = "red".into();
    let mut problems = Vec::new();
    validate(&shapes, "AwsSecurityFinding", &bad, "bad", &mut problems);
    assert_eq!(problems.len(), 3, "{problems:?}");
}

#[test]
fn ids_are_fingerprints_and_the_customers_fields_are_left_alone() {
    let findings = demo();
    let report: Value = serde_json::from_slice(
        &dbaudit(&[
            "evaluate",
            "fixtures/demo/snapshot.json",
            "-c",
            "fixtures/demo/dbaudit.toml",
            "--no-history",
            "--format",
            "json",
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(findings.len(), report["findings"].as_array().unwrap().len());
    let mut ids = std::collections::BTreeSet::new();
    for (f, r) in findings.iter().zip(report["findings"].as_array().unwrap()) {
        assert_eq!(
            f["Id"],
            format!("dbaudit/{}", r["fingerprint"].as_str().unwrap())
        );
        assert!(ids.insert(f["Id"].to_string()), "duplicate {}", f["Id"]);
        for customer in ["Workflow", "Note", "UserDefinedFields", "WorkflowState"] {
            assert!(f.get(customer).is_none(), "{customer} set on {}", f["Id"]);
        }
        let want = match r["outcome"].as_str().unwrap() {
            "pass" => "PASSED",
            "error" => "NOT_AVAILABLE",
            _ => "FAILED",
        };
        assert_eq!(f["Compliance"]["Status"], want);
        assert_eq!(f["AwsAccountId"], r["account_id"]);
        assert!(f["ProductArn"].as_str().unwrap().ends_with(&format!(
            ":product/{}/default",
            r["account_id"].as_str().unwrap()
        )));
    }
    // The controls travel as related requirements.
    let deletion = findings
        .iter()
        .find(|f| f["GeneratorId"] == "dbaudit/db.deletion-protection")
        .unwrap();
    assert!(
        deletion["Compliance"]["RelatedRequirements"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "fsbp RDS.7")
    );
}

#[test]
fn a_fixed_finding_is_passed_and_archived_under_its_old_id() {
    let findings = unhappy();
    let archived: Vec<&Value> = findings
        .iter()
        .filter(|f| f["RecordState"] == "ARCHIVED")
        .collect();
    assert!(
        !archived.is_empty(),
        "the unhappy baseline has fixed findings"
    );
    for f in archived {
        assert_eq!(f["Compliance"]["Status"], "PASSED");
        assert!(f["Id"].as_str().unwrap().starts_with("dbaudit/"));
    }
}
