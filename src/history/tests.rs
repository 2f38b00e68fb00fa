//! The period planner on hand-made findings (the stores are tested in
//! tests/history.rs).

use std::sync::Arc;

use super::{Coverage, OpenPeriod, plan, representatives};
use crate::facts::ResourceKind;
use crate::finding::{Finding, Outcome, Severity};
use crate::report::Report;

fn finding(fp: &str, rule: &str, outcome: Outcome) -> Finding {
    Finding {
        rule_id: Arc::from(rule),
        title: Arc::from(""),
        severity: Severity::High,
        outcome,
        account: Arc::from("prod"),
        account_id: Arc::from("222222222222"),
        environment: Arc::from("prod"),
        region: Some(Arc::from("eu-west-1")),
        resource_kind: ResourceKind::DbCluster,
        resource_id: fp.into(),
        resource_arn: format!("arn:{fp}").into(),
        message: Arc::from(""),
        evidence: None,
        fingerprint: fp.to_string(),
        waiver: None,
        baseline: None,
        source: None,
        location: None,
    }
}

fn open(fp: &str, rule: &str) -> OpenPeriod {
    OpenPeriod {
        fingerprint: fp.to_string(),
        opened_seq: 1,
        rule_id: rule.to_string(),
        account: "prod".to_string(),
        region: "eu-west-1".to_string(),
        waiver: None,
    }
}

/// Coverage of the demo's evaluation with these findings: rule `r` on
/// account `prod` in eu-west-1.
fn coverage(findings: Vec<Finding>) -> Coverage {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let snapshot =
        crate::snapshot::Snapshot::load(&root.join("fixtures/demo/snapshot.json")).unwrap();
    let rules = crate::rules::RuleSet::load(&[], &[]).unwrap();
    let gate =
        crate::report::gate::decide(&[], Severity::High, crate::report::gate::OnIncomplete::Fail);
    let mut report = Report::build(&snapshot, &rules, findings, gate);
    report.rules.truncate(0);
    let mut doc = crate::report::ruledoc::RuleDoc::of(&rules.rules[0]);
    doc.id = "r".to_string();
    report.rules.push(crate::report::RuleSummary {
        doc,
        counts: Default::default(),
    });
    Coverage::of(&report).unwrap()
}

#[test]
fn a_fingerprint_twice_in_a_run_fails_if_either_fails() {
    let fs = vec![
        finding("a", "r", Outcome::Pass),
        finding("a", "r", Outcome::Fail),
    ];
    let p = plan(&[], &representatives(&fs), &coverage(fs.clone()));
    assert_eq!(p.open.len(), 1);
    let p = plan(
        &[open("a", "r")],
        &representatives(&fs),
        &coverage(fs.clone()),
    );
    assert!(p.open.is_empty() && p.close.is_empty());
}

#[test]
fn only_a_covered_cell_closes_a_period_whose_finding_is_absent() {
    // Rule `r` evaluated on prod/eu-west-1, no finding `a`: gone.
    let p = plan(&[open("a", "r")], &Default::default(), &coverage(vec![]));
    assert_eq!(p.close, vec![(("a".to_string(), 1), "gone")]);
    // Another rule: not evaluated, nothing changes.
    let p = plan(
        &[open("a", "other")],
        &Default::default(),
        &coverage(vec![]),
    );
    assert!(p.close.is_empty());
    // Rule `r` erred in that account and region: unknown, nothing changes.
    let err = vec![finding("b", "r", Outcome::Error)];
    let p = plan(&[open("a", "r")], &Default::default(), &coverage(err));
    assert!(p.close.is_empty());
}

#[test]
fn an_error_outcome_neither_closes_nor_opens() {
    let fs = vec![finding("a", "r", Outcome::Error)];
    let p = plan(
        &[open("a", "r")],
        &representatives(&fs),
        &coverage(fs.clone()),
    );
    assert!(p.close.is_empty() && p.open.is_empty());
    let p = plan(&[], &representatives(&fs), &coverage(fs.clone()));
    assert!(p.open.is_empty());
}

#[test]
fn a_pass_closes_and_a_waiver_change_is_recorded() {
    let fs = vec![finding("a", "r", Outcome::Pass)];
    let p = plan(
        &[open("a", "r")],
        &representatives(&fs),
        &coverage(fs.clone()),
    );
    assert_eq!(p.close, vec![(("a".to_string(), 1), "passed")]);
    let mut w = finding("a", "r", Outcome::Waived);
    w.waiver = Some(Box::new(crate::finding::WaiverRef {
        reason: "accepted".into(),
        owner: None,
        ticket: None,
        expires: None,
        location: "w.toml:1".into(),
    }));
    let fs = vec![w];
    let p = plan(
        &[open("a", "r")],
        &representatives(&fs),
        &coverage(fs.clone()),
    );
    assert!(p.close.is_empty() && p.open.is_empty());
    assert_eq!(
        p.waiver,
        vec![(("a".to_string(), 1), Some("accepted".to_string()))]
    );
}
