//! Facts of test ↔ prod parity: for each service (named by the service tag
//! on DB clusters), the databases that serve it in each environment of a
//! pair. Test may serve several services from one shared cluster; the
//! cluster then appears under each service it serves.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use super::services;
use crate::snapshot::{Account, DbCluster, Region};

/// One database serving a service in one environment.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PairDatabase {
    pub id: String,
    pub arn: String,
    /// The account's name in dbaudit.toml.
    pub account: String,
    pub region: String,
    pub engine: String,
    pub engine_version: String,
    /// The major version (`15` of `15.4`, `5.7` of `5.7.mysql_aurora…`
    /// for MySQL 5.x), the part upgrades must keep equal across
    /// environments.
    pub engine_major: String,
    /// Absent (the comparison `error`) when the API's answer lacked it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iam_auth: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_encrypted: Option<bool>,
    pub serverless_v2: bool,
    /// The services it serves (more than one for a shared test cluster).
    pub services: Vec<String>,
    /// Watched parameters of its parameter group that have a value (empty
    /// when the group was not collected: a rule reading one then errors).
    pub parameters: crate::snapshot::Tags,
}

/// `resource` in `service_pair` rules: one service across two environments.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PairFacts {
    pub service: String,
    pub left_environment: String,
    pub right_environment: String,
    /// Databases serving the service in the left environment (e.g. test).
    pub left: Vec<PairDatabase>,
    /// Databases serving the service in the right environment (e.g. prod).
    pub right: Vec<PairDatabase>,
    /// `account/region/id (engine version, IAM auth on|off)` for each left
    /// database, `;`-separated, or `none`: for messages.
    pub left_summary: String,
    pub right_summary: String,
    /// The watched cluster parameters whose values differ between the
    /// sides (a parameter set on one side only counts). Absent when a
    /// side's parameter groups are unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter_differences: Option<Vec<ParameterDifference>>,
    /// The in-database collection read some database of the service on
    /// either side (docs/in-database.md); the role comparison applies only
    /// then.
    pub db_roles_collected: bool,
    /// How the service's DB users differ between the sides: the logins
    /// with `rds_iam` that may write the service's schema, each with the
    /// roles it acts as. Absent when a side's databases were not (all)
    /// read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_role_differences: Option<Vec<String>>,
    pub unknown: Vec<String>,
}

/// One parameter's values on each side of a pair.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ParameterDifference {
    pub name: String,
    /// `name: right-env db=value, …; left-env db=value, …` for messages.
    pub summary: String,
}

crate::celval::to_val_struct!(ParameterDifference { name, summary });

/// A database's value of a watched parameter, `(unset)` when it has none.
pub fn parameter_value(d: &PairDatabase, name: &str) -> String {
    d.parameters
        .get(name)
        .cloned()
        .unwrap_or_else(|| "(unset)".into())
}

/// The watched parameters that differ between the sides.
fn parameter_differences(
    (left_env, l): (&str, &[PairDatabase]),
    (right_env, r): (&str, &[PairDatabase]),
) -> Vec<ParameterDifference> {
    let mut names: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    for d in l.iter().chain(r) {
        names.extend(d.parameters.keys().map(String::as_str));
    }
    let value = parameter_value;
    names
        .into_iter()
        .filter(|n| {
            let all: std::collections::BTreeSet<String> =
                l.iter().chain(r).map(|d| value(d, n)).collect();
            all.len() > 1
        })
        .map(|n| {
            let side = |dbs: &[PairDatabase]| -> String {
                if dbs.len() <= LISTED {
                    return dbs
                        .iter()
                        .map(|d| format!("{}={}", d.id, value(d, n)))
                        .collect::<Vec<_>>()
                        .join(", ");
                }
                // Many databases (one service across hundreds of accounts):
                // each value once, with how many databases have it and a
                // few of them, so that a message stays short.
                let mut by_value: std::collections::BTreeMap<String, Vec<&str>> =
                    std::collections::BTreeMap::new();
                for d in dbs {
                    by_value.entry(value(d, n)).or_default().push(&d.id);
                }
                by_value
                    .iter()
                    .map(|(v, ids)| format!("{v} on {}", some_of(ids)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            ParameterDifference {
                name: n.to_string(),
                summary: format!("{n}: {right_env} {}; {left_env} {}", side(r), side(l)),
            }
        })
        .collect()
}

crate::celval::to_val_struct!(PairDatabase {
    id,
    arn,
    account,
    region,
    engine,
    engine_version,
    engine_major,
    iam_auth,
    storage_encrypted,
    serverless_v2,
    services,
    parameters,
});

/// The major version of an engine version string: the first component for
/// PostgreSQL 10+ and MySQL 8+ (`15.4` → `15`), the first two before that
/// (`9.6.22` → `9.6`, `5.7.mysql_aurora.2.11.2` → `5.7`).
pub fn engine_major(version: &str) -> String {
    let mut parts = version.split('.');
    let first = parts.next().unwrap_or_default();
    match first.parse::<u32>() {
        Ok(n) if n < 10 => match parts.next() {
            Some(second) if second.chars().all(|c| c.is_ascii_digit()) && !second.is_empty() => {
                format!("{first}.{second}")
            }
            _ => first.to_string(),
        },
        _ => first.to_string(),
    }
}

/// A database of one side; what could not be known about it goes to
/// `unknown` (prefixed with the database).
fn database(
    account: &Account,
    region: &Region,
    c: &DbCluster,
    service_tag: &str,
    unknown: &mut Vec<String>,
) -> PairDatabase {
    let mut why = Vec::new();
    let parameters = super::cluster_parameters(region, c, &mut why).unwrap_or_default();
    let iam_auth = super::known(
        c.iam_database_authentication_enabled,
        "IAMDatabaseAuthenticationEnabled",
        &mut why,
    );
    unknown.extend(
        why.into_iter()
            .map(|w| format!("{}/{}: {w}", account.name, c.id)),
    );
    PairDatabase {
        parameters,
        id: c.id.clone(),
        arn: c.arn.clone(),
        account: account.name.clone(),
        region: region.name.clone(),
        engine: c.engine.clone(),
        engine_version: c.engine_version.clone(),
        engine_major: engine_major(&c.engine_version),
        iam_auth,
        storage_encrypted: c.storage_encrypted,
        serverless_v2: c.serverless_v2.is_some(),
        services: services(&c.tags, service_tag),
    }
}

/// Databases of a side named one by one in messages; beyond, a side is
/// summarised (how many, in how many accounts, a few named).
const LISTED: usize = 3;

/// `n databases (a, …)`.
fn some_of(ids: &[&str]) -> String {
    // One named, the count said once: a message summarising both sides of
    // thousands of accounts stays within 300 characters.
    let first = ids.first().copied().unwrap_or_default();
    let more = if ids.len() > 1 { ", …" } else { "" };
    format!(
        "{} database{} ({first}{more})",
        ids.len(),
        if ids.len() == 1 { "" } else { "s" },
    )
}

fn summary(dbs: &[PairDatabase]) -> String {
    if dbs.is_empty() {
        return "none".to_string();
    }
    if dbs.len() > LISTED {
        let accounts: std::collections::BTreeSet<&str> =
            dbs.iter().map(|d| d.account.as_str()).collect();
        let ids: Vec<&str> = dbs.iter().map(|d| d.id.as_str()).collect();
        let iam_off = dbs.iter().filter(|d| d.iam_auth == Some(false)).count();
        let iam_unknown = dbs.iter().filter(|d| d.iam_auth.is_none()).count();
        let mut versions: std::collections::BTreeSet<String> = Default::default();
        for d in dbs {
            versions.insert(format!("{} {}", d.engine, d.engine_major));
        }
        return format!(
            "{} in {} account{}, {}; IAM auth off on {iam_off}{}",
            some_of(&ids),
            accounts.len(),
            if accounts.len() == 1 { "" } else { "s" },
            versions.into_iter().collect::<Vec<_>>().join(", "),
            if iam_unknown > 0 {
                format!(", unknown on {iam_unknown}")
            } else {
                String::new()
            }
        );
    }
    dbs.iter()
        .map(|d| {
            format!(
                "{}/{}/{} ({} {}, IAM auth {})",
                d.account,
                d.region,
                d.id,
                d.engine,
                d.engine_version,
                match d.iam_auth {
                    Some(true) => "on",
                    Some(false) => "off",
                    None => "unknown",
                }
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The service's DB users on one side: each login with `rds_iam` that may
/// write the service's schema in a database of the side's clusters, with
/// the roles it acts as. `Ok(None)`: the in-database collection did not run
/// for any of them; `Err`: some were not (all) read.
type DbRoles = BTreeMap<String, std::collections::BTreeSet<String>>;

fn db_roles(
    accounts: &[&Account],
    dbs: &[PairDatabase],
    schema: &str,
) -> Result<Option<DbRoles>, String> {
    let mut out: DbRoles = BTreeMap::new();
    let (mut read, mut unread) = (0, Vec::new());
    for d in dbs {
        let region = accounts
            .iter()
            .filter(|a| a.name == d.account)
            .flat_map(|a| &a.regions)
            .find(|r| r.name == d.region);
        let Some(pg) = region.and_then(|r| r.pg_databases.as_ref()) else {
            unread.push(format!("{}/{}: not read (in-database collection off)", d.account, d.id));
            continue;
        };
        let of_cluster: Vec<&crate::snapshot::PgDatabase> =
            pg.iter().filter(|p| p.cluster_id == d.id).collect();
        if of_cluster.is_empty() {
            unread.push(format!("{}/{}: no database read", d.account, d.id));
        }
        for p in of_cluster {
            if let Some(why) = &p.unreadable {
                unread.push(format!("{}/{}/{}: {why}", d.account, d.id, p.database));
                continue;
            }
            read += 1;
            let users = super::pg_database::iam_writers_of(p, schema);
            for (user, roles) in users {
                out.entry(user).or_default().extend(roles);
            }
        }
    }
    match (read, unread.is_empty()) {
        (0, _) if unread.iter().all(|u| u.ends_with("(in-database collection off)")) => Ok(None),
        (_, true) => Ok(Some(out)),
        _ => Err(unread.join("; ")),
    }
}

/// `user: roles` on each side where they differ.
fn role_differences(
    (left_env, l): (&str, &DbRoles),
    (right_env, r): (&str, &DbRoles),
) -> Vec<String> {
    let users: std::collections::BTreeSet<&String> = l.keys().chain(r.keys()).collect();
    let show = |roles: Option<&std::collections::BTreeSet<String>>| match roles {
        None => "no such user".to_string(),
        Some(r) if r.is_empty() => "no roles".to_string(),
        Some(r) => r.iter().cloned().collect::<Vec<_>>().join(", "),
    };
    users
        .into_iter()
        .filter(|u| l.get(*u) != r.get(*u))
        .map(|u| {
            format!(
                "{u}: {right_env} {}; {left_env} {}",
                show(r.get(u)),
                show(l.get(u))
            )
        })
        .collect()
}

/// Every service of either environment, with its databases on each side.
pub fn service_pairs(
    left: (&str, &[&Account]),
    right: (&str, &[&Account]),
    service_tag: &str,
    schemas: &BTreeMap<String, String>,
) -> Vec<PairFacts> {
    type Sides = (Vec<PairDatabase>, Vec<PairDatabase>, Vec<String>);
    let mut by_service: BTreeMap<String, Sides> = BTreeMap::new();
    for (side, accounts) in [(0, left.1), (1, right.1)] {
        for account in accounts {
            for region in &account.regions {
                for c in &region.db_clusters {
                    let mut unknown = Vec::new();
                    let db = database(account, region, c, service_tag, &mut unknown);
                    for s in &db.services {
                        let entry = by_service.entry(s.clone()).or_default();
                        let list = if side == 0 {
                            &mut entry.0
                        } else {
                            &mut entry.1
                        };
                        list.push(db.clone());
                        entry.2.extend(unknown.iter().cloned());
                    }
                }
            }
        }
    }
    by_service
        .into_iter()
        .map(|(service, (mut l, mut r, unknown))| {
            // By ARN: the first on a side is the finding's anchor, stable
            // whatever order the snapshot lists them in.
            l.sort_by(|a, b| a.arn.cmp(&b.arn));
            r.sort_by(|a, b| a.arn.cmp(&b.arn));
            // Unknown parameters would read as differences: leave it absent.
            let known = unknown.is_empty() && !l.is_empty() && !r.is_empty();
            let schema = schemas.get(&service).unwrap_or(&service);
            let mut unknown = unknown;
            let (lr, rr) = (db_roles(left.1, &l, schema), db_roles(right.1, &r, schema));
            let db_roles_collected = matches!(lr, Ok(Some(_)) | Err(_))
                || matches!(rr, Ok(Some(_)) | Err(_));
            let db_role_differences = match (lr, rr) {
                (Ok(Some(a)), Ok(Some(b))) if !l.is_empty() && !r.is_empty() => {
                    Some(role_differences((left.0, &a), (right.0, &b)))
                }
                (a, b) => {
                    for (env, dbs, side) in [(left.0, &l, a), (right.0, &r, b)] {
                        match side {
                            Err(e) => unknown.push(format!("DB roles in {env}: {e}")),
                            Ok(None) if !dbs.is_empty() => unknown.push(format!(
                                "DB roles in {env}: its databases were not read (the in-database collection is off there)"
                            )),
                            _ => {}
                        }
                    }
                    None
                }
            };
            PairFacts {
                db_roles_collected,
                db_role_differences,
                parameter_differences: known
                    .then(|| parameter_differences((left.0, &l), (right.0, &r))),
                service,
                left_environment: left.0.to_string(),
                right_environment: right.0.to_string(),
                left_summary: summary(&l),
                right_summary: summary(&r),
                left: l,
                right: r,
                unknown,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{PairDatabase, engine_major, summary};

    /// A side of one service across many accounts is summarised in a
    /// bounded length whatever the count (a parity message holds two).
    #[test]
    fn a_side_of_thousands_of_databases_stays_short() {
        for n in [4, 5_000, 50_000] {
            let dbs: Vec<PairDatabase> = (0..n)
                .map(|i| PairDatabase {
                    id: format!("prod-db-{i:06}"),
                    arn: format!("arn:aws:rds:eu-west-1:1:cluster:prod-db-{i:06}"),
                    account: format!("acct-{i:05}"),
                    region: "eu-west-1".into(),
                    engine: "aurora-postgresql".into(),
                    engine_version: "16.4".into(),
                    engine_major: "16".into(),
                    iam_auth: Some(false),
                    storage_encrypted: Some(true),
                    serverless_v2: true,
                    services: vec!["svc".into()],
                    parameters: Default::default(),
                })
                .collect();
            let s = summary(&dbs);
            assert!(s.chars().count() <= 100, "{} chars: {s}", s.chars().count());
            assert!(s.starts_with(&format!("{n} databases (prod-db-000000, …) in {n} accounts")));
        }
    }

    #[test]
    fn major_versions() {
        assert_eq!(engine_major("15.4"), "15");
        assert_eq!(engine_major("16.2"), "16");
        assert_eq!(engine_major("9.6.22"), "9.6");
        assert_eq!(engine_major("5.7.mysql_aurora.2.11.2"), "5.7");
        assert_eq!(engine_major("8.0.mysql_aurora.3.05.2"), "8.0");
        assert_eq!(engine_major(""), "");
    }
}

super::cel_facts!(PairFacts {
    service,
    left_environment,
    right_environment,
    left,
    right,
    left_summary,
    right_summary,
    parameter_differences,
    db_roles_collected,
    db_role_differences,
    unknown,
});

/// One service across the two environments of a pair: listed by the parity
/// evaluation over both environments' accounts ([`service_pairs`]), never
/// per account.
pub struct PairKind;

impl super::Kind for PairKind {
    fn scope(&self) -> super::Scope {
        super::Scope::Pair
    }

    fn service(&self) -> Option<crate::vocab::Service> {
        Some(crate::vocab::Service::Rds)
    }

    fn json_schema(&self) -> serde_json::Value {
        super::kind::schema::<PairFacts>()
    }

    /// Parity findings point at the service's clusters.
    fn arn_of_every(&self, account: &Account, region: &str) -> String {
        super::kind::rds_arn(account, region, "cluster")
    }

    fn visit(
        &self,
        _at: &super::Place<'_>,
        _each: &mut dyn FnMut(super::Resource<'_>),
    ) -> Result<(), String> {
        Ok(())
    }
}
