//! Rules × resources → findings: exactly one outcome per (rule, resource).
//!
//! Each resource's facts are loaded into the expression engine once and every
//! rule of its kind is evaluated against them. A rule whose data was not
//! collected (a gap of a service it needs, in the resource's region or account)
//! gives `error`, as does a condition that fails to evaluate or yields a
//! non-boolean: missing data never passes. A rule whose `applies_if` selects
//! nothing in an account gives no finding there, or one `error` for the
//! account when the rule sets `none_applies_error`.

use std::collections::HashMap;
use std::sync::Arc;

use cel::{Context, Value};
use serde::Serialize;

use crate::celval::cel_to_json;
use crate::config::{Config, Params};
use crate::finding::{Finding, Outcome};
use crate::model::{self, Facts, Kind, Place, RegionIndex, Scope, gap_message};
use crate::rules::{ResourceKind, Rule, RuleSet};
use crate::snapshot::{Account, Gap, Snapshot};
use crate::vocab::Service;

/// Evaluates every rule against every resource of every account, all
/// findings at once in report order. [`evaluate_each`] gives them an
/// account at a time.
pub fn evaluate(snapshot: &Snapshot, rules: &RuleSet, config: &Config) -> Vec<Finding> {
    let mut findings = Vec::new();
    let done: Result<(), std::convert::Infallible> =
        evaluate_each(snapshot, rules, config, &mut |chunk| {
            // The first account's vector is kept, not copied: one
            // account's findings are then held once (a scan).
            if findings.is_empty() {
                findings = chunk;
            } else {
                findings.extend(chunk);
            }
            Ok(())
        });
    if let Err(never) = done {
        match never {}
    }
    findings
}

/// Evaluates every rule against every resource of every account and hands
/// the findings to `sink` one account at a time, in report order (accounts
/// by name; within one, account-wide findings, then regions by name, each
/// by rule and resource), so that a caller can write them out and drop them.
/// Accounts are independent: they are evaluated on up to one thread per
/// core and handed over in order as their predecessors are. The parity
/// rules, which see several accounts, are planned first; each service's
/// findings come with its anchor account's. A sink's error stops the
/// evaluation.
pub fn evaluate_each<E>(
    snapshot: &Snapshot,
    rules: &RuleSet,
    config: &Config,
    sink: &mut dyn FnMut(Vec<Finding>) -> Result<(), E>,
) -> Result<(), E> {
    let mut accounts: Vec<&Account> = snapshot.accounts.iter().collect();
    accounts.sort_by(|a, b| a.name.cmp(&b.name));
    Evaluation::new(snapshot, rules, config).accounts(&accounts, sink)
}

/// Evaluates `accounts` on up to one thread per core; their findings go to
/// `sink` in the order of `accounts`, each account's as soon as its
/// predecessors' are.
fn in_parallel<E>(
    ctx: &RunContext<'_>,
    accounts: &[&Account],
    sink: &mut dyn FnMut(Vec<Finding>) -> Result<(), E>,
) -> Result<(), E> {
    let mut emit = |mut findings: Vec<Finding>| {
        sort_findings(&mut findings);
        sink(findings)
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(accounts.len())
        .max(1);
    if threads == 1 {
        for account in accounts {
            emit(evaluate_account(ctx, account))?;
        }
    } else {
        // Accounts are dealt out one at a time (a big account does not hold
        // up a whole slice of others). Each account's findings are handed
        // on as soon as its predecessors are: at most a few accounts'
        // findings wait here at any time.
        let next = std::sync::atomic::AtomicUsize::new(0);
        let (done, results) = std::sync::mpsc::channel::<(usize, Vec<Finding>)>();
        std::thread::scope(|scope| -> Result<(), E> {
            for _ in 0..threads {
                let done = done.clone();
                let (next, accounts) = (&next, &accounts);
                scope.spawn(move || {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(account) = accounts.get(i) else {
                            break;
                        };
                        let f = evaluate_account(ctx, account);
                        if done.send((i, f)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(done);
            let mut waiting = std::collections::BTreeMap::new();
            let mut wanted = 0;
            for (i, f) in results {
                waiting.insert(i, f);
                while let Some(f) = waiting.remove(&wanted) {
                    if let Err(e) = emit(f) {
                        // Stop the workers: no account is taken after this.
                        next.store(accounts.len(), std::sync::atomic::Ordering::Relaxed);
                        return Err(e);
                    }
                    wanted += 1;
                }
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// What evaluating an organization's accounts needs of all of them, made
/// once per run from a snapshot of every account (whole, or their parity
/// views): the directory of accounts, the parity rules' plan, the rules'
/// names and the facts each kind's rules read. The accounts themselves are
/// then evaluated a batch at a time ([`Evaluation::accounts`]), in any
/// order, each with the parity findings it anchors.
pub struct Evaluation<'a> {
    /// The snapshot's `collected_at` (what an account without its own
    /// has): all the evaluation keeps of the snapshot itself, so that a
    /// caller may thin it once the plan is made (`audit::audit_parts`).
    collected_at: String,
    rules: &'a RuleSet,
    config: &'a Config,
    directory: model::AccountDirectory,
    pairs: PairPlan<'a>,
    names: RuleNames<'a>,
    fields: KindFields,
}

impl<'a> Evaluation<'a> {
    pub fn new(snapshot: &Snapshot, rules: &'a RuleSet, config: &'a Config) -> Evaluation<'a> {
        Evaluation {
            collected_at: snapshot.collected_at.clone(),
            rules,
            config,
            directory: model::AccountDirectory::new(snapshot, config),
            pairs: PairPlan::new(snapshot, rules, config),
            names: rule_names(rules),
            // The facts each kind's rules read depend on the rules only.
            fields: ResourceKind::ALL
                .into_iter()
                .map(|k| (k, wanted_fields(rules, k)))
                .collect(),
        }
    }

    /// Every rule on each of `accounts` (whole, with the gaps and identity
    /// the snapshot given to [`Evaluation::new`] has for them) and the
    /// parity findings each anchors, handed to `sink` an account at a time
    /// in report order and in the order of `accounts`; evaluated on up to
    /// one thread per core.
    pub fn accounts<E>(
        &self,
        accounts: &[&Account],
        sink: &mut dyn FnMut(Vec<Finding>) -> Result<(), E>,
    ) -> Result<(), E> {
        let ctx = RunContext {
            collected_at: &self.collected_at,
            directory: &self.directory,
            pairs: &self.pairs,
            rules: self.rules,
            config: self.config,
            names: &self.names,
            fields: &self.fields,
        };
        in_parallel(&ctx, accounts, sink)
    }
}

/// Puts one account's findings in report order. They are produced in it
/// except where ARNs do not follow the snapshot's id order, for the
/// account-wide errors of selections that matched nothing (made last) and
/// for the parity findings joined to the account. In order, nothing is
/// done; otherwise a stable sort through an index (a scratch copy of the
/// findings themselves would double them).
fn sort_findings(findings: &mut [Finding]) {
    if !findings.is_sorted_by(|a, b| key(a) <= key(b)) {
        let mut order: Vec<usize> = (0..findings.len()).collect();
        order.sort_by(|&a, &b| key(&findings[a]).cmp(&key(&findings[b])));
        permute(findings, order);
    }
}

/// Account, region, rule, resource ARN.
type OrderKey<'a> = (
    &'a Arc<str>,
    &'a Option<Arc<str>>,
    &'a Arc<str>,
    &'a Arc<str>,
);

/// The report's order of findings.
fn key(f: &Finding) -> OrderKey<'_> {
    (&f.account, &f.region, &f.rule_id, &f.resource_arn)
}

/// Puts `v` in `order` (`order[i]`: the index of the element that belongs
/// at `i`) in place, one cycle at a time.
fn permute<T>(v: &mut [T], mut order: Vec<usize>) {
    for start in 0..v.len() {
        let mut at = start;
        while order[at] != at {
            let from = order[at];
            order[at] = at;
            if from == start {
                break;
            }
            v.swap(at, from);
            at = from;
        }
    }
}

/// The top-level facts each kind's rules read (`None`: all of them).
type KindFields = HashMap<ResourceKind, Option<Vec<&'static str>>>;

/// Every rule but the parity rules on one account's resources.
/// What every account's evaluation shares.
struct RunContext<'a> {
    collected_at: &'a str,
    directory: &'a model::AccountDirectory,
    pairs: &'a PairPlan<'a>,
    rules: &'a RuleSet,
    config: &'a Config,
    names: &'a RuleNames<'a>,
    fields: &'a KindFields,
}

fn evaluate_account(ctx: &RunContext<'_>, account: &Account) -> Vec<Finding> {
    let RunContext {
        collected_at,
        directory,
        pairs,
        rules,
        config,
        names,
        fields,
    } = *ctx;
    let mut chunk = Chunk::new(rules);
    let params = config.params_for(&account.environment, &rules.params);
    let facts = model::account_facts(directory, account, config);
    let scope = AccountScope::new(account, &facts, &params, names);
    // Parity rules see two environments at once: evaluated below.
    let applicable: Vec<&Rule> = rules
        .rules
        .iter()
        .filter(|r| r.pair.is_none() && r.applies_to_environment(&account.environment))
        .collect();

    // The account could not be reached at all: every rule is an error.
    if let Some(gap) = account.gaps.iter().find(|g| g.service == Service::Sts) {
        for rule in &applicable {
            chunk.push(scope.error_finding(
                rule,
                None,
                ResourceRef::account(account),
                gap_message(gap),
            ));
        }
        chunk.seal();
        let root = scope.root_context();
        let pair_fields = fields[&ResourceKind::ServicePair].as_deref();
        pairs.run(&scope, &root, pair_fields, &mut chunk);
        return chunk.finish();
    }

    let root = scope.root_context();
    // The kinds with rules to evaluate here, in the table's order.
    let kinds: Vec<KindRules> = ResourceKind::ALL
        .into_iter()
        .filter_map(|id| {
            let rules: Vec<&Rule> = applicable
                .iter()
                .copied()
                .filter(|r| r.resource == id)
                .collect();
            (!rules.is_empty()).then(|| KindRules {
                id,
                kind: model::kind(id),
                rules,
                fields: fields[&id].as_deref(),
            })
        })
        .collect();
    let place = Place {
        account,
        account_facts: &facts,
        config,
        region: None,
    };
    for k in kinds.iter().filter(|k| k.kind.scope() == Scope::Account) {
        scope.list(&root, k, &k.rules, &place, None, &mut chunk);
    }
    chunk.seal();

    let regional: Vec<&KindRules> = kinds
        .iter()
        .filter(|k| k.kind.scope() == Scope::Region)
        .collect();
    for region in region_names(account) {
        // A gap in a rule's own service means resources may be missing:
        // say so once per (rule, region), not just per resource seen.
        for k in &regional {
            if let Some(gap) = scope.own_gap(k.kind, &region) {
                for rule in &k.rules {
                    chunk.push(scope.error_finding(
                        rule,
                        Some(&region),
                        ResourceRef::every(account, k.id, &region),
                        gap_message(gap),
                    ));
                }
            }
        }
        let Some(data) = account.regions.iter().find(|r| *r.name == *region) else {
            chunk.seal();
            continue;
        };
        let eks = config.eks_for(&account.name, &account.environment);
        let idx = RegionIndex::new(data)
            .at(account.collected_at.as_deref().unwrap_or(collected_at))
            .with_gaps(&account.gaps)
            .with_configured_eks(
                eks.map(|e| &e.security_groups[..]).unwrap_or_default(),
                eks.map(|e| &e.vpc_ids[..]).unwrap_or_default(),
            );
        // No EKS cluster in the region and none named in the config:
        // which group is the EKS cluster's cannot be known. The rules
        // that need it say so once for the region instead of failing
        // every database (an EKS gap already makes them errors).
        let eks_gap = account.gaps.iter().any(|g| {
            g.service == Service::Eks && g.region.as_deref().is_none_or(|r| r == &*region)
        });
        let has_dbs = !data.db_clusters.is_empty() || !data.db_instances.is_empty();
        let eks_unknown = !idx.eks_known() && !eks_gap && has_dbs;
        let place = Place {
            region: Some(&idx),
            ..place
        };
        for k in &regional {
            let needs_eks = |r: &&Rule| r.needs().any(|n| n == Service::Eks);
            let (blind, evaluated): (Vec<&Rule>, Vec<&Rule>) = if eks_unknown {
                k.rules.iter().copied().partition(needs_eks)
            } else {
                (Vec::new(), k.rules.clone())
            };
            scope.list(&root, k, &evaluated, &place, Some(&region), &mut chunk);
            for rule in blind {
                chunk.push(scope.error_finding(
                    rule,
                    Some(&region),
                    ResourceRef::every(account, k.id, &region),
                    no_eks_message(account, &region),
                ));
            }
        }
        chunk.seal();
    }

    // A rule whose selection matched nothing in the account checked
    // nothing; where the rule says that matters, it is an error.
    for rule in &applicable {
        if let Some(message) = &rule.none_applies_error
            && !chunk.has_findings_of(rule)
        {
            chunk.push(scope.error_finding(
                rule,
                None,
                ResourceRef::every(account, rule.resource, "*"),
                message.clone(),
            ));
        }
    }
    chunk.seal();
    // The parity findings this account anchors.
    let pair_fields = fields[&ResourceKind::ServicePair].as_deref();
    pairs.run(&scope, &root, pair_fields, &mut chunk);
    chunk.finish()
}

/// Test ↔ prod parity: each `service_pair` rule on every service of its two
/// environments, planned once from every account's databases (an
/// account's parity view is enough: `snapshot::Account::take_body` keeps
/// what it reads) and evaluated with the account each service's findings
/// belong to, its *anchor* (the right-hand side's account of the service's
/// first database there, else the left's), when that account is: so they
/// sit with that account in every report, and a run that reads the full
/// accounts one at a time needs only the anchor's. A pair whose
/// environments are not both in the snapshot is skipped here (the audit
/// lists the rule as not evaluated); a pair whose accounts were not fully
/// collected is one `error` per rule, and its other results stand only
/// where nothing unseen could change them.
struct PairPlan<'a> {
    groups: Vec<PairGroup<'a>>,
    /// Anchor account → (group, item) in the order they are evaluated.
    by_anchor: HashMap<String, Vec<(usize, PairItem)>>,
}

/// One pair of environments.
struct PairGroup<'a> {
    left_env: String,
    right_env: String,
    rules: Vec<&'a Rule>,
    services: Vec<model::parity::PairFacts>,
    /// Databases the snapshot may lack: whether on each side, and why.
    unseen: Option<((bool, bool), Vec<String>)>,
}

#[derive(Clone, Copy)]
enum PairItem {
    /// One `error` per rule: services whose databases are all in what was
    /// not collected are not seen at all.
    Missing,
    /// A service (index into the group's services).
    Service(usize),
}

impl<'a> PairPlan<'a> {
    fn new(snapshot: &Snapshot, rules: &'a RuleSet, config: &Config) -> PairPlan<'a> {
        let mut accounts: Vec<&Account> = snapshot.accounts.iter().collect();
        accounts.sort_by(|a, b| a.name.cmp(&b.name));
        let in_env = |env: &str| -> Vec<&Account> {
            accounts
                .iter()
                .copied()
                .filter(|a| a.environment == env)
                .collect()
        };
        let pair_rules: Vec<&Rule> = rules.rules.iter().filter(|r| r.pair.is_some()).collect();
        let mut pairs: Vec<(&str, &str)> = pair_rules
            .iter()
            .filter_map(|r| r.pair.as_ref())
            .map(|p| (p.left.as_str(), p.right.as_str()))
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        let mut plan = PairPlan {
            groups: Vec::new(),
            by_anchor: HashMap::new(),
        };
        for (left_env, right_env) in pairs {
            let (left, right) = (in_env(left_env), in_env(right_env));
            let (Some(first), false) = (
                right.first().or(left.first()),
                left.is_empty() || right.is_empty(),
            ) else {
                continue;
            };
            let these: Vec<&Rule> = pair_rules
                .iter()
                .copied()
                .filter(|r| {
                    r.pair
                        .as_ref()
                        .is_some_and(|p| p.left == left_env && p.right == right_env)
                })
                .collect();
            // Databases the snapshot may lack, per side: an account that
            // was not reached, or whose RDS listing failed somewhere.
            let unseen = |side: &[&Account]| -> Vec<String> {
                side.iter()
                    .flat_map(|a| {
                        a.gaps
                            .iter()
                            .filter(|g| {
                                (g.service == Service::Sts || g.service == Service::Rds)
                                    && !model::is_fact_level(g)
                            })
                            .map(move |g| format!("account {}: {g}", a.name))
                    })
                    .collect()
            };
            let (unseen_left, unseen_right) = (unseen(&left), unseen(&right));
            let missing: Vec<String> = unseen_left.iter().chain(&unseen_right).cloned().collect();
            let g = plan.groups.len();
            if !missing.is_empty() {
                plan.by_anchor
                    .entry(first.name.clone())
                    .or_default()
                    .push((g, PairItem::Missing));
            }
            let services = model::parity::service_pairs(
                (left_env, &left),
                (right_env, &right),
                &config.service_tag,
                &config.databases_schemas,
            );
            for (i, pair) in services.iter().enumerate() {
                let anchor = pair.right.first().or(pair.left.first());
                let name = anchor.map_or(first.name.as_str(), |d| d.account.as_str());
                plan.by_anchor
                    .entry(name.to_string())
                    .or_default()
                    .push((g, PairItem::Service(i)));
            }
            plan.groups.push(PairGroup {
                left_env: left_env.to_string(),
                right_env: right_env.to_string(),
                rules: these,
                services,
                unseen: (!missing.is_empty())
                    .then_some(((!unseen_left.is_empty(), !unseen_right.is_empty()), missing)),
            });
        }
        plan
    }

    /// The parity findings `account` is the anchor of, evaluated in its
    /// scope.
    fn run(
        &self,
        scope: &AccountScope,
        root: &Context<'static, 'static>,
        fields: Option<&[&'static str]>,
        chunk: &mut Chunk,
    ) {
        let account = scope.account;
        for &(g, item) in self.by_anchor.get(&account.name).into_iter().flatten() {
            let group = &self.groups[g];
            let (left_env, right_env) = (&group.left_env, &group.right_env);
            let from = chunk.sealed();
            match item {
                PairItem::Missing => {
                    let missing = group
                        .unseen
                        .as_ref()
                        .map(|(_, m)| &m[..])
                        .unwrap_or_default();
                    let target = ResourceRef::every(account, ResourceKind::ServicePair, "*");
                    let message = format!(
                        "data not collected, so services whose databases are not in the snapshot cannot be compared between {left_env} and {right_env}: {}",
                        first_few(missing)
                    );
                    for rule in &group.rules {
                        chunk.push(scope.error_finding(
                            rule,
                            None,
                            scope.clone_ref(&target),
                            message.clone(),
                        ));
                    }
                    chunk.seal();
                    // Not judged: it says what is missing.
                    continue;
                }
                PairItem::Service(i) => {
                    let pair = &group.services[i];
                    let anchor_db = pair.right.first().or(pair.left.first());
                    let region: Option<Arc<str>> = anchor_db.map(|d| Arc::from(d.region.as_str()));
                    // The finding points at the service's first database on
                    // the right (else left) side, by ARN: a real resource to
                    // click.
                    let target = ResourceRef {
                        kind: ResourceKind::ServicePair,
                        id: pair.service.clone().into(),
                        arn: anchor_db.map(|d| d.arn.clone()).unwrap_or_default().into(),
                        unknown: &pair.unknown,
                        // Stable whichever database is first: baselines and
                        // code-scanning alerts follow the service.
                        identity: Some(format!("parity:{left_env}/{right_env}:{}", pair.service)),
                    };
                    let set = (&group.rules[..], fields);
                    scope.resource(root, pair, &target, set, region.as_ref(), chunk);
                    chunk.seal();
                }
            }
            if let Some((sides, missing)) = &group.unseen {
                for f in chunk.sealed_from(from) {
                    let rule = group.rules.iter().find(|r| r.id.as_str() == &*f.rule_id);
                    stand_or_unknown(f, rule.and_then(|r| r.pair.as_ref()), *sides, missing);
                }
            }
        }
    }
}

/// The first gaps of a list, and how many more: a message about a pair of
/// environments stays short however many accounts were not collected.
fn first_few(missing: &[String]) -> String {
    const SHOWN: usize = 2;
    let mut text = missing
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("; ");
    if missing.len() > SHOWN {
        text.push_str(&format!(
            "; and {} more (the accounts' gaps list them)",
            missing.len() - SHOWN
        ));
    }
    text
}

/// A parity finding judged on the databases that were seen, while some
/// accounts of its environments were not (fully) collected: a `fail` that
/// no unseen database could undo (the rule's `unseen_cannot_undo_fail`
/// names every side with unseen accounts) stands; anything else, a pass
/// above all, could be overturned by what was not seen and is an `error`
/// naming it.
fn stand_or_unknown(
    f: &mut Finding,
    pair: Option<&crate::rules::EnvPair>,
    (left_unseen, right_unseen): (bool, bool),
    missing: &[String],
) {
    use crate::rules::Side;
    let final_on = |side: Side| pair.is_some_and(|p| p.unseen_cannot_undo_fail.contains(&side));
    let fail_stands =
        (!left_unseen || final_on(Side::Left)) && (!right_unseen || final_on(Side::Right));
    match f.outcome {
        Outcome::Fail if fail_stands => {
            f.message = format!(
                "{} (stands although some databases were not collected: none of them could undo it; {})",
                f.message,
                first_few(missing)
            )
            .into();
        }
        Outcome::Error => {}
        was => {
            f.message = format!(
                "{} on the databases collected, but data not collected could change it: {}",
                if was == Outcome::Pass {
                    "passes"
                } else {
                    "fails"
                },
                first_few(missing)
            )
            .into();
            f.outcome = Outcome::Error;
            f.evidence = None;
        }
    }
}

/// One account's findings as they are produced. Each run of them (the
/// account-wide ones, a region's, a parity service's) is put in rule order
/// when sealed, each rule's findings in the order they were produced, so
/// that the whole is in the report's order.
///
/// One vector, ordered in place, rather than a vector per rule appended to
/// the account's: a single-account scan holds its findings once, not in
/// buckets and again in the account's vector (`scan --json` at 500
/// clusters: 6 MB of a 20 MB heap peak).
struct Chunk<'r> {
    rank: HashMap<&'r str, usize>,
    /// In the report's order up to `sealed`; after it, as produced.
    findings: Vec<Finding>,
    sealed: usize,
    /// The rank of each finding's rule, from `sealed` on.
    ranks: Vec<u32>,
    /// Rules with at least one finding in the account.
    produced: Vec<bool>,
}

impl<'r> Chunk<'r> {
    fn new(rules: &'r RuleSet) -> Self {
        let mut ids: Vec<&str> = rules.rules.iter().map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        Chunk {
            findings: Vec::new(),
            sealed: 0,
            ranks: Vec::new(),
            produced: vec![false; ids.len()],
            rank: ids.into_iter().enumerate().map(|(i, id)| (id, i)).collect(),
        }
    }

    fn push(&mut self, finding: Finding) {
        let i = self.rank[&*finding.rule_id];
        self.produced[i] = true;
        self.ranks
            .push(u32::try_from(i).expect("fewer than 2^32 rules"));
        self.findings.push(finding);
    }

    fn has_findings_of(&self, rule: &Rule) -> bool {
        self.produced[self.rank[rule.id.as_str()]]
    }

    fn extend(&mut self, finding: Option<Finding>) {
        if let Some(f) = finding {
            self.push(f);
        }
    }

    /// Puts the findings produced since the last seal in rule order (a
    /// stable counting sort, applied in place) after those sealed before.
    fn seal(&mut self) {
        if !self.ranks.is_sorted() {
            let order = rank_order(&self.ranks, self.produced.len());
            permute(&mut self.findings[self.sealed..], order);
        }
        self.ranks.clear();
        self.sealed = self.findings.len();
    }

    /// How many findings are sealed.
    fn sealed(&self) -> usize {
        self.sealed
    }

    /// The sealed findings from `from` on.
    fn sealed_from(&mut self, from: usize) -> &mut [Finding] {
        &mut self.findings[from..self.sealed]
    }

    /// The account's findings, in the report's order.
    fn finish(mut self) -> Vec<Finding> {
        self.seal();
        self.findings
    }
}

/// The order that sorts `ranks` (each below `count`) stably: `order[i]` is
/// the index of the element that belongs at `i` (a counting sort).
fn rank_order(ranks: &[u32], count: usize) -> Vec<usize> {
    // starts[r]: where rank r's elements begin.
    let mut starts = vec![0usize; count + 1];
    for &r in ranks {
        starts[r as usize + 1] += 1;
    }
    for r in 1..starts.len() {
        starts[r] += starts[r - 1];
    }
    let mut order = vec![0usize; ranks.len()];
    for (i, &r) in ranks.iter().enumerate() {
        order[starts[r as usize]] = i;
        starts[r as usize] += 1;
    }
    order
}

/// A kind with rules to evaluate in an account, and the facts they read
/// (`None`: all of them).
struct KindRules<'a> {
    id: ResourceKind,
    kind: &'static dyn Kind,
    rules: Vec<&'a Rule>,
    fields: Option<&'a [&'static str]>,
}

/// Rules and the top-level facts they read (`None`: all of them).
type KindSet<'a> = (&'a [&'a Rule], Option<&'a [&'static str]>);

/// Regions with data or with a recorded gap.
fn region_names(account: &Account) -> Vec<Arc<str>> {
    let mut names: Vec<&str> = account.regions.iter().map(|r| r.name.as_str()).collect();
    names.extend(account.gaps.iter().filter_map(|g| g.region.as_deref()));
    names.sort_unstable();
    names.dedup();
    names.into_iter().map(Arc::from).collect()
}

/// Why the rules that need the EKS cluster could not be evaluated in a region.
fn no_eks_message(account: &Account, region: &str) -> String {
    format!(
        "no EKS cluster was found in {region} of account {} ({}): EKS ListClusters returned none \
         there, so which security group and VPC are the EKS cluster's cannot be known; name them \
         with `eks_cluster_security_groups` and `eks_vpc_ids` under [environments.{}] or on the \
         account in dbaudit.toml",
        account.name, account.account_id, account.environment
    )
}

/// What a finding is about.
struct ResourceRef<'a> {
    kind: ResourceKind,
    id: Arc<str>,
    arn: Arc<str>,
    unknown: &'a [String],
    /// What the fingerprint hashes instead of the ARN, for findings about
    /// something that has no ARN of its own (a service across environments).
    identity: Option<String>,
}

impl<'a> ResourceRef<'a> {
    fn new(kind: ResourceKind, id: &str, arn: &str, unknown: &'a [String]) -> Self {
        ResourceRef {
            kind,
            id: id.to_string().into(),
            arn: arn.to_string().into(),
            unknown,
            identity: None,
        }
    }

    fn account(account: &Account) -> ResourceRef<'static> {
        ResourceRef::every(account, ResourceKind::Account, "*")
    }

    /// Stands for "every resource of this kind in the account" (region
    /// `*`) or in one region: what a finding about resources that could not
    /// be listed, or not judged, is about.
    fn every(account: &Account, kind: ResourceKind, region: &str) -> ResourceRef<'static> {
        let k = model::kind(kind);
        ResourceRef {
            kind,
            id: k.id_of_every(region, account).into(),
            arn: k.arn_of_every(account, region).into(),
            unknown: &[],
            identity: None,
        }
    }
}

/// A rule's id and title, shared by all its findings.
type RuleNames<'r> = HashMap<&'r str, (Arc<str>, Arc<str>)>;

fn rule_names(rules: &RuleSet) -> RuleNames<'_> {
    rules
        .rules
        .iter()
        .map(|r| {
            (
                r.id.as_str(),
                (Arc::from(r.id.as_str()), Arc::from(r.title.as_str())),
            )
        })
        .collect()
}

/// The account's strings, shared by all its findings.
struct SharedAccount {
    name: Arc<str>,
    account_id: Arc<str>,
    environment: Arc<str>,
}

struct AccountScope<'a> {
    account: &'a Account,
    facts: &'a model::AccountFacts,
    params: &'a Params,
    rule_names: &'a RuleNames<'a>,
    shared: SharedAccount,
}

impl<'a> AccountScope<'a> {
    fn new(
        account: &'a Account,
        facts: &'a model::AccountFacts,
        params: &'a Params,
        rule_names: &'a RuleNames<'a>,
    ) -> Self {
        AccountScope {
            account,
            facts,
            params,
            rule_names,
            shared: SharedAccount {
                name: Arc::from(account.name.as_str()),
                account_id: Arc::from(account.account_id.as_str()),
                environment: Arc::from(account.environment.as_str()),
            },
        }
    }

    /// The context shared by every evaluation in the account.
    fn root_context(&self) -> Context<'static, 'static> {
        let mut ctx = Context::default();
        ctx.add_variable_from_value("params", to_cel(self.params));
        ctx.add_variable_from_value("account", to_cel(self.facts));
        ctx
    }

    /// A gap in the service that lists a kind's resources (not a
    /// fact-level one), in the region or account-wide.
    fn own_gap(&self, kind: &dyn Kind, region: &str) -> Option<&'a Gap> {
        let service = kind.service()?;
        self.account.gaps.iter().find(|g| {
            g.service == service
                && g.region.as_deref().is_none_or(|r| r == region)
                && !model::is_fact_level(g)
        })
    }

    /// A gap in any service the rule needs, in this region or account-wide.
    fn needed_gap(&self, rule: &Rule, region: Option<&str>) -> Option<&'a Gap> {
        if self.account.gaps.is_empty() {
            return None;
        }
        self.account.gaps.iter().find(|g| {
            rule.needs().any(|n| n == g.service)
                && !model::is_fact_level(g)
                && match (&g.region, region) {
                    (None, _) => true,
                    (Some(gr), Some(r)) => gr == r,
                    (Some(_), None) => true,
                }
        })
    }

    /// Lists a kind's resources at `place` and evaluates `rules` (some of
    /// the kind's) on each. When they could not be listed, every rule of
    /// the kind is an error for the account or region, unless a failure of
    /// the kind's own service there already said so.
    fn list(
        &self,
        root: &Context<'static, 'static>,
        k: &KindRules,
        rules: &[&Rule],
        place: &Place,
        region: Option<&Arc<str>>,
        chunk: &mut Chunk,
    ) {
        let listed = k.kind.visit(place, &mut |r| {
            if !rules.is_empty() {
                let target = ResourceRef::new(k.id, r.id, r.arn, r.facts.unknown());
                self.resource(root, r.facts, &target, (rules, k.fields), region, chunk);
            }
        });
        let Err(why) = listed else {
            return;
        };
        if region.is_some_and(|r| self.own_gap(k.kind, r).is_some()) {
            return;
        }
        let target = ResourceRef::every(self.account, k.id, region.map_or("*", |r| &**r));
        for rule in &k.rules {
            chunk.push(self.error_finding(rule, region, self.clone_ref(&target), why.clone()));
        }
    }

    /// Evaluates `rules` (with the facts they read) on one resource: its
    /// facts go into the engine once, in a scope every rule shares.
    fn resource(
        &self,
        root: &Context<'static, 'static>,
        facts: &dyn Facts,
        target: &ResourceRef,
        (rules, fields): KindSet,
        region: Option<&Arc<str>>,
        chunk: &mut Chunk,
    ) {
        let ctx = resource_context(root, facts, fields);
        for rule in rules {
            chunk.extend(self.run(&ctx, rule, region, target));
        }
    }

    /// Evaluates one rule in a context that already holds the resource.
    fn run(
        &self,
        ctx: &Context,
        rule: &Rule,
        region: Option<&Arc<str>>,
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
                    return Some(self.finding(
                        rule,
                        region,
                        self.clone_ref(target),
                        Outcome::Error,
                        self.explain(&e, target).into(),
                        missing_evidence(target.unknown),
                    ));
                }
            }
        }
        if let Some(gap) = self.needed_gap(rule, region.map(|r| &**r)) {
            return Some(self.error_finding(
                rule,
                region,
                self.clone_ref(target),
                gap_message(gap),
            ));
        }
        let (outcome, message, explained) = match rule.condition.execute(ctx) {
            Ok(Value::Bool(true)) => (Outcome::Pass, self.title(rule), false),
            Ok(Value::Bool(false)) => (Outcome::Fail, rule.message.render(ctx).into(), false),
            Ok(other) => (
                Outcome::Error,
                format!(
                    "condition gave {} instead of true or false",
                    type_name(&other)
                )
                .into(),
                false,
            ),
            Err(e) => (Outcome::Error, self.explain(&e, target).into(), true),
        };
        let evidence = match (&rule.evidence, outcome) {
            (Some(e), Outcome::Fail) => e.execute(ctx).ok().map(|v| Box::new(cel_to_json(&v))),
            _ if explained => missing_evidence(target.unknown),
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

    /// A passing finding's message: the rule's title, shared.
    fn title(&self, rule: &Rule) -> Arc<str> {
        Arc::clone(&self.rule_names[rule.id.as_str()].1)
    }

    /// Turns an evaluation error into a message that says which data was missing.
    fn explain(&self, e: &str, target: &ResourceRef) -> String {
        if target.unknown.is_empty() {
            format!("evaluation failed: {e}")
        } else {
            format!(
                "data needed by this rule is missing ({e}): {}",
                missing_summary(target.unknown)
            )
        }
    }

    fn clone_ref(&self, r: &ResourceRef) -> ResourceRef<'static> {
        ResourceRef {
            kind: r.kind,
            id: r.id.clone(),
            arn: r.arn.clone(),
            unknown: &[],
            identity: r.identity.clone(),
        }
    }

    fn error_finding(
        &self,
        rule: &Rule,
        region: Option<&Arc<str>>,
        target: ResourceRef,
        message: String,
    ) -> Finding {
        self.finding(rule, region, target, Outcome::Error, message.into(), None)
    }

    fn finding(
        &self,
        rule: &Rule,
        region: Option<&Arc<str>>,
        target: ResourceRef,
        outcome: Outcome,
        message: Arc<str>,
        evidence: Option<Box<serde_json::Value>>,
    ) -> Finding {
        let account_key = model::kind::account_key(self.account);
        let names = &self.rule_names[rule.id.as_str()];
        Finding {
            fingerprint: crate::finding::fingerprint(
                &rule.id,
                account_key,
                target.identity.as_deref().unwrap_or(&target.arn),
            ),
            rule_id: Arc::clone(&names.0),
            title: Arc::clone(&names.1),
            severity: rule.severity,
            outcome,
            account: Arc::clone(&self.shared.name),
            account_id: Arc::clone(&self.shared.account_id),
            environment: Arc::clone(&self.shared.environment),
            region: region.cloned(),
            resource_kind: target.kind,
            resource_id: target.id,
            resource_arn: target.arn,
            message,
            evidence,
            waiver: None,
            baseline: None,
            source: None,
            location: None,
        }
    }
}

/// The top-level facts the rules of a kind read, or `None` when one of them
/// needs the whole resource.
fn wanted_fields(rules: &RuleSet, kind: ResourceKind) -> Option<Vec<&'static str>> {
    let mut all = std::collections::BTreeSet::new();
    for r in rules.rules.iter().filter(|r| r.resource == kind) {
        all.extend(r.resource_fields()?);
    }
    Some(all.iter().map(|f| crate::celval::intern(f)).collect())
}

/// A child scope of the account's context holding one resource's facts:
/// converted once, only the fields the rules read, shared by every rule of
/// the kind. An absent fact stays absent, so a rule reading it errors.
fn resource_context<'p>(
    root: &'p Context<'static, 'static>,
    facts: &dyn Facts,
    fields: Option<&[&'static str]>,
) -> Context<'p, 'static> {
    let value = match fields {
        None => crate::celval::map_of(
            facts
                .all_fields()
                .iter()
                .map(|f| (crate::celval::intern(f), facts.field(f)))
                .collect::<Vec<_>>()
                .into_iter(),
        ),
        Some(fields) => crate::celval::map_of(fields.iter().map(|&f| (f, facts.field(f)))),
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

/// How many missing entries an error message lists in full.
const MISSING_LISTED: usize = 3;

/// The whole list of missing inputs, as the evidence of an error whose
/// message summarised it ([`missing_summary`]).
fn missing_evidence(unknown: &[String]) -> Option<Box<serde_json::Value>> {
    (unknown.len() > MISSING_LISTED).then(|| Box::new(serde_json::json!({ "missing": unknown })))
}

/// What was missing, for an error message: every entry when there are a
/// few; when there are many (one service over hundreds of accounts), the
/// first reason with two of its subjects and counts, so that
/// the message stays short. The finding's evidence then holds the whole
/// list. An entry reads `subject: reason` (`acct-7/db-3: parameter groups:
/// not collected`) or is a reason alone.
fn missing_summary(unknown: &[String]) -> String {
    if unknown.len() <= MISSING_LISTED {
        return unknown.join("; ");
    }
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for u in unknown {
        let (subject, reason) = u.split_once(": ").unwrap_or(("", u.as_str()));
        match groups.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, subjects)) => subjects.push(subject),
            None => groups.push((reason, vec![subject])),
        }
    }
    // Not empty: there are more entries than MISSING_LISTED.
    let (reason, subjects) = &groups[0];
    let named: Vec<&str> = subjects
        .iter()
        .copied()
        .filter(|s| !s.is_empty())
        .take(2)
        .collect();
    let first = match subjects.len() - named.len() {
        _ if named.is_empty() => (*reason).to_string(),
        0 => format!("{reason}: {}", named.join(", ")),
        more => format!("{reason}: {} and {more} more", named.join(", ")),
    };
    let others = groups.len() - 1;
    format!(
        "{first} ({} entries{}; all in the evidence)",
        unknown.len(),
        if others > 0 {
            format!(", {others} other reason(s)")
        } else {
            String::new()
        }
    )
}

#[cfg(test)]
mod tests {
    use super::missing_summary;

    /// A few missing entries are listed; many are grouped by reason, the
    /// first with two subjects, with counts, and the message stays short.
    #[test]
    fn many_missing_entries_are_summarised() {
        let few: Vec<String> = vec!["a: x".into(), "b: y".into()];
        assert_eq!(missing_summary(&few), "a: x; b: y");
        let mut many: Vec<String> = (0..400)
            .map(|n| format!("acct-{n:04}/db-1: parameter groups: not collected"))
            .collect();
        many.push("who the developers are: not configured".into());
        many.push("DB roles in prod: its databases were not read".into());
        let m = missing_summary(&many);
        assert_eq!(
            m,
            "parameter groups: not collected: acct-0000/db-1, acct-0001/db-1 and 398 more (402 entries, 2 other reason(s); all in the evidence)"
        );
        assert!(m.chars().count() <= 300);
    }

    /// The rank order applied by `permute` is a stable sort by rank: ranks
    /// interleaved, repeated, missing, and every rank the same.
    #[test]
    fn rank_order_sorts_stably() {
        let cases: [&[u32]; 6] = [
            &[],
            &[0],
            &[2, 0, 1, 0, 2, 1, 0],
            &[3, 3, 3],
            &[4, 0, 4, 0],
            &[1, 0, 3, 2, 1, 0, 3, 2, 0, 0, 1],
        ];
        for ranks in cases {
            // Each element is its rank and its place before the sort.
            let mut v: Vec<(u32, usize)> = ranks.iter().copied().zip(0..).collect();
            let mut want = v.clone();
            want.sort_by_key(|&(r, _)| r);
            super::permute(&mut v, super::rank_order(ranks, 5));
            assert_eq!(v, want, "{ranks:?}");
        }
    }

    /// Every permutation of five elements (and the empty one) is applied
    /// exactly: `v[i]` ends up as the element `order[i]` named.
    #[test]
    fn permute_applies_any_order() {
        fn all(n: usize) -> Vec<Vec<usize>> {
            if n == 0 {
                return vec![vec![]];
            }
            let mut out = Vec::new();
            for p in all(n - 1) {
                for at in 0..=p.len() {
                    let mut q = p.clone();
                    q.insert(at, n - 1);
                    out.push(q);
                }
            }
            out
        }
        for n in 0..=5 {
            for order in all(n) {
                let mut v: Vec<char> = "abcde".chars().take(n).collect();
                let want: Vec<char> = order.iter().map(|&i| v[i]).collect();
                super::permute(&mut v, order.clone());
                assert_eq!(v, want, "{order:?}");
            }
        }
    }
}
