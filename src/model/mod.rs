//! Derived facts: what rules talk about, computed once per snapshot.
//!
//! Each resource becomes a facts value (serialised into the rule engine as
//! `resource`). A fact that cannot be derived because its inputs were not
//! collected is *left out* rather than defaulted, so that a rule reading it
//! evaluates to `error`, never to `pass`; `unknown` says why.

pub mod lifecycle;
pub mod network;
pub mod parity;
pub mod proxy;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use schemars::JsonSchema;
use serde::Serialize;

use crate::celval::{self, BoxVal, ToVal};
use crate::config::Config;
use crate::facts::FieldSchema;
use crate::facts::ResourceKind;
use crate::snapshot::{Account, DbCluster, DbInstance, Snapshot, Tags};
use crate::vocab::Service;
pub use network::{IngressSource, NetworkFacts, RegionIndex, SubnetFacts};

/// A cluster member as rules see it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MemberFacts {
    pub id: String,
    pub availability_zone: String,
}

/// Facts of an Aurora/RDS DB cluster (`resource` in `db_cluster` rules).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ClusterFacts {
    pub id: String,
    pub arn: String,
    pub region: String,
    pub engine: String,
    pub engine_version: String,
    /// `provisioned` unless the snapshot says otherwise.
    pub engine_mode: String,
    /// Aurora Serverless v2 scaling is configured.
    pub serverless_v2: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serverless_v2_min_acu: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serverless_v2_max_acu: Option<f64>,
    pub port: i64,
    // Absent (unknown, the rule `error`) when the API's answer lacked them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iam_auth: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_encrypted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_retention_days: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_protection: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multi_az: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_cluster_id: Option<String>,
    /// ARNs of replicas of this cluster in other regions (global cluster
    /// members or cross-region read-replica clusters). Absent when none is
    /// known and the region's global clusters could not be listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cross_region_replicas: Option<Vec<String>>,
    pub tags: Tags,
    /// Services named by the service tag (comma, space or `+` separated).
    pub services: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writer: Option<MemberFacts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readers: Option<Vec<MemberFacts>>,
    /// Absent when a member's writer flag is not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reader_count: Option<i64>,
    /// Distinct AZs of the readers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reader_azs: Option<Vec<String>>,
    /// Distinct AZs of all members (writer and readers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_azs: Option<Vec<String>>,
    /// Readers in an AZ other than the writer's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readers_outside_writer_az: Option<i64>,
    /// Member instances that are publicly accessible.
    /// Absent when a member instance is not in the snapshot: "none public"
    /// would then be a guess.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publicly_accessible_members: Option<Vec<String>>,
    /// The master user's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_username: Option<String>,
    /// RDS manages the master password in Secrets Manager (it rotates it
    /// and no human needs to know it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_password_managed: Option<bool>,
    /// Log types exported to CloudWatch Logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_exports: Option<Vec<String>>,
    /// Minor engine versions are applied automatically: the cluster's own
    /// setting where it reports one, and every member instance's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_minor_version_upgrade: Option<bool>,
    /// The watched parameters of the cluster's parameter group (`rds.force_ssl`,
    /// `password_encryption`, `log_connections`, `shared_preload_libraries`,
    /// `ssl_min_protocol_version`) that have a value; absent when the group
    /// was not collected. A rule reading a parameter without a value errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Tags>,
    /// The master secret rotates automatically (Secrets Manager); absent
    /// when the password is not managed or the secret was not described.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_secret_rotation_enabled: Option<bool>,
    /// Days between rotations of the master secret, when it rotates on a
    /// rate (absent for a `cron(...)` schedule or when not described).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_secret_rotation_days: Option<i64>,
    /// `open-source-rds-extended-support` or `…-disabled`, when reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine_lifecycle_support: Option<String>,
    /// Last day of standard support of the engine's major version (the
    /// shipped engine lifecycle catalogue); absent when not catalogued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standard_support_ends: Option<String>,
    /// Days from the snapshot's `collected_at` to that day (negative once
    /// passed: the cluster is on paid Extended Support or due an upgrade).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standard_support_days_left: Option<i64>,
    /// Last day of RDS Extended Support for the major version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_support_ends: Option<String>,
    /// Members whose Performance Insights data is encrypted with a KMS key
    /// other than the cluster's storage key (`instance: key`); absent when
    /// a member is not in the snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub performance_insights_foreign_keys: Option<Vec<String>>,
    #[serde(flatten)]
    pub network: NetworkFacts,
    /// Facts that could not be derived, and why.
    pub unknown: Vec<String>,
}

/// Facts of a DB instance (`resource` in `db_instance` rules).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct InstanceFacts {
    pub id: String,
    pub arn: String,
    pub region: String,
    /// Not a member of a DB cluster.
    pub standalone: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    pub engine: String,
    pub instance_class: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    // Absent (unknown, the rule `error`) when the API's answer lacked them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publicly_accessible: Option<bool>,
    /// For Aurora members, the cluster's setting (AWS reports it there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iam_auth: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_encrypted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_retention_days: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_protection: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multi_az: Option<bool>,
    pub port: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_replica_source: Option<String>,
    pub read_replicas: Vec<String>,
    pub tags: Tags,
    pub services: Vec<String>,
    /// The CA that signed the server certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
    /// When the server certificate (or, without its details, the CA)
    /// expires; absent when neither is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_valid_till: Option<String>,
    /// Days from the snapshot's `collected_at` to that expiry (negative
    /// once expired).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_days_left: Option<i64>,
    /// RDS rotates the server certificate itself under this CA (the G1
    /// CAs); absent when the CA is not one dbaudit knows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_rotates_automatically: Option<bool>,
    #[serde(flatten)]
    pub network: NetworkFacts,
    pub unknown: Vec<String>,
}

/// Another configured account sharing this account's AWS account id.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AccountRef {
    pub name: String,
    pub environment: String,
}

/// Facts of an account (`resource` in `account` rules, and `account` in all rules).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AccountFacts {
    pub name: String,
    pub environment: String,
    pub account_id: String,
    pub partition: String,
    /// Accounts of *other* environments that are the same AWS account.
    pub shared_with: Vec<AccountRef>,
    /// Number of DB clusters per service name, over the whole account.
    pub clusters_per_service: BTreeMap<String, i64>,
    pub regions: Vec<String>,
    /// DB clusters and instances found in the audited regions; absent when
    /// there are none and the configuration expects some (a wrong region
    /// list, the wrong account), so that a rule reading it errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub databases: Option<i64>,
    /// `databases_expected` from the configuration (account, then
    /// environment; default true).
    pub databases_expected: bool,
    /// Manual DB cluster snapshots in the audited regions; absent when a
    /// region's snapshots could not be listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manual_snapshots: Option<Vec<SnapshotFacts>>,
    /// Why facts are absent.
    pub unknown: Vec<String>,
}

/// A manual DB cluster snapshot as the account's rules see it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SnapshotFacts {
    pub id: String,
    pub arn: String,
    pub region: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// Absent when the answer lacked `StorageEncrypted`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
    /// Anyone may restore it (`restore` attribute `all`). Absent when the
    /// attributes could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
    /// Account ids it is shared with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_with: Option<Vec<String>>,
    /// Of those, the accounts that are not in this account's environment
    /// (`id (account name, environment)` or `id (unknown account)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_outside: Option<Vec<String>>,
    /// `region/id with <accounts outside>`, for messages.
    pub sharing: String,
}

crate::celval::to_val_struct!(SnapshotFacts {
    id,
    arn,
    region,
    cluster_id,
    encrypted,
    public,
    shared_with,
    shared_outside,
    sharing,
});

/// The account's manual snapshots, with who outside its environment may
/// restore them. `accounts`: account id → (name, environment) of every
/// account dbaudit knows.
fn snapshot_facts(
    account: &Account,
    accounts: &BTreeMap<String, (String, String)>,
    unknown: &mut Vec<String>,
) -> Option<Vec<SnapshotFacts>> {
    let mut out = Vec::new();
    let mut complete = true;
    for r in &account.regions {
        let Some(snaps) = &r.db_cluster_snapshots else {
            let why = account
                .gaps
                .iter()
                .find(|g| {
                    g.operation == crate::vocab::op::DESCRIBE_DB_CLUSTER_SNAPSHOTS.name
                        && g.region.as_deref().is_none_or(|x| x == r.name)
                })
                .map(|g| g.to_string())
                .unwrap_or_else(|| {
                    "not in the snapshot (written before dbaudit collected them)".into()
                });
            unknown.push(format!("manual snapshots in {}: {why}", r.name));
            complete = false;
            continue;
        };
        for s in snaps {
            let shared_with: Option<Vec<String>> = s
                .restore
                .as_ref()
                .map(|ids| ids.iter().filter(|v| *v != "all").cloned().collect());
            if s.restore.is_none() {
                unknown.push(format!(
                    "who may restore snapshot {}: DescribeDBClusterSnapshotAttributes failed",
                    s.id
                ));
            }
            let shared_outside = shared_with.as_ref().map(|ids| {
                ids.iter()
                    .filter_map(|id| match accounts.get(id) {
                        Some((_, env)) if *env == account.environment => None,
                        Some((name, env)) => Some(format!("{id} ({name}, {env})")),
                        None => Some(format!("{id} (unknown account)")),
                    })
                    .collect()
            });
            let sharing = format!(
                "{}/{} with {}",
                r.name,
                s.id,
                shared_outside
                    .as_ref()
                    .map_or("(unknown)".to_string(), |v: &Vec<String>| v.join(", "))
            );
            out.push(SnapshotFacts {
                sharing,
                id: s.id.clone(),
                arn: s.arn.clone(),
                region: r.name.clone(),
                cluster_id: s.cluster_id.clone(),
                encrypted: s.storage_encrypted,
                public: s.restore.as_ref().map(|v| v.iter().any(|x| x == "all")),
                shared_with,
                shared_outside,
            });
        }
    }
    complete.then_some(out)
}

/// Facts that can hand out one top-level field at a time as an engine value,
/// so that evaluation converts only the fields the loaded rules read.
pub trait CelFacts: Serialize {
    /// Every top-level field name.
    const FIELDS: &'static [&'static str];
    /// Field names of a flattened inner struct (network facts).
    const FLATTENED: &'static [&'static str];
    /// One top-level fact; `None` when it is absent (not derivable) or unknown.
    fn field(&self, name: &str) -> Option<BoxVal>;
}

macro_rules! flattened {
    () => {
        &[]
    };
    ($flty:ty) => {
        <$flty as CelFacts>::FIELDS
    };
}

/// Implements [`CelFacts`] by naming every serialised field once; a test
/// checks the list against the serde output.
macro_rules! cel_facts {
    ($ty:ty { $($f:ident),* $(,)? } $(flatten $fl:ident: $flty:ty)?) => {
        impl CelFacts for $ty {
            const FIELDS: &'static [&'static str] = &[$(stringify!($f),)*];
            const FLATTENED: &'static [&'static str] = flattened!($($flty)?);
            fn field(&self, name: &str) -> Option<BoxVal> {
                match name {
                    $(stringify!($f) => ToVal::to_val(&self.$f),)*
                    _ => {
                        $(return self.$fl.field(name);)?
                        #[allow(unreachable_code)]
                        None
                    }
                }
            }
        }
    };
}

cel_facts!(NetworkFacts {
    vpc_id,
    subnets,
    public_subnets,
    all_subnets_private,
    eks_clusters,
    eks_vpc_ids,
    in_eks_vpc,
    security_group_ids,
    ingress,
    broad_sg_rules,
});
cel_facts!(ClusterFacts {
    id, arn, region, engine, engine_version, engine_mode, serverless_v2, serverless_v2_min_acu,
    serverless_v2_max_acu, port, iam_auth, storage_encrypted, kms_key_id, backup_retention_days,
    deletion_protection, multi_az, global_cluster_id, cross_region_replicas, tags, services, writer,
    readers, reader_count, reader_azs, member_azs, readers_outside_writer_az,
    publicly_accessible_members, master_username, master_password_managed, log_exports,
    auto_minor_version_upgrade, parameters, master_secret_rotation_enabled,
    master_secret_rotation_days, engine_lifecycle_support, standard_support_ends,
    standard_support_days_left, extended_support_ends, performance_insights_foreign_keys, unknown,
} flatten network: NetworkFacts);
cel_facts!(InstanceFacts {
    id, arn, region, standalone, cluster_id, engine, instance_class, availability_zone,
    publicly_accessible, iam_auth, storage_encrypted, backup_retention_days, deletion_protection,
    multi_az, port, read_replica_source, read_replicas, tags, services, ca_certificate,
    certificate_valid_till, certificate_days_left, ca_rotates_automatically, unknown,
} flatten network: NetworkFacts);
cel_facts!(proxy::ProxyFacts {
    name, arn, region, engine_family, require_tls, iam_auth_required, auth_summary, targets, port,
    unknown,
} flatten network: NetworkFacts);
cel_facts!(parity::PairFacts {
    service,
    left_environment,
    right_environment,
    left,
    right,
    left_summary,
    right_summary,
    parameter_differences,
    unknown,
});
cel_facts!(AccountFacts {
    name,
    environment,
    account_id,
    partition,
    shared_with,
    clusters_per_service,
    regions,
    databases,
    databases_expected,
    manual_snapshots,
    unknown,
});
cel_facts!(crate::iam::PrincipalFacts {
    name,
    arn,
    kind,
    is_developer,
    rds_write,
    sg_write,
    write_access,
    write_summary,
    can_read_rds,
    can_write_rds,
    connect_resources,
    connect_unscoped,
    is_irsa,
    irsa_subjects,
    irsa_pinned,
    pod_identity_subjects,
    service_accounts,
    scps_evaluated,
    unknown,
});
celval::to_val_struct!(MemberFacts {
    id,
    availability_zone
});
celval::to_val_struct!(AccountRef { name, environment });
celval::to_val_struct!(SubnetFacts {
    id,
    availability_zone,
    public,
    route_table_id,
    evidence
});
celval::to_val_struct!(IngressSource {
    kind,
    source,
    security_group_id,
    protocol,
    from_port,
    to_port,
    all_ports,
    all_protocols,
    open_to_world,
    eks_cluster,
    rule,
});

/// Every top-level field of a kind, flattened network facts included.
pub fn all_fields<T: CelFacts>() -> Vec<String> {
    T::FIELDS
        .iter()
        .chain(T::FLATTENED)
        .map(|s| s.to_string())
        .collect()
}

/// The shape of each kind's facts, for checking rule field names at load time.
pub fn facts_schema(kind: ResourceKind) -> FieldSchema {
    static SCHEMAS: OnceLock<BTreeMap<ResourceKind, FieldSchema>> = OnceLock::new();
    SCHEMAS
        .get_or_init(|| {
            ResourceKind::ALL
                .into_iter()
                .map(|k| (k, FieldSchema::from_json_schema(&facts_json_schema(k))))
                .collect()
        })
        .get(&kind)
        .cloned()
        .unwrap_or(FieldSchema::Any)
}

/// JSON Schema of a kind's facts (shown by `dbaudit rules fields`).
pub fn facts_json_schema(kind: ResourceKind) -> serde_json::Value {
    let schema = match kind {
        ResourceKind::DbCluster => schemars::schema_for!(ClusterFacts),
        ResourceKind::DbInstance => schemars::schema_for!(InstanceFacts),
        ResourceKind::Account => schemars::schema_for!(AccountFacts),
        ResourceKind::IamPrincipal => schemars::schema_for!(crate::iam::PrincipalFacts),
        ResourceKind::ServicePair => schemars::schema_for!(parity::PairFacts),
        ResourceKind::DbProxy => schemars::schema_for!(proxy::ProxyFacts),
    };
    serde_json::to_value(schema).expect("schema serialises")
}

/// Splits a service tag value into service names.
pub fn services(tags: &Tags, key: &str) -> Vec<String> {
    let mut out: Vec<String> = tags
        .get(key)
        .map(|v| {
            v.split([',', ' ', '+', ';'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.dedup();
    out
}

pub fn account_facts(snapshot: &Snapshot, account: &Account, config: &Config) -> AccountFacts {
    // Other accounts: those in this snapshot and those declared in the config.
    let mut others: BTreeMap<String, (String, String)> = BTreeMap::new();
    for a in &snapshot.accounts {
        others.insert(
            a.name.clone(),
            (a.environment.clone(), a.account_id.clone()),
        );
    }
    for a in &config.accounts {
        others
            .entry(a.name.clone())
            .or_insert((a.environment.clone(), a.account_id.clone()));
    }
    let shared_with = others
        .into_iter()
        .filter(|(name, (env, id))| {
            name != &account.name
                && !id.is_empty()
                && id == &account.account_id
                && env != &account.environment
        })
        .map(|(name, (environment, _))| AccountRef { name, environment })
        .collect();
    let mut clusters_per_service = BTreeMap::new();
    for r in &account.regions {
        for c in &r.db_clusters {
            for s in services(&c.tags, &config.service_tag) {
                *clusters_per_service.entry(s).or_insert(0) += 1;
            }
        }
    }
    let regions: Vec<String> = account.regions.iter().map(|r| r.name.clone()).collect();
    let count: usize = account
        .regions
        .iter()
        .map(|r| r.db_clusters.len() + r.db_instances.len())
        .sum();
    let databases_expected = config.databases_expected(&account.name, &account.environment);
    let mut unknown = Vec::new();
    let mut by_id: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (name, environment, id) in snapshot
        .accounts
        .iter()
        .map(|a| (&a.name, &a.environment, &a.account_id))
        .chain(
            config
                .accounts
                .iter()
                .map(|a| (&a.name, &a.environment, &a.account_id)),
        )
    {
        if !id.is_empty() {
            by_id
                .entry(id.clone())
                .or_insert((name.clone(), environment.clone()));
        }
    }
    let manual_snapshots = snapshot_facts(account, &by_id, &mut unknown);
    let databases = if count == 0 && databases_expected {
        let failed: Vec<String> = account
            .gaps
            .iter()
            .filter(|g| g.service == Service::Rds)
            .map(|g| format!("{} failed: {}", g.operation, g.code))
            .collect();
        if !failed.is_empty() {
            unknown.push(format!(
                "RDS collection was incomplete ({})",
                failed.join("; ")
            ));
        }
        unknown.push(format!(
            "no DB cluster or instance was found in account {} ({}) in the audited region(s) {}; \
             check `regions` in dbaudit.toml, or set `databases_expected = false` under \
             [environments.{}] or on the account if none is expected there",
            account.name,
            account.account_id,
            if regions.is_empty() {
                "(none)".to_string()
            } else {
                regions.join(", ")
            },
            account.environment
        ));
        None
    } else {
        Some(count as i64)
    };
    AccountFacts {
        name: account.name.clone(),
        environment: account.environment.clone(),
        account_id: account.account_id.clone(),
        partition: account.partition.clone(),
        shared_with,
        clusters_per_service,
        regions,
        databases,
        databases_expected,
        manual_snapshots,
        unknown,
    }
}

/// Whether the facts account for this gap themselves: the facts that depend
/// on the operation become absent, so only the rules reading those facts
/// give `error` (`vocab::OnFailure::FactLevel`). A gap of any other
/// operation fails every rule that needs its service (fail closed: the facts
/// cannot tell "none" from "not collected").
pub fn is_fact_level(gap: &crate::snapshot::Gap) -> bool {
    crate::vocab::is_fact_level(gap.service, &gap.operation)
}

/// A value the API's answer may lack: kept when present; when absent, the
/// fact is left out (its rules `error`) and `unknown` says which field.
/// The RDS API reference gives no meaning to these fields' absence, so it
/// is never read as a default.
pub(crate) fn known<T>(v: Option<T>, field: &str, unknown: &mut Vec<String>) -> Option<T> {
    if v.is_none() {
        unknown.push(format!("{field}: not in the API's answer"));
    }
    v
}

pub fn cluster_facts(idx: &RegionIndex<'_>, c: &DbCluster, service_tag: &str) -> ClusterFacts {
    let mut unknown = Vec::new();
    let port = c
        .port
        .map(i64::from)
        .unwrap_or_else(|| network::default_port(&c.engine));
    let network = idx.network(
        c.db_subnet_group.as_deref(),
        &c.vpc_security_group_ids,
        port,
        &mut unknown,
    );
    // Members: the AZ comes from the member instance.
    let mut writer = None;
    let mut readers = Vec::new();
    let mut azs_known = true;
    let mut public_members = Some(Vec::new());
    for m in &c.members {
        let inst = idx.instances.get(m.instance_id.as_str());
        match (inst, &mut public_members) {
            (None, _) => public_members = None,
            (Some(i), Some(public)) => match i.publicly_accessible {
                Some(true) => public.push(i.id.clone()),
                Some(false) => {}
                None => {
                    unknown.push(format!(
                        "PubliclyAccessible of member `{}`: not in the API's answer",
                        i.id
                    ));
                    public_members = None;
                }
            },
            _ => {}
        }
        let az = inst.and_then(|i| i.availability_zone.clone());
        let Some(az) = az else {
            azs_known = false;
            unknown.push(format!(
                "availability zone of member `{}` is not in the snapshot",
                m.instance_id
            ));
            continue;
        };
        let f = MemberFacts {
            id: m.instance_id.clone(),
            availability_zone: az,
        };
        match m.is_writer {
            Some(true) => writer = Some(f),
            Some(false) => readers.push(f),
            None => {
                azs_known = false;
                unknown.push(format!(
                    "IsClusterWriter of member `{}`: not in the API's answer",
                    m.instance_id
                ));
            }
        }
    }
    // Which members read is known only when every writer flag is.
    let reader_count = c
        .members
        .iter()
        .map(|m| m.is_writer.map(|w| i64::from(!w)))
        .sum::<Option<i64>>();
    let (reader_azs, member_azs, outside) = if azs_known {
        let ra: BTreeSet<String> = readers
            .iter()
            .map(|r| r.availability_zone.clone())
            .collect();
        let mut ma = ra.clone();
        if let Some(w) = &writer {
            ma.insert(w.availability_zone.clone());
        }
        let outside = readers
            .iter()
            .filter(|r| {
                writer
                    .as_ref()
                    .is_none_or(|w| w.availability_zone != r.availability_zone)
            })
            .count() as i64;
        (
            Some(ra.into_iter().collect()),
            Some(ma.into_iter().collect()),
            Some(outside),
        )
    } else {
        (None, None, None)
    };
    let region = &idx.region.name;
    let mut cross_region_replicas: Vec<String> = c
        .read_replica_identifiers
        .iter()
        .filter(|arn| arn_region(arn).is_some_and(|r| r != region))
        .cloned()
        .collect();
    if let Some(g) = &c.global_cluster_id
        && let Some(gc) = idx.region.global_clusters.iter().find(|x| &x.id == g)
    {
        cross_region_replicas.extend(
            gc.members
                .iter()
                .filter(|m| m.cluster_arn != c.arn && arn_region(&m.cluster_arn) != Some(region))
                .map(|m| m.cluster_arn.clone()),
        );
    }
    cross_region_replicas.sort();
    cross_region_replicas.dedup();
    // Without the global clusters, "no replica" is unknown; a cross-region
    // read replica seen on the cluster itself is still known.
    let cross_region_replicas = match &idx.global_clusters_unknown {
        Some(why) if cross_region_replicas.is_empty() => {
            unknown.push(format!("cross-region replicas: {why}"));
            None
        }
        _ => Some(cross_region_replicas),
    };
    let master_password_managed = match &c.master_username {
        Some(_) => Some(c.master_user_secret.is_some()),
        None => {
            unknown.push(
                "master user: not in the snapshot (written before dbaudit collected it)".into(),
            );
            None
        }
    };
    if c.enabled_cloudwatch_logs_exports.is_none() {
        unknown.push(
            "log exports: not in the snapshot (written before dbaudit collected them)".into(),
        );
    }
    let member_upgrades: Option<Vec<bool>> = c
        .members
        .iter()
        .map(|m| {
            idx.instances
                .get(m.instance_id.as_str())?
                .auto_minor_version_upgrade
        })
        .collect();
    // Aurora has the setting on the cluster (newer API versions) and on each
    // instance; a member with it off keeps its minor version, so both count.
    let auto_minor_version_upgrade = match (c.auto_minor_version_upgrade, member_upgrades) {
        (cluster, Some(members)) if !members.is_empty() => {
            Some(cluster.unwrap_or(true) && members.iter().all(|v| *v))
        }
        (Some(v), _) => Some(v),
        _ => {
            unknown.push(
                "auto minor version upgrade: not known for the cluster or every member".into(),
            );
            None
        }
    };
    let parameters = cluster_parameters(idx.region, c, &mut unknown);
    let rotation = c.master_user_secret.as_ref().and_then(|s| {
        match &s.rotation {
            None => unknown.push(format!(
                "rotation of master secret {}: {}",
                s.secret_arn,
                idx.fact_gap(crate::vocab::op::DESCRIBE_SECRET)
                    .unwrap_or("DescribeSecret failed or was not made")
            )),
            Some(r) if r.enabled.is_none() => unknown.push(format!(
                "rotation of master secret {}: DescribeSecret did not say whether it rotates",
                s.secret_arn
            )),
            _ => {}
        }
        s.rotation.as_ref()
    });
    let support = support_dates(idx, c, &mut unknown);
    let performance_insights_foreign_keys = foreign_pi_keys(idx, c, &mut unknown);
    ClusterFacts {
        id: c.id.clone(),
        arn: c.arn.clone(),
        region: region.clone(),
        engine: c.engine.clone(),
        engine_version: c.engine_version.clone(),
        engine_mode: c
            .engine_mode
            .clone()
            .unwrap_or_else(|| "provisioned".to_string()),
        serverless_v2: c.serverless_v2.is_some(),
        serverless_v2_min_acu: c.serverless_v2.as_ref().map(|s| s.min_capacity),
        serverless_v2_max_acu: c.serverless_v2.as_ref().map(|s| s.max_capacity),
        port,
        iam_auth: known(
            c.iam_database_authentication_enabled,
            "IAMDatabaseAuthenticationEnabled",
            &mut unknown,
        ),
        storage_encrypted: known(c.storage_encrypted, "StorageEncrypted", &mut unknown),
        kms_key_id: c.kms_key_id.clone(),
        backup_retention_days: known(
            c.backup_retention_period,
            "BackupRetentionPeriod",
            &mut unknown,
        )
        .map(i64::from),
        deletion_protection: known(c.deletion_protection, "DeletionProtection", &mut unknown),
        multi_az: known(c.multi_az, "MultiAZ", &mut unknown),
        global_cluster_id: c.global_cluster_id.clone(),
        cross_region_replicas,
        tags: c.tags.clone(),
        services: services(&c.tags, service_tag),
        writer,
        readers: azs_known.then_some(readers),
        reader_count,
        reader_azs,
        member_azs,
        readers_outside_writer_az: outside,
        publicly_accessible_members: public_members,
        master_username: c.master_username.clone(),
        master_password_managed,
        log_exports: c.enabled_cloudwatch_logs_exports.clone(),
        auto_minor_version_upgrade,
        parameters,
        master_secret_rotation_enabled: rotation.and_then(|r| r.enabled),
        master_secret_rotation_days: rotation.and_then(|r| r.interval_days),
        engine_lifecycle_support: c.engine_lifecycle_support.clone(),
        standard_support_ends: support.map(|(l, _)| l.standard_support_ends.clone()),
        standard_support_days_left: support.and_then(|(_, days)| days),
        extended_support_ends: support.and_then(|(l, _)| l.extended_support_ends.clone()),
        performance_insights_foreign_keys,
        network,
        unknown,
    }
}

/// The cluster's major version in the engine lifecycle catalogue, and the
/// days left of its standard support.
fn support_dates(
    idx: &RegionIndex<'_>,
    c: &DbCluster,
    unknown: &mut Vec<String>,
) -> Option<(&'static lifecycle::MajorLifecycle, Option<i64>)> {
    let Some(l) = lifecycle::major_lifecycle(&c.engine, &c.engine_version) else {
        unknown.push(format!(
            "engine lifecycle: {} major version {} is not in data/engine-lifecycle.json              (regenerate it: scripts/gen-engine-lifecycle.py)",
            c.engine,
            parity::engine_major(&c.engine_version)
        ));
        return None;
    };
    let days = match (idx.now, lifecycle::epoch(&l.standard_support_ends)) {
        // The catalogue names the last day of support: it ends at its close.
        (Some(now), Some(end)) => Some(lifecycle::days_until(now, end + 86_400)),
        _ => {
            unknown.push("engine lifecycle: the snapshot's collected_at is not a date".into());
            None
        }
    };
    Some((l, days))
}

/// Members whose Performance Insights key is not the cluster's key.
fn foreign_pi_keys(
    idx: &RegionIndex<'_>,
    c: &DbCluster,
    unknown: &mut Vec<String>,
) -> Option<Vec<String>> {
    // KMS keys may be named by ARN or key id: compare the key id.
    fn key_id(k: &str) -> &str {
        k.rsplit_once("key/").map_or(k, |(_, id)| id)
    }
    let mut out = Vec::new();
    for m in &c.members {
        let Some(i) = idx.instances.get(m.instance_id.as_str()) else {
            unknown.push(format!(
                "Performance Insights of member `{}`: the instance is not in the snapshot",
                m.instance_id
            ));
            return None;
        };
        // AWS reports PerformanceInsightsEnabled; where an answer lacks it
        // (moto never returns it; snapshots of older dbaudit versions) a PI
        // key still means PI is on (AWS reports the key only then), but
        // without either nothing is known: unknown, never "off".
        let enabled = match (
            i.performance_insights_enabled,
            &i.performance_insights_kms_key_id,
        ) {
            (Some(e), _) => e,
            (None, Some(_)) => true,
            (None, None) => {
                unknown.push(format!(
                    "Performance Insights of member `{}`: not reported",
                    m.instance_id
                ));
                return None;
            }
        };
        let Some(pi_key) = i
            .performance_insights_kms_key_id
            .as_deref()
            .filter(|_| enabled)
        else {
            continue;
        };
        let same = c
            .kms_key_id
            .as_deref()
            .is_some_and(|k| key_id(k) == key_id(pi_key));
        if !same {
            out.push(format!("{}: {pi_key}", i.id));
        }
    }
    Some(out)
}

/// The watched parameters of a cluster's parameter group, if collected.
pub fn cluster_parameters(
    region: &crate::snapshot::Region,
    c: &DbCluster,
    unknown: &mut Vec<String>,
) -> Option<Tags> {
    let Some(groups) = &region.db_cluster_parameter_groups else {
        unknown.push(
            "parameter groups: not in the snapshot (written before dbaudit collected them)".into(),
        );
        return None;
    };
    let Some(name) = &c.parameter_group else {
        unknown.push("parameter group: the cluster names none".into());
        return None;
    };
    match groups.iter().find(|g| &g.name == name) {
        Some(g) => Some(g.parameters.clone()),
        None => {
            unknown.push(format!(
                "parameters of group `{name}`: DescribeDBClusterParameters failed or was not made"
            ));
            None
        }
    }
}

pub fn instance_facts(idx: &RegionIndex<'_>, i: &DbInstance, service_tag: &str) -> InstanceFacts {
    let mut unknown = Vec::new();
    let cluster = i
        .cluster_id
        .as_deref()
        .and_then(|c| idx.clusters.get(c).copied());
    if let (Some(id), None) = (&i.cluster_id, cluster) {
        unknown.push(format!("cluster `{id}` is not in the snapshot"));
    }
    // Aurora members carry the cluster's network settings; take them from the
    // cluster when the instance lacks them.
    let subnet_group = i
        .db_subnet_group
        .clone()
        .or_else(|| cluster.and_then(|c| c.db_subnet_group.clone()));
    let sgs = if i.vpc_security_group_ids.is_empty() {
        cluster
            .map(|c| c.vpc_security_group_ids.clone())
            .unwrap_or_default()
    } else {
        i.vpc_security_group_ids.clone()
    };
    let port = i
        .port
        .or(cluster.and_then(|c| c.port))
        .map(i64::from)
        .unwrap_or_else(|| network::default_port(&i.engine));
    let network = idx.network(subnet_group.as_deref(), &sgs, port, &mut unknown);
    let certificate_valid_till = match lifecycle::certificate_expiry(idx.region, i) {
        Ok(t) => Some(t),
        Err(why) => {
            match idx.fact_gap(crate::vocab::op::DESCRIBE_CERTIFICATES) {
                Some(gap) => unknown.push(format!("certificate expiry: {why} ({gap})")),
                None => unknown.push(format!("certificate expiry: {why}")),
            }
            None
        }
    };
    let certificate_days_left = certificate_valid_till.as_deref().and_then(|t| {
        let days = idx
            .now
            .zip(lifecycle::epoch(t))
            .map(|(now, end)| lifecycle::days_until(now, end));
        if days.is_none() {
            unknown.push(format!(
                "certificate expiry: `{t}` or collected_at is not a date"
            ));
        }
        days
    });
    let ca_rotates_automatically = match i.ca_certificate_identifier.as_deref() {
        Some(ca) => {
            let r = lifecycle::ca_rotates(idx.region, ca);
            if r.is_none() {
                unknown.push(format!(
                    "CA `{ca}`: neither a CA AWS publishes nor in the region's CA list, so whether RDS rotates its certificates is unknown"
                ));
            }
            r
        }
        None => None,
    };
    InstanceFacts {
        id: i.id.clone(),
        arn: i.arn.clone(),
        region: idx.region.name.clone(),
        standalone: i.cluster_id.is_none(),
        cluster_id: i.cluster_id.clone(),
        engine: i.engine.clone(),
        instance_class: i.instance_class.clone(),
        availability_zone: i.availability_zone.clone(),
        publicly_accessible: known(i.publicly_accessible, "PubliclyAccessible", &mut unknown),
        iam_auth: known(
            cluster.map_or(i.iam_database_authentication_enabled, |c| {
                c.iam_database_authentication_enabled
            }),
            "IAMDatabaseAuthenticationEnabled",
            &mut unknown,
        ),
        storage_encrypted: known(
            cluster.map_or(i.storage_encrypted, |c| c.storage_encrypted),
            "StorageEncrypted",
            &mut unknown,
        ),
        backup_retention_days: known(
            cluster.map_or(i.backup_retention_period, |c| c.backup_retention_period),
            "BackupRetentionPeriod",
            &mut unknown,
        )
        .map(i64::from),
        deletion_protection: known(
            cluster.map_or(i.deletion_protection, |c| c.deletion_protection),
            "DeletionProtection",
            &mut unknown,
        ),
        multi_az: known(i.multi_az, "MultiAZ", &mut unknown),
        port,
        read_replica_source: i.read_replica_source.clone(),
        read_replicas: i.read_replicas.clone(),
        tags: i.tags.clone(),
        services: services(&i.tags, service_tag),
        ca_certificate: i.ca_certificate_identifier.clone(),
        certificate_valid_till,
        certificate_days_left,
        ca_rotates_automatically,
        network,
        unknown,
    }
}

/// Region of an ARN (`arn:partition:service:REGION:account:…`).
pub fn arn_region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::celval::cel_to_json;

    /// Every serialised field is reachable through `CelFacts::field`, with
    /// the same value: a field missing from a `cel_facts!` list would make
    /// rules reading it error for no reason.
    fn same<T: CelFacts>(facts: &T) {
        let json = serde_json::to_value(facts).unwrap();
        for (k, v) in json.as_object().unwrap() {
            let got = facts
                .field(k)
                .unwrap_or_else(|| panic!("field `{k}` not served"));
            let got = cel::Value::try_from(got.as_ref()).unwrap();
            assert_eq!(&cel_to_json(&got), v, "field `{k}`");
        }
        assert!(facts.field("no_such_field").is_none());
        let mut names: Vec<String> = all_fields::<T>();
        names.sort();
        let mut served: Vec<String> = json.as_object().unwrap().keys().cloned().collect();
        served.sort();
        // Every served name is a known field (absent ones are Options).
        assert!(
            served.iter().all(|s| names.contains(s)),
            "{served:?} vs {names:?}"
        );
    }

    #[test]
    fn member_facts_are_absent_not_empty_when_a_member_is_missing() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/demo/snapshot.json"
        ))
        .unwrap();
        let mut snap = Snapshot::parse(&text, std::path::Path::new("demo.json")).unwrap();
        let region = &mut snap.accounts[0].regions[0];
        let cluster = region.db_clusters[0].clone();
        let complete = cluster_facts(&RegionIndex::new(region), &cluster, "service");
        assert!(complete.publicly_accessible_members.is_some());
        assert!(complete.reader_azs.is_some());
        let gone = cluster.members[0].instance_id.clone();
        region.db_instances.retain(|i| i.id != gone);
        let partial = cluster_facts(&RegionIndex::new(region), &cluster, "service");
        assert_eq!(partial.publicly_accessible_members, None);
        assert_eq!(partial.reader_azs, None);
        assert!(
            partial.unknown.iter().any(|u| u.contains(&gone)),
            "{:?}",
            partial.unknown
        );
    }

    /// A fact-level operation's gap is skipped by the evaluator; the facts
    /// must then record it, or rules would read "none" where data is missing.
    #[test]
    fn every_fact_level_operation_is_recorded_by_the_region_index() {
        let region = crate::snapshot::Region {
            name: "eu-west-1".into(),
            ..Default::default()
        };
        let fact_level = crate::vocab::OPERATIONS
            .iter()
            .filter(|o| o.on_failure == crate::vocab::OnFailure::FactLevel);
        for op in fact_level {
            let operation = op.name;
            let gap = crate::snapshot::Gap {
                service: op.service,
                region: Some("eu-west-1".into()),
                operation: operation.to_string(),
                code: "AccessDenied".into(),
                message: "denied".into(),
            };
            let idx = RegionIndex::new(&region).with_gaps(std::slice::from_ref(&gap));
            assert!(
                idx.fact_gap(*op)
                    .is_some_and(|why| why.starts_with(operation)),
                "{op} is fact-level but not recorded"
            );
        }
    }

    #[test]
    fn per_field_values_match_the_full_serialisation() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/demo/snapshot.json"
        ))
        .unwrap();
        let snap = Snapshot::parse(&text, std::path::Path::new("demo.json")).unwrap();
        let config = Config::default();
        for a in &snap.accounts {
            same(&account_facts(&snap, a, &config));
            for r in &a.regions {
                let idx = RegionIndex::new(r);
                for c in &r.db_clusters {
                    same(&cluster_facts(&idx, c, "service"));
                }
                for i in &r.db_instances {
                    same(&instance_facts(&idx, i, "service"));
                }
            }
        }
    }
}
