//! Which Terraform attributes each fact is predicted from, and which facts a
//! plan cannot predict. One table serves three purposes: an attribute the
//! plan leaves unknown makes exactly the facts it feeds unknown (and the
//! rules reading them `unknown`); a fact with no source is `unknown` on a
//! new resource; and a test checks that every fact a built-in rule reads
//! has a row here, so no rule is silently blind to plans (docs/plan.md
//! shows the table, generated from it).

use crate::facts::ResourceKind;

/// A fact of a kind and the `(type, attribute)` pairs it is computed from.
pub struct FactSource {
    pub kind: ResourceKind,
    pub facts: &'static [&'static str],
    pub from: &'static [(&'static str, &'static str)],
}

/// A fact a plan does not predict, and why: on a resource the plan
/// creates it is `unknown`; on one it updates it keeps its live value.
pub struct NotPredicted {
    pub kind: ResourceKind,
    pub fact: &'static str,
    pub why: &'static str,
}

/// What feeds a database's network facts: its subnets (public when their
/// route table routes to an internet gateway) and the ingress of its
/// security groups, and the EKS cluster they are judged against.
const NETWORK: &[(&str, &str)] = &[
    ("aws_rds_cluster", "db_subnet_group_name"),
    ("aws_rds_cluster", "vpc_security_group_ids"),
    ("aws_rds_cluster", "port"),
    ("aws_db_instance", "db_subnet_group_name"),
    ("aws_db_instance", "vpc_security_group_ids"),
    ("aws_db_subnet_group", "subnet_ids"),
    ("aws_subnet", "vpc_id"),
    ("aws_subnet", "id"),
    ("aws_route_table", "route"),
    ("aws_route", "gateway_id"),
    ("aws_route", "nat_gateway_id"),
    ("aws_route", "route_table_id"),
    ("aws_route_table_association", "route_table_id"),
    ("aws_route_table_association", "subnet_id"),
    ("aws_internet_gateway", "vpc_id"),
    ("aws_security_group", "ingress"),
    ("aws_security_group", "id"),
    ("aws_security_group_rule", "security_group_id"),
    ("aws_security_group_rule", "cidr_blocks"),
    ("aws_security_group_rule", "ipv6_cidr_blocks"),
    ("aws_security_group_rule", "source_security_group_id"),
    ("aws_security_group_rule", "prefix_list_ids"),
    ("aws_security_group_rule", "from_port"),
    ("aws_security_group_rule", "to_port"),
    ("aws_vpc_security_group_ingress_rule", "security_group_id"),
    ("aws_vpc_security_group_ingress_rule", "cidr_ipv4"),
    ("aws_vpc_security_group_ingress_rule", "cidr_ipv6"),
    (
        "aws_vpc_security_group_ingress_rule",
        "referenced_security_group_id",
    ),
    ("aws_vpc_security_group_ingress_rule", "prefix_list_id"),
    ("aws_vpc_security_group_ingress_rule", "from_port"),
    ("aws_vpc_security_group_ingress_rule", "to_port"),
    ("aws_eks_cluster", "vpc_config"),
];

const NETWORK_FACTS: &[&str] = &[
    "all_subnets_private",
    "subnets",
    "public_subnets",
    "vpc_id",
    "in_eks_vpc",
    "eks_vpc_ids",
    "eks_clusters",
    "ingress",
    "broad_sg_rules",
    "security_group_ids",
];

/// What feeds the member facts of a cluster.
const MEMBERS: &[(&str, &str)] = &[
    ("aws_rds_cluster_instance", "availability_zone"),
    ("aws_rds_cluster_instance", "cluster_identifier"),
    ("aws_rds_cluster_instance", "writer"),
];

const POLICIES: &[(&str, &str)] = &[
    ("aws_iam_policy", "policy"),
    ("aws_iam_role_policy", "policy"),
    ("aws_iam_group_policy", "policy"),
    ("aws_iam_user_policy", "policy"),
    ("aws_iam_role", "permissions_boundary"),
    ("aws_iam_user", "permissions_boundary"),
    ("aws_iam_user_group_membership", "groups"),
    ("aws_iam_group_membership", "users"),
    ("aws_iam_role_policy_attachment", "policy_arn"),
    ("aws_iam_group_policy_attachment", "policy_arn"),
    ("aws_iam_user_policy_attachment", "policy_arn"),
    ("aws_iam_policy_attachment", "policy_arn"),
];

use ResourceKind as K;

pub const SOURCES: &[FactSource] = &[
    FactSource {
        kind: K::DbCluster,
        facts: &["id", "region"],
        from: &[("aws_rds_cluster", "cluster_identifier")],
    },
    FactSource {
        kind: K::DbCluster,
        facts: &[
            "engine",
            "standard_support_ends",
            "standard_support_days_left",
            "extended_support_ends",
        ],
        from: &[("aws_rds_cluster", "engine")],
    },
    FactSource {
        kind: K::DbCluster,
        facts: &[
            "engine_version",
            "standard_support_ends",
            "standard_support_days_left",
            "extended_support_ends",
        ],
        from: &[("aws_rds_cluster", "engine_version")],
    },
    FactSource {
        kind: K::DbCluster,
        facts: &["port", "ingress", "broad_sg_rules"],
        from: &[("aws_rds_cluster", "port")],
    },
    FactSource {
        kind: K::DbCluster,
        facts: &["iam_auth"],
        from: &[("aws_rds_cluster", "iam_database_authentication_enabled")],
    },
    FactSource {
        kind: K::DbCluster,
        facts: &["storage_encrypted"],
        from: &[("aws_rds_cluster", "storage_encrypted")],
    },
    FactSource {
        kind: K::DbCluster,
        facts: &["kms_key_id", "performance_insights_foreign_keys"],
        from: &[("aws_rds_cluster", "kms_key_id")],
    },
    FactSource {
        kind: K::DbCluster,
        facts: &["performance_insights_foreign_keys"],
        from: &[
            ("aws_rds_cluster_instance", "performance_insights_enabled"),
            (
                "aws_rds_cluster_instance",
                "performance_insights_kms_key_id",
            ),
        ],
    },
    FactSource {
        kind: K::DbCluster,
        facts: &["backup_retention_days"],
        from: &[("aws_rds_cluster", "backup_retention_period")],
    },
    FactSource {
        kind: K::DbCluster,
        facts: &["deletion_protection"],
        from: &[("aws_rds_cluster", "deletion_protection")],
    },
    FactSource {
        kind: K::DbCluster,
        facts: &["master_username", "master_password_managed"],
        from: &[("aws_rds_cluster", "master_username")],
    },
    FactSource {
        kind: K::DbCluster,
        facts: &["master_password_managed"],
        from: &[("aws_rds_cluster", "manage_master_user_password")],
    },
    FactSource {
        kind: K::DbCluster,
        facts: &["log_exports"],
        from: &[("aws_rds_cluster", "enabled_cloudwatch_logs_exports")],
    },
    FactSource {
        kind: K::DbCluster,
        facts: &[
            "serverless_v2",
            "serverless_v2_min_acu",
            "serverless_v2_max_acu",
        ],
        from: &[("aws_rds_cluster", "serverlessv2_scaling_configuration")],
    },
    FactSource {
        kind: K::DbCluster,
        facts: &["services"],
        from: &[("aws_rds_cluster", "tags"), ("aws_rds_cluster", "tags_all")],
    },
    FactSource {
        kind: K::DbCluster,
        facts: &["parameters"],
        from: &[
            ("aws_rds_cluster", "db_cluster_parameter_group_name"),
            ("aws_rds_cluster_parameter_group", "parameter"),
        ],
    },
    FactSource {
        kind: K::DbCluster,
        facts: &["auto_minor_version_upgrade"],
        from: &[("aws_rds_cluster_instance", "auto_minor_version_upgrade")],
    },
    FactSource {
        kind: K::DbCluster,
        facts: &["cross_region_replicas"],
        from: &[
            ("aws_rds_cluster", "global_cluster_identifier"),
            ("aws_rds_cluster", "replication_source_identifier"),
        ],
    },
    FactSource {
        kind: K::DbCluster,
        facts: &[
            "writer",
            "readers",
            "reader_count",
            "reader_azs",
            "member_azs",
            "readers_outside_writer_az",
        ],
        from: MEMBERS,
    },
    FactSource {
        kind: K::DbCluster,
        facts: NETWORK_FACTS,
        from: NETWORK,
    },
    FactSource {
        kind: K::DbInstance,
        facts: &["id", "region", "standalone"],
        from: &[
            ("aws_rds_cluster_instance", "identifier"),
            ("aws_db_instance", "identifier"),
            ("aws_rds_cluster_instance", "cluster_identifier"),
        ],
    },
    FactSource {
        kind: K::DbInstance,
        facts: &["engine"],
        from: &[
            ("aws_rds_cluster_instance", "engine"),
            ("aws_db_instance", "engine"),
        ],
    },
    FactSource {
        kind: K::DbInstance,
        facts: &["publicly_accessible"],
        from: &[
            ("aws_rds_cluster_instance", "publicly_accessible"),
            ("aws_db_instance", "publicly_accessible"),
        ],
    },
    FactSource {
        kind: K::DbInstance,
        facts: &["iam_auth"],
        from: &[
            ("aws_db_instance", "iam_database_authentication_enabled"),
            ("aws_rds_cluster", "iam_database_authentication_enabled"),
        ],
    },
    FactSource {
        kind: K::DbInstance,
        facts: &["storage_encrypted"],
        from: &[
            ("aws_db_instance", "storage_encrypted"),
            ("aws_rds_cluster", "storage_encrypted"),
        ],
    },
    FactSource {
        kind: K::DbInstance,
        // A new server certificate expires no later than its CA.
        facts: &[
            "ca_certificate",
            "ca_rotates_automatically",
            "certificate_valid_till",
            "certificate_days_left",
        ],
        from: &[
            ("aws_rds_cluster_instance", "ca_cert_identifier"),
            ("aws_db_instance", "ca_cert_identifier"),
        ],
    },
    FactSource {
        kind: K::DbInstance,
        facts: NETWORK_FACTS,
        from: NETWORK,
    },
    FactSource {
        kind: K::DbProxy,
        facts: &["name"],
        from: &[("aws_db_proxy", "name")],
    },
    FactSource {
        kind: K::DbProxy,
        facts: &["require_tls"],
        from: &[("aws_db_proxy", "require_tls")],
    },
    FactSource {
        kind: K::DbProxy,
        facts: &["iam_auth_required", "auth_summary"],
        from: &[
            ("aws_db_proxy", "auth"),
            ("aws_db_proxy", "default_auth_scheme"),
        ],
    },
    FactSource {
        kind: K::DbProxy,
        facts: &["port"],
        from: &[("aws_db_proxy", "engine_family")],
    },
    FactSource {
        kind: K::DbProxy,
        facts: NETWORK_FACTS,
        from: &[
            ("aws_db_proxy", "vpc_subnet_ids"),
            ("aws_db_proxy", "vpc_security_group_ids"),
            ("aws_subnet", "vpc_id"),
            ("aws_route_table", "route"),
            ("aws_route", "gateway_id"),
            ("aws_route_table_association", "route_table_id"),
            ("aws_security_group", "ingress"),
            ("aws_security_group_rule", "cidr_blocks"),
            ("aws_security_group_rule", "source_security_group_id"),
            ("aws_vpc_security_group_ingress_rule", "cidr_ipv4"),
            (
                "aws_vpc_security_group_ingress_rule",
                "referenced_security_group_id",
            ),
            ("aws_eks_cluster", "vpc_config"),
        ],
    },
    FactSource {
        kind: K::IamPrincipal,
        facts: &["name", "kind"],
        from: &[("aws_iam_role", "name"), ("aws_iam_user", "name")],
    },
    FactSource {
        // With [developers] of dbaudit.toml (users, groups, roles).
        kind: K::IamPrincipal,
        facts: &["is_developer"],
        from: &[
            ("aws_iam_user", "name"),
            ("aws_iam_role", "name"),
            ("aws_iam_user_group_membership", "groups"),
            ("aws_iam_group_membership", "users"),
        ],
    },
    FactSource {
        kind: K::IamPrincipal,
        facts: &[
            "can_read_rds",
            "can_write_rds",
            "connect_resources",
            "connect_unscoped",
            "rds_write",
            "sg_write",
            "write_access",
            "write_summary",
        ],
        from: POLICIES,
    },
    FactSource {
        kind: K::IamPrincipal,
        facts: &[
            "irsa_pinned",
            "irsa_subjects",
            "is_irsa",
            "service_accounts",
        ],
        from: &[("aws_iam_role", "assume_role_policy")],
    },
    FactSource {
        kind: K::Account,
        facts: &["databases", "databases_expected"],
        from: &[
            ("aws_rds_cluster", "cluster_identifier"),
            ("aws_rds_cluster", "tags"),
            ("aws_db_instance", "identifier"),
        ],
    },
    FactSource {
        kind: K::ServicePair,
        facts: &[
            "left",
            "right",
            "left_summary",
            "right_summary",
            "service",
            "left_environment",
            "right_environment",
        ],
        from: &[
            ("aws_rds_cluster", "tags"),
            ("aws_rds_cluster", "cluster_identifier"),
        ],
    },
    FactSource {
        kind: K::ServicePair,
        facts: &["parameter_differences"],
        from: &[
            ("aws_rds_cluster", "db_cluster_parameter_group_name"),
            ("aws_rds_cluster_parameter_group", "parameter"),
        ],
    },
];

pub const NOT_PREDICTED: &[NotPredicted] = &[
    NotPredicted {
        kind: K::DbCluster,
        fact: "master_secret_rotation_enabled",
        why: "the rotation of the managed master secret is set by AWS (or an aws_secretsmanager_secret_rotation, not applied)",
    },
    NotPredicted {
        kind: K::DbCluster,
        fact: "master_secret_rotation_days",
        why: "the rotation of the managed master secret is set by AWS (or an aws_secretsmanager_secret_rotation, not applied)",
    },
    NotPredicted {
        kind: K::Account,
        fact: "manual_snapshots",
        why: "manual snapshots are taken outside Terraform (aws_db_cluster_snapshot is not applied)",
    },
    NotPredicted {
        kind: K::Account,
        fact: "shared_with",
        why: "snapshot sharing is set outside Terraform",
    },
    NotPredicted {
        kind: K::Account,
        fact: "account_id",
        why: "the account itself: never changed by a plan",
    },
    NotPredicted {
        kind: K::Account,
        fact: "environment",
        why: "the account itself: never changed by a plan",
    },
    NotPredicted {
        kind: K::Account,
        fact: "name",
        why: "the account itself: never changed by a plan",
    },
    NotPredicted {
        kind: K::DbClusterSnapshot,
        fact: "*",
        why: "manual snapshots are taken outside Terraform (aws_db_cluster_snapshot is not applied)",
    },
    NotPredicted {
        kind: K::PgDatabase,
        fact: "*",
        why: "roles and grants inside PostgreSQL are not in an AWS plan: the live in-database facts stay, and a new cluster has none until collected",
    },
    NotPredicted {
        kind: K::ServicePair,
        fact: "db_role_differences",
        why: "roles inside PostgreSQL are not in an AWS plan",
    },
    NotPredicted {
        kind: K::ServicePair,
        fact: "db_roles_collected",
        why: "roles inside PostgreSQL are not in an AWS plan",
    },
];

/// The facts of a service pair that summarise its clusters.
pub const PAIR_SUMMARY_FACTS: &[&str] = &[
    "left",
    "right",
    "left_summary",
    "right_summary",
    "parameter_differences",
];

/// Which fields of a pair's databases (`left`/`right` items) an unknown
/// attribute of a cluster feeds: `None` when none, an empty list when its
/// membership (every field). A pair rule is unknown only when its
/// condition reads one of them.
pub fn pair_fields_fed_by(tf_type: &str, attribute: &str) -> Option<&'static [&'static str]> {
    let attribute = attribute.split('.').next().unwrap_or(attribute);
    match (tf_type, attribute) {
        ("aws_rds_cluster", "cluster_identifier" | "tags" | "tags_all") => Some(&[]),
        ("aws_rds_cluster", "engine") => Some(&["engine", "engine_major"]),
        ("aws_rds_cluster", "engine_version") => Some(&["engine_version", "engine_major"]),
        ("aws_rds_cluster", "iam_database_authentication_enabled") => Some(&["iam_auth"]),
        ("aws_rds_cluster", "storage_encrypted") => Some(&["storage_encrypted"]),
        ("aws_rds_cluster", "db_cluster_parameter_group_name")
        | ("aws_rds_cluster_parameter_group", "parameter") => {
            Some(&["parameters", "parameter_differences"])
        }
        _ => None,
    }
}

/// The facts of `kind` that an unknown `(type, attribute)` makes unknown.
pub fn facts_fed_by(kind: ResourceKind, tf_type: &str, attribute: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    for s in SOURCES.iter().filter(|s| s.kind == kind) {
        if s.from
            .iter()
            .any(|(t, a)| *t == tf_type && attribute.split('.').next() == Some(*a))
        {
            out.extend(s.facts.iter().copied());
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Whether a plan predicts `fact` of `kind`: `Ok` with its sources, or
/// `Err` with why not; `None` when the table does not know the fact.
pub fn predicted(kind: ResourceKind, fact: &str) -> Option<Result<Vec<String>, &'static str>> {
    if let Some(n) = NOT_PREDICTED
        .iter()
        .find(|n| n.kind == kind && (n.fact == fact || n.fact == "*"))
    {
        return Some(Err(n.why));
    }
    let sources: Vec<String> = SOURCES
        .iter()
        .filter(|s| s.kind == kind && s.facts.contains(&fact))
        .flat_map(|s| s.from.iter().map(|(t, a)| format!("{t}.{a}")))
        .collect();
    (!sources.is_empty()).then_some(Ok(sources))
}

/// The Markdown table docs/plan.md carries between its markers.
pub fn markdown(rules: &crate::rules::RuleSet) -> String {
    use std::collections::{BTreeMap, BTreeSet};
    let mut read: BTreeMap<ResourceKind, BTreeSet<String>> = BTreeMap::new();
    for r in &rules.rules {
        if let Some(fields) = r.resource_fields() {
            read.entry(r.resource).or_default().extend(fields);
        }
    }
    let mut out = String::from("| kind | fact | predicted from |\n|---|---|---|\n");
    for (kind, facts) in &read {
        for fact in facts {
            let cell = match predicted(*kind, fact) {
                Some(Ok(sources)) => {
                    let attrs: BTreeSet<&String> = sources.iter().collect();
                    if attrs.len() > 6 {
                        // The network: name the types, not 30 attributes.
                        let types: BTreeSet<&str> = attrs
                            .iter()
                            .filter_map(|s| s.split_once('.').map(|(t, _)| t))
                            .collect();
                        format!(
                            "{} attributes of {}",
                            attrs.len(),
                            types
                                .iter()
                                .map(|t| format!("`{t}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    } else {
                        attrs
                            .iter()
                            .map(|s| format!("`{s}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                }
                Some(Err(why)) => format!("**not predicted**: {why}"),
                None => "**missing from the table**".to_string(),
            };
            out.push_str(&format!("| `{}` | `{fact}` | {cell} |\n", kind.as_str()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every fact a built-in rule reads is predicted from some attribute or
    /// listed as not predicted: no rule is blind to plans without saying so.
    #[test]
    fn every_fact_a_rule_reads_is_in_the_table() {
        let rules = crate::rules::RuleSet::load(&[], &[]).unwrap();
        let mut missing = Vec::new();
        for r in &rules.rules {
            let fields = r
                .resource_fields()
                .unwrap_or_else(|| panic!("{} reads its whole resource", r.id));
            for f in fields {
                if predicted(r.resource, &f).is_none() {
                    missing.push(format!("{} {} (rule {})", r.resource.as_str(), f, r.id));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "facts with no row in plan/coverage.rs: {missing:#?}"
        );
    }

    #[test]
    fn only_applied_types_feed_facts() {
        for s in SOURCES {
            for (t, a) in s.from {
                assert!(
                    super::super::apply::APPLIED_TYPES.contains(t),
                    "{t}.{a} feeds {:?} but {t} is not applied",
                    s.facts
                );
            }
        }
    }
}
