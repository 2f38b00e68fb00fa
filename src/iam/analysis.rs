//! The design's IAM questions, asked of every principal of an account about
//! the account's own resources (see [`super::targets`]): which non-read RDS
//! and RDS Data API actions it can perform on the DB resources, which
//! security-group changes it can make, whether it can read the clusters,
//! which `rds-db:connect` grants it holds, whether an IRSA role's trust pins
//! one service account.
//!
//! Cost: one evaluation per (action, group of resources the principal's
//! statements cannot tell apart), not per resource. Two resources fall in
//! the same group when every relevant statement's `Resource`/`NotResource`
//! treats them alike and every condition key those statements read has the
//! same value (or absence) for both. Principals with the same policies and
//! the same values of the principal keys those policies read share one
//! analysis.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use schemars::JsonSchema;
use serde::Serialize;

use super::catalogue::{Action, Catalogue};
use super::eval::{Context, Decision, Lookup};
use super::policy::{self, Patterns, Policy, Statement};
use super::targets::{AccountTargets, Target};
use super::{Principal, irsa, principals, scoped_dbuser};
use crate::config::DeveloperSelectors;
use crate::snapshot::Account;

/// A grant found for a principal: an action on resources, and why.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Grant {
    pub action: String,
    /// How many of the account's existing resources it applies to.
    pub resource_count: i64,
    /// A few of them (sorted), as examples.
    pub resources: Vec<String>,
    /// New or unlisted resources it applies to, as ARN patterns (`*` where
    /// the name would be): the resource a create action makes, resources of
    /// a type the snapshot does not list, or `*` for an action that takes
    /// no resource.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub new_resources: Vec<String>,
    /// `allow` or `conditional`.
    pub decision: String,
    pub statements: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown_keys: Vec<String>,
}

/// Grants grouped by the statements behind them: each statement named once,
/// with the actions it grants (the evidence of a finding).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AccessGroup {
    pub statements: Vec<String>,
    /// `allow` or `conditional`.
    pub decision: String,
    pub actions: Vec<String>,
    /// The most existing resources one of the actions applies to.
    pub resource_count: i64,
    /// A few of them, as examples.
    pub resources: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub new_resources: Vec<String>,
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
    /// on the account's DB resources, one entry per action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rds_write: Option<Vec<Grant>>,
    /// Non-read EC2 security-group actions allowed on the account's
    /// security groups (or on new ones).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sg_write: Option<Vec<Grant>>,
    /// `rds_write` and `sg_write` grouped by granting statements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_access: Option<Vec<AccessGroup>>,
    /// One sentence: how many actions (the most dangerous named), on how
    /// many resources, granted by which statements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_summary: Option<String>,
    /// Can describe every DB cluster of the account (or, with none, some).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_read_rds: Option<bool>,
    /// Some non-read RDS action is definitely allowed on every existing
    /// resource it applies to.
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
    /// Service accounts (`system:serviceaccount:NS:NAME`) whose pods get
    /// this role through EKS Pod Identity associations; absent when some
    /// EKS cluster's associations could not be listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_identity_subjects: Option<Vec<String>>,
    /// Every service account that can take the role: its IRSA trust's
    /// subjects and its Pod Identity associations, without repeats
    /// (absent when either is unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_accounts: Option<Vec<String>>,
    /// Service control policies were part of the evaluation (false: the
    /// snapshot has none, and answers assume no SCP restricts the account).
    pub scps_evaluated: bool,
    pub unknown: Vec<String>,
}

crate::celval::to_val_struct!(Grant {
    action,
    resource_count,
    resources,
    new_resources,
    decision,
    statements,
    unknown_keys
});
crate::celval::to_val_struct!(AccessGroup {
    statements,
    decision,
    actions,
    resource_count,
    resources,
    new_resources,
    unknown_keys
});

/// Example resources kept in a grant or group.
const EXAMPLES: usize = 3;
/// Actions named in a summary.
const SUMMARY_ACTIONS: usize = 3;
/// Statements named in a summary.
const SUMMARY_STATEMENTS: usize = 2;

/// The questions, resolved against the catalogue once.
struct Questions {
    rds_write: Vec<Action<'static>>,
    sg_write: Vec<Action<'static>>,
    read: Action<'static>,
    /// Every action asked, `service:action` in lower case (as statements
    /// are matched): made once, not once per principal.
    asked: Vec<String>,
}

impl Questions {
    fn get() -> &'static Questions {
        static Q: std::sync::OnceLock<Questions> = std::sync::OnceLock::new();
        Q.get_or_init(|| {
            let cat = Catalogue::get();
            let resolve = |names: Vec<String>| -> Vec<Action<'static>> {
                names.iter().filter_map(|n| cat.action(n).ok()).collect()
            };
            let mut rds_write = resolve(cat.non_read("rds"));
            rds_write.extend(resolve(cat.non_read("rds-data")));
            let sg_write = resolve(
                cat.non_read("ec2")
                    .into_iter()
                    .filter(|a| a.contains("SecurityGroup"))
                    .collect(),
            );
            let read = cat
                .action("rds:DescribeDBClusters")
                .expect("the catalogue has rds:DescribeDBClusters");
            let asked = (rds_write.iter().chain(&sg_write).chain([&read]))
                .map(|a| a.full_name().to_ascii_lowercase())
                .collect();
            Questions {
                rds_write,
                sg_write,
                read,
                asked,
            }
        })
    }
}

/// What the questions found for one principal (shared by principals with
/// the same policies).
#[derive(Clone)]
struct Analysis {
    rds_write: Vec<Grant>,
    sg_write: Vec<Grant>,
    /// Distinct existing resources of `rds_write` and of `sg_write`.
    rds_resources: usize,
    sg_resources: usize,
    can_read: bool,
    can_write: bool,
}

/// Facts of every principal of an account.
pub fn principal_facts(
    account: &Account,
    developers: &DeveloperSelectors,
) -> Option<Vec<PrincipalFacts>> {
    let iam = account.iam.as_ref()?;
    let targets = AccountTargets::new(account);
    let questions = Questions::get();
    let mut shared: HashMap<String, Analysis> = HashMap::new();
    let mut partitions = Partitions::default();
    let pod_identity = pod_identity_subjects(account);
    let mut out = Vec::new();
    for p in principals(iam, account.scps.as_deref()) {
        let is_developer = is_developer(&p, developers);
        let analysis = if p.errors.is_empty() {
            let base = p.base_context();
            let scope = Scope::new(&p, questions, &base);
            let analysis = shared
                .entry(scope.sharing_key())
                .or_insert_with(|| scope.analyse(&targets, &mut partitions))
                .clone();
            Some(analysis)
        } else {
            None
        };
        let (connect_resources, connect_unscoped) = connect_grants(&p);
        let policies_known = p.errors.is_empty();
        let (is_irsa, irsa_subjects, irsa_pinned) = irsa(&p);
        let trust_known = p.kind == "user" || p.trust.is_some();
        let mut unknown = p.errors.clone();
        let pod_identity_subjects = match &pod_identity {
            Ok(by_role) => Some(by_role.get(&p.arn).cloned().unwrap_or_default()),
            Err(why) => {
                if p.kind == "role" {
                    unknown.push(format!("Pod Identity associations: {why}"));
                }
                None
            }
        };
        let service_accounts = pod_identity_subjects
            .as_ref()
            .filter(|_| trust_known)
            .map(|pi| {
                let mut all: Vec<String> = irsa_subjects.iter().chain(pi).cloned().collect();
                all.sort();
                all.dedup();
                all
            });
        let write_access = analysis
            .as_ref()
            .map(|a| group_by_statements(a.rds_write.iter().chain(&a.sg_write)));
        let write_summary = analysis.as_ref().map(|a| {
            summary(
                (&a.rds_write, a.rds_resources),
                (&a.sg_write, a.sg_resources),
            )
        });
        out.push(PrincipalFacts {
            name: p.name.clone(),
            arn: p.arn.clone(),
            kind: p.kind.to_string(),
            is_developer,
            can_read_rds: analysis.as_ref().map(|a| a.can_read),
            can_write_rds: analysis.as_ref().map(|a| a.can_write),
            rds_write: analysis.as_ref().map(|a| a.rds_write.clone()),
            sg_write: analysis.map(|a| a.sg_write),
            write_access,
            write_summary,
            connect_resources: policies_known.then_some(connect_resources),
            connect_unscoped: policies_known.then_some(connect_unscoped),
            is_irsa: trust_known.then_some(is_irsa),
            irsa_subjects,
            irsa_pinned: trust_known.then_some(irsa_pinned),
            pod_identity_subjects,
            service_accounts,
            scps_evaluated: account.scps.is_some(),
            unknown,
        });
    }
    Some(out)
}

/// Role ARN → the service accounts Pod Identity gives it, over every EKS
/// cluster of the account; `Err` (why) when some cluster's associations,
/// or the EKS clusters themselves, are unknown.
fn pod_identity_subjects(account: &Account) -> Result<HashMap<String, Vec<String>>, String> {
    use crate::vocab::{Service, op};
    if let Some(g) = account.gaps.iter().find(|g| {
        g.service == Service::Eks
            && (g.operation == op::LIST_POD_IDENTITY_ASSOCIATIONS.name
                || g.operation == op::DESCRIBE_POD_IDENTITY_ASSOCIATION.name
                || !crate::vocab::is_fact_level(g.service, &g.operation))
    }) {
        return Err(format!("{} failed with {}", g.operation, g.code));
    }
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for r in &account.regions {
        for c in &r.eks_clusters {
            let Some(assocs) = &c.pod_identity_associations else {
                return Err(format!(
                    "not in the snapshot for EKS cluster {} (written before dbaudit collected them)",
                    c.name
                ));
            };
            for a in assocs {
                let Some(role) = &a.role_arn else {
                    return Err(format!(
                        "the role of {}/{} in EKS cluster {} is unknown",
                        a.namespace, a.service_account, c.name
                    ));
                };
                let subject = format!(
                    "system:serviceaccount:{}:{}",
                    a.namespace, a.service_account
                );
                out.entry(role.clone()).or_default().push(subject);
            }
        }
    }
    Ok(out)
}

pub(crate) fn is_developer(p: &Principal, d: &DeveloperSelectors) -> bool {
    match p.kind {
        "user" => d.users.contains(&p.name) || p.groups.iter().any(|g| d.groups.contains(g)),
        _ => d
            .role_globs
            .iter()
            .any(|g| crate::glob::matches(g, &p.name)),
    }
}

/// `rds-db:connect` grants, read from the statements themselves.
pub(crate) fn connect_grants(p: &Principal) -> (Vec<String>, Vec<String>) {
    let mut resources = BTreeSet::new();
    for s in p.policies.iter().flat_map(|pol| &pol.statements) {
        if s.effect != policy::Effect::Allow || !names(s, "rds-db:connect") {
            continue;
        }
        match &s.resources {
            Some(Patterns::Only(r)) => resources.extend(r.iter().cloned()),
            Some(Patterns::Not(_)) => {
                resources.insert("NotResource".to_string());
            }
            None => {}
        }
    }
    let resources: Vec<String> = resources.into_iter().collect();
    let unscoped = resources
        .iter()
        .filter(|r| !scoped_dbuser(r))
        .cloned()
        .collect();
    (resources, unscoped)
}

/// `service:action`, lower-case (as statements store their actions).
fn lower_name(a: &Action) -> String {
    let mut s = String::with_capacity(a.service.len() + a.name.len() + 1);
    s.push_str(a.service);
    s.push(':');
    for c in a.name.chars() {
        s.push(c.to_ascii_lowercase());
    }
    s
}

/// Whether a statement's Action/NotAction covers `action` (lower-case).
fn names(s: &Statement, action: &str) -> bool {
    match &s.actions {
        Patterns::Only(a) => a.iter().any(|a| crate::glob::matches(a, action)),
        Patterns::Not(a) => !a.iter().any(|a| crate::glob::matches(a, action)),
    }
}

/// Condition keys whose value depends on the resource asked about.
fn resource_key(key: &str) -> bool {
    const PREFIXES: [&str; 4] = [
        "aws:resourcetag/",
        "rds:cluster-tag/",
        "rds:db-tag/",
        "ec2:resourcetag/",
    ];
    const KEYS: [&str; 5] = [
        "aws:requestedregion",
        "aws:resourceaccount",
        "ec2:region",
        "ec2:securitygroupid",
        "ec2:vpc",
    ];
    PREFIXES.iter().any(|p| key.starts_with(p)) || KEYS.contains(&key)
}

/// One principal's questions: its statements that name any asked action,
/// and the condition keys they read.
struct Scope<'p> {
    p: &'p Principal,
    questions: &'static Questions,
    base: &'p Context,
    /// Every statement (identity, boundary, SCPs) naming an asked action.
    relevant: Vec<&'p Statement>,
    /// Keys those statements read (conditions and `${…}` variables).
    keys: BTreeSet<String>,
    /// Whether any resource can be told apart from another at all.
    uniform: bool,
    /// Some resource pattern holds a `${…}` variable (then matching it
    /// needs the resource's own context).
    pattern_variables: bool,
    /// Conditions of relevant statements that read a resource's key: the
    /// only ones whose outcome can differ between resources.
    resource_conditions: Vec<&'p policy::Condition>,
    /// The resource keys those conditions read, sorted.
    resource_condition_keys: Vec<String>,
    /// Per relevant statement: its `Resource` holds `*` (matches anything).
    matches_any: Vec<bool>,
    /// Per relevant statement without variables in its resources: the
    /// literal beginnings of its patterns' resource parts (`cluster:prod-`
    /// of `arn:aws:rds:*:*:cluster:prod-*`). A resource whose own resource
    /// part starts with none of them cannot match: most resources of a
    /// large list are told apart by this comparison alone.
    resource_prefixes: Vec<Option<Vec<&'p str>>>,
}

impl<'p> Scope<'p> {
    fn new(p: &'p Principal, questions: &'static Questions, base: &'p Context) -> Scope<'p> {
        let asked = &questions.asked;
        let relevant: Vec<&Statement> = p
            .policies
            .iter()
            .map(|x| x.as_ref())
            .chain(p.boundary.as_deref())
            .chain(p.scps.iter().flatten().map(|x| x.as_ref()))
            .flat_map(|pol: &Policy| &pol.statements)
            .filter(|s| asked.iter().any(|a| names(s, a)))
            .collect();
        let mut keys = BTreeSet::new();
        let mut uniform = true;
        let mut pattern_variables = false;
        for s in &relevant {
            for c in &s.conditions {
                keys.insert(c.key.clone());
                for v in &c.values {
                    keys.extend(super::eval::variables(v));
                }
            }
            match &s.resources {
                Some(Patterns::Only(r)) if r.iter().any(|r| r == "*") => {}
                Some(Patterns::Only(r)) | Some(Patterns::Not(r)) => {
                    uniform = false;
                    for r in r {
                        pattern_variables |= r.contains("${");
                        keys.extend(super::eval::variables(r));
                    }
                }
                None => {}
            }
        }
        let resource_conditions: Vec<&policy::Condition> = relevant
            .iter()
            .flat_map(|s| &s.conditions)
            .filter(|c| {
                let mut k = BTreeSet::from([c.key.clone()]);
                for v in &c.values {
                    k.extend(super::eval::variables(v));
                }
                k.iter().any(|k| resource_key(k))
            })
            .collect();
        if !resource_conditions.is_empty() {
            uniform = false;
        }
        let mut condition_keys = BTreeSet::new();
        for c in &resource_conditions {
            condition_keys.insert(c.key.clone());
            for v in &c.values {
                condition_keys.extend(super::eval::variables(v));
            }
        }
        let resource_condition_keys: Vec<String> = condition_keys
            .into_iter()
            .filter(|k| resource_key(k))
            .collect();
        let matches_any = relevant
            .iter()
            .map(|s| matches!(&s.resources, Some(Patterns::Only(r)) if r.iter().any(|r| r == "*")))
            .collect();
        let resource_prefixes = relevant
            .iter()
            .map(|s| {
                let (Some(Patterns::Only(r)) | Some(Patterns::Not(r))) = &s.resources else {
                    return None;
                };
                r.iter()
                    .map(|p| {
                        if p.contains("${") {
                            return None;
                        }
                        let part = p.splitn(6, ':').nth(5)?;
                        Some(&part[..part.find(['*', '?']).unwrap_or(part.len())])
                    })
                    .collect()
            })
            .collect();
        Scope {
            p,
            questions,
            base,
            relevant,
            keys,
            uniform,
            pattern_variables,
            resource_conditions,
            resource_condition_keys,
            matches_any,
            resource_prefixes,
        }
    }

    /// Principals with the same policies, boundary and values of the
    /// principal keys those policies read get the same answers.
    /// Identity policies without a statement naming an asked action add
    /// nothing to any answer, so they are left out; a boundary always
    /// counts (one without such a statement denies everything asked).
    fn sharing_key(&self) -> String {
        let mut key = String::new();
        let relevant = |pol: &Policy| {
            pol.statements
                .iter()
                .any(|s| self.relevant.iter().any(|r| std::ptr::eq(*r, s)))
        };
        for pol in &self.p.policies {
            if relevant(pol) {
                key.push_str(&pol.id);
                key.push('\u{1}');
            }
        }
        if let Some(b) = &self.p.boundary {
            key.push_str("boundary ");
            key.push_str(&b.id);
            key.push('\u{1}');
        }
        for k in self.keys.iter().filter(|k| !resource_key(k)) {
            key.push_str(k);
            match self.base.lookup(k) {
                Lookup::Present(v) => {
                    key.push('=');
                    key.push_str(&v.join("\u{2}"));
                }
                Lookup::Absent => key.push('-'),
                Lookup::Unknown => key.push('?'),
            }
            key.push('\u{1}');
        }
        key
    }

    fn analyse(&self, targets: &AccountTargets, partitions: &mut Partitions) -> Analysis {
        let mut groups = GroupCache {
            by_list: HashMap::new(),
            partitions,
            _lists: std::marker::PhantomData,
        };
        let mut can_write = false;
        let mut rds_write = Vec::new();
        let mut rds_hits = BTreeSet::new();
        for a in &self.questions.rds_write {
            if let Some((g, definite_everywhere)) =
                self.grant(a, targets, &mut groups, &mut rds_hits)
            {
                can_write |= definite_everywhere;
                rds_write.push(g);
            }
        }
        let mut sg_hits = BTreeSet::new();
        let sg_write = self
            .questions
            .sg_write
            .iter()
            .filter_map(|a| {
                self.grant(a, targets, &mut groups, &mut sg_hits)
                    .map(|(g, _)| g)
            })
            .collect();
        let can_read = self.can_read(targets, &mut groups);
        Analysis {
            rds_write,
            sg_write,
            rds_resources: groups.members(&rds_hits),
            sg_resources: groups.members(&sg_hits),
            can_read,
            can_write,
        }
    }

    /// Whether some identity Allow statement names the action at all.
    fn ever_allowed(&self, action: &str) -> bool {
        self.p
            .policies
            .iter()
            .flat_map(|pol| &pol.statements)
            .any(|s| s.effect == policy::Effect::Allow && names(s, action))
    }

    fn context_for(&self, t: &Target) -> Context {
        let mut c = self.base.clone();
        c.extend(&t.context);
        c
    }

    /// The grant of one action on the account's resources, if any; and
    /// whether it is a definite allow on every existing resource it applies
    /// to (there being some).
    fn grant<'t>(
        &self,
        a: &Action,
        targets: &'t AccountTargets,
        groups: &mut GroupCache<'t, '_>,
        all_hits: &mut BTreeSet<(usize, usize)>,
    ) -> Option<(Grant, bool)> {
        if !self.ever_allowed(&lower_name(a)) {
            return None;
        }
        let name = a.full_name();
        // Resources allowed, as (list, group) pairs: counted and sampled
        // from the groups, never listed one by one.
        let mut hit_count = 0;
        let mut examples: Vec<&'t str> = Vec::new();
        let mut new_resources = Vec::new();
        let mut statements = BTreeSet::new();
        let mut keys = BTreeSet::new();
        let mut conditional = false;
        let mut existing_total = 0;
        let mut note = |decision: Decision,
                        answer: &super::Answer,
                        statements: &mut BTreeSet<String>,
                        keys: &mut BTreeSet<String>|
         -> bool {
            match decision {
                Decision::Allow => {}
                Decision::Conditional => {
                    conditional = true;
                    keys.extend(answer.unknown_keys.iter().cloned());
                }
                _ => return false,
            }
            statements.extend(answer.allowed_by.iter().map(|s| s.to_string()));
            true
        };
        match targets.for_action(a) {
            None => {
                // The action takes no resource: asked about `*`.
                let answer = self.p.evaluate(&name, "*", self.base);
                if note(answer.decision, &answer, &mut statements, &mut keys) {
                    new_resources.push("*".to_string());
                }
            }
            Some(t) => {
                existing_total = t.existing_count();
                for list in &t.existing {
                    let list_id = list.as_ptr() as usize;
                    for (gi, g) in groups.get(self, list).iter().enumerate() {
                        let answer =
                            self.p
                                .evaluate(&name, &list[g.representative].arn, &g.context);
                        if note(answer.decision, &answer, &mut statements, &mut keys) {
                            hit_count += g.members.len();
                            all_hits.insert((list_id, gi));
                            for i in &g.members {
                                if examples.len() == EXAMPLES {
                                    break;
                                }
                                examples.push(list[*i].arn.as_str());
                            }
                        }
                    }
                }
                for u in &t.unlisted {
                    if let Some(answer) = self.some_resource(&name, u) {
                        note(answer.decision, &answer, &mut statements, &mut keys);
                        new_resources.push(u.arn.clone());
                    }
                }
            }
        }
        if hit_count == 0 && new_resources.is_empty() {
            return None;
        }
        examples.sort_unstable();
        let definite_everywhere = !conditional && existing_total > 0 && hit_count == existing_total;
        Some((
            Grant {
                action: name,
                resource_count: hit_count as i64,
                resources: examples.iter().map(|r| r.to_string()).collect(),
                new_resources,
                decision: if conditional { "conditional" } else { "allow" }.to_string(),
                statements: statements.into_iter().collect(),
                unknown_keys: keys.into_iter().collect(),
            },
            definite_everywhere,
        ))
    }

    /// Is there a resource matching the unlisted target's ARN pattern that
    /// the principal may act on? Asked of concrete candidates: the pattern
    /// with a fresh name, and the pattern narrowed by each Allow statement's
    /// resources; the best answer (allow, then conditional) wins.
    fn some_resource(&self, action: &str, t: &Target) -> Option<super::Answer> {
        let ctx = self.context_for(t);
        let lower = action.to_ascii_lowercase();
        let mut candidates = vec![instantiate(&t.arn)];
        for s in self.p.policies.iter().flat_map(|pol| &pol.statements) {
            if s.effect != policy::Effect::Allow || !names(s, &lower) {
                continue;
            }
            if let Some(Patterns::Only(list)) = &s.resources {
                for r in list {
                    if let Some(c) = witness(&t.arn, r) {
                        candidates.push(c);
                    }
                }
            }
        }
        candidates.sort();
        candidates.dedup();
        let mut best: Option<super::Answer> = None;
        for c in candidates {
            let answer = self.p.evaluate(action, &c, &ctx);
            match answer.decision {
                Decision::Allow => return Some(answer),
                Decision::Conditional if best.is_none() => best = Some(answer),
                _ => {}
            }
        }
        best
    }

    /// Can describe every existing DB cluster (with none listed: some
    /// cluster in some audited region).
    fn can_read<'t>(&self, targets: &'t AccountTargets, groups: &mut GroupCache<'t, '_>) -> bool {
        let read = &self.questions.read;
        let name = read.full_name();
        if !self.ever_allowed(&name.to_ascii_lowercase()) {
            return false;
        }
        let clusters = targets.existing("rds", "cluster");
        if clusters.is_empty() {
            return targets.unlisted("rds", "cluster").iter().any(|u| {
                self.some_resource(&name, u)
                    .is_some_and(|a| a.decision == Decision::Allow)
            });
        }
        let allowed =
            |arn: &str, ctx: &Context| self.p.evaluate(&name, arn, ctx).decision == Decision::Allow;
        if self.uniform || groups.has(clusters) {
            return groups
                .get(self, clusters)
                .iter()
                .all(|g| allowed(&clusters[g.representative].arn, &g.context));
        }
        // One cluster it cannot read settles it: stop there rather than
        // group every cluster.
        clusters
            .iter()
            .all(|c| allowed(&c.arn, &self.context_for(c)))
    }
}

/// Resources the principal's statements cannot tell apart.
struct Group {
    representative: usize,
    members: Vec<usize>,
    /// The request context for the representative.
    context: Context,
}

/// Groups per resource list (keyed by the list's address: lists live as
/// long as the account's targets).
struct GroupCache<'t, 'c> {
    by_list: HashMap<usize, Vec<Group>>,
    partitions: &'c mut Partitions,
    _lists: std::marker::PhantomData<&'t ()>,
}

impl<'t> GroupCache<'t, '_> {
    /// Resources in a set of (list, group) pairs.
    fn members(&self, hits: &BTreeSet<(usize, usize)>) -> usize {
        hits.iter()
            .filter_map(|(l, g)| self.by_list.get(l)?.get(*g))
            .map(|g| g.members.len())
            .sum()
    }

    fn has(&self, list: &'t [Target]) -> bool {
        self.by_list.contains_key(&(list.as_ptr() as usize))
    }

    fn get(&mut self, scope: &Scope, list: &'t [Target]) -> &[Group] {
        let partitions = &mut *self.partitions;
        self.by_list
            .entry(list.as_ptr() as usize)
            .or_insert_with(|| group(scope, list, partitions))
    }
}

/// A list's resources partitioned by the values of some resource keys
/// (e.g. `aws:resourcetag/service`), computed once per account and shared
/// by every principal whose conditions read exactly those keys.
#[derive(Default)]
pub(crate) struct Partitions {
    by_list: HashMap<(usize, String), Vec<Vec<usize>>>,
}

impl Partitions {
    fn get(&mut self, list: &[Target], keys: &[String]) -> &[Vec<usize>] {
        self.by_list
            .entry((list.as_ptr() as usize, keys.join("\u{1}")))
            .or_insert_with(|| {
                if keys.is_empty() {
                    return vec![(0..list.len()).collect()];
                }
                let mut index: HashMap<String, usize> = HashMap::new();
                let mut parts: Vec<Vec<usize>> = Vec::new();
                let mut value = String::new();
                for (i, t) in list.iter().enumerate() {
                    value.clear();
                    for k in keys {
                        match t.context.lookup(k) {
                            Lookup::Present(v) => {
                                value.push('=');
                                for x in v {
                                    value.push_str(x);
                                    value.push('\u{2}');
                                }
                            }
                            Lookup::Absent => value.push('-'),
                            Lookup::Unknown => value.push('?'),
                        }
                        value.push('\u{1}');
                    }
                    match index.get(value.as_str()) {
                        Some(p) => parts[*p].push(i),
                        None => {
                            index.insert(value.clone(), parts.len());
                            parts.push(vec![i]);
                        }
                    }
                }
                parts
            })
    }
}

fn group(scope: &Scope, list: &[Target], partitions: &mut Partitions) -> Vec<Group> {
    if list.is_empty() {
        return vec![];
    }
    if scope.uniform {
        return vec![Group {
            representative: 0,
            members: (0..list.len()).collect(),
            context: scope.context_for(&list[0]),
        }];
    }
    let patterns_uniform = scope.matches_any.iter().all(|a| *a);
    let mut by_signature: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut out: Vec<Group> = Vec::new();
    let mut sig: Vec<u8> =
        Vec::with_capacity(scope.relevant.len() + scope.resource_conditions.len());
    for part in partitions.get(list, &scope.resource_condition_keys) {
        // Conditions on the resource's keys, by outcome (not by the keys'
        // values): resources that differ only in tags no condition tests
        // stay in one group. One evaluation per partition.
        let rep = &list[part[0]];
        let conditions: Vec<u8> = scope
            .resource_conditions
            .iter()
            .map(|c| super::eval::condition_outcome(c, &rep.context, scope.base))
            .collect();
        for &i in part {
            let t = &list[i];
            sig.clear();
            sig.extend_from_slice(&conditions);
            if !patterns_uniform {
                scope.pattern_signature(t, &mut sig);
            }
            match by_signature.get(sig.as_slice()) {
                Some(g) => out[*g].members.push(i),
                None => {
                    by_signature.insert(sig.clone(), out.len());
                    out.push(Group {
                        representative: i,
                        members: vec![i],
                        context: scope.context_for(t),
                    });
                }
            }
        }
    }
    // Members in list order, so that examples are the first resources.
    for g in &mut out {
        g.members.sort_unstable();
        if g.representative != g.members[0] {
            g.representative = g.members[0];
            g.context = scope.context_for(&list[g.representative]);
        }
    }
    out
}

impl Scope<'_> {
    /// How each relevant statement's resources treat `t`, appended to `sig`.
    fn pattern_signature(&self, t: &Target, sig: &mut Vec<u8>) {
        let part = t.resource();
        let ctx_probe = self.context_for_signature(t);
        for ((s, any), prefixes) in self
            .relevant
            .iter()
            .zip(&self.matches_any)
            .zip(&self.resource_prefixes)
        {
            let cannot_match = prefixes
                .as_ref()
                .is_some_and(|ps| !ps.iter().any(|p| part.starts_with(p)));
            sig.push(if *any {
                1
            } else if cannot_match {
                // No pattern can match: NotResource then applies.
                u8::from(matches!(s.resources, Some(Patterns::Not(_))))
            } else {
                super::eval::statement_resource_match(s, &t.arn, &ctx_probe)
            });
        }
    }
}

impl Scope<'_> {
    /// The context resource patterns' variables are resolved in: the base
    /// context, plus the target's own keys only when a pattern reads one.
    fn context_for_signature<'c>(&'c self, t: &Target) -> std::borrow::Cow<'c, Context> {
        if self.pattern_variables {
            std::borrow::Cow::Owned(self.context_for(t))
        } else {
            std::borrow::Cow::Borrowed(self.base)
        }
    }
}

/// The ARN pattern with every wildcard replaced by a fresh name.
fn instantiate(pattern: &str) -> String {
    pattern.replace('*', "dbaudit-new").replace('?', "x")
}

/// A concrete ARN matched by both the target pattern (region and account
/// fixed, `*` elsewhere) and a statement's resource pattern, if one is easy
/// to build: part by part, the fixed part of either side, else the
/// statement's part with its wildcards filled.
fn witness(target: &str, statement: &str) -> Option<String> {
    if statement.contains("${") {
        return None;
    }
    let t: Vec<&str> = target.splitn(6, ':').collect();
    let s: Vec<&str> = statement.splitn(6, ':').collect();
    if t.len() != 6 || s.len() != 6 {
        let c = statement.replace(['*', '?'], "x");
        return crate::glob::matches(target, &c).then_some(c);
    }
    let mut parts = Vec::with_capacity(6);
    for (tp, sp) in t.iter().zip(&s) {
        let part = if !tp.contains(['*', '?']) {
            crate::glob::matches(sp, tp).then(|| tp.to_string())?
        } else {
            let c = sp.replace(['*', '?'], "x");
            crate::glob::matches(tp, &c).then_some(c)?
        };
        parts.push(part);
    }
    Some(parts.join(":"))
}

/// Grants grouped by the set of statements behind them, in order of the
/// first action of each group.
pub fn group_by_statements<'g>(grants: impl Iterator<Item = &'g Grant>) -> Vec<AccessGroup> {
    let mut groups: BTreeMap<(Vec<String>, String), AccessGroup> = BTreeMap::new();
    let mut seen: BTreeMap<(Vec<String>, String), BTreeSet<String>> = BTreeMap::new();
    for g in grants {
        let key = (g.statements.clone(), g.decision.clone());
        let e = groups.entry(key.clone()).or_insert_with(|| AccessGroup {
            statements: g.statements.clone(),
            decision: g.decision.clone(),
            actions: vec![],
            resource_count: 0,
            resources: vec![],
            new_resources: vec![],
            unknown_keys: vec![],
        });
        e.actions.push(g.action.clone());
        let s = seen.entry(key).or_default();
        // Count distinct resources: the grants keep only examples, so take
        // the largest count as a lower bound when the sets differ.
        e.resource_count = e.resource_count.max(g.resource_count);
        for r in &g.resources {
            if s.insert(r.clone()) && e.resources.len() < EXAMPLES {
                e.resources.push(r.clone());
            }
        }
        for r in &g.new_resources {
            if !e.new_resources.contains(r) {
                e.new_resources.push(r.clone());
            }
        }
        for k in &g.unknown_keys {
            if !e.unknown_keys.contains(k) {
                e.unknown_keys.push(k.clone());
            }
        }
    }
    groups.into_values().collect()
}

/// Actions named first in a summary, most dangerous first: losing a
/// database, changing how it runs or who reaches it, reading or writing its
/// data.
const MOST_DANGEROUS: [&str; 16] = [
    "rds:DeleteDBCluster",
    "rds:DeleteDBInstance",
    "rds:ModifyDBCluster",
    "rds:ModifyDBInstance",
    "ec2:AuthorizeSecurityGroupIngress",
    "rds-data:ExecuteStatement",
    "rds:DeleteGlobalCluster",
    "rds:RemoveFromGlobalCluster",
    "rds:FailoverDBCluster",
    "rds:StopDBCluster",
    "rds:RestoreDBClusterToPointInTime",
    "rds:ModifyDBSubnetGroup",
    "ec2:ModifySecurityGroupRules",
    "ec2:DeleteSecurityGroup",
    "rds:RebootDBCluster",
    "rds:CreateDBCluster",
];

/// How dangerous an action is, for choosing the few a summary names: the
/// listed ones in order, then deleting, changing, creating and restoring,
/// the rest, tagging.
fn danger(action: &str) -> (usize, u8, &str) {
    if let Some(i) = MOST_DANGEROUS.iter().position(|a| *a == action) {
        return (i, 0, action);
    }
    let name = action.split_once(':').map(|(_, n)| n).unwrap_or(action);
    let rank = if name.starts_with("Delete") || name.starts_with("Revoke") {
        0
    } else if name.starts_with("Modify")
        || name.starts_with("Authorize")
        || name.starts_with("Execute")
        || name.starts_with("BatchExecute")
        || name.starts_with("Failover")
        || name.starts_with("Stop")
        || name.starts_with("Reboot")
    {
        1
    } else if name.starts_with("Restore") || name.starts_with("Create") || name.starts_with("Copy")
    {
        2
    } else if name.contains("Tag") {
        4
    } else {
        3
    };
    (MOST_DANGEROUS.len(), rank, action)
}

/// Short name of a statement reference for a sentence: the policy's name
/// (not its ARN) and the statement.
fn short_statement(s: &str) -> String {
    let (policy, rest) = s.split_once(" statement ").unwrap_or((s, ""));
    let name = policy.rsplit(['/', ':']).next().unwrap_or(policy);
    if rest.is_empty() {
        name.to_string()
    } else {
        format!("{name} statement {rest}")
    }
}

fn examples(actions: &[&str], n: usize) -> String {
    let mut sorted: Vec<&str> = actions.to_vec();
    sorted.sort_by_key(|a| danger(a));
    sorted
        .iter()
        .take(n)
        .copied()
        .collect::<Vec<_>>()
        .join(", ")
}

/// A summary stays short enough for a table row and a one-line message.
const SUMMARY_MAX_CHARS: usize = 250;

/// One sentence about a principal's write access: the RDS and the
/// security-group grants, each with the number of distinct existing
/// resources they apply to. Names fewer examples until it fits
/// [`SUMMARY_MAX_CHARS`].
pub fn summary(rds: (&[Grant], usize), sg: (&[Grant], usize)) -> String {
    if rds.0.is_empty() && sg.0.is_empty() {
        return "no non-read RDS or security-group action".to_string();
    }
    let attempts = [
        (SUMMARY_ACTIONS, SUMMARY_STATEMENTS),
        (2, 1),
        (1, 1),
        (0, 1),
    ];
    let mut text = String::new();
    for (n, statements) in attempts {
        text = summary_with(rds, sg, n, statements);
        if text.chars().count() <= SUMMARY_MAX_CHARS {
            break;
        }
    }
    text
}

fn summary_with(
    rds: (&[Grant], usize),
    sg: (&[Grant], usize),
    examples_n: usize,
    statements_n: usize,
) -> String {
    let both = !rds.0.is_empty() && !sg.0.is_empty();
    let mut parts = Vec::new();
    for ((grants, resources), what, noun, noun_one, is_sg) in [
        (rds, "non-read RDS", "resources", "resource", false),
        (
            sg,
            "security-group",
            "security groups",
            "security group",
            true,
        ),
    ] {
        if grants.is_empty() {
            continue;
        }
        let actions: Vec<&str> = grants.iter().map(|g| g.action.as_str()).collect();
        let new = grants.iter().any(|g| !g.new_resources.is_empty());
        let conditional = grants
            .iter()
            .filter(|g| g.decision == "conditional")
            .count();
        let noun = if resources == 1 { noun_one } else { noun };
        let on = match (resources, new) {
            (0, _) => "on new or unlisted resources".to_string(),
            (n, false) => format!("on {n} {noun}"),
            (n, true) => format!("on {n} {noun} and new ones"),
        };
        let cond = if conditional > 0 {
            format!(", {conditional} conditionally")
        } else {
            String::new()
        };
        // The second part of a two-part sentence names one example.
        let n = if both && is_sg {
            examples_n.min(1)
        } else {
            examples_n
        };
        let named = match (actions.len() <= n, n) {
            (true, _) => format!(" ({}{cond})", examples(&actions, n)),
            (false, 0) if cond.is_empty() => String::new(),
            (false, 0) => format!(" ({})", &cond[2..]),
            (false, n) => format!(" (e.g. {}{cond})", examples(&actions, n)),
        };
        parts.push(format!(
            "{} {what} action{}{named} {on}",
            actions.len(),
            if actions.len() == 1 { "" } else { "s" },
        ));
    }
    let statements: BTreeSet<String> = rds
        .0
        .iter()
        .chain(sg.0)
        .flat_map(|g| g.statements.iter().map(|s| short_statement(s)))
        .collect();
    let mut by = statements
        .iter()
        .take(statements_n)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if statements.len() > statements_n {
        by.push_str(&format!(" and {} more", statements.len() - statements_n));
    }
    format!("{}; granted by {by}", parts.join(", and "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn witnesses_narrow_the_pattern_by_the_statement() {
        assert_eq!(
            witness(
                "arn:aws:rds:eu-west-1:222222222222:cluster-pg:*",
                "arn:aws:rds:*:*:cluster-pg:prod-*"
            )
            .as_deref(),
            Some("arn:aws:rds:eu-west-1:222222222222:cluster-pg:prod-x")
        );
        // Another region or account: no resource of the target matches.
        assert_eq!(
            witness(
                "arn:aws:rds:eu-west-1:222222222222:cluster:*",
                "arn:aws:rds:us-east-1:*:cluster:*"
            ),
            None
        );
        // `*` narrows nothing: the fresh-name candidate covers it.
        assert_eq!(
            witness("arn:aws:rds:eu-west-1:222222222222:cluster:*", "*"),
            None
        );
    }

    #[test]
    fn summaries_name_the_most_dangerous_actions_first() {
        let g = |a: &str| Grant {
            action: a.to_string(),
            resource_count: 19,
            resources: vec![],
            new_resources: vec![],
            decision: "allow".into(),
            statements: vec!["arn:aws:iam::aws:policy/AmazonRDSFullAccess statement 0".into()],
            unknown_keys: vec![],
        };
        let s = summary(
            (
                &[
                    g("rds:AddTagsToResource"),
                    g("rds:ModifyDBCluster"),
                    g("rds:DeleteDBCluster"),
                    g("rds:CreateDBClusterSnapshot"),
                ],
                19,
            ),
            (&[], 0),
        );
        assert_eq!(
            s,
            "4 non-read RDS actions (e.g. rds:DeleteDBCluster, rds:ModifyDBCluster, \
             rds:CreateDBClusterSnapshot) on 19 resources; granted by \
             AmazonRDSFullAccess statement 0"
        );
    }
}
