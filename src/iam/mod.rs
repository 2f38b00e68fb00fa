//! A self-contained AWS policy-evaluation engine, offline, from the snapshot.
//!
//! `policy` parses documents, `eval` decides requests, this module builds
//! principals (users with their groups' policies, roles) from a snapshot's IAM
//! section and answers the design's questions: which non-read RDS actions can
//! a developer perform on the account's databases, and which statements grant
//! them; which `rds-db:connect` grants an application role has; whether an
//! IRSA role's trust pins one service account. Policies are parsed once per
//! account and shared (`Arc`) by every principal that attaches them.

pub mod analysis;
pub mod catalogue;
pub mod eval;
pub mod policy;
pub mod targets;

use std::collections::HashMap;
use std::sync::Arc;

pub use analysis::{AccessGroup, Grant, PrincipalFacts, principal_facts};
pub use catalogue::{ActionError, Catalogue};
pub use eval::{Answer, Context, Decision, Layer, Request, StatementRef};
pub use policy::{Policy, PolicyError};

use crate::snapshot::{Iam, Tags};

/// A user or role with the policies that apply to it.
#[derive(Debug, Clone)]
pub struct Principal {
    pub kind: &'static str,
    pub name: String,
    pub arn: String,
    /// The account the principal belongs to (from its ARN).
    pub account_id: String,
    pub groups: Vec<String>,
    pub tags: Tags,
    /// The tags are what `aws:PrincipalTag/…` holds in every request: true
    /// for users; for roles only when the trust policy does not let the
    /// caller set session tags (`sts:TagSession`), which override them.
    pub tags_authoritative: bool,
    pub policies: Vec<Arc<Policy>>,
    pub boundary: Option<Arc<Policy>>,
    /// Service control policies by organization level (empty: not evaluated).
    pub scps: Vec<Vec<Arc<Policy>>>,
    pub trust: Option<Policy>,
    /// Problems that make this principal's answers unknowable.
    pub errors: Vec<String>,
}

/// Services none of whose resources can have a resource-based policy that
/// grants another account access: identity policies alone never reach
/// another account's resources there.
const NO_RESOURCE_POLICIES: [&str; 4] = ["rds", "rds-db", "rds-data", "ec2"];

impl Principal {
    pub fn evaluate(&self, action: &str, resource: &str, context: &Context) -> Answer {
        let ids: Vec<&Policy> = self.policies.iter().map(|p| p.as_ref()).collect();
        let scps = self.scp_refs();
        let mut answer = eval::evaluate_with_scps(
            &ids,
            self.boundary.as_deref(),
            &scps,
            &Request {
                action,
                resource,
                context,
            },
        );
        // Another account's resource: an identity policy's Allow is not
        // enough; that account's resource-based policy must allow too.
        if let Some(owner) = other_account(resource, &self.account_id)
            && answer.decision != Decision::Deny
        {
            let service = action.split_once(':').map(|(s, _)| s).unwrap_or_default();
            if NO_RESOURCE_POLICIES.contains(&service.to_ascii_lowercase().as_str()) {
                // Whatever the identity policies say: nothing can grant it.
                answer.decision = Decision::ImplicitDeny;
                answer.decided_by = Layer::ResourceAccount;
                answer.unknown_keys.clear();
            } else if answer.decision != Decision::ImplicitDeny {
                answer.decision = Decision::Conditional;
                answer
                    .unknown_keys
                    .push(format!("resource-based policy of {owner}'s resource"));
            }
        }
        answer
    }

    pub(crate) fn scp_refs(&self) -> Vec<Vec<&Policy>> {
        self.scps
            .iter()
            .map(|l| l.iter().map(|p| p.as_ref()).collect())
            .collect()
    }

    /// The context every request of this principal carries.
    pub fn base_context(&self) -> Context {
        let mut c = Context::default();
        c.set("aws:PrincipalArn", &self.arn);
        c.set("aws:PrincipalAccount", &self.account_id);
        if self.kind == "user" {
            c.set("aws:PrincipalType", "User");
            c.set("aws:username", &self.name);
        } else {
            // A role session: AWS sends no aws:username for it.
            c.set("aws:PrincipalType", "AssumedRole");
            c.absent("aws:username");
        }
        if self.tags_authoritative {
            for (k, v) in &self.tags {
                c.set(&format!("aws:PrincipalTag/{k}"), v);
            }
            c.complete("aws:PrincipalTag/");
        }
        c
    }
}

/// The account that owns `resource` when it is a concrete account other
/// than `own` (an ARN's fifth part; empty or wildcard parts say nothing).
pub fn other_account<'r>(resource: &'r str, own: &str) -> Option<&'r str> {
    let acct = resource.split(':').nth(4)?;
    (acct.len() == 12 && acct.bytes().all(|b| b.is_ascii_digit()) && acct != own && !own.is_empty())
        .then_some(acct)
}

/// The account id in a principal's ARN (`arn:aws:iam::ACCOUNT:user/x`).
fn arn_account(arn: &str) -> String {
    arn.split(':').nth(4).unwrap_or_default().to_string()
}

/// Whether a trust policy lets its callers pass session tags.
fn allows_tag_session(trust: &Policy) -> bool {
    trust.statements.iter().any(|s| {
        s.effect == policy::Effect::Allow
            && match &s.actions {
                policy::Patterns::Only(a) => {
                    a.iter().any(|a| crate::glob::matches(a, "sts:tagsession"))
                }
                policy::Patterns::Not(a) => {
                    !a.iter().any(|a| crate::glob::matches(a, "sts:tagsession"))
                }
            }
    })
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
            account_id: arn_account(&u.arn),
            groups: u.groups.clone(),
            tags: u.tags.clone(),
            tags_authoritative: true,
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
        let tags_authoritative = trust.as_ref().is_some_and(|t| !allows_tag_session(t));
        out.push(Principal {
            kind: "role",
            name: r.name.clone(),
            arn: r.arn.clone(),
            account_id: arn_account(&r.arn),
            groups: Vec::new(),
            tags: r.tags.clone(),
            tags_authoritative,
            policies,
            boundary: b,
            scps: scp_levels.clone(),
            trust,
            errors,
        });
    }
    out
}

/// `arn:aws:rds-db:REGION:ACCOUNT:dbuser:cluster-ID/USER` with no wildcard
/// in the resource id or the user name.
pub(crate) fn scoped_dbuser(arn: &str) -> bool {
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
pub(crate) fn irsa(p: &Principal) -> (bool, Vec<String>, bool) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{IamRole, IamUser, InlinePolicy};
    use serde_json::json;

    fn iam(trust_actions: serde_json::Value) -> Iam {
        let allow_team = json!({"Statement": [{"Effect": "Allow", "Action": "rds:ModifyDBCluster",
            "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalTag/team": "dba"}}}]});
        Iam {
            users: vec![IamUser {
                name: "alice".into(),
                arn: "arn:aws:iam::222222222222:user/alice".into(),
                inline_policies: vec![InlinePolicy {
                    name: "p".into(),
                    document: allow_team.clone(),
                }],
                ..IamUser::default()
            }],
            roles: vec![IamRole {
                name: "ops".into(),
                arn: "arn:aws:iam::222222222222:role/ops".into(),
                trust_policy: json!({"Statement": [{"Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::222222222222:root"}, "Action": trust_actions}]}),
                inline_policies: vec![InlinePolicy {
                    name: "p".into(),
                    document: allow_team,
                }],
                tags: [("team".to_string(), "dba".to_string())]
                    .into_iter()
                    .collect(),
                ..IamRole::default()
            }],
            ..Iam::default()
        }
    }

    fn decide(iam: &Iam, name: &str) -> Decision {
        let p = principals(iam, None)
            .into_iter()
            .find(|p| p.name == name)
            .unwrap();
        let arn = "arn:aws:rds:eu-west-1:222222222222:cluster:prod-orders";
        p.evaluate("rds:ModifyDBCluster", arn, &p.base_context())
            .decision
    }

    #[test]
    fn principal_tags_are_known_for_users_and_for_roles_without_session_tags() {
        // alice has no `team` tag: the key is absent, the Allow does not apply.
        let plain = iam(json!("sts:AssumeRole"));
        assert_eq!(decide(&plain, "alice"), Decision::ImplicitDeny);
        // The role's own tag decides when callers cannot pass session tags…
        assert_eq!(decide(&plain, "ops"), Decision::Allow);
        // …and is unknown when they can (a session tag would override it).
        let tagging = iam(json!(["sts:AssumeRole", "sts:TagSession"]));
        assert_eq!(decide(&tagging, "ops"), Decision::Conditional);
    }

    #[test]
    fn role_sessions_have_no_username_and_name_their_account() {
        let p = principals(&iam(json!("sts:AssumeRole")), None)
            .into_iter()
            .find(|p| p.name == "ops")
            .unwrap();
        let c = p.base_context();
        assert!(matches!(c.lookup("aws:username"), eval::Lookup::Absent));
        assert!(
            matches!(c.lookup("aws:principalaccount"), eval::Lookup::Present(v) if v == ["222222222222"])
        );
        assert!(
            matches!(c.lookup("aws:principaltype"), eval::Lookup::Present(v) if v == ["AssumedRole"])
        );
    }
}
