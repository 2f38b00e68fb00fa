//! Properties of the rule pack over the fixture estate
//! (`fixtures/rules/base.json`); each case file is its own test in
//! tests/rule_cases.rs.

mod support;

use dbaudit::report::{Finding, Outcome};
use dbaudit::rules::RuleSet;
use serde_json::Value;
use support::rule_cases::{apply_patch, base, patch, root, run};

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
                let expect = v["expect"].as_array().unwrap();
                let own = |e: &&Value| e["rule"] == r.id.as_str();
                // A grade that applies only to known data (`applies_if =
                // "has(...)"`) shows missing data as no finding of its own,
                // and the case must show where the error goes instead.
                let ok = expect.iter().any(|e| own(&e) && e["outcome"] == case)
                    || (case == "error"
                        && expect.iter().any(|e| own(&e) && e["absent"] == true)
                        && expect.iter().any(|e| !own(&e) && e["outcome"] == "error"));
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
        &patch(
            r#"[{"op":"replace","path":"/accounts/1/regions","value":[]},
                {"op":"add","path":"/accounts/1/gaps/-","value":{"service":"sts","operation":"AssumeRole","code":"AccessDenied","message":"denied"}}]"#,
        ),
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
        assert_eq!(&*mine[0].resource_id, "iam/*");
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
        &patch(r#"[{"op":"replace","path":"/accounts/1/regions/0/eks_clusters","value":[]}]"#),
    );
    let findings = run(&snap, Some(BASE_CONFIG));
    for rule in ["db.network.sg-eks-only", "db.network.eks-vpc"] {
        let prod: Vec<&Finding> = findings
            .iter()
            .filter(|f| &*f.rule_id == rule && &*f.account == "prod")
            .collect();
        assert_eq!(prod.len(), 1, "{rule}: {prod:?}");
        assert_eq!(prod[0].outcome, Outcome::Error);
        assert_eq!(&*prod[0].resource_id, "eu-west-1/*");
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
