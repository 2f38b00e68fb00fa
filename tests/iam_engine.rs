//! The IAM engine on malformed policies (tests/iam_malformed/*.json), and
//! two properties: adding a Deny statement never adds access; adding an
//! Allow never removes it. The corpus of cases is tests/iam_corpus.rs.

use std::path::PathBuf;

use dbaudit::iam::Policy;
use dbaudit::iam::eval::{self, Context, Decision, Request};
use serde_json::Value;

fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

fn files(name: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir(name))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn malformed_policies_are_errors_naming_policy_and_statement() {
    let cases = files("iam_malformed");
    assert!(cases.len() >= 10);
    for f in cases {
        let c: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let err =
            Policy::parse("arn:aws:iam::222222222222:policy/broken", &c["document"]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("policy arn:aws:iam::222222222222:policy/broken"),
            "{text}"
        );
        assert!(
            text.contains(c["error_contains"].as_str().unwrap()),
            "{}: {text}",
            f.display()
        );
    }
}

/// A small deterministic generator (xorshift), so the properties are
/// checked on the same thousands of random policies in every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

const ACTIONS: &[&str] = &[
    "rds:*",
    "rds:Modify*",
    "rds:ModifyDBCluster",
    "rds:Describe*",
    "*",
    "rds:Delete*",
    "ec2:*",
];
const RESOURCES: &[&str] = &[
    "*",
    "arn:aws:rds:*:*:cluster:prod-*",
    "arn:aws:rds:eu-west-1:222222222222:cluster:prod-orders",
    "arn:aws:rds:*:*:cluster:test-*",
    "arn:aws:rds:*:*:cluster:${aws:PrincipalTag/team}-*",
];
const CONDS: &[&str] = &["", "mfa", "region", "tag"];

fn statement(r: &mut Rng, effect: &str) -> Value {
    let mut s = serde_json::json!({"Effect": effect});
    if r.next().is_multiple_of(5) {
        s["NotAction"] = r.pick(ACTIONS).into();
    } else {
        s["Action"] = r.pick(ACTIONS).into();
    }
    if r.next().is_multiple_of(6) {
        s["NotResource"] = r.pick(RESOURCES).into();
    } else {
        s["Resource"] = r.pick(RESOURCES).into();
    }
    match r.pick(CONDS) {
        "mfa" => {
            s["Condition"] = serde_json::json!({"Bool": {"aws:MultiFactorAuthPresent": "true"}})
        }
        "region" => {
            s["Condition"] =
                serde_json::json!({"StringEquals": {"aws:RequestedRegion": "eu-west-1"}})
        }
        "tag" => {
            s["Condition"] = serde_json::json!({"StringLike": {"aws:PrincipalTag/team": "db*"}})
        }
        _ => {}
    }
    s
}

/// Access ordered: denied < conditional < allowed.
fn rank(d: Decision) -> u8 {
    match d {
        Decision::Deny | Decision::ImplicitDeny => 0,
        Decision::Conditional => 1,
        Decision::Allow => 2,
    }
}

#[test]
fn adding_a_deny_never_adds_access_and_adding_an_allow_never_removes_it() {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let requests = [
        (
            "rds:ModifyDBCluster",
            "arn:aws:rds:eu-west-1:222222222222:cluster:prod-orders",
        ),
        (
            "rds:DescribeDBClusters",
            "arn:aws:rds:eu-west-1:222222222222:cluster:test-a",
        ),
        (
            "rds:DeleteDBCluster",
            "arn:aws:rds:eu-west-1:222222222222:cluster:prod-billing",
        ),
    ];
    let mut ctx = Context::default();
    ctx.set("aws:RequestedRegion", "eu-west-1");
    let mut checked = 0;
    for _ in 0..2_000 {
        let n = 1 + (r.next() % 4) as usize;
        let stmts: Vec<Value> = (0..n)
            .map(|_| {
                let effect = if r.next().is_multiple_of(3) {
                    "Deny"
                } else {
                    "Allow"
                };
                statement(&mut r, effect)
            })
            .collect();
        let base = Policy::parse("p", &serde_json::json!({"Statement": stmts})).unwrap();
        let extra_deny = Policy::parse(
            "d",
            &serde_json::json!({"Statement": [statement(&mut r, "Deny")]}),
        )
        .unwrap();
        let extra_allow = Policy::parse(
            "a",
            &serde_json::json!({"Statement": [statement(&mut r, "Allow")]}),
        )
        .unwrap();
        for (action, resource) in requests {
            let req = Request {
                action,
                resource,
                context: &ctx,
            };
            let before = rank(eval::evaluate(&[&base], None, &req).decision);
            let with_deny = rank(eval::evaluate(&[&base, &extra_deny], None, &req).decision);
            let with_allow = rank(eval::evaluate(&[&base, &extra_allow], None, &req).decision);
            assert!(
                with_deny <= before,
                "a Deny added access: {stmts:?} + {extra_deny:?} for {action} {resource}"
            );
            assert!(
                with_allow >= before,
                "an Allow removed access: {stmts:?} + {extra_allow:?} for {action} {resource}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 6_000);
}
