//! The collector registry: every service dbaudit collects is one entry, and
//! account collection iterates it. A collector says which service it is
//! (its scope, regional or global, comes from the vocabulary), whether it
//! runs for an account, and how to collect; what it returns is a patch that
//! writes its own section of the account (its fields of a region, or its
//! account-level data), so merging and task counts follow from the table.

use std::future::Future;
use std::pin::Pin;

use aws_config::SdkConfig;

use super::{Calls, ReadOnlyGuard};
use crate::snapshot::{Account, Gap, Region};
use crate::vocab::Service;

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What a collection task gets: the account's SDK configuration (with the
/// region set for regional services), the guard every client carries, and
/// its [`Calls`].
pub(crate) struct Task {
    pub conf: SdkConfig,
    pub guard: ReadOnlyGuard,
    pub account_id: String,
    pub calls: Calls,
}

/// What a task returns: its gaps, and how to write its section.
pub(crate) struct Done {
    pub gaps: Vec<Gap>,
    pub apply: Box<dyn FnOnce(&mut Account) + Send>,
}

impl Task {
    /// Finishes a regional task: `store` writes its fields of the region.
    pub fn into_region(self, store: impl FnOnce(&mut Region) + Send + 'static) -> Done {
        let region = self.calls.region().unwrap_or_default().to_string();
        Done {
            gaps: self.calls.gaps,
            apply: Box::new(move |account| {
                if let Some(r) = account.regions.iter_mut().find(|r| r.name == region) {
                    store(r);
                }
            }),
        }
    }

    /// Finishes a global task: `store` writes its part of the account.
    pub fn into_account(self, store: impl FnOnce(&mut Account) + Send + 'static) -> Done {
        Done {
            gaps: self.calls.gaps,
            apply: Box::new(store),
        }
    }
}

/// The account-level choices a collector may depend on.
pub(crate) struct Plan {
    pub collect_scps: bool,
}

pub(crate) trait Collector: Sync {
    fn service(&self) -> Service;

    /// Other services its task reads, because what it reads there depends
    /// on its own answers (the RDS collector describes the master secrets
    /// its clusters name).
    fn also_reads(&self) -> &'static [Service] {
        &[]
    }

    /// Whether it runs for this account at all.
    fn wanted(&self, _plan: &Plan) -> bool {
        true
    }

    fn run(&self, task: Task) -> BoxFuture<Done>;
}

/// Builds a service's client from a [`Task`], with the read-only guard.
macro_rules! client {
    ($sdk:ident, $task:expr) => {
        $sdk::Client::from_conf(
            $sdk::config::Builder::from(&$task.conf)
                .interceptor($task.guard.clone())
                .build(),
        )
    };
}
pub(crate) use client;

/// A regional collector's section of the region, named once: generates the
/// module's `store(Region, &mut Region)`, which moves exactly these fields
/// of what the collector gathered into the account's region, and
/// `SECTION`, their names (a test checks that the sections cover the
/// region's fields, each once).
macro_rules! region_section {
    ($($field:ident),+ $(,)?) => {
        /// Moves this collector's section into the account's region.
        pub fn store(from: $crate::snapshot::Region, into: &mut $crate::snapshot::Region) {
            $(into.$field = from.$field;)+
        }

        /// The fields of the region this collector writes.
        #[cfg(test)]
        pub const SECTION: &[&str] = &[$(stringify!($field)),+];
    };
}
pub(crate) use region_section;

/// A regional collector: the module's `collect(&Client, &mut Calls) ->
/// Region` and `store` (from [`region_section!`]) with the SDK crate's
/// client.
macro_rules! regional_collector {
    ($name:ident, $service:expr, $sdk:ident) => {
        pub(super) struct $name;

        impl $crate::collect::registry::Collector for $name {
            fn service(&self) -> $crate::vocab::Service {
                $service
            }

            fn run(
                &self,
                mut task: $crate::collect::registry::Task,
            ) -> $crate::collect::registry::BoxFuture<$crate::collect::registry::Done> {
                Box::pin(async move {
                    let client = $crate::collect::registry::client!($sdk, task);
                    let data = collect(&client, &mut task.calls).await;
                    task.into_region(move |r| store(data, r))
                })
            }
        }
    };
}
pub(crate) use regional_collector;

/// Every collector, in the order their tasks start.
pub(crate) static REGISTRY: &[&dyn Collector] = &[
    &super::ec2::Ec2,
    &super::rds::Rds,
    &super::eks::Eks,
    &super::iam::IamCollector,
    &super::organizations::Organizations,
];

/// The services the registry collects (for tests and docs).
pub fn collected_services() -> Vec<Service> {
    REGISTRY
        .iter()
        .flat_map(|c| std::iter::once(c.service()).chain(c.also_reads().iter().copied()))
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::snapshot::{EgressOnlyInternetGateway, GlobalCluster, Region, Snapshot};

    /// Every field of a region but its name is in exactly one collector's
    /// section: a new field that no collector writes, or that two would
    /// overwrite, fails here.
    #[test]
    fn each_field_of_a_region_is_in_one_section() {
        let schema = serde_json::to_value(schemars::schema_for!(Region)).unwrap();
        let mut fields: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .filter(|f| *f != "name")
            .collect();
        fields.sort_unstable();
        // Written by the in-database collection (docs/in-database.md), not
        // by a collector of the AWS registry.
        const IN_DATABASE: &[&str] = &["pg_databases"];
        let mut sections: Vec<&str> = [
            super::super::ec2::SECTION,
            super::super::rds::SECTION,
            super::super::eks::SECTION,
            IN_DATABASE,
        ]
        .concat();
        sections.sort_unstable();
        assert_eq!(sections, fields);
    }

    /// The regional collectors' sections together are the whole region:
    /// each demo region, rebuilt from nothing but its sections, is itself
    /// again (a field no section names would come back empty). The demo
    /// has no global cluster or egress-only gateway; one of each is added.
    #[test]
    fn the_regional_sections_cover_the_region() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut snapshot = Snapshot::load(&root.join("fixtures/demo/snapshot.json")).unwrap();
        let regions: Vec<&mut Region> = snapshot
            .accounts
            .iter_mut()
            .flat_map(|a| &mut a.regions)
            .collect();
        assert!(!regions.is_empty());
        for r in regions {
            r.global_clusters.push(GlobalCluster::default());
            r.egress_only_internet_gateways
                .push(EgressOnlyInternetGateway::default());
            let r = &*r;
            let mut rebuilt = Region {
                name: r.name.clone(),
                ..Region::default()
            };
            super::super::ec2::store(r.clone(), &mut rebuilt);
            super::super::rds::store(r.clone(), &mut rebuilt);
            super::super::eks::store(r.clone(), &mut rebuilt);
            assert_eq!(
                serde_json::to_value(&rebuilt).unwrap(),
                serde_json::to_value(r).unwrap(),
                "{}",
                r.name
            );
        }
    }
}
