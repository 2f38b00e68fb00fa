//! The resource kinds as one table: what evaluation needs to know of a kind
//! (its scope, how its resources are listed with their facts, the ARN that
//! stands for all of them, the service whose failure hides them, the JSON
//! Schema of its facts) is declared by the kind's own `Kind`
//! implementation, and [`kind`] maps each `ResourceKind` to it. Both are
//! expanded from the one list of kinds in `facts.rs`, so the match is
//! exhaustive: a kind without an implementation does not compile.

use crate::celval::BoxVal;
use crate::config::Config;
use crate::facts::ResourceKind;
use crate::snapshot::{Account, Gap};
use crate::vocab::Service;

use super::{AccountFacts, CelFacts, RegionIndex};

/// Where a kind's resources live, which decides when evaluation lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Listed once per account (the account itself, its IAM principals).
    Account,
    /// Listed once per region of an account.
    Region,
    /// Across the accounts of two environments (parity); listed by the
    /// parity evaluation, never per account.
    Pair,
}

/// One resource of a kind as evaluation sees it.
pub struct Resource<'a> {
    pub id: &'a str,
    pub arn: &'a str,
    pub facts: &'a dyn Facts,
}

/// A resource's facts, whatever its kind: one top-level field at a time,
/// the names of all of them, and why some are absent.
pub trait Facts {
    fn field(&self, name: &str) -> Option<BoxVal>;
    fn all_fields(&self) -> Vec<String>;
    fn unknown(&self) -> &[String];
    /// All of them as JSON, as `CelFacts::field` serves them one by one.
    fn to_json(&self) -> serde_json::Value;
}

impl<T: CelFacts> Facts for T {
    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    fn field(&self, name: &str) -> Option<BoxVal> {
        CelFacts::field(self, name)
    }

    fn all_fields(&self) -> Vec<String> {
        super::all_fields::<T>()
    }

    fn unknown(&self) -> &[String] {
        CelFacts::unknown(self)
    }
}

/// What a kind's listing can see: the account, its facts, the
/// configuration, and for region-scoped kinds the region's index.
pub struct Place<'a> {
    pub account: &'a Account,
    pub account_facts: &'a AccountFacts,
    pub config: &'a Config,
    pub region: Option<&'a RegionIndex<'a>>,
}

impl Place<'_> {
    /// The region's index; a region-scoped kind is only ever listed with
    /// one.
    pub fn region(&self) -> &RegionIndex<'_> {
        self.region
            .expect("region-scoped kinds are listed per region")
    }

    /// The recorded failure of `operation` that applies here, as a
    /// message: why a listing the snapshot lacks is missing.
    pub fn failed(&self, operation: &str) -> Option<String> {
        let region = self.region.map(|r| r.region.name.as_str());
        self.account
            .gaps
            .iter()
            .find(|g| {
                g.operation == operation
                    && match (g.region.as_deref(), region) {
                        (None, _) | (_, None) => true,
                        (Some(g), Some(r)) => g == r,
                    }
            })
            .map(gap_message)
    }
}

/// A resource kind rules are evaluated against.
pub trait Kind: Sync {
    fn scope(&self) -> Scope;

    /// The AWS service whose collection produces its resources: a failed
    /// listing there (not a fact-level one) may hide some of them, so every
    /// rule of the kind reports it.
    fn service(&self) -> Option<Service>;

    /// The JSON Schema of its facts (`dbaudit rules fields`, and the names
    /// rule loading checks).
    fn json_schema(&self) -> serde_json::Value;

    /// The ARN that stands for every resource of the kind of an account,
    /// in one region or `*`: where a finding about resources that could not
    /// be listed points.
    fn arn_of_every(&self, account: &Account, region: &str) -> String;

    /// The resource id that stands for every resource of the kind, in one
    /// region or `*`.
    fn id_of_every(&self, region: &str, _account: &Account) -> String {
        format!("{region}/*")
    }

    /// Lists the kind's resources at `at` and hands each, with its facts,
    /// to `each`. `Err(why)`: they could not be listed there (a fact-level
    /// listing failed, or the snapshot predates it), and every rule of the
    /// kind is an error saying why. Pair-scoped kinds list nothing here.
    fn visit(&self, at: &Place<'_>, each: &mut dyn FnMut(Resource<'_>)) -> Result<(), String>;
}

macro_rules! kind_table {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal, $module:ident::$imp:ident;)+) => {
        /// The implementation of a kind.
        pub fn kind(k: ResourceKind) -> &'static dyn Kind {
            match k {
                $(ResourceKind::$variant => &super::$module::$imp,)+
            }
        }
    };
}
crate::facts::resource_kinds!(kind_table);

/// The message of an error finding caused by a recorded failure.
pub fn gap_message(gap: &Gap) -> String {
    format!(
        "data not collected: {} {} failed{} with {}: {}",
        gap.service,
        gap.operation,
        gap.region
            .as_deref()
            .map(|r| format!(" in {r}"))
            .unwrap_or_default(),
        gap.code,
        gap.message
    )
}

/// The ARN of every RDS resource of one type (`cluster`, `db`, …) of an
/// account.
pub(super) fn rds_arn(account: &Account, region: &str, what: &str) -> String {
    format!(
        "arn:{}:rds:{region}:{}:{what}:*",
        partition(account),
        account.account_id
    )
}

/// The account's partition (`aws` when the snapshot does not say).
pub fn partition(account: &Account) -> &str {
    if account.partition.is_empty() {
        "aws"
    } else {
        &account.partition
    }
}

/// What identifies the account in ARNs and fingerprints: its id, or its
/// name when the id is not known (an account that could not be reached).
pub fn account_key(account: &Account) -> &str {
    if account.account_id.is_empty() {
        &account.name
    } else {
        &account.account_id
    }
}

/// The JSON Schema of a kind's facts.
pub(super) fn schema<T: schemars::JsonSchema>() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(T)).expect("schema serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind has its own ARN for "all of them", in the region asked,
    /// and the JSON Schema of its facts.
    #[test]
    fn every_kind_has_its_own_arn_of_every_resource_and_a_schema() {
        let account = |partition: &str, id: &str| Account {
            name: "prod".into(),
            partition: partition.into(),
            account_id: id.into(),
            ..Default::default()
        };
        let mut seen = std::collections::BTreeSet::new();
        for k in ResourceKind::ALL {
            let arn = kind(k).arn_of_every(&account("aws", "222222222222"), "eu-west-1");
            assert!(
                arn.starts_with("arn:aws:") && arn.contains("222222222222"),
                "{k}: {arn}"
            );
            if kind(k).scope() == Scope::Region {
                assert!(arn.contains(":eu-west-1:"), "{k}: {arn}");
            }
            // Parity findings point at clusters: the one shared ARN.
            if k != ResourceKind::ServicePair {
                assert!(seen.insert(arn.clone()), "{k} shares {arn}");
            }
            assert!(kind(k).json_schema()["properties"].is_object(), "{k}");
        }
        assert_eq!(
            kind(ResourceKind::DbProxy).arn_of_every(&account("", "1"), "*"),
            "arn:aws:rds:*:1:db-proxy:*"
        );
        assert_eq!(
            kind(ResourceKind::DbInstance).arn_of_every(&account("aws-cn", "1"), "cn-north-1"),
            "arn:aws-cn:rds:cn-north-1:1:db:*"
        );
    }
}
