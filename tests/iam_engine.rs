//! The IAM engine against a data-driven corpus (tests/iam_cases/*.json, one
//! case per file, derived from AWS's documented evaluation logic), malformed
//! policies (tests/iam_malformed/*.json), and two properties: adding a Deny
//! statement never adds access; adding an Allow never removes it.

use std::path::PathBuf;

use std::sync::Arc;

use dbaudit::iam::eval::{self, Context, Decision, Layer, Request};
use dbaudit::iam::{Policy, Principal};
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

fn decision_name(d: Decision) -> &'static str {
    match d {
        Decision::Allow => "allow",
        Decision::Deny => "deny",
        Decision::ImplicitDeny => "implicit_deny",
        Decision::Conditional => "conditional",
    }
}

#[test]
fn corpus() {
    let cases = files("iam_cases");
    assert!(cases.len() >= 120, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for f in &cases {
        let c: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let policies: Vec<Policy> = c["policies"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, d)| Policy::parse(&format!("policy{i}"), d).unwrap())
            .collect();
        let boundary = c
            .get("boundary")
            .map(|b| Policy::parse("boundary", b).unwrap());
        // SCPs: one list of documents per organization level.
        let scps: Vec<Vec<Policy>> = c
            .get("scps")
            .and_then(Value::as_array)
            .map(|levels| {
                levels
                    .iter()
                    .enumerate()
                    .map(|(i, l)| {
                        l.as_array()
                            .unwrap()
                            .iter()
                            .enumerate()
                            .map(|(j, d)| Policy::parse(&format!("scp{i}.{j}"), d).unwrap())
                            .collect()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let scp_refs: Vec<Vec<&Policy>> = scps.iter().map(|l| l.iter().collect()).collect();
        let mut ctx = Context::default();
        for (k, vs) in c["request"]["context"].as_object().unwrap() {
            // `[]`: the key is present with no values.
            ctx.values.entry(k.to_ascii_lowercase()).or_default();
            for v in vs.as_array().unwrap() {
                ctx.set(k, v.as_str().unwrap());
            }
        }
        for k in c["request"]["missing"].as_array().unwrap() {
            ctx.absent(k.as_str().unwrap());
        }
        // Key prefixes whose every key is known (a resource's full tag set).
        for p in c["request"]["complete"].as_array().into_iter().flatten() {
            ctx.complete(p.as_str().unwrap());
        }
        let action = c["request"]["action"].as_str().unwrap();
        let resource = c["request"]["resource"].as_str().unwrap();
        let a = match c.get("principal").and_then(Value::as_str) {
            // Asked as a principal of an account (other-account resources).
            Some(arn) => Principal {
                kind: "user",
                name: arn.rsplit('/').next().unwrap().to_string(),
                arn: arn.to_string(),
                account_id: arn.split(':').nth(4).unwrap().to_string(),
                groups: vec![],
                tags: Default::default(),
                tags_authoritative: true,
                policies: policies.iter().cloned().map(Arc::new).collect(),
                boundary: boundary.clone().map(Arc::new),
                scps: scps
                    .iter()
                    .map(|l| l.iter().cloned().map(Arc::new).collect())
                    .collect(),
                trust: None,
                errors: vec![],
            }
            .evaluate(action, resource, &ctx),
            None => {
                let refs: Vec<&Policy> = policies.iter().collect();
                eval::evaluate_with_scps(
                    &refs,
                    boundary.as_ref(),
                    &scp_refs,
                    &Request {
                        action,
                        resource,
                        context: &ctx,
                    },
                )
            }
        };
        let want = c["expect"].as_str().unwrap();
        if decision_name(a.decision) != want {
            failures.push(format!("{name}: {} expected, got {:?}", want, a));
            continue;
        }
        if let Some(layer) = c.get("decided_by").and_then(Value::as_str) {
            let got = match a.decided_by {
                Layer::Identity => "identity".to_string(),
                Layer::Boundary => "boundary".to_string(),
                Layer::Scp(i) => format!("scp:{i}"),
                Layer::ResourceAccount => "resource_account".to_string(),
            };
            if got != layer {
                failures.push(format!("{name}: decided by {got}, expected {layer}"));
            }
        }
        if let Some(keys) = c.get("unknown_keys") {
            let keys: Vec<String> = keys
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap().to_string())
                .collect();
            if a.unknown_keys != keys {
                failures.push(format!(
                    "{name}: unknown keys {:?}, expected {keys:?}",
                    a.unknown_keys
                ));
            }
        }
        // Every decision names the statements behind it.
        match a.decision {
            Decision::Allow if a.allowed_by.is_empty() => {
                failures.push(format!("{name}: an allow names no statement"))
            }
            Decision::Deny if a.denied_by.is_empty() => {
                failures.push(format!("{name}: a deny names no statement"))
            }
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
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
