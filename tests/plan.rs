//! `dbaudit plan`: Terraform plans (fixtures/plan/cases, written by
//! fixtures/plan/gen.py) evaluated on the demo estate through the CLI.
//! Each case's planted change is found with its .tf line and nothing else
//! is new; a plan without changes is the snapshot's own evaluation; bad
//! plans are located errors.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::{DEMO, DEMO_CONFIG, dbaudit, root, tempdir, text};

fn cases() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("fixtures/plan/cases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    assert!(v.len() >= 9, "{v:?}");
    v
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap().display().to_string()
}

/// `dbaudit plan CASE/plan.json` on the demo with the case's .tf files.
fn plan(case: &Path, extra: &[&str]) -> (Option<i32>, Value, String) {
    let out_dir = tempdir("plan");
    let out = out_dir.join("report.json");
    let plan = rel(&case.join("plan.json"));
    let tf = rel(case);
    let mut args = vec![
        "plan",
        &plan,
        "--snapshot",
        DEMO,
        "--config",
        DEMO_CONFIG,
        "--tf-dir",
        &tf,
        "--as-of",
        "2026-11-30",
        "--format",
        "json",
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = dbaudit(&args);
    let report = std::fs::read_to_string(&out)
        .ok()
        .map(|s| serde_json::from_str(&s).unwrap())
        .unwrap_or(Value::Null);
    (o.status.code(), report, text(&o.stderr))
}

/// What a plan introduces: unknown outcomes, and failures and errors the
/// live state did not have.
fn introduced(report: &Value) -> BTreeSet<(String, String, String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["outcome"] == "unknown"
                || (f["outcome"] == "fail" && f["baseline"] != "existing")
                || f["outcome"] == "error"
        })
        .map(|f| {
            let loc = &f["location"];
            (
                f["rule_id"].as_str().unwrap().to_string(),
                f["resource_id"].as_str().unwrap().to_string(),
                f["outcome"].as_str().unwrap().to_string(),
                format!("{}:{}", loc["path"].as_str().unwrap_or("?"), loc["line"]),
            )
        })
        .collect()
}

#[test]
fn each_plan_finds_its_planted_change_at_its_tf_line_and_nothing_else() {
    for case in cases() {
        let expect: Value =
            serde_json::from_str(&std::fs::read_to_string(case.join("expect.json")).unwrap())
                .unwrap();
        let (code, report, stderr) = plan(&case, &[]);
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        assert_eq!(
            code,
            expect["exit"].as_i64().map(|c| c as i32),
            "{name}: {stderr}\n{}",
            report["gate"]
        );
        let want: BTreeSet<(String, String, String, String)> = expect["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["rule"].as_str().unwrap().to_string(),
                    f["resource"].as_str().unwrap().to_string(),
                    f["outcome"].as_str().unwrap().to_string(),
                    f["location"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(introduced(&report), want, "{name}");
        // The live estate's own failures stay, reported as existing.
        let existing = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["baseline"] == "existing")
            .count();
        assert!(existing >= 17, "{name}: {existing} existing");
        assert_eq!(report["plan"]["account"], "prod", "{name}");
    }
}

/// A plan that changes nothing predicts exactly the snapshot: the same
/// findings (fingerprint, outcome, message) as `evaluate`, for both golden
/// estates, and with --gate-existing the same gate.
#[test]
fn a_plan_without_changes_gives_the_snapshots_own_evaluation() {
    let dir = tempdir("noop-plan");
    let empty = dir.join("plan.json");
    std::fs::write(
        &empty,
        r#"{"format_version": "1.2", "terraform_version": "1.9.5", "resource_changes": []}"#,
    )
    .unwrap();
    let no_op = root().join("fixtures/plan/cases/no-changes/plan.json");
    for (snapshot, config, account) in [
        (DEMO, DEMO_CONFIG, "prod"),
        (
            "fixtures/unhappy/snapshot.json",
            "fixtures/unhappy/dbaudit.toml",
            "prod",
        ),
    ] {
        let eval = dbaudit(&[
            "evaluate",
            snapshot,
            "--config",
            config,
            "--as-of",
            "2026-11-30",
            "--format",
            "json",
        ]);
        let eval: Value = serde_json::from_slice(&eval.stdout).unwrap();
        let key = |r: &Value| -> Vec<(String, String, String)> {
            r["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    (
                        f["fingerprint"].as_str().unwrap().to_string(),
                        f["outcome"].as_str().unwrap().to_string(),
                        f["message"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        };
        for p in [&empty, &no_op] {
            if p == &no_op && snapshot != DEMO {
                continue;
            }
            let p = p.to_str().unwrap();
            let o = dbaudit(&[
                "plan",
                p,
                "--snapshot",
                snapshot,
                "--config",
                config,
                "--account",
                account,
                "--as-of",
                "2026-11-30",
                "--format",
                "json",
                "--gate-existing",
            ]);
            let r: Value = serde_json::from_slice(&o.stdout)
                .unwrap_or_else(|e| panic!("{e}: {}", text(&o.stderr)));
            assert_eq!(key(&r), key(&eval), "{snapshot} with {p}");
            assert_eq!(
                r["gate"]["exit_code"], eval["gate"]["exit_code"],
                "{snapshot}"
            );
            assert_eq!(
                o.status.code(),
                eval["gate"]["exit_code"].as_i64().map(|c| c as i32)
            );
            assert_eq!(r["baseline"]["new"], 0, "{snapshot}");
            assert_eq!(r["baseline"]["fixed"], 0, "{snapshot}");
        }
    }
}

/// A new resource's findings take their identity from its Terraform
/// address; an existing resource keeps its live fingerprint.
#[test]
fn fingerprints_of_planned_resources_follow_their_terraform_address() {
    let (_, r, _) = plan(
        &root().join("fixtures/plan/cases/new-cluster-unknown-encryption"),
        &[],
    );
    let f = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == "db.encryption.at-rest" && f["resource_id"] == "prod-inventory")
        .unwrap();
    assert_eq!(
        f["fingerprint"],
        dbaudit::finding::fingerprint(
            "db.encryption.at-rest",
            "222222222222",
            "terraform:aws_rds_cluster.inventory"
        )
    );
    assert_eq!(
        f["resource_arn"],
        "arn:aws:rds:eu-west-1:222222222222:cluster:prod-inventory"
    );
    let (_, r, _) = plan(&root().join("fixtures/plan/cases/sg-open-ingress"), &[]);
    let f = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == "db.network.sg-eks-only" && f["resource_id"] == "prod-orders")
        .unwrap();
    assert_eq!(
        f["fingerprint"],
        dbaudit::finding::fingerprint(
            "db.network.sg-eks-only",
            "222222222222",
            "arn:aws:rds:eu-west-1:222222222222:cluster:prod-orders"
        )
    );
}

#[test]
fn unknown_gates_like_error_unless_warned_and_gate_existing_gates_all() {
    let new = root().join("fixtures/plan/cases/new-cluster-unknown-encryption");
    let (code, r, _) = plan(&new, &["--on-unknown", "warn"]);
    assert_eq!(code, Some(0), "{}", r["gate"]);
    assert!(
        r["gate"]["reason"]
            .as_str()
            .unwrap()
            .contains("unknown until apply ignored (--on-unknown warn)")
    );
    assert_eq!(r["summary"]["total"]["unknown"], 5);
    // Every format says unknown.
    for (format, needle) in [
        ("table", "unknown until apply"),
        ("markdown", "| unknown |"),
        ("junit", "type=\"unknown\""),
        ("sarif", "Unknown until apply"),
    ] {
        let o = dbaudit(&[
            "plan",
            &rel(&new.join("plan.json")),
            "--snapshot",
            DEMO,
            "--config",
            DEMO_CONFIG,
            "--format",
            format,
        ]);
        assert_eq!(o.status.code(), Some(3));
        assert!(
            text(&o.stdout).contains(needle),
            "{format}: {}",
            text(&o.stdout)
        );
    }
    let (code, _, _) = plan(
        &root().join("fixtures/plan/cases/no-changes"),
        &["--gate-existing"],
    );
    assert_eq!(code, Some(1));
}

/// Types no rule reads are listed, not applied; a type rules depend on that
/// dbaudit does not predict keeps the gate incomplete.
#[test]
fn changes_not_applied_are_listed_and_unpredicted_ones_never_pass() {
    let case = root().join("fixtures/plan/cases/not-applied");
    let (code, r, _) = plan(&case, &[]);
    assert_eq!(code, Some(3));
    let changes = r["plan"]["changes"].as_array().unwrap();
    let treatment = |a: &str| {
        changes
            .iter()
            .find(|c| c["address"] == a)
            .map(|c| c["treatment"].as_str().unwrap().to_string())
    };
    assert_eq!(
        treatment("aws_cloudwatch_log_group.orders").as_deref(),
        Some("not-read")
    );
    assert_eq!(
        treatment("aws_secretsmanager_secret_rotation.orders_master").as_deref(),
        Some("not-predicted")
    );
    assert!(
        r["gate"]["reason"]
            .as_str()
            .unwrap()
            .contains("aws_secretsmanager_secret_rotation.orders_master")
    );
    let (code, _, _) = plan(&case, &["--on-unknown", "warn"]);
    assert_eq!(code, Some(0));
}

#[test]
fn bad_plans_and_tf_files_are_located_errors_with_exit_2() {
    let dir = tempdir("bad-plan");
    let truncated = dir.join("plan.json");
    std::fs::write(
        &truncated,
        "{\"format_version\": \"1.2\",\n  \"resource_changes\": [\n",
    )
    .unwrap();
    let newer = dir.join("v2.json");
    std::fs::write(&newer, "{\"format_version\": \"2.0\"}").unwrap();
    for (p, needle) in [
        (&truncated, "plan.json:3:"),
        (&newer, "unsupported plan format_version `2.0`"),
    ] {
        let o = dbaudit(&[
            "plan",
            p.to_str().unwrap(),
            "--snapshot",
            DEMO,
            "--config",
            DEMO_CONFIG,
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
        assert!(text(&o.stderr).contains(needle), "{}", text(&o.stderr));
        assert!(o.stdout.is_empty());
    }
    // A .tf file that does not parse: its file, line and column.
    let tf = dir.join("tf");
    std::fs::create_dir_all(&tf).unwrap();
    std::fs::write(
        tf.join("main.tf"),
        "resource \"aws_rds_cluster\" \"x\" {\n  a = \n}\n",
    )
    .unwrap();
    let o = dbaudit(&[
        "plan",
        &rel(&root().join("fixtures/plan/cases/iam-auth-off/plan.json")),
        "--snapshot",
        DEMO,
        "--config",
        DEMO_CONFIG,
        "--tf-dir",
        tf.to_str().unwrap(),
        "--repo-root",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("main.tf:2:"),
        "{}",
        text(&o.stderr)
    );
    // A plan for an account the snapshot does not have.
    let o = dbaudit(&[
        "plan",
        &rel(&root().join("fixtures/plan/cases/iam-auth-off/plan.json")),
        "--snapshot",
        DEMO,
        "--config",
        DEMO_CONFIG,
        "--account",
        "staging",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("--account staging"),
        "{}",
        text(&o.stderr)
    );
    // --baseline belongs to evaluate.
    let o = dbaudit(&[
        "plan",
        &rel(&root().join("fixtures/plan/cases/iam-auth-off/plan.json")),
        "--snapshot",
        DEMO,
        "--baseline",
        "last",
    ]);
    assert_eq!(o.status.code(), Some(2));
}

/// A plan predicts; it never records a run.
#[test]
fn a_plan_is_never_recorded_in_the_history() {
    let dir = tempdir("plan-history");
    let store = dir.join("history.db");
    let o = dbaudit(&[
        "plan",
        &rel(&root().join("fixtures/plan/cases/iam-auth-off/plan.json")),
        "--snapshot",
        DEMO,
        "--config",
        DEMO_CONFIG,
        "--history",
        store.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(!store.exists());
    assert!(text(&o.stderr).contains("a plan is not recorded"));
}

/// The command docs/plan.md shows runs and does what the page says.
#[test]
fn the_example_in_docs_plan_md_does_what_it_says() {
    let doc = std::fs::read_to_string(root().join("docs/plan.md")).unwrap();
    let line = doc
        .lines()
        .find(|l| l.starts_with("dbaudit plan fixtures/plan/cases/sg-open-ingress/"))
        .expect("docs/plan.md shows the fixture command");
    let words: Vec<&str> = line.split_whitespace().skip(1).collect();
    let o = dbaudit(&words);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("fixtures/plan/cases/sg-open-ingress/main.tf:2"),
        "{out}"
    );
    assert!(out.contains("2 new failing finding(s)"), "{out}");
    assert!(doc.contains("each at `fixtures/plan/cases/sg-open-ingress/main.tf:2`"));
}

/// docs/plan.md names every type dbaudit applies, and only those.
#[test]
fn docs_plan_md_lists_the_applied_types() {
    let doc = std::fs::read_to_string(root().join("docs/plan.md")).unwrap();
    let start = doc.find("3. **Apply each change**").unwrap();
    let end = start + doc[start..].find("4. **Evaluate**").unwrap();
    let listed: BTreeSet<&str> = doc[start..end]
        .split('`')
        .filter(|w| w.starts_with("aws_"))
        .collect();
    let applied: BTreeSet<&str> = dbaudit::plan::apply::APPLIED_TYPES
        .iter()
        .copied()
        .collect();
    assert_eq!(listed, applied);
    for (t, _) in dbaudit::plan::apply::NOT_PREDICTED_TYPES {
        assert!(
            !applied.contains(t),
            "{t} is both applied and not predicted"
        );
    }
}
