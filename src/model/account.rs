//! Facts of an account (`resource` in `account` rules, `account` in every
//! rule): other accounts sharing its id, databases per service, manual
//! snapshots and who may restore them.

use super::*;

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
            let shared_with = s.shared_with();
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
                public: s.public(),
                shared_with,
                shared_outside,
            });
        }
    }
    complete.then_some(out)
}

/// Every account dbaudit knows of (the snapshot's, then those declared in
/// the configuration), built once per run: each account's facts look up the
/// others here (a scan of every account per account is quadratic: 100
/// million steps at 10,000 accounts).
#[derive(Debug, Default)]
pub struct AccountDirectory {
    /// Account name → (environment, account id); the snapshot's first.
    by_name: BTreeMap<String, (String, String)>,
    /// Account id → (name, environment) of the first account with it.
    by_id: BTreeMap<String, (String, String)>,
    /// Account id → the names with it (from `by_name`).
    names_of_id: std::collections::HashMap<String, Vec<String>>,
}

impl AccountDirectory {
    pub fn new(snapshot: &Snapshot, config: &Config) -> AccountDirectory {
        let listed = || {
            (snapshot.accounts.iter())
                .map(|a| (&a.name, &a.environment, &a.account_id))
                .chain(
                    (config.accounts.iter()).map(|a| (&a.name, &a.environment, &a.account_id)),
                )
        };
        let mut d = AccountDirectory::default();
        for (name, env, id) in listed() {
            d.by_name
                .entry(name.clone())
                .or_insert((env.clone(), id.clone()));
            if !id.is_empty() {
                d.by_id
                    .entry(id.clone())
                    .or_insert((name.clone(), env.clone()));
            }
        }
        for (name, (_, id)) in &d.by_name {
            if !id.is_empty() {
                d.names_of_id.entry(id.clone()).or_default().push(name.clone());
            }
        }
        d
    }
}

pub fn account_facts(
    directory: &AccountDirectory,
    account: &Account,
    config: &Config,
) -> AccountFacts {
    // Other accounts with this one's id in another environment, by name.
    let shared_with = (directory.names_of_id.get(&account.account_id).into_iter())
        .flatten()
        .filter(|name| **name != account.name)
        .filter_map(|name| {
            let (env, _) = &directory.by_name[name];
            (*env != account.environment).then(|| AccountRef {
                name: name.clone(),
                environment: env.clone(),
            })
        })
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
    let manual_snapshots = snapshot_facts(account, &directory.by_id, &mut unknown);
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

super::cel_facts!(AccountFacts {
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

/// The account itself: one resource, its facts computed once for every
/// rule (they are also `account` in all rules).
pub struct AccountKind;

impl super::Kind for AccountKind {
    fn scope(&self) -> super::Scope {
        super::Scope::Account
    }

    fn service(&self) -> Option<Service> {
        None
    }

    fn json_schema(&self) -> serde_json::Value {
        super::kind::schema::<AccountFacts>()
    }

    fn arn_of_every(&self, account: &Account, _region: &str) -> String {
        format!(
            "arn:{}:iam::{}:root",
            super::kind::partition(account),
            super::kind::account_key(account)
        )
    }

    fn id_of_every(&self, _region: &str, account: &Account) -> String {
        account.name.clone()
    }

    fn visit(
        &self,
        at: &super::Place<'_>,
        each: &mut dyn FnMut(super::Resource<'_>),
    ) -> Result<(), String> {
        each(super::Resource {
            id: &at.account.name,
            arn: &self.arn_of_every(at.account, "*"),
            facts: at.account_facts,
        });
        Ok(())
    }
}
