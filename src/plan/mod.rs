//! `dbaudit plan`: a Terraform plan evaluated on top of the live snapshot.
//!
//! The plan's changes are applied to a copy of the snapshot (`apply.rs`),
//! the same rules evaluate the predicted state, and the live snapshot's own
//! evaluation is the baseline: by default only failures the plan
//! introduces gate. A rule that reads a fact the plan leaves unknown gives
//! `unknown` (`coverage.rs` says which attribute feeds which fact). A
//! finding the plan causes points at the `.tf` line that causes it
//! (`source.rs`): the change is found by leaving each change out in turn
//! and seeing which one the finding depends on. docs/plan.md.

pub mod apply;
pub mod coverage;
pub mod format;
pub mod source;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use crate::audit::{AuditOptions, audit, audit_with, rebaseline};
use crate::config::Config;
use crate::error::Error;
use crate::facts::ResourceKind;
use crate::finding::{Finding, Outcome, RepoLocation};
use crate::findings::spool_error;
use crate::report::gate::{self, OnIncomplete};
use crate::report::{FindingSummary, PlanChange, PlanSummary, Report};
use crate::rules::RuleSet;
use crate::snapshot::Snapshot;
pub use apply::{Prediction, Target, Treatment};
pub use format::PlanJson;

/// How to judge a plan.
pub struct PlanOptions {
    pub target: Target,
    /// What `unknown` outcomes do to the gate.
    pub on_unknown: OnIncomplete,
    /// The root module's directory, for locations in the .tf files.
    pub tf_dir: Option<PathBuf>,
    /// What SARIF paths are relative to.
    pub repo_root: PathBuf,
    /// Gate on every failure, not only those the plan introduces.
    pub gate_existing: bool,
    /// The plan file as the user named it.
    pub file: String,
}

/// Most changes whose findings are attributed by leaving each out in
/// turn (one evaluation of the plan's account per change).
pub const MAX_ATTRIBUTED_CHANGES: usize = 200;

/// Up to this many accounts, attribution evaluates the whole estate, so
/// that pair (parity) findings point at the change too.
const WHOLE_ESTATE_ACCOUNTS: usize = 8;

/// Evaluates `plan` on `snapshot`: the report of the predicted state, with
/// the live state as its baseline.
pub fn audit_plan(
    snapshot: &Snapshot,
    plan: &PlanJson,
    rules: &RuleSet,
    config: &Config,
    opts: &AuditOptions,
    popts: &PlanOptions,
) -> Result<Report, Error> {
    let live = audit(snapshot, rules, config, opts)?;
    let prediction = apply::predict(snapshot, plan, &popts.target)?;
    let mut sources = match &popts.tf_dir {
        Some(d) => Some(source::Sources::new(d, &popts.repo_root)?),
        None => None,
    };
    let locations: Vec<Option<RepoLocation>> = prediction
        .changes
        .iter()
        .map(|p| sources.as_mut().and_then(|s| s.locate(plan, p)))
        .collect();
    let account = &prediction.snapshot.accounts[prediction.account];
    let account_id = account.account_id.clone();
    let account_key = crate::model::kind::account_key(account).to_string();
    let unknown = unknown_facts(&prediction, &config.service_tag);
    // What each rule reads: its top-level facts, and the source of its
    // condition and filter (for the fields of a pair's database lists).
    let rule_reads: HashMap<&str, (BTreeSet<String>, String)> = rules
        .rules
        .iter()
        .map(|r| {
            let mut source = r.condition.source.clone();
            if let Some(a) = &r.applies_if {
                source.push('\n');
                source.push_str(&a.source);
            }
            (
                r.id.as_str(),
                (r.resource_fields().unwrap_or_default(), source),
            )
        })
        .collect();
    // A plan is one account's: its findings are held.
    let live_findings = live.findings.load().map_err(spool_error)?;
    let live_errors: BTreeSet<(String, ResourceKind, String)> = live_findings
        .iter()
        .filter(|f| f.outcome == Outcome::Error)
        .map(|f| {
            (
                f.rule_id.to_string(),
                f.resource_kind,
                f.resource_id.to_string(),
            )
        })
        .collect();
    let new_resources: HashMap<(ResourceKind, String), usize> = prediction
        .changes
        .iter()
        .enumerate()
        .filter(|(_, p)| p.new)
        .filter_map(|(i, p)| p.resource.clone().map(|r| (r, i)))
        .collect();
    let own: HashMap<(ResourceKind, String), usize> = prediction
        .changes
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.resource.clone().map(|r| (r, i)))
        .collect();
    let (causes, attribution_note) =
        attribute(snapshot, plan, &popts.target, &prediction, rules, config)?;

    let mut adjust = |_: &Snapshot, findings: &mut Vec<Finding>| {
        for f in findings.iter_mut() {
            if *f.account_id != *account_id {
                continue;
            }
            let key = (f.resource_kind, f.resource_id.to_string());
            let cell = (
                f.rule_id.to_string(),
                f.resource_kind,
                f.resource_id.to_string(),
            );
            if let Some(reasons) = unknown.get(&key) {
                let reads = rule_reads.get(&*f.rule_id);
                let hit: Vec<&str> = reasons
                    .iter()
                    .filter(|u| reads.is_some_and(|(fs, src)| u.concerns(fs, src)))
                    .map(|u| u.why.as_str())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                // An error the live state had too is not the plan's doing.
                let carried_error = f.outcome == Outcome::Error && live_errors.contains(&cell);
                if !hit.is_empty() && !carried_error {
                    f.outcome = Outcome::Unknown;
                    f.message = format!("unknown until apply: {}", hit.join("; ")).into();
                    f.evidence = None;
                }
            }
            if let Some(&i) = new_resources.get(&key) {
                f.fingerprint = crate::finding::fingerprint(
                    &f.rule_id,
                    &account_key,
                    &format!("terraform:{}", prediction.changes[i].address),
                );
            }
            if f.outcome != Outcome::Pass {
                let at = causes
                    .get(&cell)
                    .and_then(|c| c.iter().find_map(|&i| locations[i].clone()))
                    .or_else(|| own.get(&key).and_then(|&i| locations[i].clone()));
                if let Some(at) = at {
                    f.location = Some(at);
                }
            }
        }
    };
    let mut report = audit_with(&prediction.snapshot, rules, config, opts, &mut adjust)?;
    let baseline: Vec<FindingSummary> = live_findings
        .iter()
        .filter(|f| f.outcome.is_failing())
        .map(FindingSummary::of)
        .collect();
    rebaseline(
        &mut report,
        &baseline,
        opts,
        Some(&format!(
            "the live snapshot (collected {}) without the plan",
            snapshot.collected_at
        )),
    )?;
    let reason_suffix = report
        .gate
        .reason
        .split_once("; baseline: ")
        .map(|(_, b)| format!("; baseline: {b}"))
        .unwrap_or_default();
    report.gate = if popts.gate_existing {
        let mut all = report.findings.load().map_err(spool_error)?.into_owned();
        for f in &mut all {
            f.baseline = None;
        }
        gate::decide_with(
            &all,
            opts.fail_on,
            opts.on_incomplete,
            Some(popts.on_unknown),
        )
    } else {
        let mut g = gate::decide_with(
            &report.findings.load().map_err(spool_error)?,
            opts.fail_on,
            opts.on_incomplete,
            Some(popts.on_unknown),
        );
        g.reason.push_str(&reason_suffix);
        g
    };
    // A change to a type rules depend on that dbaudit cannot apply: the
    // prediction may be wrong, so it cannot pass.
    let unpredicted: Vec<&str> = prediction
        .changes
        .iter()
        .filter(|p| matches!(p.treatment, Treatment::NotPredicted(_)))
        .map(|p| p.address.as_str())
        .collect();
    if !unpredicted.is_empty() {
        report.gate.reason.push_str(&format!(
            "; {} change(s) dbaudit does not predict: {}",
            unpredicted.len(),
            unpredicted.join(", ")
        ));
        if report.gate.exit_code == gate::EXIT_OK && popts.on_unknown == OnIncomplete::Fail {
            report.gate.status = gate::GateStatus::Incomplete;
            report.gate.exit_code = gate::EXIT_INCOMPLETE;
        }
    }
    if let Some(note) = attribution_note {
        report.gate.reason.push_str(&format!("; {note}"));
    }
    report.plan = Some(PlanSummary {
        file: popts.file.clone(),
        terraform_version: plan.terraform_version.clone(),
        account: account.name.clone(),
        region: prediction.region.clone(),
        changes: prediction
            .changes
            .iter()
            .zip(locations)
            .map(|(p, location)| PlanChange {
                address: p.address.clone(),
                tf_type: p.tf_type.clone(),
                action: p.action.as_str().to_string(),
                treatment: match &p.treatment {
                    Treatment::Applied => "applied",
                    Treatment::NoChange => "no-change",
                    Treatment::NotRead => "not-read",
                    Treatment::NotPredicted(_) => "not-predicted",
                }
                .to_string(),
                note: match &p.treatment {
                    Treatment::NotPredicted(why) => Some(why.clone()),
                    Treatment::NotRead => Some("no rule reads this type".to_string()),
                    _ if !p.notes.is_empty() => Some(p.notes.join("; ")),
                    _ => None,
                },
                unknown: p.unknown.clone(),
                location,
            })
            .collect(),
        resolved: prediction.resolved.clone(),
        gate_existing: popts.gate_existing,
    });
    Ok(report)
}

/// Per resource of the plan's account, the facts the plan leaves unknown
/// and why: attributes known only after apply (reaching the databases
/// built from them), and on new resources the facts no plan predicts.
fn unknown_facts(
    p: &Prediction,
    service_tag: &str,
) -> HashMap<(ResourceKind, String), Vec<Unknown>> {
    let mut out: HashMap<(ResourceKind, String), Vec<Unknown>> = HashMap::new();
    let account = &p.snapshot.accounts[p.account];
    for c in p.changes.iter().filter(|c| c.applied()) {
        let Some(region) = account.regions.iter().find(|r| r.name == c.region) else {
            continue;
        };
        if c.unknown.is_empty() {
            continue;
        }
        // The resources whose facts this change feeds.
        let mut reach: Vec<(ResourceKind, String)> = Vec::new();
        reach.extend(c.resource.clone());
        match c.tf_type.as_str() {
            "aws_rds_cluster_instance" => {
                if let Some((_, id)) = &c.resource
                    && let Some(cid) = region
                        .db_instances
                        .iter()
                        .find(|x| &x.id == id)
                        .and_then(|x| x.cluster_id.clone())
                {
                    reach.push((ResourceKind::DbCluster, cid));
                }
            }
            t if t.starts_with("aws_iam_") => {
                if let Some(iam) = &account.iam {
                    reach.extend(
                        iam.users
                            .iter()
                            .map(|u| (ResourceKind::IamPrincipal, u.name.clone())),
                    );
                    reach.extend(
                        iam.roles
                            .iter()
                            .map(|u| (ResourceKind::IamPrincipal, u.name.clone())),
                    );
                }
            }
            "aws_rds_cluster" => {
                if let Some((_, id)) = &c.resource {
                    reach.extend(
                        region
                            .db_instances
                            .iter()
                            .filter(|x| x.cluster_id.as_deref() == Some(id))
                            .map(|x| (ResourceKind::DbInstance, x.id.clone())),
                    );
                }
            }
            "aws_db_instance" | "aws_db_proxy" => {}
            _ => {
                // Networks and parameter groups: the databases that use
                // the touched group, or all of the region's when unknown.
                let touches = |ids: &[String], group: Option<&str>| match &c.touches {
                    Some(t) => ids.iter().any(|x| x == t) || group == Some(t.as_str()),
                    None => true,
                };
                for x in &region.db_clusters {
                    if touches(&x.vpc_security_group_ids, x.db_subnet_group.as_deref())
                        || x.parameter_group.as_deref() == c.touches.as_deref()
                    {
                        reach.push((ResourceKind::DbCluster, x.id.clone()));
                    }
                }
                for x in &region.db_instances {
                    if touches(&x.vpc_security_group_ids, x.db_subnet_group.as_deref()) {
                        reach.push((ResourceKind::DbInstance, x.id.clone()));
                    }
                }
                for x in region.db_proxies.iter().flatten() {
                    if touches(&x.security_group_ids, None) {
                        reach.push((ResourceKind::DbProxy, x.name.clone()));
                    }
                }
            }
        }
        for (kind, id) in reach {
            for attr in &c.unknown {
                let why = format!("{}.{attr} is known only after apply", c.address);
                let facts = coverage::facts_fed_by(kind, &c.tf_type, attr);
                // A service's test ↔ prod comparison lists its clusters'
                // engine, IAM auth, encryption and parameters.
                if kind == ResourceKind::DbCluster
                    && let Some(fields) = coverage::pair_fields_fed_by(&c.tf_type, attr)
                    && let Some(x) = region.db_clusters.iter().find(|x| x.id == id)
                {
                    for service in crate::model::services(&x.tags, service_tag) {
                        for fact in coverage::PAIR_SUMMARY_FACTS {
                            out.entry((ResourceKind::ServicePair, service.clone()))
                                .or_default()
                                .push(Unknown {
                                    fact,
                                    fields,
                                    why: why.clone(),
                                });
                        }
                    }
                }
                for fact in facts {
                    out.entry((kind, id.clone())).or_default().push(Unknown {
                        fact,
                        fields: &[],
                        why: why.clone(),
                    });
                }
            }
        }
    }
    for c in p.changes.iter().filter(|c| c.applied() && c.new) {
        let Some((kind, id)) = &c.resource else {
            continue;
        };
        for n in coverage::NOT_PREDICTED.iter().filter(|n| n.kind == *kind) {
            out.entry((*kind, id.clone()))
                .or_default()
                .push(Unknown::whole(
                    n.fact,
                    format!(
                        "{} of the new {}: not predicted from a plan ({})",
                        n.fact, c.address, n.why
                    ),
                ));
        }
    }
    out
}

/// A fact a plan leaves unknown on a resource, and why.
struct Unknown {
    fact: &'static str,
    /// For a pair's database lists: the fields of their items it concerns
    /// (empty: all of them).
    fields: &'static [&'static str],
    why: String,
}

impl Unknown {
    fn whole(fact: &'static str, why: String) -> Unknown {
        Unknown {
            fact,
            fields: &[],
            why,
        }
    }

    /// Whether a rule that reads `read` (its top-level facts) and whose
    /// condition is `condition` depends on this unknown.
    fn concerns(&self, read: &BTreeSet<String>, condition: &str) -> bool {
        read.contains(self.fact)
            && (self.fields.is_empty() || self.fields.iter().any(|f| mentions(condition, f)))
    }
}

/// Whether `source` names `field` as a whole word (`d.iam_auth`).
fn mentions(source: &str, field: &str) -> bool {
    source.match_indices(field).any(|(i, _)| {
        let before = source[..i].chars().next_back();
        let after = source[i + field.len()..].chars().next();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !word(before) && !word(after)
    })
}

/// Whether a resource a plan may create or delete is in the account (other
/// kinds always are).
fn exists(account: &crate::snapshot::Account, kind: ResourceKind, id: &str) -> bool {
    let regions = || account.regions.iter();
    match kind {
        ResourceKind::DbCluster => regions().any(|r| r.db_clusters.iter().any(|c| c.id == id)),
        ResourceKind::DbInstance => regions().any(|r| r.db_instances.iter().any(|c| c.id == id)),
        ResourceKind::DbProxy => {
            regions().any(|r| r.db_proxies.iter().flatten().any(|c| c.name == id))
        }
        ResourceKind::IamPrincipal => account.iam.as_ref().is_some_and(|i| {
            i.users.iter().any(|u| u.name == id) || i.roles.iter().any(|u| u.name == id)
        }),
        _ => true,
    }
}

/// A finding's cell: rule, kind, resource id.
type Cell = (String, ResourceKind, String);

/// Which applied changes each non-passing finding of the plan's account
/// depends on: evaluated with each change left out in turn, a change is a
/// cause when the finding's outcome differs without it.
#[allow(clippy::type_complexity)]
fn attribute(
    snapshot: &Snapshot,
    plan: &PlanJson,
    target: &Target,
    prediction: &Prediction,
    rules: &RuleSet,
    config: &Config,
) -> Result<(HashMap<Cell, Vec<usize>>, Option<String>), Error> {
    let applied: Vec<usize> = prediction
        .changes
        .iter()
        .enumerate()
        .filter(|(_, c)| c.applied())
        .map(|(i, _)| i)
        .collect();
    let mut out: HashMap<Cell, Vec<usize>> = HashMap::new();
    if applied.len() > MAX_ATTRIBUTED_CHANGES {
        return Ok((
            out,
            Some(format!(
                "the plan applies {} changes, more than {MAX_ATTRIBUTED_CHANGES}: findings point at their own resource's block only",
                applied.len()
            )),
        ));
    }
    // Small estates are evaluated whole (pair rules compare accounts);
    // larger ones as the plan's account alone, with the rules about one
    // account's resources (pair findings then point at their config line).
    let whole = snapshot.accounts.len() <= WHOLE_ESTATE_ACCOUNTS;
    let single = RuleSet {
        rules: rules
            .rules
            .iter()
            .filter(|r| whole || r.resource != ResourceKind::ServicePair)
            .cloned()
            .collect(),
        params: rules.params.clone(),
    };
    let outcomes = |s: &Snapshot| -> BTreeMap<Cell, Outcome> {
        let mut one = s.clone();
        if !whole {
            one.accounts = vec![s.accounts[prediction.account].clone()];
            one.plan = None;
        }
        crate::evaluate::evaluate(&one, &single, config)
            .into_iter()
            .map(|f| {
                (
                    (
                        f.rule_id.to_string(),
                        f.resource_kind,
                        f.resource_id.to_string(),
                    ),
                    f.outcome,
                )
            })
            .collect()
    };
    let with_all = outcomes(&prediction.snapshot);
    let interesting: Vec<&Cell> = with_all
        .iter()
        .filter(|(_, o)| **o != Outcome::Pass)
        .map(|(c, _)| c)
        .collect();
    if interesting.is_empty() {
        return Ok((out, None));
    }
    // Source order of the changes: the first cause is the one shown.
    let index_of: HashMap<&str, usize> = plan
        .resource_changes
        .iter()
        .enumerate()
        .map(|(i, r)| (r.address.as_str(), i))
        .collect();
    let mut deciding: HashMap<Cell, Vec<usize>> = HashMap::new();
    let mut enabling: HashMap<Cell, Vec<usize>> = HashMap::new();
    let mut ordered = applied.clone();
    ordered.sort_by_key(|&i| {
        index_of
            .get(prediction.changes[i].address.as_str())
            .copied()
    });
    for i in ordered {
        let address = &prediction.changes[i].address;
        let Some(&raw) = index_of.get(address.as_str()) else {
            continue;
        };
        let without = apply::predict_without(snapshot, plan, target, &BTreeSet::from([raw]))?;
        let other = outcomes(&without.snapshot);
        let account = &without.snapshot.accounts[prediction.account];
        for cell in &interesting {
            if other.get(*cell) == with_all.get(*cell) {
                continue;
            }
            // Without the change the resource still exists and is judged
            // otherwise (or no longer falls under the rule): this change
            // decides the finding. Without it the resource is gone: a cause
            // only when no change decides the outcome.
            if exists(account, cell.1, &cell.2) {
                deciding.entry((*cell).clone()).or_default().push(i);
            } else {
                enabling.entry((*cell).clone()).or_default().push(i);
            }
        }
    }
    for (cell, changes) in enabling {
        out.entry(cell).or_insert(changes);
    }
    out.extend(deciding);
    Ok((out, None))
}
