//! The shape of the facts rules read: the resource kinds a rule is
//! evaluated against and the field schema used to check rule field names
//! at load time. A leaf shared by `model` (which computes the facts),
//! `rules` (which checks and evaluates expressions over them) and `iam`.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::vocab::Service;

/// The kind of resource a rule is evaluated against, once per resource.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum ResourceKind {
    /// An Aurora/RDS DB cluster.
    DbCluster,
    /// An RDS DB instance (Aurora members included).
    DbInstance,
    /// A configured AWS account.
    Account,
    /// An IAM user or role of an account.
    IamPrincipal,
    /// One service across the two environments of a pair (test ↔ prod
    /// parity): the databases serving it on each side.
    ServicePair,
    /// An RDS Proxy.
    DbProxy,
}

crate::names::names!(ResourceKind {
    DbCluster => "db_cluster",
    DbInstance => "db_instance",
    DbProxy => "db_proxy",
    Account => "account",
    IamPrincipal => "iam_principal",
    ServicePair => "service_pair",
});

impl ResourceKind {
    /// The ARN that stands for every resource of this kind of an account,
    /// in one region or `*`: where a finding about resources that could
    /// not be listed points. Exhaustive, so a new kind cannot fall back to
    /// another kind's ARN.
    pub fn arn_of_every(self, partition: &str, region: &str, account_id: &str) -> String {
        let rds = |what: &str| format!("arn:{partition}:rds:{region}:{account_id}:{what}:*");
        match self {
            ResourceKind::DbCluster | ResourceKind::ServicePair => rds("cluster"),
            ResourceKind::DbInstance => rds("db"),
            ResourceKind::DbProxy => rds("db-proxy"),
            ResourceKind::IamPrincipal => format!("arn:{partition}:iam::{account_id}:*"),
            ResourceKind::Account => format!("arn:{partition}:iam::{account_id}:root"),
        }
    }

    /// The AWS service whose collection produces resources of this kind.
    pub fn service(self) -> Option<Service> {
        match self {
            ResourceKind::DbCluster
            | ResourceKind::DbInstance
            | ResourceKind::DbProxy
            | ResourceKind::ServicePair => Some(Service::Rds),
            ResourceKind::Account => None,
            ResourceKind::IamPrincipal => Some(Service::Iam),
        }
    }
}

/// What is known of the shape of a value: a struct with named fields, a list
/// of something, or anything (a map, a scalar, or a shape we do not check).
#[derive(Debug, Clone)]
pub enum FieldSchema {
    Object(std::collections::BTreeMap<String, FieldSchema>),
    List(Box<FieldSchema>),
    Any,
}

impl FieldSchema {
    /// Builds the shape from a schemars JSON schema (resolving `$ref`s).
    pub fn from_json_schema(root: &Json) -> FieldSchema {
        let defs = root.get("$defs").cloned().unwrap_or(Json::Null);
        Self::from_node(root, &defs, 0)
    }

    fn from_node(node: &Json, defs: &Json, depth: usize) -> FieldSchema {
        if depth > 16 {
            return FieldSchema::Any;
        }
        if let Some(r) = node.get("$ref").and_then(Json::as_str) {
            let name = r.rsplit('/').next().unwrap_or_default();
            return match defs.get(name) {
                Some(def) => Self::from_node(def, defs, depth + 1),
                None => FieldSchema::Any,
            };
        }
        // Option<T> is `anyOf: [T, null]` (or `type: [.., "null"]`).
        if let Some(any) = node.get("anyOf").and_then(Json::as_array) {
            let non_null: Vec<&Json> = any
                .iter()
                .filter(|s| s.get("type").and_then(Json::as_str) != Some("null"))
                .collect();
            if non_null.len() == 1 {
                return Self::from_node(non_null[0], defs, depth + 1);
            }
            return FieldSchema::Any;
        }
        if let Some(props) = node.get("properties").and_then(Json::as_object) {
            return FieldSchema::Object(
                props
                    .iter()
                    .map(|(k, v)| (k.clone(), Self::from_node(v, defs, depth + 1)))
                    .collect(),
            );
        }
        if let Some(items) = node.get("items") {
            return FieldSchema::List(Box::new(Self::from_node(items, defs, depth + 1)));
        }
        FieldSchema::Any
    }

    pub fn object(fields: impl IntoIterator<Item = String>) -> FieldSchema {
        FieldSchema::Object(fields.into_iter().map(|f| (f, FieldSchema::Any)).collect())
    }
}

#[cfg(test)]
mod arn_tests {
    use super::ResourceKind;

    /// Every kind has its own ARN for "all of them", in the region asked.
    #[test]
    fn every_kind_has_its_own_arn_of_every_resource() {
        let arns: Vec<String> = ResourceKind::ALL
            .iter()
            .map(|k| k.arn_of_every("aws", "eu-west-1", "222222222222"))
            .collect();
        for (k, arn) in ResourceKind::ALL.iter().zip(&arns) {
            assert!(
                arn.starts_with("arn:aws:") && arn.contains("222222222222"),
                "{k}: {arn}"
            );
            if k.service() == Some(crate::vocab::Service::Rds) {
                assert!(arn.contains(":eu-west-1:"), "{k}: {arn}");
            }
        }
        assert_eq!(
            ResourceKind::DbProxy.arn_of_every("aws", "*", "1"),
            "arn:aws:rds:*:1:db-proxy:*"
        );
        assert_eq!(
            ResourceKind::DbInstance.arn_of_every("aws-cn", "cn-north-1", "1"),
            "arn:aws-cn:rds:cn-north-1:1:db:*"
        );
    }
}
