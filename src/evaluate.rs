//! Rules × resources → findings: exactly one outcome per (rule, resource).
//!
//! Each resource's facts are loaded into the expression engine once and every
//! rule of its kind is evaluated against them. A rule whose data was not
//! collected (a gap of a service it needs, in the resource's region or account)
//! gives `error`, as does a condition that fails to evaluate or yields a
//! non-boolean: missing data never passes.

use cel::{Context, Value};
use serde::Serialize;

use crate::config::{Config, Params};
use crate::model::{self, CelFacts, RegionIndex};
use crate::report::{Finding, Outcome};
use crate::rules::{ResourceKind, Rule, RuleSet, cel_to_json};
use crate::snapshot::{Account, Gap, Snapshot};

/// Evaluates every rule against every resource of every account.
pub fn evaluate(snapshot: &Snapshot, rules: &RuleSet, config: &Config) -> Vec<Finding> {
    let mut findings = Vec::new();
    // The facts each kind's rules read depend on the rules only: once per run.
    let wanted = |k: ResourceKind| wanted_fields(rules, k);
    let (account_fields, cluster_fields, instance_fields, iam_fields) = (
        wanted(ResourceKind::Account),
        wanted(ResourceKind::DbCluster),
        wanted(ResourceKind::DbInstance),
        wanted(ResourceKind::IamPrincipal),
    );
    for account in &snapshot.accounts {
        let params = config.params_for(&account.environment, &rules.params);
        let facts = model::account_facts(snapshot, account, config);
        let scope = AccountScope::new(account, &facts, &params);
        let applicable: Vec<&Rule> = rules
            .rules
            .iter()
            .filter(|r| r.applies_to_environment(&account.environment))
            .collect();

        // The account could not be reached at all: every rule is an error.
        if let Some(gap) = account.gaps.iter().find(|g| g.service == "sts") {
            for rule in &applicable {
                findings.push(scope.error_finding(
                    rule,
                    None,
                    ResourceRef::account(account),
                    gap_message(gap),
                ));
            }
            continue;
        }

        let root = scope.root_context();
        let by_kind = |k: ResourceKind| -> Vec<&Rule> {
            applicable
                .iter()
                .copied()
                .filter(|r| r.resource == k)
                .collect()
        };

        let account_rules = by_kind(ResourceKind::Account);
        if !account_rules.is_empty() {
            let ctx = resource_context(&root, &facts, account_fields.as_deref());
            let target = ResourceRef::account(account);
            for rule in &account_rules {
                findings.extend(scope.run(&ctx, rule, None, &target));
            }
        }

        let iam_rules = by_kind(ResourceKind::IamPrincipal);
        if !iam_rules.is_empty() {
            match crate::iam::principal_facts(account, &config.developers) {
                None => {
                    // IAM was not collected: one error per rule for the account.
                    let gap = account.gaps.iter().find(|g| g.service == "iam");
                    let msg = gap.map(gap_message).unwrap_or_else(|| {
                        "data not collected: the snapshot has no IAM section for this account"
                            .to_string()
                    });
                    for rule in &iam_rules {
                        let target = ResourceRef {
                            kind: ResourceKind::IamPrincipal.as_str(),
                            id: "iam/*".to_string(),
                            arn: format!(
                                "arn:{}:iam::{}:*",
                                partition(account),
                                account.account_id
                            ),
                            unknown: &[],
                        };
                        findings.push(scope.error_finding(rule, None, target, msg.clone()));
                    }
                }
                Some(principals) => {
                    let fields = &iam_fields;
                    for p in &principals {
                        let ctx = resource_context(&root, p, fields.as_deref());
                        let target = ResourceRef::new(
                            ResourceKind::IamPrincipal,
                            &p.name,
                            &p.arn,
                            &p.unknown,
                        );
                        for rule in &iam_rules {
                            findings.extend(scope.run(&ctx, rule, None, &target));
                        }
                    }
                }
            }
        }

        let cluster_rules = by_kind(ResourceKind::DbCluster);
        let instance_rules = by_kind(ResourceKind::DbInstance);
        for region in region_names(account) {
            let data = account.regions.iter().find(|r| r.name == region);
            // A gap in a rule's own service means resources may be missing:
            // say so once per (rule, region), not just per resource seen.
            for rule in cluster_rules.iter().chain(&instance_rules) {
                if let Some(gap) = scope.own_gap(rule, &region) {
                    findings.push(scope.error_finding(
                        rule,
                        Some(&region),
                        ResourceRef::region_scope(account, &region, rule.resource),
                        gap_message(gap),
                    ));
                }
            }
            let Some(data) = data else { continue };
            let idx = RegionIndex::new(data);
            for c in &data.db_clusters {
                if cluster_rules.is_empty() {
                    break;
                }
                let f = model::cluster_facts(&idx, c, &config.service_tag);
                let ctx = resource_context(&root, &f, cluster_fields.as_deref());
                let target = ResourceRef::new(ResourceKind::DbCluster, &c.id, &c.arn, &f.unknown);
                for rule in &cluster_rules {
                    findings.extend(scope.run(&ctx, rule, Some(&region), &target));
                }
            }
            for i in &data.db_instances {
                if instance_rules.is_empty() {
                    break;
                }
                let f = model::instance_facts(&idx, i, &config.service_tag);
                let ctx = resource_context(&root, &f, instance_fields.as_deref());
                let target = ResourceRef::new(ResourceKind::DbInstance, &i.id, &i.arn, &f.unknown);
                for rule in &instance_rules {
                    findings.extend(scope.run(&ctx, rule, Some(&region), &target));
                }
            }
        }
    }
    findings.sort_by(|a, b| {
        (&a.account, &a.region, &a.rule_id, &a.resource_arn).cmp(&(
            &b.account,
            &b.region,
            &b.rule_id,
            &b.resource_arn,
        ))
    });
    findings
}

/// Regions with data or with a recorded gap.
fn region_names(account: &Account) -> Vec<String> {
    let mut names: Vec<String> = account.regions.iter().map(|r| r.name.clone()).collect();
    names.extend(account.gaps.iter().filter_map(|g| g.region.clone()));
    names.sort();
    names.dedup();
    names
}

fn gap_message(gap: &Gap) -> String {
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

/// What a finding is about.
struct ResourceRef<'a> {
    kind: &'static str,
    id: String,
    arn: String,
    unknown: &'a [String],
}

impl<'a> ResourceRef<'a> {
    fn new(kind: ResourceKind, id: &str, arn: &str, unknown: &'a [String]) -> Self {
        ResourceRef {
            kind: kind.as_str(),
            id: id.to_string(),
            arn: arn.to_string(),
            unknown,
        }
    }

    fn account(account: &Account) -> ResourceRef<'static> {
        let id = if account.account_id.is_empty() {
            account.name.clone()
        } else {
            account.account_id.clone()
        };
        ResourceRef {
            kind: ResourceKind::Account.as_str(),
            arn: format!("arn:{}:iam::{id}:root", partition(account)),
            id: account.name.clone(),
            unknown: &[],
        }
    }

    /// Stands for "every resource of this kind in the region" when the
    /// listing itself failed.
    fn region_scope(account: &Account, region: &str, kind: ResourceKind) -> ResourceRef<'static> {
        let what = match kind {
            ResourceKind::DbInstance => "db",
            _ => "cluster",
        };
        ResourceRef {
            kind: kind.as_str(),
            id: format!("{region}/*"),
            arn: format!(
                "arn:{}:rds:{region}:{}:{what}:*",
                partition(account),
                account.account_id
            ),
            unknown: &[],
        }
    }
}

fn partition(account: &Account) -> &str {
    if account.partition.is_empty() {
        "aws"
    } else {
        &account.partition
    }
}

struct AccountScope<'a> {
    account: &'a Account,
    facts: &'a model::AccountFacts,
    params: &'a Params,
}

impl<'a> AccountScope<'a> {
    fn new(account: &'a Account, facts: &'a model::AccountFacts, params: &'a Params) -> Self {
        AccountScope {
            account,
            facts,
            params,
        }
    }

    /// The context shared by every evaluation in the account.
    fn root_context(&self) -> Context<'static, 'static> {
        let mut ctx = Context::default();
        ctx.add_variable_from_value("params", to_cel(self.params));
        ctx.add_variable_from_value("account", to_cel(self.facts));
        ctx
    }

    /// A gap in the service that lists the rule's own resources.
    fn own_gap(&self, rule: &Rule, region: &str) -> Option<&'a Gap> {
        let service = rule.resource.service()?;
        self.account
            .gaps
            .iter()
            .find(|g| g.service == service && g.region.as_deref().is_none_or(|r| r == region))
    }

    /// A gap in any service the rule needs, in this region or account-wide.
    fn needed_gap(&self, rule: &Rule, region: Option<&str>) -> Option<&'a Gap> {
        if self.account.gaps.is_empty() {
            return None;
        }
        let needs: Vec<&str> = rule.needs().collect();
        self.account.gaps.iter().find(|g| {
            needs.contains(&g.service.as_str())
                && match (&g.region, region) {
                    (None, _) => true,
                    (Some(gr), Some(r)) => gr == r,
                    (Some(_), None) => true,
                }
        })
    }

    /// Evaluates one rule in a context that already holds the resource.
    fn run(
        &self,
        ctx: &Context,
        rule: &Rule,
        region: Option<&str>,
        target: &ResourceRef,
    ) -> Option<Finding> {
        if let Some(filter) = &rule.applies_if {
            match filter.execute(ctx) {
                Ok(Value::Bool(false)) => return None,
                Ok(Value::Bool(true)) => {}
                Ok(other) => {
                    return Some(self.error_finding(
                        rule,
                        region,
                        self.clone_ref(target),
                        format!(
                            "`applies_if` gave {} instead of true or false",
                            type_name(&other)
                        ),
                    ));
                }
                Err(e) => {
                    return Some(self.error_finding(
                        rule,
                        region,
                        self.clone_ref(target),
                        self.explain(&e, target),
                    ));
                }
            }
        }
        if let Some(gap) = self.needed_gap(rule, region) {
            return Some(self.error_finding(
                rule,
                region,
                self.clone_ref(target),
                gap_message(gap),
            ));
        }
        let (outcome, message) = match rule.condition.execute(ctx) {
            Ok(Value::Bool(true)) => (Outcome::Pass, rule.title.clone()),
            Ok(Value::Bool(false)) => (Outcome::Fail, rule.message.render(ctx)),
            Ok(other) => (
                Outcome::Error,
                format!(
                    "condition gave {} instead of true or false",
                    type_name(&other)
                ),
            ),
            Err(e) => (Outcome::Error, self.explain(&e, target)),
        };
        let evidence = match (&rule.evidence, outcome) {
            (Some(e), Outcome::Fail) => e.execute(ctx).ok().map(|v| cel_to_json(&v)),
            _ => None,
        };
        Some(self.finding(
            rule,
            region,
            self.clone_ref(target),
            outcome,
            message,
            evidence,
        ))
    }

    /// Turns an evaluation error into a message that says which data was missing.
    fn explain(&self, e: &str, target: &ResourceRef) -> String {
        if target.unknown.is_empty() {
            format!("evaluation failed: {e}")
        } else {
            format!(
                "data needed by this rule is missing ({e}): {}",
                target.unknown.join("; ")
            )
        }
    }

    fn clone_ref(&self, r: &ResourceRef) -> ResourceRef<'static> {
        ResourceRef {
            kind: r.kind,
            id: r.id.clone(),
            arn: r.arn.clone(),
            unknown: &[],
        }
    }

    fn error_finding(
        &self,
        rule: &Rule,
        region: Option<&str>,
        target: ResourceRef,
        message: String,
    ) -> Finding {
        self.finding(rule, region, target, Outcome::Error, message, None)
    }

    fn finding(
        &self,
        rule: &Rule,
        region: Option<&str>,
        target: ResourceRef,
        outcome: Outcome,
        message: String,
        evidence: Option<serde_json::Value>,
    ) -> Finding {
        let account_key = if self.account.account_id.is_empty() {
            &self.account.name
        } else {
            &self.account.account_id
        };
        Finding {
            fingerprint: crate::report::fingerprint(&rule.id, account_key, &target.arn),
            rule_id: rule.id.clone(),
            title: rule.title.clone(),
            severity: rule.severity,
            outcome,
            account: self.account.name.clone(),
            account_id: self.account.account_id.clone(),
            environment: self.account.environment.clone(),
            region: region.map(str::to_string),
            resource_kind: target.kind.to_string(),
            resource_id: target.id,
            resource_arn: target.arn,
            message,
            evidence,
            waiver: None,
            baseline: None,
            source: None,
        }
    }
}

/// The top-level facts the rules of a kind read, or `None` when one of them
/// needs the whole resource.
fn wanted_fields(rules: &RuleSet, kind: ResourceKind) -> Option<Vec<String>> {
    let mut all = std::collections::BTreeSet::new();
    for r in rules.rules.iter().filter(|r| r.resource == kind) {
        all.extend(r.resource_fields()?);
    }
    Some(all.into_iter().collect())
}

/// A child scope of the account's context holding one resource's facts:
/// converted once, only the fields the rules read, shared by every rule of
/// the kind. An absent fact stays absent, so a rule reading it errors.
fn resource_context<'p, T: CelFacts>(
    root: &'p Context<'static, 'static>,
    facts: &T,
    fields: Option<&[String]>,
) -> Context<'p, 'static> {
    let value = match fields {
        None => model::celval::map_of(
            model::all_fields::<T>()
                .iter()
                .map(|f| (f.as_str(), facts.field(f)))
                .collect::<Vec<_>>()
                .into_iter(),
        ),
        Some(fields) => model::celval::map_of(fields.iter().map(|f| (f.as_str(), facts.field(f)))),
    };
    let mut ctx = root.new_inner_scope();
    ctx.add_variable_as_val("resource", value);
    ctx
}

fn to_cel<T: Serialize>(v: &T) -> Value {
    cel::to_value(v).unwrap_or(Value::Null)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Int(_) | Value::UInt(_) => "a number",
        Value::Float(_) => "a number",
        Value::String(_) => "a string",
        Value::List(_) => "a list",
        Value::Map(_) => "a map",
        _ => "a non-boolean value",
    }
}
