//! Data-driven rule fixtures: every `fixtures/rules/cases/<rule-id>/<case>.json`
//! is a JSON patch on `fixtures/rules/base.json` (a compliant test + prod
//! estate) with the findings it must produce. Adding a case adds no Rust.

use std::path::{Path, PathBuf};

use dbaudit::config::Config;
use dbaudit::report::{Finding, Outcome};
use dbaudit::rules::RuleSet;
use dbaudit::snapshot::Snapshot;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn base() -> Value {
    let text = std::fs::read_to_string(root().join("fixtures/rules/base.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn run(snapshot: &Value, config: Option<&str>) -> Vec<Finding> {
    let text = serde_json::to_string(snapshot).unwrap();
    let snap = Snapshot::parse(&text, Path::new("case.json")).expect("patched snapshot is valid");
    let config = match config {
        Some(c) => Config::parse(c, Path::new("case.toml")).expect("case config is valid"),
        None => Config {
            service_tag: "service".into(),
            ..Config::default()
        },
    };
    let rules = RuleSet::load(&[], &[]).unwrap();
    dbaudit::evaluate::evaluate(&snap, &rules, &config)
}

/// Applies RFC 6902 `add`, `replace` and `remove` operations.
fn apply_patch(doc: &mut Value, ops: &[Value]) {
    for op in ops {
        let kind = op["op"].as_str().unwrap();
        let path = op["path"].as_str().unwrap();
        let (parent, last) = path.rsplit_once('/').unwrap();
        let target = doc
            .pointer_mut(parent)
            .unwrap_or_else(|| panic!("no {parent} in base"));
        match (kind, target) {
            ("add", Value::Array(a)) if last == "-" => a.push(op["value"].clone()),
            ("add", Value::Array(a)) => a.insert(last.parse().unwrap(), op["value"].clone()),
            ("add" | "replace", Value::Object(m)) => {
                m.insert(last.to_string(), op["value"].clone());
            }
            ("replace", Value::Array(a)) => a[last.parse::<usize>().unwrap()] = op["value"].clone(),
            ("remove", Value::Array(a)) => {
                a.remove(last.parse().unwrap());
            }
            ("remove", Value::Object(m)) => {
                m.remove(last)
                    .unwrap_or_else(|| panic!("nothing to remove at {path}"));
            }
            (k, _) => panic!("unsupported patch op {k} at {path}"),
        }
    }
}

fn case_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(root().join("fixtures/rules/cases")).unwrap() {
        let dir = dir.unwrap().path();
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "json") {
                out.push(f);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_case_produces_its_expected_findings() {
    let files = case_files();
    assert!(
        files.len() >= 66,
        "expected at least 66 cases, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for file in &files {
        let case: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let mut snap = base();
        apply_patch(&mut snap, case["patch"].as_array().unwrap());
        let findings = run(&snap, case["config"].as_str());
        for e in case["expect"].as_array().unwrap() {
            let rule = e["rule"].as_str().unwrap();
            let resource = e["resource"].as_str().unwrap();
            let account = e["account"].as_str().unwrap();
            let found = findings.iter().find(|f| {
                *f.rule_id == *rule && f.resource_id == resource && *f.account == *account
            });
            let want = e["outcome"].as_str().unwrap();
            match found {
                None => failures.push(format!(
                    "{}: no finding for {rule} on {account}/{resource}",
                    file.display()
                )),
                Some(f) => {
                    if f.outcome.as_str() != want {
                        failures.push(format!(
                            "{}: {rule} on {resource} is {} ({}), expected {want}",
                            file.display(),
                            f.outcome.as_str(),
                            f.message
                        ));
                    }
                    if let Some(max) = e["message_max_chars"].as_u64()
                        && f.message.chars().count() as u64 > max
                    {
                        failures.push(format!(
                            "{}: message has {} characters (at most {max}): {}",
                            file.display(),
                            f.message.chars().count(),
                            f.message
                        ));
                    }
                    if let Some(words) = e["message_contains"].as_str()
                        && !f.message.contains(words)
                    {
                        failures.push(format!(
                            "{}: message `{}` lacks `{words}`",
                            file.display(),
                            f.message
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_builtin_rule_has_pass_fail_and_error_cases() {
    let rules = RuleSet::load(&[], &[]).unwrap();
    let mut missing = Vec::new();
    for r in &rules.rules {
        for case in ["pass", "fail", "error"] {
            let f = root().join(format!("fixtures/rules/cases/{}/{case}.json", r.id));
            if !f.exists() {
                missing.push(f.display().to_string());
            } else {
                // The case must mention its own rule with that outcome.
                let text = std::fs::read_to_string(&f).unwrap();
                let v: Value = serde_json::from_str(&text).unwrap();
                let ok = v["expect"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["rule"] == r.id.as_str() && e["outcome"] == case);
                assert!(ok, "{} does not expect `{case}` for {}", f.display(), r.id);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "missing fixture cases:\n{}",
        missing.join("\n")
    );
}

/// The configuration the compliant base is written for.
const BASE_CONFIG: &str = "service_tag = \"service\"\n[developers]\ngroups = [\"developers\"]\n";

#[test]
fn compliant_base_has_no_failures_or_errors() {
    let findings = run(&base(), Some(BASE_CONFIG));
    let bad: Vec<String> = findings
        .iter()
        .filter(|f| f.outcome != Outcome::Pass && &*f.rule_id != "db.engine.instance-aurora")
        .map(|f| {
            format!(
                "{} {} {:?}: {}",
                f.rule_id, f.resource_id, f.outcome, f.message
            )
        })
        .collect();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    assert!(findings.iter().all(|f| f.outcome == Outcome::Pass));
}

#[test]
fn a_gap_never_lets_a_rule_pass_for_the_affected_account() {
    // AssumeRole failed for prod: every applicable rule errors for prod, and
    // test is evaluated as usual.
    let mut snap = base();
    apply_patch(
        &mut snap,
        &serde_json::from_str::<Vec<Value>>(
            r#"[{"op":"replace","path":"/accounts/1/regions","value":[]},
                {"op":"add","path":"/accounts/1/gaps/-","value":{"service":"sts","operation":"AssumeRole","code":"AccessDenied","message":"denied"}}]"#,
        )
        .unwrap(),
    );
    let findings = run(&snap, None);
    let prod: Vec<&Finding> = findings.iter().filter(|f| &*f.account == "prod").collect();
    assert!(!prod.is_empty());
    assert!(prod.iter().all(|f| f.outcome == Outcome::Error));
    let rules = RuleSet::load(&[], &[]).unwrap();
    let prod_rules = rules
        .rules
        .iter()
        .filter(|r| r.applies_to_environment("prod"))
        .count();
    assert_eq!(prod.len(), prod_rules, "one error per applicable rule");
    assert!(
        findings
            .iter()
            .any(|f| &*f.account == "test" && f.outcome == Outcome::Pass)
    );
}

#[test]
fn without_developer_selectors_developer_access_is_an_error_not_silence() {
    // No `[developers]` in the config: the developer rules select nobody, and
    // each says so once for its account instead of producing no finding.
    let findings = run(&base(), None);
    for (rule, account) in [
        ("iam.developers.prod-read-only", "prod"),
        ("iam.developers.test-read-write", "test"),
    ] {
        let mine: Vec<&Finding> = findings
            .iter()
            .filter(|f| &*f.rule_id == rule && &*f.account == account)
            .collect();
        assert_eq!(mine.len(), 1, "{rule} in {account}: {mine:?}");
        assert_eq!(mine[0].outcome, Outcome::Error);
        assert_eq!(mine[0].resource_id, "iam/*");
        assert!(
            mine[0].message.contains("[developers]"),
            "{}",
            mine[0].message
        );
    }
    // With selectors, the same base passes those rules for each developer.
    let findings = run(&base(), Some(BASE_CONFIG));
    assert!(
        findings
            .iter()
            .any(|f| &*f.rule_id == "iam.developers.prod-read-only" && f.outcome == Outcome::Pass)
    );
    assert!(
        !findings
            .iter()
            .any(|f| f.rule_id.starts_with("iam.developers.") && f.outcome == Outcome::Error)
    );
}

/// One root cause, one message: without an EKS cluster in a region the
/// rules that need it give one error for the region and nothing per
/// database (they used to fail every database as "admits other sources").
#[test]
fn a_region_without_an_eks_cluster_gives_one_error_per_rule_not_one_per_database() {
    let mut snap = base();
    apply_patch(
        &mut snap,
        &serde_json::from_str::<Vec<Value>>(
            r#"[{"op":"replace","path":"/accounts/1/regions/0/eks_clusters","value":[]}]"#,
        )
        .unwrap(),
    );
    let findings = run(&snap, Some(BASE_CONFIG));
    for rule in ["db.network.sg-eks-only", "db.network.eks-vpc"] {
        let prod: Vec<&Finding> = findings
            .iter()
            .filter(|f| &*f.rule_id == rule && &*f.account == "prod")
            .collect();
        assert_eq!(prod.len(), 1, "{rule}: {prod:?}");
        assert_eq!(prod[0].outcome, Outcome::Error);
        assert_eq!(prod[0].resource_id, "eu-west-1/*");
    }
    // Other network rules still decide on the databases.
    assert!(
        findings
            .iter()
            .any(|f| &*f.rule_id == "db.network.sg-not-open-to-world"
                && &*f.account == "prod"
                && f.outcome == Outcome::Pass)
    );
}
