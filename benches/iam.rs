//! Benchmark: which of 1,000 principals can perform which non-read RDS
//! actions (rds + rds-data, from the catalogue) on 1,000 prod DB resources.
//! `cargo bench --bench iam [-- PRINCIPALS RESOURCES]`. Figures: docs/performance.md.

use std::time::Instant;

use dbaudit::config::DeveloperSelectors;
use dbaudit::snapshot::*;
use serde_json::json;

#[allow(clippy::print_stdout)]
fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let principals = args.first().copied().unwrap_or(1_000);
    let resources = args.get(1).copied().unwrap_or(1_000);
    let acct = "222222222222";
    let mut region = Region {
        name: "eu-west-1".into(),
        ..Region::default()
    };
    for i in 0..resources {
        region.db_clusters.push(DbCluster {
            id: format!("prod-{i:04}"),
            arn: format!("arn:aws:rds:eu-west-1:{acct}:cluster:prod-{i:04}"),
            engine: "aurora-postgresql".into(),
            ..DbCluster::default()
        });
    }
    let policy = |arn: &str, doc: serde_json::Value| ManagedPolicy {
        arn: arn.to_string(),
        name: arn.rsplit('/').next().unwrap().to_string(),
        default_version_id: "v1".into(),
        document: doc,
    };
    let read_only = format!("arn:aws:iam::{acct}:policy/read-only");
    let guard = format!("arn:aws:iam::{acct}:policy/deny-guard");
    let scoped = format!("arn:aws:iam::{acct}:policy/scoped-writes");
    let admin = format!("arn:aws:iam::{acct}:policy/rds-admin");
    let mfa = format!("arn:aws:iam::{acct}:policy/mfa-writes");
    let mut iam = Iam {
        policies: vec![
            policy(
                &read_only,
                json!({"Statement": [{"Effect": "Allow", "Action": ["rds:Describe*", "rds:List*"], "Resource": "*"}]}),
            ),
            policy(
                &guard,
                json!({"Statement": [{"Effect": "Deny", "NotAction": ["rds:Describe*", "rds:List*"], "Resource": "arn:aws:rds:*:*:*"}]}),
            ),
            policy(
                &scoped,
                json!({"Statement": [{"Effect": "Allow", "Action": ["rds:Modify*", "rds:Reboot*"], "Resource": [format!("arn:aws:rds:*:{acct}:cluster:prod-00*"), format!("arn:aws:rds:*:{acct}:cluster:prod-01*")]}]}),
            ),
            policy(
                &admin,
                json!({"Statement": [{"Effect": "Allow", "Action": "rds:*", "Resource": "*"}]}),
            ),
            policy(
                &mfa,
                json!({"Statement": [{"Effect": "Allow", "Action": "rds:*", "Resource": "*", "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}]}),
            ),
        ],
        ..Iam::default()
    };
    // A mix: most read-only with a guard, some with scoped writes, a few admins.
    for i in 0..principals {
        let attached = match i % 10 {
            0 => vec![admin.clone()],
            1 | 2 => vec![read_only.clone(), scoped.clone()],
            3 => vec![read_only.clone(), mfa.clone()],
            _ => vec![read_only.clone(), guard.clone()],
        };
        iam.roles.push(IamRole {
            name: format!("role-{i:04}"),
            arn: format!("arn:aws:iam::{acct}:role/role-{i:04}"),
            path: "/".into(),
            trust_policy: json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
            attached_policies: attached,
            ..IamRole::default()
        });
    }
    let account = Account {
        name: "prod".into(),
        environment: "prod".into(),
        account_id: acct.into(),
        partition: "aws".into(),
        regions: vec![region],
        iam: Some(iam),
        ..Account::default()
    };
    let actions = dbaudit::iam::Catalogue::get().non_read("rds").len()
        + dbaudit::iam::Catalogue::get().non_read("rds-data").len();
    let devs = DeveloperSelectors {
        role_globs: vec!["role-*".into()],
        ..DeveloperSelectors::default()
    };
    let t = Instant::now();
    let facts = dbaudit::iam::principal_facts(&account, &devs).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let writers = facts
        .iter()
        .filter(|f| !f.rds_write.as_ref().unwrap().is_empty())
        .count();
    let questions = principals as f64 * resources as f64 * actions as f64;
    println!(
        "{principals} principals × {resources} resources × {actions} non-read RDS actions = {questions:.2e} questions"
    );
    println!("answered in {secs:.3} s; {writers} principals can write");
}
