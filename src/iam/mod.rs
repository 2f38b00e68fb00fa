//! A self-contained AWS policy-evaluation engine, offline, from the snapshot.
//!
//! `policy` parses documents, `eval` decides requests, this module builds
//! principals (users with their groups' policies, roles) from a snapshot's IAM
//! section and answers the design's questions: which non-read RDS actions can
//! a developer perform on the account's databases, and which statements grant
//! them; which `rds-db:connect` grants an application role has; whether an
//! IRSA role's trust pins one service account. Policies are parsed once per
//! account and shared (`Arc`) by every principal that attaches them.

pub mod eval;
pub mod policy;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::DeveloperSelectors;
use crate::snapshot::{Account, Iam};
pub use eval::{Answer, Context, Decision, Request, StatementRef};
pub use policy::{Policy, PolicyError};

/// Access levels of actions, from AWS's catalogue (data/iam-actions.json).
#[derive(Debug, Deserialize)]
pub struct Catalogue {
    pub source: String,
    pub services: BTreeMap<String, BTreeMap<String, String>>,
}

impl Catalogue {
    pub fn get() -> &'static Catalogue {
        static C: OnceLock<Catalogue> = OnceLock::new();
        C.get_or_init(|| {
            serde_json::from_str(include_str!("../../data/iam-actions.json"))
                .expect("data/iam-actions.json is valid")
        })
    }

    /// `Write`, `Permissions management` or `Tagging`.
    pub fn is_non_read(level: &str) -> bool {
        matches!(level, "Write" | "Permissions management" | "Tagging")
    }

    /// Non-read actions of a service, as `service:Action`.
    pub fn non_read(&self, service: &str) -> Vec<String> {
        self.services
            .get(service)
            .into_iter()
            .flatten()
            .filter(|(_, level)| Self::is_non_read(level))
            .map(|(a, _)| format!("{service}:{a}"))
            .collect()
    }

    pub fn level(&self, action: &str) -> Option<&str> {
        let (svc, name) = action.split_once(':')?;
        let actions = self.services.get(svc)?;
        actions
            .iter()
            .find(|(a, _)| a.eq_ignore_ascii_case(name))
            .map(|(_, l)| l.as_str())
    }
}

/// A user or role with the policies that apply to it.
#[derive(Debug, Clone)]
pub struct Principal {
    pub kind: &'static str,
    pub name: String,
    pub arn: String,
    pub groups: Vec<String>,
    pub policies: Vec<Arc<Policy>>,
    pub boundary: Option<Arc<Policy>>,
    /// Service control policies by organization level (empty: not evaluated).
    pub scps: Vec<Vec<Arc<Policy>>>,
    pub trust: Option<Policy>,
    /// Problems that make this principal's answers unknowable.
    pub errors: Vec<String>,
}

impl Principal {
    pub fn evaluate(&self, action: &str, resource: &str, context: &Context) -> Answer {
        let ids: Vec<&Policy> = self.policies.iter().map(|p| p.as_ref()).collect();
        let scps = self.scp_refs();
        eval::evaluate_with_scps(
            &ids,
            self.boundary.as_deref(),
            &scps,
            &Request {
                action,
                resource,
                context,
            },
        )
    }

    fn scp_refs(&self) -> Vec<Vec<&Policy>> {
        self.scps
            .iter()
            .map(|l| l.iter().map(|p| p.as_ref()).collect())
            .collect()
    }

    /// The context every request of this principal carries.
    pub fn base_context(&self) -> Context {
        let mut c = Context::default();
        c.set("aws:PrincipalArn", &self.arn);
        if self.kind == "user" {
            c.set("aws:username", &self.name);
        }
        c
    }
}

/// Every principal of an account, with managed policies parsed once, under
/// the account's SCPs when the snapshot has them.
pub fn principals(iam: &Iam, scps: Option<&[crate::snapshot::ScpLevel]>) -> Vec<Principal> {
    let mut scp_errors = Vec::new();
    let scp_levels: Vec<Vec<Arc<Policy>>> = scps
        .unwrap_or_default()
        .iter()
        .map(|level| {
            level
                .policies
                .iter()
                .filter_map(
                    |p| match Policy::parse(&format!("SCP {}", p.arn), &p.document) {
                        Ok(p) => Some(Arc::new(p)),
                        Err(e) => {
                            scp_errors.push(e.to_string());
                            None
                        }
                    },
                )
                .collect()
        })
        .collect();
    let mut managed: HashMap<&str, Result<Arc<Policy>, String>> = HashMap::new();
    for p in &iam.policies {
        managed.insert(
            p.arn.as_str(),
            Policy::parse(&p.arn, &p.document)
                .map(Arc::new)
                .map_err(|e| e.to_string()),
        );
    }
    let attach = |arns: &[String], out: &mut Vec<Arc<Policy>>, errors: &mut Vec<String>| {
        for a in arns {
            match managed.get(a.as_str()) {
                Some(Ok(p)) => out.push(p.clone()),
                Some(Err(e)) => errors.push(e.clone()),
                None => errors.push(format!("attached policy {a} is not in the snapshot")),
            }
        }
    };
    let inline = |owner: &str,
                  list: &[crate::snapshot::InlinePolicy],
                  out: &mut Vec<Arc<Policy>>,
                  errors: &mut Vec<String>| {
        for p in list {
            match Policy::parse(&format!("{owner} inline policy {}", p.name), &p.document) {
                Ok(p) => out.push(Arc::new(p)),
                Err(e) => errors.push(e.to_string()),
            }
        }
    };
    let boundary = |arn: &Option<String>, errors: &mut Vec<String>| -> Option<Arc<Policy>> {
        let a = arn.as_ref()?;
        match managed.get(a.as_str()) {
            Some(Ok(p)) => Some(p.clone()),
            Some(Err(e)) => {
                errors.push(e.clone());
                None
            }
            None => {
                errors.push(format!("permissions boundary {a} is not in the snapshot"));
                None
            }
        }
    };
    let groups: HashMap<&str, &crate::snapshot::IamGroup> =
        iam.groups.iter().map(|g| (g.name.as_str(), g)).collect();
    let mut out = Vec::new();
    for u in &iam.users {
        let (mut policies, mut errors) = (Vec::new(), Vec::new());
        inline(&u.arn, &u.inline_policies, &mut policies, &mut errors);
        attach(&u.attached_policies, &mut policies, &mut errors);
        for g in &u.groups {
            match groups.get(g.as_str()) {
                Some(g) => {
                    inline(&g.arn, &g.inline_policies, &mut policies, &mut errors);
                    attach(&g.attached_policies, &mut policies, &mut errors);
                }
                None => errors.push(format!("group {g} is not in the snapshot")),
            }
        }
        let b = boundary(&u.permissions_boundary, &mut errors);
        errors.extend(scp_errors.iter().cloned());
        out.push(Principal {
            kind: "user",
            name: u.name.clone(),
            arn: u.arn.clone(),
            groups: u.groups.clone(),
            policies,
            boundary: b,
            scps: scp_levels.clone(),
            trust: None,
            errors,
        });
    }
    for r in &iam.roles {
        let (mut policies, mut errors) = (Vec::new(), Vec::new());
        inline(&r.arn, &r.inline_policies, &mut policies, &mut errors);
        attach(&r.attached_policies, &mut policies, &mut errors);
        let b = boundary(&r.permissions_boundary, &mut errors);
        let trust = match Policy::parse(&format!("{} trust policy", r.arn), &r.trust_policy) {
            Ok(t) => Some(t),
            Err(e) => {
                errors.push(e.to_string());
                None
            }
        };
        errors.extend(scp_errors.iter().cloned());
        out.push(Principal {
            kind: "role",
            name: r.name.clone(),
            arn: r.arn.clone(),
            groups: Vec::new(),
            policies,
            boundary: b,
            scps: scp_levels.clone(),
            trust,
            errors,
        });
    }
    out
}

/// A grant found for a principal: an action on resources, and why.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Grant {
    pub action: String,
    /// How many of the resources asked about it applies to.
    pub resource_count: i64,
    /// The first of them (at most ten, sorted), as examples.
    pub resources: Vec<String>,
    /// `allow` or `conditional`.
    pub decision: String,
    pub statements: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown_keys: Vec<String>,
}

/// Facts of an IAM principal (`resource` in `iam_principal` rules).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PrincipalFacts {
    pub name: String,
    pub arn: String,
    /// `user` or `role`.
    pub kind: String,
    pub is_developer: bool,
    /// Non-read `rds`/`rds-data` actions allowed (or conditionally allowed)
    /// on the account's DB clusters and instances.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rds_write: Option<Vec<Grant>>,
    /// Non-read EC2 security-group actions allowed on `*`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sg_write: Option<Vec<Grant>>,
    /// Can describe the account's DB clusters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_read_rds: Option<bool>,
    /// Some non-read RDS action is definitely allowed on every DB resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_write_rds: Option<bool>,
    /// Resource patterns of Allow statements granting `rds-db:connect`
    /// (absent when one of the principal's policies could not be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_resources: Option<Vec<String>>,
    /// Those that are not an explicit `dbuser:<cluster-resource-id>/<user>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_unscoped: Option<Vec<String>>,
    /// The role is assumable through an EKS OIDC provider (IRSA); absent
    /// when the trust policy could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_irsa: Option<bool>,
    /// The `…:sub` values its trust policy accepts.
    pub irsa_subjects: Vec<String>,
    /// Exactly one `system:serviceaccount:NS:NAME` without wildcards, matched
    /// with StringEquals, and the audience pinned to `sts.amazonaws.com`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub irsa_pinned: Option<bool>,
    /// Service control policies were part of the evaluation (false: the
    /// snapshot has none, and answers assume no SCP restricts the account).
    pub scps_evaluated: bool,
    pub unknown: Vec<String>,
}

crate::model::celval::to_val_struct!(Grant {
    action,
    resource_count,
    resources,
    decision,
    statements,
    unknown_keys
});

/// Examples kept in a grant.
const GRANT_EXAMPLES: usize = 10;

/// Facts of every principal of an account. `resources` are the ARNs the
/// RDS questions are asked about (the account's DB clusters and instances).
pub fn principal_facts(
    account: &Account,
    developers: &DeveloperSelectors,
) -> Option<Vec<PrincipalFacts>> {
    let iam = account.iam.as_ref()?;
    let mut resources: Vec<String> = Vec::new();
    for r in &account.regions {
        resources.extend(r.db_clusters.iter().map(|c| c.arn.clone()));
        resources.extend(r.db_instances.iter().map(|i| i.arn.clone()));
    }
    let cat = Catalogue::get();
    let mut write_actions = cat.non_read("rds");
    write_actions.extend(cat.non_read("rds-data"));
    let sg_actions: Vec<String> = cat
        .services
        .get("ec2")
        .into_iter()
        .flatten()
        .filter(|(_, l)| Catalogue::is_non_read(l))
        .map(|(a, _)| format!("ec2:{a}"))
        .collect();
    let mut out = Vec::new();
    for p in principals(iam, account.scps.as_deref()) {
        let is_developer = is_developer(&p, developers);
        let ctx = p.base_context();
        let unknown = p.errors.clone();
        let (rds_write, sg_write, can_read, can_write) = if unknown.is_empty() {
            let mut rds_write = Vec::new();
            let mut definite_everywhere = false;
            let mut groups = None;
            for a in &write_actions {
                if let Some(g) = grant(&p, a, &resources, &ctx, &mut groups) {
                    if g.decision == "allow"
                        && g.resource_count == resources.len() as i64
                        && !resources.is_empty()
                    {
                        definite_everywhere = true;
                    }
                    rds_write.push(g);
                }
            }
            let sg_target = [format!(
                "arn:aws:ec2:*:{}:security-group/*",
                account.account_id
            )];
            let mut sg_groups = None;
            let sg_write: Vec<Grant> = sg_actions
                .iter()
                .filter_map(|a| grant(&p, a, &sg_target, &ctx, &mut sg_groups))
                .collect();
            let read_target = resources
                .first()
                .cloned()
                .unwrap_or_else(|| format!("arn:aws:rds:*:{}:cluster:*", account.account_id));
            let can_read = p
                .evaluate("rds:DescribeDBClusters", &read_target, &ctx)
                .decision
                == Decision::Allow;
            (
                Some(rds_write),
                Some(sg_write),
                Some(can_read),
                Some(definite_everywhere),
            )
        } else {
            (None, None, None, None)
        };
        // rds-db:connect grants, read from the statements themselves.
        let mut connect_resources = BTreeSet::new();
        for pol in &p.policies {
            for s in &pol.statements {
                if s.effect != policy::Effect::Allow {
                    continue;
                }
                let grants_connect = match &s.actions {
                    policy::Patterns::Only(a) => {
                        a.iter().any(|a| crate::glob::matches(a, "rds-db:connect"))
                    }
                    policy::Patterns::Not(a) => {
                        !a.iter().any(|a| crate::glob::matches(a, "rds-db:connect"))
                    }
                };
                if grants_connect && let Some(policy::Patterns::Only(r)) = &s.resources {
                    connect_resources.extend(r.iter().cloned());
                }
                if grants_connect && matches!(&s.resources, Some(policy::Patterns::Not(_))) {
                    connect_resources.insert("NotResource".to_string());
                }
            }
        }
        let connect_resources: Vec<String> = connect_resources.into_iter().collect();
        let connect_unscoped: Vec<String> = connect_resources
            .iter()
            .filter(|r| !scoped_dbuser(r))
            .cloned()
            .collect();
        let policies_known = p.errors.is_empty();
        let (is_irsa, irsa_subjects, irsa_pinned) = irsa(&p);
        let trust_known = p.kind == "user" || p.trust.is_some();
        out.push(PrincipalFacts {
            name: p.name.clone(),
            arn: p.arn.clone(),
            kind: p.kind.to_string(),
            is_developer,
            rds_write,
            sg_write,
            can_read_rds: can_read,
            can_write_rds: can_write,
            connect_resources: policies_known.then_some(connect_resources),
            connect_unscoped: policies_known.then_some(connect_unscoped),
            is_irsa: trust_known.then_some(is_irsa),
            irsa_subjects,
            irsa_pinned: trust_known.then_some(irsa_pinned),
            scps_evaluated: account.scps.is_some(),
            unknown,
        });
    }
    Some(out)
}

fn is_developer(p: &Principal, d: &DeveloperSelectors) -> bool {
    match p.kind {
        "user" => d.users.contains(&p.name) || p.groups.iter().any(|g| d.groups.contains(g)),
        _ => d
            .role_globs
            .iter()
            .any(|g| crate::glob::matches(g, &p.name)),
    }
}

/// How an action's answer depends on the resource, for one principal.
enum Shape {
    /// No Allow statement names the action: implicitly denied everywhere.
    NeverAllowed,
    /// Every statement naming the action applies to `*`: one answer for all.
    SameEverywhere,
    PerResource,
}

fn shape(p: &Principal, action: &str) -> Shape {
    let action = action.to_ascii_lowercase();
    let named = |s: &policy::Statement| match &s.actions {
        policy::Patterns::Only(a) => a.iter().any(|a| crate::glob::matches(a, &action)),
        policy::Patterns::Not(a) => !a.iter().any(|a| crate::glob::matches(a, &action)),
    };
    let any_allow = p
        .policies
        .iter()
        .flat_map(|pol| &pol.statements)
        .any(|s| s.effect == policy::Effect::Allow && named(s));
    let uniform = p
        .policies
        .iter()
        .chain(p.boundary.iter())
        .flat_map(|pol| &pol.statements)
        .filter(|s| named(s))
        .all(|s| matches!(&s.resources, Some(policy::Patterns::Only(r)) if r.iter().any(|r| r == "*")));
    if !any_allow {
        Shape::NeverAllowed
    } else if uniform {
        Shape::SameEverywhere
    } else {
        Shape::PerResource
    }
}

/// Resources grouped by how the principal's statements match them (see
/// [`eval::resource_signature`]): one evaluation per group and action.
/// Valid because the analysis context holds no resource-specific keys (no
/// `aws:ResourceTag`).
type Groups<'r> = BTreeMap<Vec<u8>, Vec<&'r String>>;

fn resource_groups<'r>(p: &Principal, resources: &'r [String], ctx: &Context) -> Groups<'r> {
    let ids: Vec<&Policy> = p.policies.iter().map(|x| x.as_ref()).collect();
    let scps = p.scp_refs();
    let mut groups: Groups = BTreeMap::new();
    for r in resources {
        groups
            .entry(eval::resource_signature(
                &ids,
                p.boundary.as_deref(),
                &scps,
                r,
                ctx,
            ))
            .or_default()
            .push(r);
    }
    groups
}

/// The grant of one action over the resources, if any resource allows it.
fn grant<'r>(
    p: &Principal,
    action: &str,
    resources: &'r [String],
    ctx: &Context,
    groups: &mut Option<Groups<'r>>,
) -> Option<Grant> {
    match shape(p, action) {
        Shape::NeverAllowed => return None,
        Shape::SameEverywhere if !resources.is_empty() => {
            let a = p.evaluate(action, &resources[0], ctx);
            return matches!(a.decision, Decision::Allow | Decision::Conditional).then(|| Grant {
                action: action.to_string(),
                resource_count: resources.len() as i64,
                resources: {
                    let mut r: Vec<String> =
                        resources.iter().take(GRANT_EXAMPLES).cloned().collect();
                    r.sort();
                    r
                },
                decision: if a.decision == Decision::Allow {
                    "allow"
                } else {
                    "conditional"
                }
                .to_string(),
                statements: a
                    .allowed_by
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
                unknown_keys: a.unknown_keys,
            });
        }
        _ => {}
    }
    let groups = groups.get_or_insert_with(|| resource_groups(p, resources, ctx));
    let mut hit: Vec<&String> = Vec::new();
    let mut statements = BTreeSet::new();
    let mut keys = BTreeSet::new();
    let mut conditional = false;
    for members in groups.values() {
        let a = p.evaluate(action, members[0], ctx);
        match a.decision {
            Decision::Allow => {}
            Decision::Conditional => {
                conditional = true;
                keys.extend(a.unknown_keys.iter().cloned());
            }
            _ => continue,
        }
        hit.extend(members.iter().copied());
        statements.extend(a.allowed_by.iter().map(|s| s.to_string()));
    }
    hit.sort();
    (!hit.is_empty()).then(|| Grant {
        action: action.to_string(),
        resource_count: hit.len() as i64,
        resources: hit
            .iter()
            .take(GRANT_EXAMPLES)
            .map(|r| (*r).clone())
            .collect(),
        decision: if conditional { "conditional" } else { "allow" }.to_string(),
        statements: statements.into_iter().collect(),
        unknown_keys: keys.into_iter().collect(),
    })
}

/// `arn:aws:rds-db:REGION:ACCOUNT:dbuser:cluster-ID/USER` with no wildcard
/// in the resource id or the user name.
fn scoped_dbuser(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[2] != "rds-db" {
        return false;
    }
    let Some(rest) = parts[5].strip_prefix("dbuser:") else {
        return false;
    };
    match rest.split_once('/') {
        Some((id, user)) => {
            !id.is_empty()
                && !user.is_empty()
                && !id.contains(['*', '?'])
                && !user.contains(['*', '?'])
        }
        None => false,
    }
}

/// IRSA trust analysis: federated through an EKS OIDC provider, `sub` pinned
/// to one service account and `aud` to STS.
fn irsa(p: &Principal) -> (bool, Vec<String>, bool) {
    let Some(trust) = &p.trust else {
        return (false, vec![], false);
    };
    let mut is_irsa = false;
    let mut subjects = Vec::new();
    let mut pinned = true;
    for s in &trust.statements {
        if s.effect != policy::Effect::Allow
            || !s
                .principals
                .iter()
                .any(|pr| pr.contains(":oidc-provider/oidc.eks."))
        {
            continue;
        }
        is_irsa = true;
        let subs: Vec<&policy::Condition> = s
            .conditions
            .iter()
            .filter(|c| c.key.ends_with(":sub"))
            .collect();
        let auds: Vec<&policy::Condition> = s
            .conditions
            .iter()
            .filter(|c| c.key.ends_with(":aud"))
            .collect();
        let sub_ok = subs.len() == 1
            && subs[0].op == policy::Op::StringEquals
            && subs[0].set == policy::SetOp::Single
            && subs[0].values.len() == 1
            && is_service_account(&subs[0].values[0]);
        let aud_ok = auds
            .iter()
            .any(|c| c.op == policy::Op::StringEquals && c.values == ["sts.amazonaws.com"]);
        for c in &subs {
            subjects.extend(c.values.iter().cloned());
        }
        pinned &= sub_ok && aud_ok;
    }
    (is_irsa, subjects, is_irsa && pinned)
}

fn is_service_account(v: &str) -> bool {
    let parts: Vec<&str> = v.split(':').collect();
    parts.len() == 4
        && parts[0] == "system"
        && parts[1] == "serviceaccount"
        && !parts[2].is_empty()
        && !parts[3].is_empty()
        && !v.contains(['*', '?'])
}
