//! The versioned snapshot: the only contract between collection and evaluation.
//!
//! Plain serde data of our own (never SDK types). Collections are sorted by
//! [`Snapshot::normalize`] so that the JSON is deterministic: two collections of
//! the same estate give byte-identical files, and `evaluate` of a saved snapshot
//! gives exactly what `scan` gave.

use std::collections::BTreeMap;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Location};

/// The schema identifier written in every snapshot this version produces:
/// major 1, minor 3 (minor 1: per-account collection times, shard parts;
/// minor 2: the collection's plan, each account with its regions; minor 3:
/// what the in-database collection read, `Region::pg_databases`).
pub const SCHEMA: &str = "dbaudit.snapshot/v1.3";

/// The schema's family: `dbaudit.snapshot/v1` (minor 0) and
/// `dbaudit.snapshot/v1.N` are read by this version.
pub const SCHEMA_MAJOR: &str = "dbaudit.snapshot/v1";

/// The minor version this dbaudit writes; a snapshot of a higher minor (a
/// newer dbaudit) is read with the fields this version does not know left
/// out, and a warning.
pub const SCHEMA_MINOR: u32 = 3;

/// The minor version of a `dbaudit.snapshot/v1…` tag, `None` for any other.
pub fn schema_minor(tag: &str) -> Option<u32> {
    let rest = tag.strip_prefix(SCHEMA_MAJOR)?;
    if rest.is_empty() {
        return Some(0);
    }
    rest.strip_prefix('.')?.parse().ok()
}

pub type Tags = BTreeMap<String, String>;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// `dbaudit.snapshot/v1.3` for this version (`v1` to `v1.2` are read too).
    pub schema: String,
    /// RFC 3339 time at which collection started (of a merged snapshot:
    /// the earliest part's; each account has its own).
    pub collected_at: String,
    /// Version of dbaudit that wrote the snapshot.
    pub tool_version: String,
    pub accounts: Vec<Account>,
    /// Set on one part of a sharded collection (`collect --shard K/N`):
    /// which run it belongs to and what it was asked to collect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardPart>,
    /// What the collection set out to read: each account with its regions
    /// (of a merged snapshot, the whole run's plan). `evaluate` checks the
    /// accounts against it: a planned account or region without data is a
    /// gap, never silently absent. `None` in snapshots of minor < 2 and
    /// hand-made ones: the configuration's accounts are then the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Vec<PlannedAccount>>,
    /// Set on a database part (`dbaudit databases`): what was read inside
    /// one account's databases, from where they are reachable, for `merge`
    /// to attach to the collected snapshot. Its one account holds only
    /// `pg_databases`; it is not evaluated on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub databases_part: Option<DatabasesPart>,
}

/// What a database part (`dbaudit databases`) read: the account, and the
/// snapshot its clusters came from.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct DatabasesPart {
    /// The account's name (as in the snapshot and dbaudit.toml).
    pub account: String,
    /// When the snapshot whose clusters were read was collected.
    pub snapshot_collected_at: String,
    /// The sharded run it belongs to (`databases --run-id`): `merge`
    /// attaches it to that run only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

/// What one shard of a sharded collection was assigned and completed, and
/// the whole run's plan, so that a merge can tell a missing part or account
/// from one that had nothing to report.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ShardPart {
    pub run_id: String,
    /// 1-based.
    pub index: usize,
    pub count: usize,
    /// Every account the run selected, with the shard it belongs to.
    pub plan: Vec<PlannedAccount>,
    /// Names of the accounts this part collected (reached or not: an
    /// unreachable account is in the part with its gap).
    pub completed: Vec<String>,
}

/// One account of a sharded run's plan.
#[derive(
    Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Default,
)]
#[serde(deny_unknown_fields)]
pub struct PlannedAccount {
    pub name: String,
    pub environment: String,
    #[serde(default)]
    pub account_id: String,
    /// The shard it is assigned to (1-based); 0 (absent) outside a sharded
    /// run.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub shard: usize,
    /// The regions the collection set out to read (empty in plans written
    /// before dbaudit recorded them: then only the account is checked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// Name of the account in dbaudit.toml (e.g. `prod`).
    pub name: String,
    /// Environment of the account (`test`, `prod`, or any other string).
    pub environment: String,
    /// 12-digit AWS account id. Empty when the account could not be reached at all.
    pub account_id: String,
    /// AWS partition (`aws`, `aws-cn`, `aws-us-gov`).
    pub partition: String,
    pub regions: Vec<Region>,
    /// IAM is global; `None` when it was not collected (see `gaps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam: Option<Iam>,
    /// Everything that could not be collected. Rules needing it report `error`.
    #[serde(default)]
    pub gaps: Vec<Gap>,
    /// Service control policies applying to the account, one level per
    /// node from the organization root down to the account. `None` when not
    /// collected (`collect_scps = false`, or Organizations not readable): the
    /// IAM engine then evaluates without SCPs, as a stated assumption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scps: Option<Vec<ScpLevel>>,
    /// RFC 3339 time at which this account's collection started (`None` in
    /// snapshots of schema minor 0: the snapshot's `collected_at` applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collected_at: Option<String>,
    /// Version of dbaudit that collected this account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_version: Option<String>,
}

/// The SCPs attached to one node of the organization (root, OU or account).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ScpLevel {
    /// `r-…`, `ou-…` or the account id.
    pub target: String,
    pub policies: Vec<ManagedPolicy>,
}

/// A piece of the estate that could not be collected.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
pub struct Gap {
    /// `sts` (the whole account), `rds`, `ec2`, `eks`, `iam`, `organizations`.
    pub service: crate::vocab::Service,
    /// Region, or `None` for global services and account-wide failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// API operation that failed (e.g. `DescribeDBClusters`).
    pub operation: String,
    /// AWS error code, or a dbaudit code such as `Timeout` or `AccountMismatch`.
    pub code: String,
    pub message: String,
}

impl Gap {
    /// Whether these gaps say the account itself could not be reached (its
    /// session, STS, failed): nothing of it was collected.
    pub fn unreached(gaps: &[Gap]) -> bool {
        gaps.iter().any(|g| g.service == crate::vocab::Service::Sts)
    }
}

/// `ec2 DescribeSecurityGroups (eu-west-1): Throttling Rate exceeded`: how
/// every report names a gap.
/// One line: `service Operation: Code: message (region)`.
impl std::fmt::Display for Gap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}: {}",
            self.service, self.operation, self.code, self.message
        )?;
        if let Some(r) = &self.region {
            write!(f, " ({r})")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Region {
    pub name: String,
    #[serde(default)]
    pub vpcs: Vec<Vpc>,
    #[serde(default)]
    pub subnets: Vec<Subnet>,
    #[serde(default)]
    pub route_tables: Vec<RouteTable>,
    #[serde(default)]
    pub internet_gateways: Vec<InternetGateway>,
    #[serde(default)]
    pub nat_gateways: Vec<NatGateway>,
    #[serde(default)]
    pub egress_only_internet_gateways: Vec<EgressOnlyInternetGateway>,
    #[serde(default)]
    pub security_groups: Vec<SecurityGroup>,
    #[serde(default)]
    pub db_subnet_groups: Vec<DbSubnetGroup>,
    #[serde(default)]
    pub db_clusters: Vec<DbCluster>,
    #[serde(default)]
    pub db_instances: Vec<DbInstance>,
    #[serde(default)]
    pub global_clusters: Vec<GlobalCluster>,
    #[serde(default)]
    pub eks_clusters: Vec<EksCluster>,
    /// Manual DB cluster snapshots. `None`: not collected (the listing
    /// failed, or the snapshot predates it), so the snapshot facts are
    /// unknown rather than "none".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_cluster_snapshots: Option<Vec<DbClusterSnapshot>>,
    /// The DB cluster parameter groups the region's clusters use, with the
    /// parameters dbaudit reads. `None`: not collected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_cluster_parameter_groups: Option<Vec<ClusterParameterGroup>>,
    /// The region's RDS CA certificates (`DescribeCertificates`); `None`
    /// when they could not be listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificates: Option<Vec<CaCertificate>>,
    /// RDS Proxies; `None` when they could not be listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_proxies: Option<Vec<DbProxy>>,
    /// What the in-database collection read from each PostgreSQL database
    /// of the region's clusters (docs/in-database.md). `None`: it did not
    /// run (it is opt-in); a database it could not read is an entry with
    /// `unreadable` set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pg_databases: Option<Vec<PgDatabase>>,
}

/// One PostgreSQL database of a DB cluster (or standalone instance) as the
/// in-database collection read it from the catalogs: roles, memberships,
/// direct grants, default privileges and ownership. Effective privileges
/// are derived from these by the facts (`model::pg_database`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct PgDatabase {
    /// The DB cluster (or standalone instance) it belongs to.
    pub cluster_id: String,
    /// The database's name; `*` when the cluster itself could not be read
    /// (its databases are not known).
    pub database: String,
    /// Why it could not be read (network, authentication, TLS, timeout, a
    /// catalog the audit user may not read). Nothing else is set then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
    /// `server_version_num` (e.g. 160004); membership options per grant
    /// (`inherit`, `set`) exist from 160000.
    #[serde(default)]
    pub server_version_num: i64,
    #[serde(default)]
    pub roles: Vec<PgRole>,
    #[serde(default)]
    pub memberships: Vec<PgMembership>,
    /// Direct grants on schemas and on the tables of each schema, per
    /// grantee (`PUBLIC` for everyone), summarised per schema.
    #[serde(default)]
    pub grants: Vec<PgGrant>,
    #[serde(default)]
    pub default_privileges: Vec<PgDefaultPrivilege>,
    #[serde(default)]
    pub schemas: Vec<PgSchema>,
    /// Server settings as the server reports them (`ssl`, `rds.force_ssl`).
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

/// A role (`pg_roles`), with its attributes.
#[derive(
    Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Default,
)]
#[serde(deny_unknown_fields)]
pub struct PgRole {
    pub name: String,
    #[serde(default)]
    pub login: bool,
    #[serde(default)]
    pub superuser: bool,
    #[serde(default)]
    pub createrole: bool,
    #[serde(default)]
    pub createdb: bool,
    #[serde(default)]
    pub bypassrls: bool,
    /// `rolinherit`: before PostgreSQL 16, whether the role inherits the
    /// privileges of the roles it is a member of.
    #[serde(default)]
    pub inherit: bool,
}

/// `member` is a member of `role` (`pg_auth_members`).
#[derive(
    Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Default,
)]
#[serde(deny_unknown_fields)]
pub struct PgMembership {
    pub role: String,
    pub member: String,
    /// The grant's INHERIT option (PostgreSQL 16+); before 16 the member's
    /// `rolinherit` decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inherit: Option<bool>,
    /// The grant's SET option (PostgreSQL 16+); before 16 every member may
    /// `SET ROLE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<bool>,
    #[serde(default)]
    pub admin: bool,
}

/// A privilege granted directly to `grantee` on a schema (`on = schema`)
/// or on `tables` of its tables, views and sequences (`on = tables`).
#[derive(
    Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Default,
)]
#[serde(deny_unknown_fields)]
pub struct PgGrant {
    pub grantee: String,
    pub schema: String,
    /// `schema` or `tables`.
    pub on: String,
    /// `USAGE`, `CREATE`, `SELECT`, `INSERT`, `UPDATE`, `DELETE`,
    /// `TRUNCATE`, `REFERENCES`, `TRIGGER`.
    pub privilege: String,
    /// How many of the schema's tables carry it (`on = tables`).
    #[serde(default)]
    pub tables: i64,
}

/// `ALTER DEFAULT PRIVILEGES` (`pg_default_acl`): what `owner`'s future
/// objects (in `schema`, or anywhere) grant to `grantee`.
#[derive(
    Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Default,
)]
#[serde(deny_unknown_fields)]
pub struct PgDefaultPrivilege {
    pub owner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// `tables`, `sequences`, `functions`, `types`, `schemas`.
    pub object_type: String,
    pub grantee: String,
    pub privilege: String,
}

/// A schema, its owner and the owners of its tables.
#[derive(
    Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Default,
)]
#[serde(deny_unknown_fields)]
pub struct PgSchema {
    pub name: String,
    pub owner: String,
    #[serde(default)]
    pub tables: i64,
    #[serde(default)]
    pub table_owners: Vec<String>,
}

/// A DB cluster parameter group: the values of the parameters dbaudit reads
/// (`collect::rds::WATCHED_PARAMETERS`), engine defaults included. A
/// parameter without a value is left out.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ClusterParameterGroup {
    pub name: String,
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
}

/// A manual DB cluster snapshot and who may restore it.
/// An RDS certificate authority.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct CaCertificate {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_till: Option<String>,
    /// The account overrides the region's default CA for new instances.
    #[serde(default)]
    pub customer_override: bool,
}

/// An RDS Proxy and the clusters it fronts.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct DbProxy {
    pub name: String,
    pub arn: String,
    /// `POSTGRESQL`, `MYSQL`, `SQLSERVER`.
    #[serde(default)]
    pub engine_family: String,
    /// `RequireTLS`; absent when the answer lacked it (unknown, never "off").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_tls: Option<bool>,
    #[serde(default)]
    pub auth: Vec<ProxyAuth>,
    /// `IAM_AUTH` or `NONE` (newer proxies that authenticate end to end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_auth_scheme: Option<String>,
    #[serde(default)]
    pub vpc_id: String,
    #[serde(default)]
    pub subnet_ids: Vec<String>,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    /// Ids of the DB clusters (and instances) it targets; `None` when its
    /// targets could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<String>>,
}

/// One of a proxy's client authentication settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ProxyAuth {
    /// `REQUIRED`, `ENABLED` or `DISABLED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_auth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_password_auth_type: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct DbClusterSnapshot {
    pub id: String,
    pub arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_encrypted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// The `restore` attribute: account ids that may copy or restore it, or
    /// `all` (public). `None` when the attributes could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<Vec<String>>,
}

impl DbClusterSnapshot {
    /// Anyone may restore it (`restore` holds `all`); `None` when the
    /// attributes could not be read.
    pub fn public(&self) -> Option<bool> {
        self.restore.as_ref().map(|v| v.iter().any(|x| x == "all"))
    }

    /// The account ids it is shared with; `None` when the attributes could
    /// not be read.
    pub fn shared_with(&self) -> Option<Vec<String>> {
        self.restore
            .as_ref()
            .map(|v| v.iter().filter(|x| *x != "all").cloned().collect())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Vpc {
    pub id: String,
    #[serde(default)]
    pub cidr_blocks: Vec<String>,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Subnet {
    pub id: String,
    pub vpc_id: String,
    pub availability_zone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr_block: Option<String>,
    #[serde(default)]
    pub ipv6_cidr_blocks: Vec<String>,
    #[serde(default)]
    pub map_public_ip_on_launch: bool,
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct RouteTable {
    pub id: String,
    pub vpc_id: String,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub associations: Vec<RouteTableAssociation>,
}

#[derive(
    Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Default,
)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// IPv4 destination CIDR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_cidr: Option<String>,
    /// IPv6 destination CIDR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_ipv6_cidr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_prefix_list_id: Option<String>,
    pub target: RouteTarget,
    /// Route state (`active`, `blackhole`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

#[derive(
    Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Default,
)]
#[serde(deny_unknown_fields)]
pub struct RouteTarget {
    /// `local`, `igw`, `nat`, `eigw`, `tgw`, `pcx`, `vpce`, `eni`, `instance`, `vgw`, `other`.
    pub kind: String,
    pub id: String,
}

#[derive(
    Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Default,
)]
#[serde(deny_unknown_fields)]
pub struct RouteTableAssociation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    /// The VPC's main route table, used by subnets without an explicit association.
    #[serde(default)]
    pub main: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct InternetGateway {
    pub id: String,
    #[serde(default)]
    pub vpc_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct NatGateway {
    pub id: String,
    pub vpc_id: String,
    pub subnet_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct EgressOnlyInternetGateway {
    pub id: String,
    #[serde(default)]
    pub vpc_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    pub vpc_id: String,
    pub owner_id: String,
    #[serde(default)]
    pub ingress: Vec<SgRule>,
    #[serde(default)]
    pub egress: Vec<SgRule>,
    #[serde(default)]
    pub tags: Tags,
}

/// One permission of a security group, as `DescribeSecurityGroups` reports it.
#[derive(
    Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Default,
)]
#[serde(deny_unknown_fields)]
pub struct SgRule {
    /// `tcp`, `udp`, `icmp`, `icmpv6`, a protocol number, or `-1` for all.
    pub protocol: String,
    /// First port; `None` for all ports (protocol `-1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_port: Option<i32>,
    #[serde(default)]
    pub ipv4_ranges: Vec<String>,
    #[serde(default)]
    pub ipv6_ranges: Vec<String>,
    #[serde(default)]
    pub prefix_list_ids: Vec<String>,
    #[serde(default)]
    pub security_groups: Vec<SgReference>,
}

#[derive(
    Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Default,
)]
#[serde(deny_unknown_fields)]
pub struct SgReference {
    pub group_id: String,
    /// Account that owns the referenced group (cross-account references).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct DbSubnetGroup {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    pub vpc_id: String,
    #[serde(default)]
    pub subnet_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct DbCluster {
    pub id: String,
    pub arn: String,
    #[serde(default)]
    pub resource_id: String,
    pub engine: String,
    #[serde(default)]
    pub engine_version: String,
    /// `provisioned`, `serverless` (v1), `parallelquery`, `global`, `multimaster`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_mode: Option<String>,
    /// Aurora Serverless v2 scaling (ACUs); `None` when the cluster is not serverless v2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serverless_v2: Option<ServerlessV2Scaling>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// The writer endpoint's DNS name (minor 3): where the in-database
    /// collection connects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub members: Vec<DbClusterMember>,
    // The booleans and the retention below are `None` when the API's answer
    // lacked them: the RDS API reference gives no meaning to their absence,
    // so the facts that read them are unknown and their rules `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_database_authentication_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_encrypted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_retention_period: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_protection: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_az: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_cluster_id: Option<String>,
    #[serde(default)]
    pub vpc_security_group_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_subnet_group: Option<String>,
    #[serde(default)]
    pub publicly_accessible: Option<bool>,
    /// Identifiers of read-replica clusters (cross-region replicas).
    #[serde(default)]
    pub read_replica_identifiers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_source_identifier: Option<String>,
    #[serde(default)]
    pub tags: Tags,
    /// The master user's name. AWS always returns it, so `None` means a
    /// snapshot from before dbaudit collected it (the master-user facts are
    /// then unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_username: Option<String>,
    /// The master password's secret when RDS manages it in Secrets Manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_user_secret: Option<MasterUserSecret>,
    /// Log types exported to CloudWatch Logs; `None` in snapshots from
    /// before dbaudit collected them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled_cloudwatch_logs_exports: Option<Vec<String>>,
    /// Cluster-level setting (Multi-AZ DB clusters); Aurora reports it per
    /// instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_minor_version_upgrade: Option<bool>,
    /// The cluster's DB cluster parameter group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_group: Option<String>,
    /// `open-source-rds-extended-support` (enrolled in paid Extended
    /// Support after the end of standard support) or
    /// `open-source-rds-extended-support-disabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_lifecycle_support: Option<String>,
    /// `standard` or `advanced` (Database Insights).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_insights_mode: Option<String>,
}

/// The secret in which RDS manages a master password.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct MasterUserSecret {
    pub secret_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// The secret's rotation (Secrets Manager `DescribeSecret`); `None` when
    /// the secret could not be described.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<SecretRotation>,
}

/// How Secrets Manager rotates a secret.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct SecretRotation {
    /// Automatic rotation is on (`RotationEnabled`). The API omits it for
    /// a secret "never configured for rotation" (its reference says so):
    /// the collector reads that as `false`. `None` only in snapshots
    /// written before dbaudit did (unknown there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `RotationRules.AutomaticallyAfterDays`, or the days a schedule
    /// expression's rate implies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_days: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_expression: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rotated: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ServerlessV2Scaling {
    pub min_capacity: f64,
    pub max_capacity: f64,
}

#[derive(
    Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Default,
)]
#[serde(deny_unknown_fields)]
pub struct DbClusterMember {
    pub instance_id: String,
    /// `IsClusterWriter`; `None` when the answer lacked it (which member
    /// writes is then unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_writer: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct DbInstance {
    pub id: String,
    pub arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    pub instance_class: String,
    pub engine: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    // `None` below: the answer lacked the field (unknown, never a default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publicly_accessible: Option<bool>,
    /// For Aurora members AWS reports the cluster's setting on the cluster only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_database_authentication_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_encrypted: Option<bool>,
    #[serde(default)]
    pub vpc_security_group_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_subnet_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_retention_period: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_protection: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_az: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_replica_source: Option<String>,
    #[serde(default)]
    pub read_replicas: Vec<String>,
    #[serde(default)]
    pub tags: Tags,
    /// `None` in snapshots from before dbaudit collected it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_minor_version_upgrade: Option<bool>,
    /// `None` when the answer did not say (moto never does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performance_insights_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performance_insights_kms_key_id: Option<String>,
    /// The CA that signed the instance's server certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate_identifier: Option<String>,
    /// When the server certificate expires (`CertificateDetails.ValidTill`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_valid_till: Option<String>,
    /// `Endpoint.Address`: where a standalone instance's databases are
    /// read (the in-database collection). Minor 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// `DbiResourceId` (`db-…`), the instance's part of an
    /// `rds-db:connect` ARN. Minor 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// `MasterUsername`. Minor 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_username: Option<String>,
}

/// Where the in-database collection signs in: an Aurora PostgreSQL
/// cluster's writer endpoint, or a standalone RDS for PostgreSQL instance
/// (not a read replica: it mirrors its source's roles and grants).
#[derive(Debug, Clone, PartialEq)]
pub struct PgHost {
    /// The cluster's or instance's identifier (`PgDatabase::cluster_id`).
    pub id: String,
    pub endpoint: Option<String>,
    pub port: Option<i32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct GlobalCluster {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default)]
    pub members: Vec<GlobalClusterMember>,
}

#[derive(
    Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Default,
)]
#[serde(deny_unknown_fields)]
pub struct GlobalClusterMember {
    pub cluster_arn: String,
    pub is_writer: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct EksCluster {
    pub name: String,
    pub arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    /// The security group EKS creates for the control plane and managed nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_security_group_id: Option<String>,
    #[serde(default)]
    pub additional_security_group_ids: Vec<String>,
    /// Security groups of node groups (remote access SGs), where present.
    #[serde(default)]
    pub node_security_group_ids: Vec<String>,
    #[serde(default)]
    pub subnet_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc_issuer: Option<String>,
    /// EKS Pod Identity associations; `None` when they could not be listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_identity_associations: Option<Vec<PodIdentityAssociation>>,
}

/// Which IAM role pods of one service account get through EKS Pod Identity.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct PodIdentityAssociation {
    pub namespace: String,
    pub service_account: String,
    /// `None` when the association could not be described.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Iam {
    #[serde(default)]
    pub users: Vec<IamUser>,
    #[serde(default)]
    pub groups: Vec<IamGroup>,
    #[serde(default)]
    pub roles: Vec<IamRole>,
    /// Managed policies attached to something (customer and AWS managed).
    #[serde(default)]
    pub policies: Vec<ManagedPolicy>,
    #[serde(default)]
    pub oidc_providers: Vec<String>,
}

/// A policy document as JSON, decoded from AWS's URL-encoded form.
pub type PolicyDocument = serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct InlinePolicy {
    pub name: String,
    pub document: PolicyDocument,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct IamUser {
    pub name: String,
    pub arn: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub inline_policies: Vec<InlinePolicy>,
    /// ARNs of attached managed policies.
    #[serde(default)]
    pub attached_policies: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions_boundary: Option<String>,
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct IamGroup {
    pub name: String,
    pub arn: String,
    #[serde(default)]
    pub inline_policies: Vec<InlinePolicy>,
    #[serde(default)]
    pub attached_policies: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct IamRole {
    pub name: String,
    pub arn: String,
    #[serde(default)]
    pub path: String,
    pub trust_policy: PolicyDocument,
    #[serde(default)]
    pub inline_policies: Vec<InlinePolicy>,
    #[serde(default)]
    pub attached_policies: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions_boundary: Option<String>,
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ManagedPolicy {
    pub arn: String,
    pub name: String,
    #[serde(default)]
    pub default_version_id: String,
    /// The default version's document.
    pub document: PolicyDocument,
}

impl Account {
    /// Sorts every collection of the account (see [`Snapshot::normalize`]).
    pub fn normalize(&mut self) {
        self.regions.sort_by(|a, b| a.name.cmp(&b.name));
        self.gaps.sort();
        self.gaps.dedup();
        for region in &mut self.regions {
            region.normalize();
        }
        if let Some(iam) = &mut self.iam {
            iam.normalize();
        }
    }

    /// Takes out what only the account's own rules read, leaving its
    /// *parity view*: identity, gaps, times, and per region its DB
    /// clusters, their parameter groups and what the in-database collection
    /// read (what the parity rules compare across accounts, and the
    /// directory of accounts). An organization's evaluation keeps every
    /// account's view and reads the bodies back one account at a time
    /// ([`Account::put_body`]). Every field is named here, so that a field
    /// added to the snapshot must be placed on one side.
    pub fn take_body(&mut self) -> AccountBody {
        let Account {
            name: _,
            environment: _,
            account_id: _,
            partition: _,
            regions,
            iam,
            gaps: _,
            scps,
            collected_at: _,
            tool_version: _,
        } = self;
        let regions = regions
            .iter_mut()
            .map(|r| {
                let Region {
                    name,
                    vpcs,
                    subnets,
                    route_tables,
                    internet_gateways,
                    nat_gateways,
                    egress_only_internet_gateways,
                    security_groups,
                    db_subnet_groups,
                    db_clusters: _,
                    db_instances,
                    global_clusters,
                    eks_clusters,
                    db_cluster_snapshots,
                    db_cluster_parameter_groups: _,
                    certificates,
                    db_proxies,
                    pg_databases: _,
                } = r;
                RegionBody {
                    name: name.clone(),
                    vpcs: std::mem::take(vpcs),
                    subnets: std::mem::take(subnets),
                    route_tables: std::mem::take(route_tables),
                    internet_gateways: std::mem::take(internet_gateways),
                    nat_gateways: std::mem::take(nat_gateways),
                    egress_only_internet_gateways: std::mem::take(egress_only_internet_gateways),
                    security_groups: std::mem::take(security_groups),
                    db_subnet_groups: std::mem::take(db_subnet_groups),
                    db_instances: std::mem::take(db_instances),
                    global_clusters: std::mem::take(global_clusters),
                    eks_clusters: std::mem::take(eks_clusters),
                    db_cluster_snapshots: db_cluster_snapshots.take(),
                    certificates: certificates.take(),
                    db_proxies: db_proxies.take(),
                }
            })
            .collect();
        AccountBody {
            iam: iam.take(),
            scps: scps.take(),
            regions,
        }
    }

    /// Moves `from`'s DB clusters into this account's regions of the same
    /// names (a region this account lacks is added): what a thinned view
    /// (`shard::thin`) gets back from the account's part.
    pub fn put_clusters(&mut self, from: &mut Account) {
        for r in &mut from.regions {
            if r.db_clusters.is_empty() {
                continue;
            }
            let clusters = std::mem::take(&mut r.db_clusters);
            match self.regions.iter_mut().find(|own| own.name == r.name) {
                Some(own) => own.db_clusters = clusters,
                None => self.regions.push(Region {
                    name: r.name.clone(),
                    db_clusters: clusters,
                    ..Region::default()
                }),
            }
        }
    }

    /// Puts back a body [`Account::take_body`] took (of this account, or of
    /// another copy of it), region by region by name.
    pub fn put_body(&mut self, body: AccountBody) {
        self.iam = body.iam;
        self.scps = body.scps;
        for b in body.regions {
            let at = match self.regions.iter().position(|r| r.name == b.name) {
                Some(at) => at,
                None => {
                    self.regions.push(Region {
                        name: b.name.clone(),
                        ..Region::default()
                    });
                    self.regions.len() - 1
                }
            };
            let r = &mut self.regions[at];
            r.vpcs = b.vpcs;
            r.subnets = b.subnets;
            r.route_tables = b.route_tables;
            r.internet_gateways = b.internet_gateways;
            r.nat_gateways = b.nat_gateways;
            r.egress_only_internet_gateways = b.egress_only_internet_gateways;
            r.security_groups = b.security_groups;
            r.db_subnet_groups = b.db_subnet_groups;
            r.db_instances = b.db_instances;
            r.global_clusters = b.global_clusters;
            r.eks_clusters = b.eks_clusters;
            r.db_cluster_snapshots = b.db_cluster_snapshots;
            r.certificates = b.certificates;
            r.db_proxies = b.db_proxies;
        }
        self.regions.sort_by(|a, b| a.name.cmp(&b.name));
    }
}

/// What [`Account::take_body`] takes out of an account.
#[derive(Debug, Default)]
pub struct AccountBody {
    iam: Option<Iam>,
    scps: Option<Vec<ScpLevel>>,
    regions: Vec<RegionBody>,
}

#[derive(Debug, Default)]
struct RegionBody {
    name: String,
    vpcs: Vec<Vpc>,
    subnets: Vec<Subnet>,
    route_tables: Vec<RouteTable>,
    internet_gateways: Vec<InternetGateway>,
    nat_gateways: Vec<NatGateway>,
    egress_only_internet_gateways: Vec<EgressOnlyInternetGateway>,
    security_groups: Vec<SecurityGroup>,
    db_subnet_groups: Vec<DbSubnetGroup>,
    db_instances: Vec<DbInstance>,
    global_clusters: Vec<GlobalCluster>,
    eks_clusters: Vec<EksCluster>,
    db_cluster_snapshots: Option<Vec<DbClusterSnapshot>>,
    certificates: Option<Vec<CaCertificate>>,
    db_proxies: Option<Vec<DbProxy>>,
}

impl Snapshot {
    pub fn new(collected_at: String) -> Self {
        Snapshot {
            schema: SCHEMA.to_string(),
            collected_at,
            tool_version: crate::VERSION.to_string(),
            accounts: Vec::new(),
            shard: None,
            plan: None,
            databases_part: None,
        }
    }

    /// The accounts' names, comma-separated: for messages that say which
    /// accounts a snapshot has.
    pub fn account_names(&self) -> String {
        self.accounts
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Sorts every collection so that serialisation is deterministic.
    pub fn normalize(&mut self) {
        self.accounts.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(plan) = &mut self.plan {
            for p in plan.iter_mut() {
                p.regions.sort();
                p.regions.dedup();
            }
            plan.sort();
        }
        for account in &mut self.accounts {
            account.normalize();
        }
    }

    /// Reads and validates a snapshot file.
    pub fn load(path: &Path) -> Result<Snapshot, Error> {
        let text = crate::error::read_to_string_limited(path, crate::error::MAX_LARGE_INPUT)?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Snapshot, Error> {
        let problem = |e: &serde_json::Error, message: String| Error::Input {
            location: Location::new(path, e.line(), e.column()),
            message,
        };
        // A snapshot of this version or an older minor is read strictly in
        // one pass. Only when that fails, or the tag is not one this
        // version reads, is the schema tag looked at on its own, so that a
        // v2 snapshot says so instead of failing on its first unknown field
        // and a newer minor has its new fields left out. (Probing first cost
        // a second pass over every part of an organization's run.)
        let strict = match read_strictly(text) {
            Ok(mut snapshot)
                if schema_minor(&snapshot.schema).is_some_and(|m| m <= SCHEMA_MINOR) =>
            {
                snapshot.check_cidrs(text, path)?;
                snapshot.normalize();
                return Ok(snapshot);
            }
            other => other,
        };
        // Only the tag is kept: the rest is skipped, not built into a JSON
        // tree (a 50 MB snapshot would briefly cost ~150 MB of
        // `serde_json::Value`).
        #[derive(Deserialize)]
        struct Probe {
            schema: Option<serde_json::Value>,
        }
        let probe: Probe = match serde_json::from_str(text) {
            Ok(p) => p,
            // Valid JSON that is not an object: not a snapshot.
            Err(e) if e.classify() == serde_json::error::Category::Data => Probe { schema: None },
            Err(e) => return Err(problem(&e, format!("not valid JSON: {e}"))),
        };
        let tag = probe.schema.as_ref().and_then(|v| v.as_str());
        let minor = match tag.map(|t| (t, schema_minor(t))) {
            Some((_, Some(minor))) => minor,
            Some((other, None)) => {
                return Err(Error::Input {
                    location: Location::new(path, 1, 1),
                    message: format!(
                        "unsupported snapshot schema `{other}`: this dbaudit reads `{SCHEMA_MAJOR}` up to minor {SCHEMA_MINOR} (newer minors with their new fields left out)"
                    ),
                });
            }
            None => {
                return Err(Error::Input {
                    location: Location::new(path, 1, 1),
                    message: format!(
                        "not a dbaudit snapshot: expected a JSON object with \"schema\": \"{SCHEMA}\""
                    ),
                });
            }
        };
        let mut snapshot: Snapshot = if minor <= SCHEMA_MINOR {
            // Same or older minor: every field must be known (a typo is an
            // error, with its line and column): the strict reading's error.
            strict.map_err(|e| problem(&e, format!("invalid snapshot: {}", strip_position(&e))))?
        } else {
            drop(strict);
            // A newer minor only adds fields: leave out those this version
            // does not know, say so, and read the rest as strictly as ever.
            let mut value: serde_json::Value = serde_json::from_str(text)
                .map_err(|e| problem(&e, format!("not valid JSON: {e}")))?;
            let schema =
                serde_json::to_value(schemars::schema_for!(Snapshot)).expect("schema serialises");
            let mut dropped = std::collections::BTreeSet::new();
            prune_unknown(&mut value, &schema, &schema, "", &mut dropped);
            tracing::warn!(
                "{}: snapshot schema minor {minor} is newer than this dbaudit's ({SCHEMA_MINOR}); fields it does not know were left out: {}",
                path.display(),
                dropped.into_iter().collect::<Vec<_>>().join(", ")
            );
            serde_json::from_value(value).map_err(|e| Error::Input {
                location: Location::new(path, 1, 1),
                message: format!("invalid snapshot: {e}"),
            })?
        };
        snapshot.check_cidrs(text, path)?;
        snapshot.normalize();
        Ok(snapshot)
    }

    /// Whether `tag` names a snapshot schema this version reads.
    pub fn is_schema(tag: &str) -> bool {
        schema_minor(tag).is_some()
    }

    /// Every CIDR of the snapshot parses; a bad one is reported where it
    /// first appears in the file (serde has no positions after parsing).
    fn check_cidrs(&self, text: &str, path: &Path) -> Result<(), Error> {
        let v4 = |c: &str| c.parse::<ipnet::Ipv4Net>().is_ok();
        let v6 = |c: &str| c.parse::<ipnet::Ipv6Net>().is_ok();
        let mut bad: Option<(String, &'static str)> = None;
        let mut check = |c: &str, ok: bool, what: &'static str| {
            if !ok && bad.is_none() {
                bad = Some((c.to_string(), what));
            }
        };
        for a in &self.accounts {
            for r in &a.regions {
                for v in &r.vpcs {
                    for c in &v.cidr_blocks {
                        check(c, v4(c), "a VPC CIDR (IPv4)");
                    }
                }
                for s in &r.subnets {
                    if let Some(c) = &s.cidr_block {
                        check(c, v4(c), "a subnet CIDR (IPv4)");
                    }
                    for c in &s.ipv6_cidr_blocks {
                        check(c, v6(c), "a subnet IPv6 CIDR");
                    }
                }
                for rt in &r.route_tables {
                    for route in &rt.routes {
                        if let Some(c) = &route.destination_cidr {
                            check(c, v4(c), "a route destination (IPv4 CIDR)");
                        }
                        if let Some(c) = &route.destination_ipv6_cidr {
                            check(c, v6(c), "a route destination (IPv6 CIDR)");
                        }
                    }
                }
                for sg in &r.security_groups {
                    for rule in sg.ingress.iter().chain(&sg.egress) {
                        for c in &rule.ipv4_ranges {
                            check(c, v4(c), "a security group IPv4 range");
                        }
                        for c in &rule.ipv6_ranges {
                            check(c, v6(c), "a security group IPv6 range");
                        }
                    }
                }
            }
        }
        match bad {
            None => Ok(()),
            Some((c, what)) => {
                let needle = serde_json::to_string(&c).unwrap_or_default();
                let offset = text.find(&needle).map(|i| i + 1).unwrap_or(0);
                Err(Error::Input {
                    location: Location::from_offset(path, text, offset),
                    message: format!(
                        "invalid snapshot: `{c}` is not a valid CIDR; expected {what}, e.g. 10.0.0.0/16 or 2001:db8::/32"
                    ),
                })
            }
        }
    }

    /// Deterministic, pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut out = serde_json::to_string_pretty(self).expect("snapshot serialises");
        out.push('\n');
        out
    }

    /// The JSON Schema of this format (kept in docs/snapshot.schema.json).
    pub fn json_schema() -> String {
        let schema = schemars::schema_for!(Snapshot);
        let mut out = serde_json::to_string_pretty(&schema).expect("schema serialises");
        out.push('\n');
        out
    }
}

/// serde_json appends " at line X column Y" to messages; we print the
/// position ourselves, in the `file:line:col` prefix.
fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

impl Region {
    /// Every PostgreSQL server of the region whose databases the
    /// in-database collection reads: Aurora PostgreSQL clusters, then
    /// standalone RDS for PostgreSQL instances (no cluster, not a replica).
    pub fn postgres_hosts(&self) -> Vec<PgHost> {
        let clusters = self
            .db_clusters
            .iter()
            .filter(|c| c.engine == "aurora-postgresql")
            .map(|c| PgHost {
                id: c.id.clone(),
                endpoint: c.endpoint.clone(),
                port: c.port,
            });
        let instances = self
            .db_instances
            .iter()
            .filter(|i| {
                i.engine == "postgres" && i.cluster_id.is_none() && i.read_replica_source.is_none()
            })
            .map(|i| PgHost {
                id: i.id.clone(),
                endpoint: i.endpoint.clone(),
                port: i.port,
            });
        clusters.chain(instances).collect()
    }

    fn normalize(&mut self) {
        self.vpcs.sort_by(|a, b| a.id.cmp(&b.id));
        self.subnets.sort_by(|a, b| a.id.cmp(&b.id));
        self.route_tables.sort_by(|a, b| a.id.cmp(&b.id));
        for rt in &mut self.route_tables {
            rt.routes.sort();
            rt.associations.sort();
        }
        self.internet_gateways.sort_by(|a, b| a.id.cmp(&b.id));
        self.nat_gateways.sort_by(|a, b| a.id.cmp(&b.id));
        self.egress_only_internet_gateways
            .sort_by(|a, b| a.id.cmp(&b.id));
        self.security_groups.sort_by(|a, b| a.id.cmp(&b.id));
        for sg in &mut self.security_groups {
            sg.ingress.sort();
            sg.egress.sort();
        }
        self.db_subnet_groups.sort_by(|a, b| a.name.cmp(&b.name));
        for g in &mut self.db_subnet_groups {
            g.subnet_ids.sort();
        }
        self.db_clusters.sort_by(|a, b| a.id.cmp(&b.id));
        for c in &mut self.db_clusters {
            c.members.sort();
            c.vpc_security_group_ids.sort();
            c.read_replica_identifiers.sort();
        }
        self.db_instances.sort_by(|a, b| a.id.cmp(&b.id));
        for i in &mut self.db_instances {
            i.vpc_security_group_ids.sort();
            i.read_replicas.sort();
        }
        self.global_clusters.sort_by(|a, b| a.id.cmp(&b.id));
        for g in &mut self.global_clusters {
            g.members.sort();
        }
        for s in self.db_cluster_snapshots.iter_mut().flatten() {
            if let Some(r) = &mut s.restore {
                r.sort();
            }
        }
        if let Some(s) = &mut self.db_cluster_snapshots {
            s.sort_by(|a, b| a.id.cmp(&b.id));
        }
        if let Some(g) = &mut self.db_cluster_parameter_groups {
            g.sort_by(|a, b| a.name.cmp(&b.name));
        }
        if let Some(dbs) = &mut self.pg_databases {
            dbs.sort_by(|a, b| (&a.cluster_id, &a.database).cmp(&(&b.cluster_id, &b.database)));
            for d in dbs {
                d.roles.sort();
                d.memberships.sort();
                d.grants.sort();
                d.default_privileges.sort();
                d.schemas.sort();
                for s in &mut d.schemas {
                    s.table_owners.sort();
                    s.table_owners.dedup();
                }
            }
        }
        self.eks_clusters.sort_by(|a, b| a.name.cmp(&b.name));
        for e in &mut self.eks_clusters {
            e.additional_security_group_ids.sort();
            e.node_security_group_ids.sort();
            e.subnet_ids.sort();
        }
    }
}

impl Iam {
    fn normalize(&mut self) {
        self.users.sort_by(|a, b| a.arn.cmp(&b.arn));
        for u in &mut self.users {
            u.groups.sort();
            u.attached_policies.sort();
            u.inline_policies.sort_by(|a, b| a.name.cmp(&b.name));
        }
        self.groups.sort_by(|a, b| a.arn.cmp(&b.arn));
        for g in &mut self.groups {
            g.attached_policies.sort();
            g.inline_policies.sort_by(|a, b| a.name.cmp(&b.name));
        }
        self.roles.sort_by(|a, b| a.arn.cmp(&b.arn));
        for r in &mut self.roles {
            r.attached_policies.sort();
            r.inline_policies.sort_by(|a, b| a.name.cmp(&b.name));
        }
        self.policies.sort_by(|a, b| a.arn.cmp(&b.arn));
        self.oidc_providers.sort();
    }
}

/// Removes from `value` every object key its JSON Schema (`schema`, with
/// `$ref`s resolved in `root`) does not declare, recording each as a path
/// (`accounts[].regions[].new_field`) in `dropped`. Maps (schemas with
/// `additionalProperties`) keep their keys.
fn prune_unknown(
    value: &mut serde_json::Value,
    schema: &serde_json::Value,
    root: &serde_json::Value,
    at: &str,
    dropped: &mut std::collections::BTreeSet<String>,
) {
    use serde_json::Value;
    let schema = resolve(schema, root);
    // Option<T> and the like: the first alternative that is not `null`.
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(alts) = schema.get(key).and_then(Value::as_array) {
            if let Some(alt) = alts
                .iter()
                .map(|a| resolve(a, root))
                .find(|a| a.get("type") != Some(&Value::from("null")))
            {
                prune_unknown(value, alt, root, at, dropped);
            }
            return;
        }
    }
    match value {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                map.retain(|k, _| {
                    let known = props.contains_key(k);
                    if !known {
                        dropped.insert(format!("{at}.{k}").trim_start_matches('.').to_string());
                    }
                    known
                });
                for (k, v) in map.iter_mut() {
                    prune_unknown(v, &props[k], root, &format!("{at}.{k}"), dropped);
                }
            } else if let Some(extra) = schema.get("additionalProperties").filter(|e| e.is_object())
            {
                for v in map.values_mut() {
                    prune_unknown(v, extra, root, &format!("{at}.*"), dropped);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for v in items {
                    prune_unknown(v, item, root, &format!("{at}[]"), dropped);
                }
            }
        }
        _ => {}
    }
}

fn resolve<'a>(
    schema: &'a serde_json::Value,
    root: &'a serde_json::Value,
) -> &'a serde_json::Value {
    match schema.get("$ref").and_then(|r| r.as_str()) {
        Some(r) => r
            .strip_prefix("#/")
            .map(|p| p.split('/').fold(root, |node, key| &node[key]))
            .unwrap_or(schema),
        None => schema,
    }
}

/// Below this size a snapshot is read on the calling thread alone.
const READ_IN_PARALLEL: usize = 4 << 20;

/// A snapshot read strictly (every field known), as
/// `serde_json::from_str::<Snapshot>` does, with its accounts read on up to
/// one thread per core when the text is large: a first pass takes the
/// snapshot's own fields and the accounts' text as it stands (a fifth of the
/// work of reading them), and the accounts are then read side by side. An
/// organization's run reads each part twice, and on one thread the reading
/// held up the evaluation. Anything that fails is read again the plain way,
/// whose error has the position in the file.
fn read_strictly(text: &str) -> Result<Snapshot, serde_json::Error> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    if text.len() < READ_IN_PARALLEL || threads < 2 {
        return serde_json::from_str(text);
    }
    read_outlined(text, threads)
}

/// [`read_strictly`] on `threads` threads, whatever the text's size.
fn read_outlined(text: &str, threads: usize) -> Result<Snapshot, serde_json::Error> {
    // `Snapshot`'s fields and attributes, the accounts left as text.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Outline<'a> {
        schema: String,
        collected_at: String,
        tool_version: String,
        #[serde(borrow)]
        accounts: Vec<&'a serde_json::value::RawValue>,
        #[serde(default)]
        shard: Option<ShardPart>,
        #[serde(default)]
        plan: Option<Vec<PlannedAccount>>,
        #[serde(default)]
        databases_part: Option<DatabasesPart>,
    }
    let Ok(outline) = serde_json::from_str::<Outline<'_>>(text) else {
        return serde_json::from_str(text);
    };
    // Accounts are dealt out a few at a time (they differ in size).
    const BATCH: usize = 8;
    let raw = &outline.accounts;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let read = || {
        let mut done = Vec::new();
        loop {
            let batch = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let start = batch * BATCH;
            if start >= raw.len() {
                return Some(done);
            }
            let slice = &raw[start..raw.len().min(start + BATCH)];
            let accounts: Result<Vec<Account>, _> = slice
                .iter()
                .map(|a| serde_json::from_str::<Account>(a.get()))
                .collect();
            done.push((batch, accounts.ok()?));
        }
    };
    // Each thread's batches, by number; `None` if an account failed.
    type Batches = Vec<(usize, Vec<Account>)>;
    let batches: Option<Vec<Batches>> = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads.min(raw.len().div_ceil(BATCH)))
            .map(|_| scope.spawn(read))
            .collect();
        let mine = read();
        let theirs = helpers.into_iter().map(|h| h.join().ok().flatten());
        std::iter::once(mine).chain(theirs).collect()
    });
    let Some(batches) = batches else {
        return serde_json::from_str(text);
    };
    let mut batches: Vec<(usize, Vec<Account>)> = batches.into_iter().flatten().collect();
    batches.sort_by_key(|(i, _)| *i);
    let Outline {
        schema,
        collected_at,
        tool_version,
        accounts: _,
        shard,
        plan,
        databases_part,
    } = outline;
    // Every field named: a field added to `Snapshot` must be added to the
    // outline too.
    Ok(Snapshot {
        schema,
        collected_at,
        tool_version,
        accounts: batches.into_iter().flat_map(|(_, a)| a).collect(),
        shard,
        plan,
        databases_part,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(estate: &str) -> String {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(root.join(format!("fixtures/{estate}/snapshot.json"))).unwrap()
    }

    /// Read on several threads, a snapshot is what the plain reading
    /// gives, and a bad one fails with the plain reading's error (its line
    /// and column in the file).
    #[test]
    fn accounts_read_side_by_side_are_the_plain_reading() {
        for estate in ["demo", "unhappy"] {
            let text = fixture(estate);
            let plain: Snapshot = serde_json::from_str(&text).unwrap();
            for threads in [2, 3, 64] {
                assert_eq!(read_outlined(&text, threads).unwrap(), plain, "{estate}");
            }
        }
        let text = fixture("unhappy");
        let last = text.rfind("\"account_id\"").unwrap();
        let bad_account = format!("{}\"typo\": 1, {}", &text[..last], &text[last..]);
        let first = text.find("\"collected_at\"").unwrap();
        let bad_top = format!("{}\"typo\": 1, {}", &text[..first], &text[first..]);
        for bad in [
            bad_account,
            bad_top,
            text.replacen("\"name\"", "\"name\": 1, \"x\"", 3),
        ] {
            let want = serde_json::from_str::<Snapshot>(&bad).unwrap_err();
            let got = read_outlined(&bad, 2).unwrap_err();
            assert_eq!(got.to_string(), want.to_string());
            assert!(want.line() > 1, "{want}");
        }
    }

    /// A snapshot large enough to be read side by side goes that way
    /// through `Snapshot::parse`, with the same result.
    #[test]
    fn a_large_snapshot_parses_as_a_small_one_does() {
        let text = fixture("demo");
        let mut big: Snapshot = serde_json::from_str(&text).unwrap();
        let accounts = big.accounts.clone();
        let mut n = 0;
        while big.to_json().len() < READ_IN_PARALLEL {
            for a in &accounts {
                let mut a = a.clone();
                a.name = format!("{}-{n}", a.name);
                big.accounts.push(a);
            }
            n += 1;
        }
        let big = big.to_json();
        let mut want: Snapshot = serde_json::from_str(&big).unwrap();
        want.normalize();
        let got = Snapshot::parse(&big, Path::new("big.json")).unwrap();
        assert_eq!(got, want);
        assert!(got.accounts.len() > 100);
    }

    /// An account's body taken out and put back (into the account, or into
    /// a copy of its parity view) is the account again.
    #[test]
    fn a_body_taken_out_and_put_back_is_the_account() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for estate in ["demo", "unhappy"] {
            let s = Snapshot::load(&root.join(format!("fixtures/{estate}/snapshot.json"))).unwrap();
            for a in &s.accounts {
                let mut view = a.clone();
                let body = view.take_body();
                assert!(view.iam.is_none());
                assert!(
                    view.regions
                        .iter()
                        .all(|r| r.db_instances.is_empty() && r.security_groups.is_empty())
                );
                assert_eq!(
                    view.regions
                        .iter()
                        .map(|r| &r.db_clusters)
                        .collect::<Vec<_>>(),
                    a.regions.iter().map(|r| &r.db_clusters).collect::<Vec<_>>()
                );
                let mut again = view.clone();
                again.put_body(body);
                assert_eq!(&again, a, "{estate}/{}", a.name);
            }
        }
    }
}
