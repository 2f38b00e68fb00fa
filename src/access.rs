//! `dbaudit access`: questions to the IAM engine about a snapshot, answered
//! as typed values (rendered as text or JSON by the caller).
//!
//! * "Can PRINCIPAL do ACTION on RESOURCE?" — the resource is an ARN, `*`
//!   (actions that take no resource), or an ARN pattern with `*`/`?`, which
//!   means "is there a resource in the snapshot matching it that the
//!   principal can act on". A resource the snapshot holds brings its tags and
//!   region as request context; keys given with `--context` are known, keys
//!   given with `--context-absent` are absent, every other request-time key
//!   is unknown (the answer is then `conditional`, naming them).
//! * "Who can write the databases of ENV?" — every principal with a non-read
//!   RDS or security-group action on the environment's accounts' resources.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::config::Config;
use crate::iam::analysis::PrincipalFacts;
use crate::iam::eval::{Context, Decision, Layer, StatementRef};
use crate::iam::targets::AccountTargets;
use crate::iam::{Catalogue, Principal};
use crate::snapshot::{Account, Snapshot};

/// What went wrong with a question (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("{0}")]
    Action(#[from] crate::iam::ActionError),
    #[error(
        "`{given}` is not an ARN: expected arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE, `*`, or an ARN pattern{}",
        suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default()
    )]
    Resource {
        given: String,
        suggestion: Option<String>,
    },
    #[error("no user or role `{given}` in the snapshot{}", suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    Principal {
        given: String,
        suggestion: Option<String>,
    },
    #[error("cannot evaluate {0}: {1}")]
    Unknowable(String, String),
    #[error("--context takes KEY=VALUE, found `{0}`")]
    Context(String),
    #[error("no environment `{given}` in the snapshot; known: {}", known.join(", "))]
    Environment { given: String, known: Vec<String> },
    #[error("account `{0}` has no IAM data in this snapshot")]
    NoIam(String),
}

/// A question about one principal.
pub struct Question<'q> {
    pub principal: &'q str,
    pub action: &'q str,
    pub resource: &'q str,
    /// `KEY=VALUE` pairs known about the request.
    pub context: &'q [String],
    /// Keys known to be absent from the request.
    pub absent: &'q [String],
}

/// The answer for one resource.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceAnswer {
    pub resource: String,
    pub decision: Decision,
    /// The layer that decided, in words (identity policies, permissions
    /// boundary, an SCP level with its target, resource account).
    pub decided_by: String,
    pub allowed_by: Vec<StatementRef>,
    pub denied_by: Vec<StatementRef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown_keys: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccessAnswer {
    pub principal: String,
    pub action: String,
    pub resource: String,
    /// The answer: for a pattern, the most permissive over the matching
    /// resources (allow, then conditional, then deny).
    pub decision: Decision,
    pub decided_by: String,
    pub allowed_by: Vec<StatementRef>,
    pub denied_by: Vec<StatementRef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown_keys: Vec<String>,
    /// For a pattern: each matching resource of the snapshot and its answer
    /// (empty: none exists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matches: Option<Vec<ResourceAnswer>>,
    /// What the answer assumes (SCPs evaluated or not, what is not modelled).
    pub assumptions: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl AccessAnswer {
    /// `allow`, `deny` (explicit or implicit) or `conditional`.
    pub fn outcome(&self) -> &'static str {
        match self.decision {
            Decision::Allow => "allow",
            Decision::Deny | Decision::ImplicitDeny => "deny",
            Decision::Conditional => "conditional",
        }
    }
}

fn layer_text(layer: Layer, account: &Account) -> String {
    match layer {
        Layer::Scp(i) => {
            let levels = account.scps.as_deref().unwrap_or_default();
            let target = levels.get(i).map(|l| l.target.as_str()).unwrap_or("?");
            let what = if i == 0 {
                "root"
            } else if i + 1 == levels.len() {
                "account"
            } else {
                "OU"
            };
            format!("service control policies at the {what} level ({target})")
        }
        Layer::ResourceAccount => {
            "resource account: the resource is in another account, and RDS resources and security groups have no resource-based policy to grant it".to_string()
        }
        other => other.to_string(),
    }
}

/// Whether a resource argument is `*`, an ARN, or an ARN pattern.
fn check_resource(resource: &str, snapshot: &Snapshot) -> Result<(), AccessError> {
    if resource == "*" {
        return Ok(());
    }
    let parts: Vec<&str> = resource.splitn(6, ':').collect();
    let ok = parts.len() == 6 && parts[0] == "arn" && !parts[1].is_empty() && !parts[2].is_empty();
    if ok {
        return Ok(());
    }
    // A resource's name given instead of its ARN: suggest the ARN.
    let suggestion = snapshot
        .accounts
        .iter()
        .flat_map(|a| &a.regions)
        .flat_map(|r| {
            r.db_clusters
                .iter()
                .map(|c| (c.id.as_str(), c.arn.as_str()))
                .chain(
                    r.db_instances
                        .iter()
                        .map(|i| (i.id.as_str(), i.arn.as_str())),
                )
        })
        .find(|(id, _)| *id == resource)
        .map(|(_, arn)| arn.to_string());
    Err(AccessError::Resource {
        given: resource.to_string(),
        suggestion,
    })
}

fn find_principal<'s>(
    snapshot: &'s Snapshot,
    arn: &str,
) -> Result<(&'s Account, Principal), AccessError> {
    for account in &snapshot.accounts {
        let Some(iam) = &account.iam else { continue };
        if iam.users.iter().any(|u| u.arn == arn) || iam.roles.iter().any(|r| r.arn == arn) {
            let p = crate::iam::principals(iam, account.scps.as_deref())
                .into_iter()
                .find(|p| p.arn == arn)
                .expect("found above");
            return Ok((account, p));
        }
    }
    let all: Vec<&str> = snapshot
        .accounts
        .iter()
        .filter_map(|a| a.iam.as_ref())
        .flat_map(|i| {
            i.users
                .iter()
                .map(|u| u.arn.as_str())
                .chain(i.roles.iter().map(|r| r.arn.as_str()))
        })
        .collect();
    let suggestion = crate::iam::catalogue::nearest(arn, all.into_iter()).map(str::to_string);
    Err(AccessError::Principal {
        given: arn.to_string(),
        suggestion,
    })
}

/// Answers a question about one principal.
pub fn ask(snapshot: &Snapshot, q: &Question) -> Result<AccessAnswer, AccessError> {
    let (account, principal) = find_principal(snapshot, q.principal)?;
    let action = Catalogue::get().action(q.action)?;
    check_resource(q.resource, snapshot)?;
    if !principal.errors.is_empty() {
        return Err(AccessError::Unknowable(
            q.principal.to_string(),
            principal.errors.join("; "),
        ));
    }
    let mut ctx = principal.base_context();
    for kv in q.context {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| AccessError::Context(kv.clone()))?;
        ctx.set(k, v);
    }
    for k in q.absent {
        ctx.absent(k);
    }
    let name = action.full_name();
    let mut notes = Vec::new();
    let mut assumptions = vec![
        if account.scps.is_some() {
            "service control policies from the snapshot were evaluated".to_string()
        } else {
            "the snapshot has no service control policies: the answer assumes none restricts the account".to_string()
        },
        "session policies are not modelled; resource-based policies are not collected (RDS and security groups have none)".to_string(),
    ];
    if !q.context.is_empty() || !q.absent.is_empty() {
        assumptions.push("request keys as given with --context / --context-absent".to_string());
    }
    // Every resource of the snapshot an IAM question can be about, with the
    // request context it brings.
    let targets: Vec<(&Account, AccountTargets)> = snapshot
        .accounts
        .iter()
        .map(|a| (a, AccountTargets::new(a)))
        .collect();
    let types = &action.info.resources;
    let resource_context = |arn: &str| -> Option<Context> {
        targets
            .iter()
            .flat_map(|(_, t)| t.all_existing())
            .find(|t| t.arn == arn)
            .map(|t| t.context.clone())
    };
    let answer_one = |arn: &str| -> ResourceAnswer {
        let mut c = ctx.clone();
        if let Some(rc) = resource_context(arn) {
            c.extend(&rc);
        }
        let a = principal.evaluate(&name, arn, &c);
        ResourceAnswer {
            resource: arn.to_string(),
            decision: a.decision,
            decided_by: layer_text(a.decided_by, account),
            allowed_by: a.allowed_by,
            denied_by: a.denied_by,
            unknown_keys: a.unknown_keys,
        }
    };
    let is_pattern = q.resource != "*" && q.resource.contains(['*', '?']);
    if !is_pattern {
        if q.resource != "*" {
            match Catalogue::get().resource_type_of(q.resource) {
                Some((svc, ty)) if svc == action.service && !types.iter().any(|t| t == ty) => {
                    notes.push(format!(
                        "{name} applies to {} resources, not to `{ty}`: AWS never asks it about this resource",
                        if types.is_empty() { "no (only `*`)".to_string() } else { types.join("/") }
                    ))
                }
                _ => {}
            }
            if resource_context(q.resource).is_none()
                && crate::iam::other_account(q.resource, &principal.account_id).is_none()
            {
                notes.push("the resource is not in the snapshot: its tags are unknown".to_string());
            }
        } else if !types.is_empty() {
            notes.push(format!(
                "{name} applies to {} resources; `*` asks about every resource at once",
                types.join("/")
            ));
        }
        let r = answer_one(q.resource);
        return Ok(AccessAnswer {
            principal: q.principal.to_string(),
            action: name,
            resource: q.resource.to_string(),
            decision: r.decision,
            decided_by: r.decided_by,
            allowed_by: r.allowed_by,
            denied_by: r.denied_by,
            unknown_keys: r.unknown_keys,
            matches: None,
            assumptions,
            notes,
        });
    }
    // A pattern: the snapshot's resources that match it and that the action
    // applies to.
    let mut matches: Vec<ResourceAnswer> = targets
        .iter()
        .flat_map(|(_, t)| t.all_existing())
        .filter(|t| t.service == action.service && types.contains(&t.resource_type))
        .filter(|t| crate::glob::matches(q.resource, &t.arn))
        .map(|t| answer_one(&t.arn))
        .collect();
    matches.sort_by(|a, b| a.resource.cmp(&b.resource));
    let rank = |d: Decision| match d {
        Decision::Allow => 0,
        Decision::Conditional => 1,
        Decision::ImplicitDeny => 2,
        Decision::Deny => 3,
    };
    let best = matches.iter().min_by_key(|m| rank(m.decision)).cloned();
    let answer = match best {
        Some(b) => {
            let count = |d: Decision| matches.iter().filter(|m| m.decision == d).count();
            notes.push(format!(
                "{} resource(s) of the snapshot match: {} allowed, {} conditional, {} denied",
                matches.len(),
                count(Decision::Allow),
                count(Decision::Conditional),
                matches.len() - count(Decision::Allow) - count(Decision::Conditional)
            ));
            b
        }
        None => {
            notes.push(format!(
                "no resource in the snapshot matches `{}`{}",
                q.resource,
                if types.is_empty() {
                    String::new()
                } else {
                    format!(" among the {} resources {name} applies to", types.join("/"))
                }
            ));
            ResourceAnswer {
                resource: q.resource.to_string(),
                decision: Decision::ImplicitDeny,
                decided_by: "no matching resource exists".to_string(),
                allowed_by: vec![],
                denied_by: vec![],
                unknown_keys: vec![],
            }
        }
    };
    Ok(AccessAnswer {
        principal: q.principal.to_string(),
        action: name,
        resource: q.resource.to_string(),
        decision: answer.decision,
        decided_by: answer.decided_by,
        allowed_by: answer.allowed_by,
        denied_by: answer.denied_by,
        unknown_keys: answer.unknown_keys,
        matches: Some(matches),
        assumptions,
        notes,
    })
}

fn decision_word(d: Decision) -> &'static str {
    match d {
        Decision::Allow => "ALLOW",
        Decision::Deny => "DENY (explicit)",
        Decision::ImplicitDeny => "DENY (implicit: nothing allows it)",
        Decision::Conditional => "CONDITIONAL",
    }
}

/// Text for a terminal.
pub fn render_answer(a: &AccessAnswer) -> String {
    let mut out = format!(
        "{} on {} by {}: {}\n  decided by: {}\n",
        a.action,
        a.resource,
        a.principal,
        decision_word(a.decision),
        a.decided_by
    );
    for s in &a.allowed_by {
        out.push_str(&format!("  allowed by {s}\n"));
    }
    for s in &a.denied_by {
        out.push_str(&format!("  denied by {s}\n"));
    }
    if !a.unknown_keys.is_empty() {
        out.push_str(&format!(
            "  depends on condition keys not known: {} (give them with --context KEY=VALUE or --context-absent KEY)\n",
            a.unknown_keys.join(", ")
        ));
    }
    if let Some(m) = &a.matches {
        for r in m {
            out.push_str(&format!(
                "  {} {}\n",
                match r.decision {
                    Decision::Allow => "allow      ",
                    Decision::Conditional => "conditional",
                    Decision::Deny | Decision::ImplicitDeny => "deny       ",
                },
                r.resource
            ));
        }
    }
    for n in &a.notes {
        out.push_str(&format!("  note: {n}\n"));
    }
    for s in &a.assumptions {
        out.push_str(&format!("  assumes: {s}\n"));
    }
    out
}

/// One principal that can write an environment's databases.
#[derive(Debug, Clone, Serialize)]
pub struct Writer {
    pub account: String,
    pub principal: String,
    pub developer: bool,
    /// One sentence (counts, examples, statements).
    pub summary: String,
    /// Everything: each action with its resources and statements.
    pub facts: PrincipalFacts,
}

/// Every principal of the environment's accounts with a non-read RDS or
/// security-group action (or whose policies could not be read).
pub fn who_can_write(
    snapshot: &Snapshot,
    config: &Config,
    env: &str,
) -> Result<Vec<Writer>, AccessError> {
    let known: BTreeSet<&str> = snapshot
        .accounts
        .iter()
        .map(|a| a.environment.as_str())
        .collect();
    if !known.contains(env) {
        return Err(AccessError::Environment {
            given: env.to_string(),
            known: known.into_iter().map(str::to_string).collect(),
        });
    }
    let mut out = Vec::new();
    for a in snapshot.accounts.iter().filter(|a| a.environment == env) {
        let facts = crate::iam::principal_facts(a, &config.developers)
            .ok_or_else(|| AccessError::NoIam(a.name.clone()))?;
        for p in facts {
            let writes = p.rds_write.as_ref().is_some_and(|g| !g.is_empty())
                || p.sg_write.as_ref().is_some_and(|g| !g.is_empty());
            if writes || !p.unknown.is_empty() {
                out.push(Writer {
                    account: a.name.clone(),
                    principal: p.arn.clone(),
                    developer: p.is_developer,
                    summary: if p.unknown.is_empty() {
                        p.write_summary.clone().unwrap_or_default()
                    } else {
                        format!("could not be evaluated: {}", p.unknown.join("; "))
                    },
                    facts: p,
                });
            }
        }
    }
    Ok(out)
}

/// Text for a terminal: a line per principal, or every action and
/// statement with `verbose`.
pub fn render_writers(env: &str, writers: &[Writer], verbose: bool) -> String {
    if writers.is_empty() {
        return format!(
            "no principal can perform a non-read RDS or security-group action on the resources of `{env}`\n"
        );
    }
    let mut out = String::new();
    for w in writers {
        out.push_str(&format!(
            "{} {}{}: {}\n",
            w.account,
            w.principal,
            if w.developer { " (developer)" } else { "" },
            w.summary
        ));
        if !verbose {
            continue;
        }
        for g in w.facts.write_access.iter().flatten() {
            out.push_str(&format!(
                "  {} by {}:\n    {}\n",
                g.decision,
                g.statements.join("; "),
                g.actions.join(", ")
            ));
        }
    }
    if !verbose {
        out.push_str("(--verbose or --format json lists every action, resource and statement)\n");
    }
    out
}
