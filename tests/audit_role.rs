//! The shipped audit role grants exactly what the collectors send, and
//! nothing that is not a read.

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

#[test]
fn policy_grants_exactly_the_collected_operations_and_only_reads() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/audit-role/policy.json");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let granted = actions_of(&doc);
    let used: BTreeSet<String> = dbaudit::collect::OPERATIONS
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(granted, used);
    for a in &granted {
        let op = a.split_once(':').unwrap().1;
        assert!(!op.contains('*'), "{a}: no wildcards");
        assert!(
            dbaudit::collect::guard::is_read_only(op),
            "{a} is not a read"
        );
    }
}

#[test]
fn cloudformation_template_carries_the_same_actions_and_the_external_id() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/audit-role/cloudformation.yaml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    for op in dbaudit::collect::OPERATIONS {
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
        dbaudit::collect::OPERATIONS.len(),
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

/// Every operation the collectors name in their gaps is in the list.
#[test]
fn collector_sources_name_only_listed_operations() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/collect");
    for (file, service) in [
        ("ec2.rs", "ec2"),
        ("rds.rs", "rds"),
        ("eks.rs", "eks"),
        ("iam.rs", "iam"),
    ] {
        let text = std::fs::read_to_string(format!("{dir}/{file}")).unwrap();
        let mut found = 0;
        for part in text.split("push(gap(\"").skip(1) {
            found += 1;
            let op = part.split('"').next().unwrap();
            let full = format!("{service}:{op}");
            assert!(
                dbaudit::collect::OPERATIONS.contains(&full.as_str()),
                "{file} calls {op}, not in OPERATIONS/policy"
            );
        }
        assert!(
            found >= 4,
            "{file}: found only {found} operations; did the code change shape?"
        );
    }
}
