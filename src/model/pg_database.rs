//! A PostgreSQL database inside a DB cluster as a resource kind (`resource`
//! in `pg_database` rules), from what the in-database collection read
//! (`Region::pg_databases`), composed with the IAM engine: which developer
//! may connect as which DB user (`rds-db:connect`), and what that user may
//! then do through every role it can act as.
//!
//! A user acts as a role when it may `SET ROLE` to it through a chain of
//! grants with SET, or use its privileges through such a role's chain of
//! grants with INHERIT (PostgreSQL 16+: each grant's options; before 16:
//! the member's `rolinherit`, and SET always). Counting SET ROLE, not only
//! what `has_table_privilege` reports (inheritance alone), is deliberate: a
//! developer who can `SET ROLE app_rw` can write.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use schemars::JsonSchema;
use serde::Serialize;

use super::{Kind, Place, RegionIndex, Resource, Scope};
use crate::iam::{Decision, Principal};
use crate::snapshot::{Account, PgDatabase};
use crate::vocab::Service;

/// The superuser RDS itself signs in as (managed by AWS, not a customer's).
const RDS_ADMIN: &str = "rdsadmin";

/// Logins AWS creates and uses itself in RDS and Aurora PostgreSQL.
const AWS_OWN: [&str; 4] = ["rdsadmin", "rdsrepladmin", "rdstopmgr", "rdsproxyadmin"];

/// Table privileges that change data.
const WRITES: [&str; 4] = ["INSERT", "UPDATE", "DELETE", "TRUNCATE"];

/// Facts of one database.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PgDatabaseFacts {
    /// `CLUSTER/DATABASE`.
    pub id: String,
    /// The cluster's ARN followed by `/DATABASE`.
    pub arn: String,
    pub region: String,
    pub cluster_id: String,
    pub database: String,
    /// Login roles, with what they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_roles: Option<Vec<LoginRole>>,
    /// Login roles other than the cluster's master user and RDS's own
    /// `rdsadmin` that are superusers or act as `rds_superuser`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub superuser_logins: Option<Vec<String>>,
    /// PUBLIC (every role) may create objects in schema `public`
    /// (PostgreSQL 15 stopped granting it in new databases; upgraded ones
    /// keep it). `false` when there is no schema `public`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_create_on_public: Option<bool>,
    /// What each login role may change, through every role it acts as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writers: Option<Vec<Write>>,
    /// Developers (the configuration's `[developers]`) the IAM engine lets
    /// connect as one of the database's IAM-enabled users. Absent when the
    /// account's IAM was not collected or the cluster's resource id is
    /// unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub developer_connects: Option<Vec<Connect>>,
    /// The two hops joined: a developer who may connect as a user that may
    /// write. Absent when either hop is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub developer_writes: Option<Vec<DeveloperWrite>>,
    /// Login roles that sign in with a password (not members of
    /// `rds_iam`), other than the master user and AWS's own roles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_logins: Option<Vec<String>>,
    /// What application roles (IRSA) may do outside their own service's
    /// schema through the DB users IAM lets them connect as, or as
    /// `rds_superuser`, CREATEROLE or CREATEDB. Absent when IAM, the
    /// resource id or an application's service is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_violations: Option<Vec<AppViolation>>,
    /// DB users a principal may connect as (named in its policy and
    /// allowed by the IAM engine) that are not logins with `rds_iam` in
    /// the cluster. The cluster's roles are shared by its databases, so
    /// each database reports the same.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_iam_users: Option<Vec<String>>,
    /// `rds.force_ssl` as the server reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_ssl: Option<String>,
    pub unknown: Vec<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LoginRole {
    pub name: String,
    /// Member of `rds_iam`: signs in with an IAM token.
    pub rds_iam: bool,
    /// A superuser, or acts as `rds_superuser`.
    pub superuser: bool,
    pub createrole: bool,
    pub createdb: bool,
    pub bypassrls: bool,
}

/// A change a login role may make.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord)]
pub struct Write {
    pub user: String,
    /// The chain of roles it acts through (`dev_ro → app_rw`), the user
    /// itself when direct, `PUBLIC` for grants to everyone.
    pub via: String,
    /// `INSERT on 3 tables of orders`, `CREATE on schema orders`, `owns
    /// schema orders`, `default UPDATE on future tables of alice in
    /// orders`, `superuser`.
    pub what: String,
    /// The schema concerned (empty for superuser).
    pub schema: String,
}

/// A developer allowed to connect as a DB user, and the statement that
/// allows it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Connect {
    pub principal: String,
    pub db_user: String,
    /// `allow`, or `conditional` (allowed under conditions the snapshot
    /// cannot decide: counted, never assumed away).
    pub decision: String,
    pub statements: Vec<String>,
}

/// Both hops: IAM lets `principal` connect as `db_user`, and `db_user`
/// may make `what` through `via`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DeveloperWrite {
    pub principal: String,
    pub db_user: String,
    pub statements: Vec<String>,
    pub via: String,
    pub what: String,
    /// One line for messages.
    pub summary: String,
}

/// An application role's DB user doing more than its service needs.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AppViolation {
    pub principal: String,
    pub db_user: String,
    pub service: String,
    /// The schema it should write to (its service's).
    pub schema: String,
    /// One line for messages.
    pub summary: String,
}

crate::celval::to_val_struct!(AppViolation {
    principal,
    db_user,
    service,
    schema,
    summary
});

super::cel_facts!(PgDatabaseFacts {
    id,
    arn,
    region,
    cluster_id,
    database,
    login_roles,
    superuser_logins,
    public_create_on_public,
    writers,
    developer_connects,
    developer_writes,
    password_logins,
    app_violations,
    missing_iam_users,
    force_ssl,
    unknown,
});
crate::celval::to_val_struct!(LoginRole {
    name,
    rds_iam,
    superuser,
    createrole,
    createdb,
    bypassrls
});
crate::celval::to_val_struct!(Write {
    user,
    via,
    what,
    schema
});
crate::celval::to_val_struct!(Connect {
    principal,
    db_user,
    decision,
    statements
});
crate::celval::to_val_struct!(DeveloperWrite {
    principal,
    db_user,
    statements,
    via,
    what,
    summary
});

/// Each grant's two options for `member`: (inherit, set). PostgreSQL 16+
/// records both per grant; before 16 the member's `rolinherit` decides
/// inheritance and SET ROLE is always allowed.
fn options(db: &PgDatabase, g: &crate::snapshot::PgMembership) -> (bool, bool) {
    let inherit = g.inherit.unwrap_or_else(|| {
        db.roles
            .iter()
            .find(|r| r.name == g.member)
            .is_none_or(|r| r.inherit)
    });
    (inherit, g.set.unwrap_or(true))
}

/// Whose privileges `user` may use: role → the shortest chain that reaches
/// it. As PostgreSQL decides it: the user may `SET ROLE` to every role a
/// chain of grants with SET leads to (itself included), and each of those
/// uses the privileges of every role a chain of grants with INHERIT leads
/// to. So a chain may switch from SET hops to INHERIT hops, never back: an
/// inherited role's own SET ROLE rights are not the user's.
fn acts_as(db: &PgDatabase, user: &str) -> BTreeMap<String, Vec<String>> {
    let mut reached: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // (role, may still SET ROLE onwards): breadth first, so chains are
    // shortest; a role reached by SET is visited again if first reached by
    // inheritance only.
    let mut seen: BTreeSet<(String, bool)> = BTreeSet::new();
    reached.insert(user.to_string(), vec![user.to_string()]);
    seen.insert((user.to_string(), true));
    let mut queue = VecDeque::from([(user.to_string(), true, vec![user.to_string()])]);
    while let Some((m, setting, chain)) = queue.pop_front() {
        for g in db.memberships.iter().filter(|g| g.member == m) {
            let (inherit, set) = options(db, g);
            for (ok, next) in [(setting && set, true), (inherit, false)] {
                if !ok || !seen.insert((g.role.clone(), next)) {
                    continue;
                }
                let mut c = chain.clone();
                c.push(g.role.clone());
                reached.entry(g.role.clone()).or_insert_with(|| c.clone());
                queue.push_back((g.role.clone(), next, c));
            }
        }
    }
    reached
}

/// Whether `user` is a member of `role` through any chain of grants,
/// whatever their options (`pg_has_role(user, role, 'MEMBER')`): RDS signs
/// in members of `rds_iam` with IAM tokens, and membership of
/// `rds_superuser` is treated as its powers (the conservative reading).
fn member_of(db: &PgDatabase, user: &str, role: &str) -> bool {
    membership_chain(db, user, role).is_some()
}

/// The shortest chain of grants, whatever their options, from `user` to
/// `role`.
fn membership_chain(db: &PgDatabase, user: &str, role: &str) -> Option<Vec<String>> {
    let mut chains: BTreeMap<&str, Vec<String>> = BTreeMap::from([(user, vec![user.to_string()])]);
    let mut queue = VecDeque::from([user]);
    while let Some(m) = queue.pop_front() {
        if m == role {
            return chains.remove(m);
        }
        for g in db.memberships.iter().filter(|g| g.member == m) {
            if !chains.contains_key(g.role.as_str()) {
                let mut c = chains[m].clone();
                c.push(g.role.clone());
                chains.insert(g.role.as_str(), c);
                queue.push_back(g.role.as_str());
            }
        }
    }
    None
}

/// What a role may change by itself (grants to it, ownership, default
/// privileges naming it).
fn direct_writes(db: &PgDatabase, role: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for g in db.grants.iter().filter(|g| g.grantee == role) {
        match g.on.as_str() {
            "tables" if WRITES.contains(&g.privilege.as_str()) => out.push((
                format!("{} on {} tables of {}", g.privilege, g.tables, g.schema),
                g.schema.clone(),
            )),
            "schema" if g.privilege == "CREATE" => {
                out.push((format!("CREATE on schema {}", g.schema), g.schema.clone()))
            }
            _ => {}
        }
    }
    for s in &db.schemas {
        if s.owner == role {
            out.push((format!("owns schema {}", s.name), s.name.clone()));
        }
        if s.table_owners.iter().any(|o| o == role) {
            out.push((format!("owns tables of {}", s.name), s.name.clone()));
        }
    }
    for d in db.default_privileges.iter().filter(|d| d.grantee == role) {
        if WRITES.contains(&d.privilege.as_str()) || d.privilege == "CREATE" {
            let schema = d.schema.clone().unwrap_or_default();
            out.push((
                format!(
                    "default {} on future {} of {}{}",
                    d.privilege,
                    d.object_type,
                    d.owner,
                    d.schema
                        .as_deref()
                        .map(|s| format!(" in {s}"))
                        .unwrap_or_default()
                ),
                schema,
            ));
        }
    }
    out
}

/// Every change each login role may make.
fn writers(db: &PgDatabase) -> Vec<Write> {
    let superusers: BTreeSet<&str> = db
        .roles
        .iter()
        .filter(|r| r.superuser)
        .map(|r| r.name.as_str())
        .collect();
    let mut out = BTreeSet::new();
    for user in db.roles.iter().filter(|r| r.login) {
        let mut reach = acts_as(db, &user.name);
        reach.insert("PUBLIC".into(), vec!["PUBLIC".into()]);
        if let Some(chain) = membership_chain(db, &user.name, "rds_superuser") {
            reach.entry("rds_superuser".into()).or_insert(chain);
        }
        for (role, chain) in &reach {
            let via = chain.join(" → ");
            if superusers.contains(role.as_str()) || role == "rds_superuser" {
                out.insert(Write {
                    user: user.name.clone(),
                    via: via.clone(),
                    what: "superuser".into(),
                    schema: String::new(),
                });
            }
            for (what, schema) in direct_writes(db, role) {
                out.insert(Write {
                    user: user.name.clone(),
                    via: via.clone(),
                    what,
                    schema,
                });
            }
        }
    }
    out.into_iter().collect()
}

/// The logins with `rds_iam` that may write `schema` in `db`, each with the
/// roles it acts as (itself left out): a service's DB users, for parity.
pub fn iam_writers_of(db: &PgDatabase, schema: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for w in writers(db) {
        if w.schema != schema {
            continue;
        }
        if !member_of(db, &w.user, "rds_iam") {
            continue;
        }
        let reach = acts_as(db, &w.user);
        out.entry(w.user.clone()).or_insert_with(|| {
            reach
                .keys()
                .filter(|r| **r != w.user && *r != "rds_iam")
                .cloned()
                .collect()
        });
    }
    out
}

/// Every (login, change) of database `name` of a region, as the facts
/// derive them: for tests against the server's own answers.
pub fn writes_of(region: &crate::snapshot::Region, name: &str) -> Vec<(String, String)> {
    region
        .pg_databases
        .iter()
        .flatten()
        .filter(|d| d.database == name)
        .flat_map(writers)
        .map(|w| (w.user, w.what))
        .collect()
}

/// What a database lives in: an Aurora cluster, or a standalone RDS for
/// PostgreSQL instance (`PgDatabase::cluster_id` names either).
struct Host<'a> {
    arn: String,
    resource_id: Option<&'a str>,
    master: Option<&'a str>,
    instance: bool,
}

impl<'a> Host<'a> {
    fn of(at: &Place<'_>, idx: &RegionIndex<'a>, id: &str) -> Host<'a> {
        if let Some(c) = idx.clusters.get(id) {
            return Host {
                arn: c.arn.clone(),
                resource_id: Some(c.resource_id.as_str()),
                master: c.master_username.as_deref(),
                instance: false,
            };
        }
        if let Some(i) = idx.instances.get(id).filter(|i| i.cluster_id.is_none()) {
            return Host {
                arn: i.arn.clone(),
                resource_id: i.resource_id.as_deref(),
                master: i.master_username.as_deref(),
                instance: true,
            };
        }
        // Neither is in the snapshot any more: the ARN a cluster would have.
        Host {
            arn: format!(
                "arn:{}:rds:{}:{}:cluster:{id}",
                super::kind::partition(at.account),
                idx.region.name,
                at.account.account_id,
            ),
            resource_id: None,
            master: None,
            instance: false,
        }
    }
}

/// The account's principals and the cluster's resource id: what the IAM
/// half of every question needs, or why it cannot be asked.
struct IamSide<'a> {
    principals: &'a [Principal],
    resource_id: &'a str,
    region: &'a str,
    partition: &'a str,
    account_id: &'a str,
}

impl<'a> IamSide<'a> {
    fn new(
        at: &'a Place<'_>,
        principals: Option<&'a [Principal]>,
        host: &Host<'a>,
        region: &'a str,
    ) -> Result<Self, String> {
        let principals =
            principals.ok_or("who may connect: the account's IAM was not collected")?;
        let resource_id = host.resource_id.filter(|r| !r.is_empty()).ok_or(if host.instance {
            "who may connect: the instance's resource id (DbiResourceId) is unknown"
        } else {
            "who may connect: the cluster's resource id (DbClusterResourceId) is unknown"
        })?;
        Ok(IamSide {
            principals,
            resource_id,
            region,
            partition: super::kind::partition(at.account),
            account_id: &at.account.account_id,
        })
    }

    fn dbuser_arn(&self, user: &str) -> String {
        format!(
            "arn:{}:rds-db:{}:{}:dbuser:{}/{user}",
            self.partition, self.region, self.account_id, self.resource_id
        )
    }

    /// Whom each principal `pick` selects may connect as, among `users`.
    fn connects(
        &self,
        what: &str,
        pick: impl Fn(&Principal) -> bool,
        users: &[&str],
    ) -> Result<Vec<(Connect, &Principal)>, String> {
        let mut out = Vec::new();
        for p in self.principals.iter().filter(|p| pick(p)) {
            if !p.errors.is_empty() {
                return Err(format!(
                    "who may connect: {what} {}'s policies could not be read ({})",
                    p.name,
                    p.errors.join("; ")
                ));
            }
            let ctx = p.base_context();
            for user in users {
                let answer = p.evaluate("rds-db:connect", &self.dbuser_arn(user), &ctx);
                let decision = match answer.decision {
                    Decision::Allow => "allow",
                    Decision::Conditional => "conditional",
                    _ => continue,
                };
                out.push((
                    Connect {
                        principal: p.arn.clone(),
                        db_user: user.to_string(),
                        decision: decision.into(),
                        statements: answer.allowed_by.iter().map(|s| s.to_string()).collect(),
                    },
                    p,
                ));
            }
        }
        Ok(out)
    }

    /// The DB users named outright (`dbuser:RESOURCE_ID/USER`, no
    /// wildcard; policy variables resolved for the principal) in a
    /// statement that lets a principal connect to this cluster, when the
    /// IAM engine allows it.
    fn named_users(&self) -> Vec<(&Principal, String)> {
        let mut out = Vec::new();
        for p in self.principals {
            let (resources, _) = crate::iam::analysis::connect_grants(p);
            for r in resources {
                if !crate::iam::scoped_dbuser(&r) {
                    continue;
                }
                let Some((id, user)) = r.rsplit_once(":dbuser:").and_then(|(_, t)| t.split_once('/'))
                else {
                    continue;
                };
                if id != self.resource_id {
                    continue;
                }
                // `dbuser:ID/${aws:PrincipalTag/dbuser}` names a user per
                // principal: resolved as a request from it would be.
                let user = if user.contains("${") {
                    match crate::iam::eval::resolve_variables(user, &p.base_context()) {
                        Some(u) if !u.contains(['*', '?']) => u,
                        _ => continue,
                    }
                } else {
                    user.to_string()
                };
                let answer = p.evaluate("rds-db:connect", &self.dbuser_arn(&user), &p.base_context());
                if matches!(answer.decision, Decision::Allow | Decision::Conditional) {
                    out.push((p, user));
                }
            }
        }
        out
    }
}

/// The service an application role serves: its service tag, else the
/// namespace of the service account its IRSA trust names.
fn service_of(p: &Principal, tag: &str) -> Option<String> {
    if let Some(s) = p.tags.get(tag) {
        return Some(s.clone());
    }
    let (_, subjects, _) = crate::iam::irsa(p);
    let namespaces: BTreeSet<&str> = subjects
        .iter()
        .filter_map(|s| s.strip_prefix("system:serviceaccount:"))
        .filter_map(|s| s.split(':').next())
        .collect();
    (namespaces.len() == 1).then(|| namespaces.into_iter().next().unwrap_or_default().to_string())
}

/// Both hops joined: each developer connection to a user that may write.
fn developer_writes(connects: &[Connect], writes: &[Write]) -> Vec<DeveloperWrite> {
    let mut joined = Vec::new();
    for c in connects {
        for w in writes.iter().filter(|w| w.user == c.db_user) {
            joined.push(DeveloperWrite {
                summary: format!(
                    "{} may connect as {} ({}{}), which may {} via {}",
                    c.principal,
                    c.db_user,
                    c.statements.first().map_or("no statement named", |s| s),
                    if c.decision == "conditional" {
                        ", under conditions"
                    } else {
                        ""
                    },
                    w.what,
                    w.via
                ),
                principal: c.principal.clone(),
                db_user: c.db_user.clone(),
                statements: c.statements.clone(),
                via: w.via.clone(),
                what: w.what.clone(),
            });
        }
    }
    joined
}

/// What each application role (IRSA) may do beyond its own service's
/// schema through the users it may connect as.
fn app_violations(
    db: &PgDatabase,
    at: &Place<'_>,
    iam: &IamSide<'_>,
    users: &[&str],
    writes: &[Write],
) -> Result<Vec<AppViolation>, String> {
    let is_app = |p: &Principal| p.kind == "role" && crate::iam::irsa(p).0;
    let mut out = Vec::new();
    for (c, p) in iam.connects("application role", is_app, users)? {
        let service = service_of(p, &at.config.service_tag).ok_or_else(|| {
            format!(
                "the service of application role {} (no `{}` tag, and its IRSA trust names no single namespace)",
                p.arn, at.config.service_tag
            )
        })?;
        let schema = at
            .config
            .databases_schemas
            .get(&service)
            .cloned()
            .unwrap_or_else(|| service.clone());
        let mut push = |what: String| {
            out.push(AppViolation {
                summary: format!(
                    "{} (service {service}) may connect as {}, which {what}",
                    c.principal, c.db_user
                ),
                principal: c.principal.clone(),
                db_user: c.db_user.clone(),
                service: service.clone(),
                schema: schema.clone(),
            })
        };
        for w in writes.iter().filter(|w| w.user == c.db_user) {
            if w.what == "superuser" {
                push(format!("acts as a superuser via {}", w.via));
            } else if w.schema != schema {
                push(format!(
                    "may {} outside schema {schema} via {}",
                    w.what, w.via
                ));
            }
        }
        for (role, chain) in acts_as(db, &c.db_user) {
            let Some(r) = db.roles.iter().find(|r| r.name == role) else {
                continue;
            };
            for (attr, on) in [("CREATEROLE", r.createrole), ("CREATEDB", r.createdb)] {
                if on {
                    push(format!("has {attr} via {}", chain.join(" → ")));
                }
            }
        }
    }
    Ok(out)
}

/// `principals`: the account's IAM users and roles (`None`: IAM was not
/// collected), built once for all its databases.
pub fn pg_database_facts(
    at: &Place<'_>,
    idx: &RegionIndex<'_>,
    principals: Option<&[Principal]>,
    db: &PgDatabase,
) -> PgDatabaseFacts {
    let host = Host::of(at, idx, &db.cluster_id);
    let mut f = PgDatabaseFacts {
        id: format!("{}/{}", db.cluster_id, db.database),
        arn: format!("{}/{}", host.arn, db.database),
        region: idx.region.name.clone(),
        cluster_id: db.cluster_id.clone(),
        database: db.database.clone(),
        login_roles: None,
        superuser_logins: None,
        public_create_on_public: None,
        writers: None,
        developer_connects: None,
        developer_writes: None,
        password_logins: None,
        app_violations: None,
        missing_iam_users: None,
        force_ssl: None,
        unknown: Vec::new(),
    };
    if let Some(why) = &db.unreadable {
        f.unknown.push(format!("database {}: {why}", f.id));
        return f;
    }
    let writes = writers(db);
    let superuser_roles: BTreeSet<&str> = writes
        .iter()
        .filter(|w| w.what == "superuser")
        .map(|w| w.user.as_str())
        .collect();
    let login: Vec<LoginRole> = db
        .roles
        .iter()
        .filter(|r| r.login)
        .map(|r| LoginRole {
            name: r.name.clone(),
            rds_iam: member_of(db, &r.name, "rds_iam"),
            superuser: superuser_roles.contains(r.name.as_str()),
            createrole: r.createrole,
            createdb: r.createdb,
            bypassrls: r.bypassrls,
        })
        .collect();
    let master = host.master;
    f.superuser_logins = Some(
        login
            .iter()
            .filter(|r| r.superuser && Some(r.name.as_str()) != master && r.name != RDS_ADMIN)
            .map(|r| r.name.clone())
            .collect(),
    );
    f.public_create_on_public = Some(db.grants.iter().any(|g| {
        g.grantee == "PUBLIC" && g.schema == "public" && g.on == "schema" && g.privilege == "CREATE"
    }));
    f.force_ssl = db.settings.get("rds.force_ssl").cloned();
    let iam_users: Vec<&str> = login
        .iter()
        .filter(|r| r.rds_iam)
        .map(|r| r.name.as_str())
        .collect();
    f.password_logins = Some(
        login
            .iter()
            .filter(|r| {
                !r.rds_iam
                    && Some(r.name.as_str()) != master
                    && !AWS_OWN.contains(&r.name.as_str())
            })
            .map(|r| r.name.clone())
            .collect(),
    );
    match IamSide::new(at, principals, &host, &idx.region.name) {
        Ok(iam) => {
            let d = &at.config.developers;
            if d.groups.is_empty() && d.users.is_empty() && d.role_globs.is_empty() {
                f.unknown.push(
                    "who the developers are: `[developers]` is not configured in dbaudit.toml"
                        .into(),
                );
            } else if !iam
                .principals
                .iter()
                .any(|p| crate::iam::analysis::is_developer(p, d))
            {
                // As for the IAM rules: selectors that match nobody here
                // cannot show that no developer writes.
                f.unknown.push(format!(
                    "who the developers are: `[developers]` matches no user or role of account {}",
                    at.account.name
                ));
            } else {
                let is_dev = |p: &Principal| crate::iam::analysis::is_developer(p, d);
                match iam.connects("developer", is_dev, &iam_users) {
                    Ok(connects) => {
                        let connects: Vec<Connect> = connects.into_iter().map(|(c, _)| c).collect();
                        f.developer_writes = Some(developer_writes(&connects, &writes));
                        f.developer_connects = Some(connects);
                    }
                    Err(why) => f.unknown.push(why),
                }
            }
            match app_violations(db, at, &iam, &iam_users, &writes) {
                Ok(v) => f.app_violations = Some(v),
                Err(why) => f.unknown.push(why),
            }
            let logins: BTreeSet<&str> = iam_users.iter().copied().collect();
            let mut missing: Vec<String> = iam
                .named_users()
                .into_iter()
                .filter(|(_, u)| !logins.contains(u.as_str()))
                .map(|(p, u)| {
                    let what = if db.roles.iter().any(|r| r.name == u) {
                        "is not a login with rds_iam"
                    } else {
                        "does not exist"
                    };
                    format!("{} may connect as {u}, which {what}", p.arn)
                })
                .collect();
            missing.sort();
            missing.dedup();
            f.missing_iam_users = Some(missing);
        }
        Err(why) => f.unknown.push(why),
    }
    f.writers = Some(writes);
    f.login_roles = Some(login);
    f
}

/// The databases the in-database collection read in the region.
pub struct PgDatabaseKind;

impl Kind for PgDatabaseKind {
    fn scope(&self) -> Scope {
        Scope::Region
    }

    fn service(&self) -> Option<Service> {
        Some(Service::Rds)
    }

    fn json_schema(&self) -> serde_json::Value {
        super::kind::schema::<PgDatabaseFacts>()
    }

    fn arn_of_every(&self, account: &Account, region: &str) -> String {
        format!("{}/*", super::kind::rds_arn(account, region, "cluster"))
    }

    /// Nothing when the in-database collection did not run (it is opt-in:
    /// docs/in-database.md); the databases it could not read are listed
    /// with why, so their rules are errors.
    fn visit(&self, at: &Place<'_>, each: &mut dyn FnMut(Resource<'_>)) -> Result<(), String> {
        let idx = at.region();
        let Some(dbs) = &idx.region.pg_databases else {
            return Ok(());
        };
        // The account's principals (its policies parsed) once for all its
        // databases, not once per database.
        let principals = at
            .account
            .iam
            .as_ref()
            .map(|iam| crate::iam::principals(iam, at.account.scps.as_deref()));
        for db in dbs {
            let f = pg_database_facts(at, idx, principals.as_deref(), db);
            each(Resource {
                id: &f.id,
                arn: &f.arn,
                facts: &f,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{PgGrant, PgMembership, PgRole};

    fn role(name: &str, login: bool) -> PgRole {
        PgRole {
            name: name.into(),
            login,
            inherit: true,
            ..Default::default()
        }
    }

    fn member(member: &str, role: &str, inherit: Option<bool>, set: Option<bool>) -> PgMembership {
        PgMembership {
            role: role.into(),
            member: member.into(),
            inherit,
            set,
            admin: false,
        }
    }

    fn insert_on(grantee: &str) -> PgGrant {
        PgGrant {
            grantee: grantee.into(),
            schema: "orders".into(),
            on: "tables".into(),
            privilege: "INSERT".into(),
            tables: 3,
        }
    }

    /// A write two memberships away is found, with its chain; one behind a
    /// grant with neither INHERIT nor SET (16+) is not.
    #[test]
    fn writes_through_nested_roles_follow_inherit_and_set() {
        let db = PgDatabase {
            roles: vec![role("dev_ro", true), role("mid", false), role("app_rw", false)],
            memberships: vec![
                member("dev_ro", "mid", Some(false), Some(true)),
                member("mid", "app_rw", Some(true), Some(false)),
            ],
            grants: vec![insert_on("app_rw")],
            ..Default::default()
        };
        let w = writers(&db);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].via, "dev_ro → mid → app_rw");
        assert_eq!(w[0].what, "INSERT on 3 tables of orders");
        let mut closed = db.clone();
        closed.memberships[1].set = Some(false);
        closed.memberships[1].inherit = Some(false);
        assert!(writers(&closed).is_empty());
    }

    /// SET hops may lead to INHERIT hops, not the other way: a role the
    /// user only inherits may `SET ROLE` to a writer, the user may not
    /// (PostgreSQL 16+ wants a chain of grants with SET). Membership of
    /// `rds_iam` counts whatever the grant's options.
    #[test]
    fn an_inherited_role_s_set_role_is_not_the_user_s() {
        let db = PgDatabase {
            roles: vec![role("dev_ro", true), role("mid", false), role("app_rw", false)],
            memberships: vec![
                member("dev_ro", "mid", Some(true), Some(false)),
                member("mid", "app_rw", Some(false), Some(true)),
                member("dev_ro", "rds_iam", Some(false), Some(false)),
            ],
            grants: vec![insert_on("app_rw")],
            ..Default::default()
        };
        assert!(writers(&db).is_empty(), "{:?}", writers(&db));
        let reach = acts_as(&db, "dev_ro");
        assert!(reach.contains_key("mid") && !reach.contains_key("app_rw"));
        assert!(!reach.contains_key("rds_iam"));
        assert!(member_of(&db, "dev_ro", "rds_iam"));
        // A SET hop first, then INHERIT: reached.
        let mut open = db.clone();
        open.memberships[0] = member("dev_ro", "mid", Some(false), Some(true));
        open.memberships[1] = member("mid", "app_rw", Some(true), Some(false));
        assert_eq!(writers(&open)[0].via, "dev_ro → mid → app_rw");
    }

    /// Before 16 the member's `rolinherit` decides inheritance, and SET
    /// ROLE is always possible: a NOINHERIT member still reaches the role.
    #[test]
    fn before_16_every_membership_allows_set_role() {
        let mut dev = role("dev_ro", true);
        dev.inherit = false;
        let db = PgDatabase {
            roles: vec![dev, role("app_rw", false)],
            memberships: vec![member("dev_ro", "app_rw", None, None)],
            grants: vec![insert_on("app_rw")],
            ..Default::default()
        };
        assert_eq!(writers(&db).len(), 1);
    }

    /// PUBLIC's grants are everyone's.
    #[test]
    fn public_grants_reach_every_login() {
        let db = PgDatabase {
            roles: vec![role("a", true), role("b", true)],
            grants: vec![PgGrant {
                grantee: "PUBLIC".into(),
                schema: "public".into(),
                on: "schema".into(),
                privilege: "CREATE".into(),
                tables: 0,
            }],
            ..Default::default()
        };
        let w = writers(&db);
        assert_eq!(w.len(), 2);
        assert!(w.iter().all(|w| w.via == "PUBLIC"));
    }
}
