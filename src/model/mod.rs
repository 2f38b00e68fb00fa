//! Derived facts: what rules talk about, computed once per snapshot.
//!
//! Each resource becomes a facts value (serialised into the rule engine as
//! `resource`). A fact that cannot be derived because its inputs were not
//! collected is *left out* rather than defaulted, so that a rule reading it
//! evaluates to `error`, never to `pass`; `unknown` says why.

pub mod kind;
pub mod lifecycle;
pub mod network;

/// One module per resource kind, declared by its row of the kinds list
/// (`facts::resource_kinds!`): `src/model/MODULE.rs` with the kind's facts
/// and its `Kind`.
macro_rules! kind_modules {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal, $module:ident::$imp:ident;)+) => {
        $(pub mod $module;)+
    };
}
crate::facts::resource_kinds!(kind_modules);

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use schemars::JsonSchema;
use serde::Serialize;

use crate::celval::{self, BoxVal};
use crate::config::Config;
use crate::facts::FieldSchema;
use crate::facts::ResourceKind;
use crate::snapshot::{Account, DbCluster, DbInstance, Snapshot, Tags};
use crate::vocab::Service;
pub use account::{AccountDirectory, AccountFacts, AccountRef, SnapshotFacts, account_facts};
pub use cluster::{ClusterFacts, MemberFacts, cluster_facts, cluster_parameters};
pub use instance::{InstanceFacts, instance_facts};
pub use kind::{Facts, Kind, Place, Resource, Scope, gap_message, kind};
pub use network::{IngressSource, NetworkFacts, RegionIndex, SubnetFacts};

/// Facts that can hand out one top-level field at a time as an engine value,
/// so that evaluation converts only the fields the loaded rules read.
pub trait CelFacts: Serialize {
    /// Every top-level field name.
    const FIELDS: &'static [&'static str];
    /// Field names of a flattened inner struct (network facts).
    const FLATTENED: &'static [&'static str];
    /// One top-level fact; `None` when it is absent (not derivable) or unknown.
    fn field(&self, name: &str) -> Option<BoxVal>;
    /// Why facts are absent (the `unknown` field, when the facts have one).
    fn unknown(&self) -> &[String];
}

macro_rules! flattened {
    () => {
        &[]
    };
    ($flty:ty) => {
        <$flty as $crate::model::CelFacts>::FIELDS
    };
}
pub(crate) use flattened;

/// `&self.unknown` when `unknown` is among the fields, else nothing.
macro_rules! unknown_of {
    ($self:ident;) => {
        &[]
    };
    ($self:ident; unknown $($rest:ident)*) => {
        &$self.unknown
    };
    ($self:ident; $f:ident $($rest:ident)*) => {
        $crate::model::unknown_of!($self; $($rest)*)
    };
}
pub(crate) use unknown_of;

/// Implements [`CelFacts`] by naming every serialised field once; a test
/// checks the list against the serde output.
macro_rules! cel_facts {
    ($ty:ty { $($f:ident),* $(,)? } $(flatten $fl:ident: $flty:ty)?) => {
        impl $crate::model::CelFacts for $ty {
            const FIELDS: &'static [&'static str] = &[$(stringify!($f),)*];
            const FLATTENED: &'static [&'static str] = $crate::model::flattened!($($flty)?);
            fn field(&self, name: &str) -> Option<$crate::celval::BoxVal> {
                match name {
                    $(stringify!($f) => $crate::celval::ToVal::to_val(&self.$f),)*
                    _ => {
                        $(return $crate::model::CelFacts::field(&self.$fl, name);)?
                        #[allow(unreachable_code)]
                        None
                    }
                }
            }
            fn unknown(&self) -> &[String] {
                $crate::model::unknown_of!(self; $($f)*)
            }
        }
    };
}
pub(crate) use cel_facts;

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
pub fn facts_json_schema(k: ResourceKind) -> serde_json::Value {
    kind(k).json_schema()
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
    /// Nested structs may skip serialising an empty list that the engine
    /// still serves as `[]` (a rule reading it sees "none", not an error):
    /// the same facts.
    fn without_empty_lists(v: serde_json::Value) -> serde_json::Value {
        use serde_json::Value as J;
        match v {
            J::Object(m) => J::Object(
                m.into_iter()
                    .filter(|(_, v)| !v.as_array().is_some_and(Vec::is_empty))
                    .map(|(k, v)| (k, without_empty_lists(v)))
                    .collect(),
            ),
            J::Array(a) => J::Array(a.into_iter().map(without_empty_lists).collect()),
            other => other,
        }
    }

    fn same(facts: &dyn Facts) {
        let json = facts.to_json();
        for (k, v) in json.as_object().unwrap() {
            let got = facts
                .field(k)
                .unwrap_or_else(|| panic!("field `{k}` not served"));
            let got = cel::Value::try_from(got.as_ref()).unwrap();
            assert_eq!(
                without_empty_lists(cel_to_json(&got)),
                without_empty_lists(v.clone()),
                "field `{k}`"
            );
        }
        assert!(facts.field("no_such_field").is_none());
        let mut names: Vec<String> = facts.all_fields();
        names.sort();
        let mut served: Vec<String> = json.as_object().unwrap().keys().cloned().collect();
        served.sort();
        // Every served name is a known field (absent ones are Options).
        assert!(
            served.iter().all(|s| names.contains(s)),
            "{served:?} vs {names:?}"
        );
        assert_eq!(
            facts.unknown(),
            json.get("unknown")
                .map_or(&[][..], |u| u.as_array().unwrap()),
            "`unknown` is served as Facts::unknown"
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

    /// Through the kinds' table: every resource of every kind in the demo
    /// estate and in the rules' base estate (which has what the demo lacks:
    /// a database read by the in-database collection).
    #[test]
    fn per_field_values_match_the_full_serialisation() {
        let mut seen: BTreeSet<ResourceKind> = BTreeSet::new();
        for file in ["fixtures/demo/snapshot.json", "fixtures/rules/base.json"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
            let text = std::fs::read_to_string(&path).unwrap();
            let snap = Snapshot::parse(&text, &path).unwrap();
            serves_every_field(&snap, &mut seen);
        }
        let untested: Vec<ResourceKind> = ResourceKind::ALL
            .into_iter()
            .filter(|k| kind(*k).scope() != Scope::Pair && !seen.contains(k))
            .collect();
        assert!(
            untested.is_empty(),
            "no resource of {untested:?} in the demo or the rules' base estate"
        );
    }

    fn serves_every_field(snap: &Snapshot, seen: &mut BTreeSet<ResourceKind>) {
        let mut config = Config::default();
        config.developers.groups = vec!["developers".into()];
        let directory = AccountDirectory::new(snap, &config);
        for a in &snap.accounts {
            let facts = account_facts(&directory, a, &config);
            let place = Place {
                account: a,
                account_facts: &facts,
                config: &config,
                region: None,
            };
            for r in &a.regions {
                let idx = RegionIndex::new(r);
                for k in ResourceKind::ALL {
                    let at = match kind(k).scope() {
                        Scope::Account => Place { ..place },
                        Scope::Region => Place {
                            region: Some(&idx),
                            ..place
                        },
                        Scope::Pair => continue,
                    };
                    kind(k)
                        .visit(&at, &mut |res| {
                            seen.insert(k);
                            same(res.facts);
                        })
                        .unwrap();
                }
            }
        }
        let side = |env: &str| -> Vec<&Account> {
            snap.accounts
                .iter()
                .filter(|a| a.environment == env)
                .collect()
        };
        let (left, right) = (side("test"), side("prod"));
        for pair in parity::service_pairs(
            ("test", &left),
            ("prod", &right),
            "service",
            &Default::default(),
        ) {
            same(&pair);
        }
    }
}
