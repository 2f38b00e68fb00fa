//! The AWS vocabulary in one table: the services dbaudit reads and every
//! operation it may send. Everything else derives from it: the read-only
//! guard's allow list, the audit role's policy (docs/audit-role, generated
//! and checked for staleness), the services a rule may `require`, the
//! resource kinds' services, the fact-level operations and the names gaps
//! carry. A leaf module: it imports nothing from the crate.
//!
//! Adding an operation is one row in [`OPERATIONS`] (and a `const` beside
//! it for the collector to name); adding a service is one [`Service`]
//! variant with its rows. docs/architecture.md has the checklist.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A service dbaudit talks to, named by its IAM prefix.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// The session: AssumeRole and GetCallerIdentity. A gap of this service
    /// means the whole account could not be reached.
    Sts,
    Rds,
    Ec2,
    Eks,
    Iam,
    Organizations,
    /// Only `DescribeSecret` of the master secrets RDS manages (read by the
    /// RDS collector: never a secret's value).
    SecretsManager,
    /// The shard store: parts of a sharded collection, in the one bucket a
    /// command names. Not audited, not in the audit role.
    S3,
    /// `dbaudit publish securityhub` only: the findings imported into each
    /// account's Security Hub. Not audited, not in the audit role.
    SecurityHub,
}

/// Where a service's collection runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Once per audited region.
    Regional,
    /// Once per account (the endpoint's home region).
    Global,
    /// Not collected: the session itself.
    Session,
    /// Not collected: the shard store, reached with the scanner's own
    /// credentials and only in the bucket the command names (the guard
    /// checks each call's bucket).
    Store,
    /// Not collected: the one write `dbaudit publish` makes, allowed only
    /// by the guard of that command (`ReadOnlyGuard::for_publish`).
    Publish,
}

// The names are the IAM prefixes, also the names in snapshots and reports.
crate::names::names!(Service {
    Sts => "sts",
    Rds => "rds",
    Ec2 => "ec2",
    Eks => "eks",
    Iam => "iam",
    Organizations => "organizations",
    SecretsManager => "secretsmanager",
    S3 => "s3",
    SecurityHub => "securityhub",
});

impl Service {
    /// From the SDK's service name in operation metadata (`RDS`, `EC2`,
    /// `Organizations`, `Secrets Manager`…): case and spaces ignored.
    pub fn from_sdk_name(name: &str) -> Option<Service> {
        let norm: String = name
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        Service::parse(&norm)
    }

    pub const fn scope(self) -> Scope {
        match self {
            Service::Sts => Scope::Session,
            Service::Rds | Service::Ec2 | Service::Eks | Service::SecretsManager => Scope::Regional,
            Service::Iam | Service::Organizations => Scope::Global,
            Service::S3 => Scope::Store,
            Service::SecurityHub => Scope::Publish,
        }
    }

    /// Services a rule may name in `requires`: every collected one.
    pub fn requirable() -> impl Iterator<Item = Service> {
        Service::ALL
            .into_iter()
            .filter(|s| !matches!(s.scope(), Scope::Session | Scope::Store | Scope::Publish))
    }

    /// The Sid of the service's statement in the audit role's policy.
    const fn sid(self) -> &'static str {
        match self {
            Service::Sts => "DbauditSession",
            Service::Rds => "DbauditReadRds",
            Service::Ec2 => "DbauditReadNetwork",
            Service::Eks => "DbauditReadEks",
            Service::Iam => "DbauditReadIam",
            Service::Organizations => "DbauditReadScps",
            Service::SecretsManager => "DbauditReadMasterSecretRotation",
            Service::S3 => "DbauditShardStore",
            Service::SecurityHub => "DbauditPublishFindings",
        }
    }

    /// The operations of this service in the table.
    pub fn operations(self) -> impl Iterator<Item = &'static Operation> {
        OPERATIONS.iter().filter(move |o| o.service == self)
    }
}

/// How the facts account for an operation's failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Every rule needing the service gives `error` in the region (fail
    /// closed: the facts cannot tell "none" from "not collected").
    FailsService,
    /// The facts that depend on it become absent themselves, so only the
    /// rules reading those facts give `error` (`model::RegionIndex`).
    FactLevel,
}

/// One AWS operation dbaudit may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    pub service: Service,
    /// The API name, which is also the IAM action's name.
    pub name: &'static str,
    pub on_failure: OnFailure,
    /// Why the audit role needs it (a comment in the generated template).
    pub note: Option<&'static str>,
    /// Made with the organization reader's role (account discovery), not
    /// the audit role: not in the audit role's policy.
    pub discovery: bool,
}

impl Operation {
    const fn new(service: Service, name: &'static str) -> Operation {
        Operation {
            service,
            name,
            on_failure: OnFailure::FailsService,
            note: None,
            discovery: false,
        }
    }

    const fn discovery(self) -> Operation {
        Operation {
            discovery: true,
            ..self
        }
    }

    const fn fact_level(self) -> Operation {
        Operation {
            on_failure: OnFailure::FactLevel,
            ..self
        }
    }

    /// `service:Name`, the IAM action.
    pub fn action(&self) -> String {
        format!("{}:{}", self.service, self.name)
    }

    /// Whether the audit role must grant it (the session calls are made
    /// with the scanner's own credentials or need no permission).
    pub fn granted_by_audit_role(&self) -> bool {
        !matches!(
            self.service.scope(),
            Scope::Session | Scope::Store | Scope::Publish
        ) && !self.discovery
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.service, self.name)
    }
}

/// The operations by name, for the collectors and the facts.
pub mod op {
    use super::{Operation, Service::*};

    pub const ASSUME_ROLE: Operation = Operation::new(Sts, "AssumeRole");
    // The one write of `dbaudit publish securityhub`.
    pub const BATCH_IMPORT_FINDINGS: Operation = Operation::new(SecurityHub, "BatchImportFindings");
    pub const GET_CALLER_IDENTITY: Operation = Operation::new(Sts, "GetCallerIdentity");

    pub const DESCRIBE_DB_CLUSTERS: Operation = Operation::new(Rds, "DescribeDBClusters");
    pub const DESCRIBE_DB_INSTANCES: Operation = Operation::new(Rds, "DescribeDBInstances");
    // Only the subnet and VPC facts read the subnet groups, and a group that
    // is not in the snapshot leaves them absent.
    pub const DESCRIBE_DB_SUBNET_GROUPS: Operation =
        Operation::new(Rds, "DescribeDBSubnetGroups").fact_level();
    // Only `cross_region_replicas` reads the global clusters.
    pub const DESCRIBE_GLOBAL_CLUSTERS: Operation =
        Operation::new(Rds, "DescribeGlobalClusters").fact_level();
    // Only the account's snapshot facts read these: a failure leaves them
    // absent (`Region::db_cluster_snapshots` / `restore` stay `None`).
    pub const DESCRIBE_DB_CLUSTER_SNAPSHOTS: Operation =
        Operation::new(Rds, "DescribeDBClusterSnapshots").fact_level();
    pub const DESCRIBE_DB_CLUSTER_SNAPSHOT_ATTRIBUTES: Operation =
        Operation::new(Rds, "DescribeDBClusterSnapshotAttributes").fact_level();
    // Only the parameter facts read it: a group not collected leaves them
    // absent for the clusters using it.
    pub const DESCRIBE_DB_CLUSTER_PARAMETERS: Operation =
        Operation::new(Rds, "DescribeDBClusterParameters").fact_level();
    // Only the certificate facts of instances without `CertificateDetails`
    // read the CA list.
    pub const DESCRIBE_CERTIFICATES: Operation =
        Operation::new(Rds, "DescribeCertificates").fact_level();
    // The proxy rules report an unlisted region themselves (`db_proxies`
    // stays `None`); the cluster rules do not need proxies.
    pub const DESCRIBE_DB_PROXIES: Operation =
        Operation::new(Rds, "DescribeDBProxies").fact_level();
    pub const DESCRIBE_DB_PROXY_TARGETS: Operation =
        Operation::new(Rds, "DescribeDBProxyTargets").fact_level();
    // Rotation of the master secrets only: a secret not described leaves
    // its rotation facts absent.
    pub const DESCRIBE_SECRET: Operation =
        Operation::new(SecretsManager, "DescribeSecret").fact_level();

    pub const DESCRIBE_VPCS: Operation = Operation::new(Ec2, "DescribeVpcs");
    pub const DESCRIBE_SUBNETS: Operation = Operation::new(Ec2, "DescribeSubnets");
    pub const DESCRIBE_ROUTE_TABLES: Operation = Operation::new(Ec2, "DescribeRouteTables");
    pub const DESCRIBE_INTERNET_GATEWAYS: Operation =
        Operation::new(Ec2, "DescribeInternetGateways");
    pub const DESCRIBE_NAT_GATEWAYS: Operation = Operation::new(Ec2, "DescribeNatGateways");
    pub const DESCRIBE_EGRESS_ONLY_INTERNET_GATEWAYS: Operation =
        Operation::new(Ec2, "DescribeEgressOnlyInternetGateways");
    pub const DESCRIBE_SECURITY_GROUPS: Operation = Operation::new(Ec2, "DescribeSecurityGroups");

    pub const LIST_CLUSTERS: Operation = Operation::new(Eks, "ListClusters");
    pub const DESCRIBE_CLUSTER: Operation = Operation::new(Eks, "DescribeCluster");
    pub const LIST_NODEGROUPS: Operation = Operation::new(Eks, "ListNodegroups");
    pub const DESCRIBE_NODEGROUP: Operation = Operation::new(Eks, "DescribeNodegroup");
    // Only the Pod Identity facts read these (absent when not listed).
    pub const LIST_POD_IDENTITY_ASSOCIATIONS: Operation =
        Operation::new(Eks, "ListPodIdentityAssociations").fact_level();
    pub const DESCRIBE_POD_IDENTITY_ASSOCIATION: Operation =
        Operation::new(Eks, "DescribePodIdentityAssociation").fact_level();

    pub const GET_ACCOUNT_AUTHORIZATION_DETAILS: Operation =
        Operation::new(Iam, "GetAccountAuthorizationDetails");
    pub const GET_POLICY: Operation = Operation::new(Iam, "GetPolicy");
    pub const GET_POLICY_VERSION: Operation = Operation::new(Iam, "GetPolicyVersion");
    pub const LIST_OPEN_ID_CONNECT_PROVIDERS: Operation =
        Operation::new(Iam, "ListOpenIDConnectProviders");

    pub const LIST_PARENTS: Operation = Operation::new(Organizations, "ListParents");
    pub const LIST_POLICIES_FOR_TARGET: Operation =
        Operation::new(Organizations, "ListPoliciesForTarget");
    pub const DESCRIBE_POLICY: Operation = Operation::new(Organizations, "DescribePolicy");
    // Account discovery (`[organization]`), with the organization reader's
    // role; ListParents above serves both.
    pub const LIST_ROOTS: Operation = Operation::new(Organizations, "ListRoots").discovery();
    pub const LIST_ORGANIZATIONAL_UNITS_FOR_PARENT: Operation =
        Operation::new(Organizations, "ListOrganizationalUnitsForParent").discovery();
    pub const LIST_ACCOUNTS: Operation = Operation::new(Organizations, "ListAccounts").discovery();
    pub const LIST_TAGS_FOR_RESOURCE: Operation =
        Operation::new(Organizations, "ListTagsForResource").discovery();

    // The shard store (the scanner's own bucket, never an audited one): the
    // guard allows these only in the bucket the command names.
    pub const PUT_OBJECT: Operation = Operation::new(S3, "PutObject");
    pub const GET_OBJECT: Operation = Operation::new(S3, "GetObject");
    pub const LIST_OBJECTS_V2: Operation = Operation::new(S3, "ListObjectsV2");
}

/// Every operation dbaudit may send, in the order the audit role lists them.
pub const OPERATIONS: &[Operation] = &[
    op::ASSUME_ROLE,
    op::GET_CALLER_IDENTITY,
    op::DESCRIBE_DB_CLUSTERS,
    op::DESCRIBE_DB_INSTANCES,
    op::DESCRIBE_DB_SUBNET_GROUPS,
    op::DESCRIBE_GLOBAL_CLUSTERS,
    op::DESCRIBE_DB_CLUSTER_SNAPSHOTS,
    op::DESCRIBE_DB_CLUSTER_SNAPSHOT_ATTRIBUTES,
    op::DESCRIBE_DB_CLUSTER_PARAMETERS,
    op::DESCRIBE_CERTIFICATES,
    op::DESCRIBE_DB_PROXIES,
    op::DESCRIBE_DB_PROXY_TARGETS,
    op::DESCRIBE_VPCS,
    op::DESCRIBE_SUBNETS,
    op::DESCRIBE_ROUTE_TABLES,
    op::DESCRIBE_INTERNET_GATEWAYS,
    op::DESCRIBE_NAT_GATEWAYS,
    op::DESCRIBE_EGRESS_ONLY_INTERNET_GATEWAYS,
    op::DESCRIBE_SECURITY_GROUPS,
    op::LIST_CLUSTERS,
    op::DESCRIBE_CLUSTER,
    op::LIST_NODEGROUPS,
    op::DESCRIBE_NODEGROUP,
    op::LIST_POD_IDENTITY_ASSOCIATIONS,
    op::DESCRIBE_POD_IDENTITY_ASSOCIATION,
    op::GET_ACCOUNT_AUTHORIZATION_DETAILS,
    op::GET_POLICY,
    op::GET_POLICY_VERSION,
    op::LIST_OPEN_ID_CONNECT_PROVIDERS,
    op::LIST_PARENTS,
    op::LIST_POLICIES_FOR_TARGET,
    op::DESCRIBE_POLICY,
    op::LIST_ROOTS,
    op::LIST_ORGANIZATIONAL_UNITS_FOR_PARENT,
    op::LIST_ACCOUNTS,
    op::LIST_TAGS_FOR_RESOURCE,
    op::DESCRIBE_SECRET,
    op::PUT_OBJECT,
    op::GET_OBJECT,
    op::LIST_OBJECTS_V2,
    op::BATCH_IMPORT_FINDINGS,
];

/// The table's row for `service` / `name`, if dbaudit may send it.
pub fn operation(service: Service, name: &str) -> Option<&'static Operation> {
    OPERATIONS
        .iter()
        .find(|o| o.service == service && o.name == name)
}

/// Whether dbaudit may send `name` of the SDK service `sdk_service`
/// (`RDS`, `EC2`, `Secrets Manager`…): exactly the table's rows, never a
/// name prefix.
pub fn is_allowed(sdk_service: &str, name: &str) -> bool {
    Service::from_sdk_name(sdk_service)
        .filter(|s| !matches!(s.scope(), Scope::Store | Scope::Publish))
        .is_some_and(|s| operation(s, name).is_some())
}

/// Whether `name` is the write of `dbaudit publish` (allowed only by that
/// command's guard, with the session's calls, and nothing else).
pub fn is_publish_operation(sdk_service: &str, name: &str) -> bool {
    Service::from_sdk_name(sdk_service)
        .filter(|s| s.scope() == Scope::Publish)
        .is_some_and(|s| operation(s, name).is_some())
}

/// Whether `name` is one of the session's calls (assuming the role,
/// checking who we are).
pub fn is_session_operation(sdk_service: &str, name: &str) -> bool {
    Service::from_sdk_name(sdk_service)
        .filter(|s| s.scope() == Scope::Session)
        .is_some_and(|s| operation(s, name).is_some())
}

/// docs/audit-role/securityhub-publish-policy.json: what the role
/// `dbaudit publish securityhub` uses in each account needs, and nothing
/// more (a role of its own, not the read-only audit role).
pub fn publish_policy() -> String {
    let actions: Vec<String> = OPERATIONS
        .iter()
        .filter(|o| o.service.scope() == Scope::Publish)
        .map(Operation::action)
        .collect();
    let doc = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": Service::SecurityHub.sid(),
            "Effect": "Allow",
            "Action": actions,
            "Resource": "arn:aws:securityhub:*:*:product/*/default",
        }],
    });
    let mut out = serde_json::to_string_pretty(&doc).unwrap_or_default();
    out.push('\n');
    out
}

/// Whether `name` is a shard-store operation (allowed by the guard only in
/// the bucket the command names, never elsewhere).
pub fn is_store_operation(sdk_service: &str, name: &str) -> bool {
    Service::from_sdk_name(sdk_service)
        .filter(|s| s.scope() == Scope::Store)
        .is_some_and(|s| operation(s, name).is_some())
}

/// Whether the facts account for a failure of `service`'s `operation`.
pub fn is_fact_level(service: Service, operation_name: &str) -> bool {
    operation(service, operation_name).is_some_and(|o| o.on_failure == OnFailure::FactLevel)
}

/// The operations the audit role grants, as IAM actions, in table order.
pub fn granted_actions() -> Vec<String> {
    OPERATIONS
        .iter()
        .filter(|o| o.granted_by_audit_role())
        .map(Operation::action)
        .collect()
}

/// docs/audit-role/policy.json: one statement per collected service.
pub fn audit_role_policy() -> String {
    let statements: Vec<serde_json::Value> = Service::requirable()
        .map(|s| {
            serde_json::json!({
                "Sid": s.sid(),
                "Effect": "Allow",
                "Action": s.operations().filter(|o| o.granted_by_audit_role()).map(Operation::action).collect::<Vec<_>>(),
                "Resource": "*",
            })
        })
        .collect();
    let doc = serde_json::json!({"Version": "2012-10-17", "Statement": statements});
    let mut out = serde_json::to_string_pretty(&doc).unwrap_or_default();
    out.push('\n');
    out
}

const CLOUDFORMATION_HEAD: &str = r#"# The read-only audit role dbaudit assumes in each audited account.
# Generated from src/vocab.rs by `cargo test` (DBAUDIT_BLESS=1 rewrites it).
# Deploy it in every account (for example with a CloudFormation StackSet):
#   aws cloudformation deploy --template-file docs/audit-role/cloudformation.yaml \
#     --stack-name dbaudit-audit-role --capabilities CAPABILITY_NAMED_IAM \
#     --parameter-overrides ScannerRoleArn=arn:aws:iam::123456789012:role/dbaudit-scanner ExternalId=...
AWSTemplateFormatVersion: "2010-09-09"
Description: Read-only role for dbaudit (database infrastructure audit)
Parameters:
  ScannerRoleArn:
    Type: String
    Description: ARN of the role dbaudit runs as (CI, CronJob IRSA role)
  ExternalId:
    Type: String
    NoEcho: true
    Description: External id dbaudit sends (external_id in dbaudit.toml)
Resources:
  DbauditAuditRole:
    Type: AWS::IAM::Role
    Properties:
      RoleName: dbaudit-audit
      MaxSessionDuration: 3600
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Sid: DbauditScanner
            Effect: Allow
            Principal:
              AWS: !Ref ScannerRoleArn
            Action: sts:AssumeRole
            Condition:
              StringEquals:
                sts:ExternalId: !Ref ExternalId
      Policies:
        - PolicyName: dbaudit-read
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
"#;

const CLOUDFORMATION_TAIL: &str = r#"Outputs:
  RoleArn:
    Value: !GetAtt DbauditAuditRole.Arn
"#;

/// docs/audit-role/cloudformation.yaml: the same statements as the policy.
pub fn audit_role_cloudformation() -> String {
    let mut out = CLOUDFORMATION_HEAD.to_string();
    for s in Service::requirable() {
        if s == Service::Organizations {
            out.push_str(
                "              # Used only with collect_scps = true, where the role may read\n              # Organizations (management account or delegated administrator).\n",
            );
        }
        out.push_str(&format!(
            "              - Sid: {}\n                Effect: Allow\n                Action:\n",
            s.sid()
        ));
        for o in s.operations().filter(|o| o.granted_by_audit_role()) {
            out.push_str(&format!("                  - {o}\n"));
        }
        out.push_str("                Resource: \"*\"\n");
    }
    out.push_str(CLOUDFORMATION_TAIL);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sdk_names_map() {
        for s in Service::ALL {
            assert_eq!(Service::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert_eq!(Service::from_sdk_name("RDS"), Some(Service::Rds));
        assert_eq!(
            Service::from_sdk_name("Organizations"),
            Some(Service::Organizations)
        );
        assert_eq!(
            Service::from_sdk_name("Secrets Manager"),
            Some(Service::SecretsManager)
        );
        assert_eq!(Service::from_sdk_name("S3"), Some(Service::S3));
        assert_eq!(Service::from_sdk_name("SSM"), None);
    }

    #[test]
    fn the_table_has_no_duplicates_and_only_named_reads() {
        let mut seen = std::collections::BTreeSet::new();
        for o in OPERATIONS {
            assert!(seen.insert(o.action()), "{o} twice");
            // The one write is the shard store's, in its own bucket.
            assert!(
                ["Describe", "List", "Get", "AssumeRole"]
                    .iter()
                    .any(|p| o.name.starts_with(p))
                    || (o.service.scope() == Scope::Store && o.name == "PutObject")
                    || (o.service.scope() == Scope::Publish && o.name == "BatchImportFindings"),
                "{o}"
            );
        }
    }

    #[test]
    fn the_guard_allows_the_table_and_nothing_else() {
        for o in OPERATIONS {
            let sdk = o.service.as_str().to_uppercase();
            // Store operations only with the bucket check (collect::guard).
            assert_eq!(
                is_allowed(&sdk, o.name),
                !matches!(o.service.scope(), Scope::Store | Scope::Publish),
                "{o}"
            );
            assert_eq!(
                is_publish_operation(&sdk, o.name),
                o.service.scope() == Scope::Publish,
                "{o}"
            );
            assert_eq!(
                is_store_operation(&sdk, o.name),
                o.service.scope() == Scope::Store,
                "{o}"
            );
        }
        assert!(!is_store_operation("S3", "DeleteObject"));
        for (svc, op) in [
            ("RDS", "DeleteDBCluster"),
            ("Secrets Manager", "GetSecretValue"),
            ("S3", "GetObject"),
            ("SSM", "GetParameter"),
            ("KMS", "GetPublicKey"),
            ("EC2", "DescribeDBClusters"),
            ("RDS", "Describ"),
            ("", ""),
        ] {
            assert!(!is_allowed(svc, op), "{svc}:{op}");
        }
    }
}
