//! The shape of the facts rules read: the resource kinds a rule is
//! evaluated against and the field schema used to check rule field names
//! at load time. A leaf shared by `model` (which computes the facts),
//! `rules` (which checks and evaluates expressions over them) and `iam`.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// The resource kinds, one row each: the variant, its name in rules and
/// reports, and the module of `model` (`src/model/MODULE.rs`) with the type
/// that implements `model::Kind` for it (how its resources are listed,
/// their facts, its ARNs). The only list of kinds: [`ResourceKind`] here,
/// and `model`'s module declarations and `model::kind` are expanded from
/// it, so a kind is added by one row and its file (docs/architecture.md,
/// "Adding a resource kind"). The modules and types are tokens here,
/// resolved only where `model` expands the list.
macro_rules! resource_kinds {
    ($then:ident) => {
        $then! {
            /// An Aurora/RDS DB cluster.
            DbCluster => "db_cluster", cluster::ClusterKind;
            /// An RDS DB instance (Aurora members included).
            DbInstance => "db_instance", instance::InstanceKind;
            /// An RDS Proxy.
            DbProxy => "db_proxy", proxy::ProxyKind;
            /// A configured AWS account.
            Account => "account", account::AccountKind;
            /// An IAM user or role of an account.
            IamPrincipal => "iam_principal", principal::PrincipalKind;
            /// One service across the two environments of a pair (test ↔ prod
            /// parity): the databases serving it on each side.
            ServicePair => "service_pair", parity::PairKind;
            /// A manual DB cluster snapshot.
            DbClusterSnapshot => "db_cluster_snapshot", cluster_snapshot::ClusterSnapshotKind;
            /// A PostgreSQL database inside a DB cluster, as the in-database
            /// collection read it (`CLUSTER/DATABASE`).
            PgDatabase => "pg_database", pg_database::PgDatabaseKind;
        }
    };
}
pub(crate) use resource_kinds;

macro_rules! declare_resource_kind {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal, $module:ident::$imp:ident;)+) => {
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
            $($(#[doc = $doc])* $variant,)+
        }

        crate::names::names!(ResourceKind { $($variant => $name),+ });
    };
}
resource_kinds!(declare_resource_kind);

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
