//! The library core of an audit: a snapshot, the rules and the config in, a
//! complete report out — selection, evaluation, source locations, waivers,
//! the baseline and the gate, in that order. Commands load the inputs, call
//! [`audit`] and render; nothing here reads a file or prints.

use crate::baseline::Annotator;
use crate::config::Config;
use crate::error::Error;
use crate::finding::{Finding, Outcome};
use crate::findings::{Findings, SpoolWriter, spool_error};
use crate::report::gate::{GateTally, OnIncomplete};
use crate::report::{FindingSummary, Report, Tally};
use crate::rules::{RuleSet, Severity};
use crate::selection::Selection;
use crate::snapshot::Snapshot;
use crate::waivers::{Date, Waiver};

/// How to judge an audit.
pub struct AuditOptions {
    /// Lowest severity whose failures fail the gate.
    pub fail_on: Severity,
    pub on_incomplete: OnIncomplete,
    /// The config's waivers and those of a waivers file.
    pub waivers: Vec<Waiver>,
    /// Gate only on failures that are new since a previous report's
    /// failing findings (`--baseline FILE`; `--baseline last` is applied
    /// after the audit, see [`rebaseline`]).
    pub baseline: Option<Baseline>,
    /// The day waiver expiries are checked against.
    pub as_of: Date,
    /// Which rules and accounts to evaluate (the config's `[rules] disable`
    /// included).
    pub selection: Selection,
    /// Spool the findings to a temporary file an account at a time instead
    /// of holding them (`crate::findings`): what `evaluate` and `scan` do
    /// for more than one account.
    pub spool: bool,
    /// Compute [`Report::input_digest`]: a digest of the snapshot as
    /// evaluated, for the history (which records an input once).
    pub digest: bool,
    /// Draw the HTML report's topology while a sharded run's parts are
    /// read ([`audit_parts`]: a third reading), into [`Report::topology`].
    pub topology: bool,
}

/// A baseline: its failing (and waived) findings, and what it is (named in
/// the gate's reason).
pub struct Baseline {
    pub findings: Vec<FindingSummary>,
    /// `report previous.json (collected …)`.
    pub basis: String,
}

/// Runs an audit of a snapshot.
pub fn audit(
    snapshot: &Snapshot,
    rules: &RuleSet,
    config: &Config,
    opts: &AuditOptions,
) -> Result<Report, Error> {
    run(snapshot, rules, config, opts, None)
}

/// The step of [`audit_with`].
pub type Adjust<'a> = dyn FnMut(&Snapshot, &mut Vec<crate::finding::Finding>) + 'a;

/// As [`audit`], with a step between evaluation and everything after it
/// (locations, waivers, gate): `dbaudit plan` marks outcomes unknown
/// until apply and gives planned resources their Terraform identity there.
/// The step sees the snapshot as evaluated (with the gaps of what it
/// was meant to hold) and every finding at once: nothing is spooled.
pub fn audit_with(
    snapshot: &Snapshot,
    rules: &RuleSet,
    config: &Config,
    opts: &AuditOptions,
    adjust: &mut Adjust<'_>,
) -> Result<Report, Error> {
    run(snapshot, rules, config, opts, Some(adjust))
}

/// The run's rules and snapshot once the selection and the completeness
/// check are applied.
struct Prepared<'s> {
    snapshot: std::borrow::Cow<'s, Snapshot>,
    rules: RuleSet,
    not_evaluated: Vec<crate::selection::NotEvaluated>,
    completeness: crate::expected::Completeness,
}

fn prepare<'s>(
    snapshot: &'s Snapshot,
    rules: &RuleSet,
    config: &Config,
    opts: &AuditOptions,
) -> Result<Prepared<'s>, Error> {
    let (rules, mut not_evaluated) = opts.selection.rules(rules)?;
    let mut snapshot = match opts.selection.accounts(snapshot)? {
        Some(narrowed) => std::borrow::Cow::Owned(narrowed),
        None => std::borrow::Cow::Borrowed(snapshot),
    };
    // What the snapshot was meant to hold and does not: gaps, before
    // anything is evaluated.
    let (completed, completeness) =
        crate::expected::check(&snapshot, config, &opts.selection.environments)?;
    if let Some(completed) = completed {
        snapshot = std::borrow::Cow::Owned(completed);
    }
    let (rules, pairs_left_out) = crate::selection::pairs_in_run(rules, &snapshot);
    not_evaluated.extend(pairs_left_out);
    Ok(Prepared {
        snapshot,
        rules,
        not_evaluated,
        completeness,
    })
}

/// Everything after evaluation, done an account's findings at a time (all
/// of them at once when they are held) and counted as it goes, so that
/// spooled findings are written once and not read again here.
struct Finisher<'o> {
    config: &'o Config,
    config_path: String,
    waiving: crate::waivers::Waiving<'o>,
    annotator: Option<Annotator<'o>>,
    tally: Tally,
    gated: GateTally,
}

impl<'o> Finisher<'o> {
    fn new(config: &'o Config, opts: &'o AuditOptions) -> Finisher<'o> {
        Finisher {
            config,
            config_path: config.repository_path(),
            waiving: crate::waivers::Waiving::new(&opts.waivers, opts.as_of),
            annotator: (opts.baseline.as_ref()).map(|b| Annotator::new(&b.findings)),
            tally: Tally::default(),
            gated: GateTally::new(opts.fail_on),
        }
    }

    /// Source tags and repository locations, waivers, baseline states,
    /// counts. `tags`: the resources' tags by ARN (of the accounts whose
    /// findings these are, at least).
    fn chunk(&mut self, chunk: &mut [Finding], tags: &crate::waivers::TagsByArn<'_>) {
        let config = self.config;
        for f in chunk.iter_mut() {
            if let Some(t) = tags.get(&*f.resource_arn) {
                f.source = t.get(&config.sarif.source_tag).cloned();
            }
            if f.outcome != Outcome::Pass && f.location.is_none() {
                f.location = Some(config.locate(f, &self.config_path));
            }
        }
        self.waiving.apply(chunk, tags);
        if let Some(a) = self.annotator.as_mut() {
            a.annotate(chunk);
        }
        for f in chunk.iter() {
            self.tally.add(f);
            self.gated.add(f);
        }
    }

    /// The report of what was finished.
    fn report(self, prepared: Prepared<'_>, findings: Findings, opts: &AuditOptions) -> Report {
        let Finisher {
            waiving,
            annotator,
            tally,
            gated,
            ..
        } = self;
        let mut gate = gated.decide(opts.on_incomplete, None);
        let fixed = annotator.map(Annotator::fixed);
        if let Some(b) = &opts.baseline {
            gate.reason.push_str(&format!("; baseline: {}", b.basis));
        }
        let mut report =
            Report::build_counted(&prepared.snapshot, &prepared.rules, findings, &tally, gate);
        report.waivers = waiving.status();
        report.not_evaluated = prepared.not_evaluated;
        let completeness = prepared.completeness;
        report.completeness = completeness.noteworthy().then_some(completeness);
        if let Some(fixed) = fixed {
            report.baseline = Some(tally.baseline_summary(fixed.len()));
            report.fixed = Some(fixed);
        }
        report
    }
}

fn run(
    snapshot: &Snapshot,
    rules: &RuleSet,
    config: &Config,
    opts: &AuditOptions,
    adjust: Option<&mut Adjust<'_>>,
) -> Result<Report, Error> {
    let prepared = prepare(snapshot, rules, config, opts)?;
    let (snapshot, rules) = (&*prepared.snapshot, &prepared.rules);
    let digest = opts
        .digest
        .then(|| evaluated_digest(snapshot, &mut |a| Ok(account_digest(a, snapshot))))
        .transpose()?;
    let tags = crate::waivers::tags_by_arn(snapshot);
    let mut finisher = Finisher::new(config, opts);
    let findings = match adjust {
        None if opts.spool => {
            let mut spool = SpoolWriter::new().map_err(spool_error)?;
            crate::evaluate::evaluate_each(snapshot, rules, config, &mut |mut chunk| {
                finisher.chunk(&mut chunk, &tags);
                spool.push(&chunk)
            })
            .map_err(spool_error)?;
            Findings::Spooled(spool.finish().map_err(spool_error)?)
        }
        adjust => {
            let mut findings = crate::evaluate::evaluate(snapshot, rules, config);
            if let Some(adjust) = adjust {
                adjust(snapshot, &mut findings);
            }
            finisher.chunk(&mut findings, &tags);
            Findings::Memory(findings)
        }
    };
    drop(tags);
    let mut report = finisher.report(prepared, findings, opts);
    report.input_digest = digest;
    Ok(report)
}

/// What a run evaluated, as one digest: the snapshot's head and each
/// account as evaluated (after the selection and the completeness check),
/// in the snapshot's order. `account` gives each account's
/// [`account_digest`]: computed here, or while the parts were read
/// ([`audit_parts`]), so that a merged snapshot and its parts evaluated a
/// part at a time give the same digest (tested).
fn evaluated_digest(
    snapshot: &Snapshot,
    account: &mut dyn FnMut(&crate::snapshot::Account) -> Result<[u8; 32], Error>,
) -> Result<String, Error> {
    use sha2::Digest;
    // Every field of the head, by an exhaustive pattern: a new field is
    // part of the digest or says why not.
    let Snapshot {
        schema,
        collected_at,
        tool_version,
        accounts,
        shard,
        plan,
        databases_part,
    } = snapshot;
    let mut h = sha2::Sha256::new();
    let head = (
        schema,
        collected_at,
        tool_version,
        shard,
        plan,
        databases_part,
    );
    let _ = serde_json::to_writer(&mut h, &head);
    for a in accounts {
        h.update(account(a)?);
    }
    Ok(h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// One account as evaluated, digested (its JSON streamed into the hash).
/// An account without its own `collected_at` or `tool_version` has the
/// snapshot's (as a merge spells out): digested as if it said so, since a
/// merged file read back and the parts it came from differ only there.
fn account_digest(a: &crate::snapshot::Account, snapshot: &Snapshot) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    if a.collected_at.is_some() && a.tool_version.is_some() {
        let _ = serde_json::to_writer(&mut h, a);
    } else {
        let mut whole = a.clone();
        whole
            .collected_at
            .get_or_insert_with(|| snapshot.collected_at.clone());
        whole
            .tool_version
            .get_or_insert_with(|| snapshot.tool_version.clone());
        let _ = serde_json::to_writer(&mut h, &whole);
    }
    h.finalize().into()
}

pub use crate::shard::{PartReader, Parts};

/// As [`audit`] of what `dbaudit merge` would make of `parts`, without
/// holding the merged snapshot: the parts are read twice, one at a time
/// (`shard::merge_views`, `shard::bodies`). The first pass merges every
/// account's *parity view* (`Account::take_body`: identity, gaps, DB
/// clusters, their parameter groups, what was read inside the databases),
/// which the selection, the completeness check, the directory of accounts
/// and the parity rules' plan need; the second puts each account's body
/// back, evaluates it and spools its findings, a part at a time. The
/// findings are always spooled. Parts that change between the passes are
/// refused.
pub fn audit_parts(
    parts: &mut PartReader<'_>,
    run_id: Option<&str>,
    rules: &RuleSet,
    config: &Config,
    opts: &AuditOptions,
) -> Result<(Report, crate::shard::MergeSummary), Error> {
    let (view, summary) = crate::shard::merge_views(parts, run_id)?;
    let Prepared {
        snapshot,
        rules: selected,
        not_evaluated,
        completeness,
    } = prepare(&view, rules, config, opts)?;
    // The view as prepared, owned (the merged view itself unless the
    // selection or the completeness check made another).
    let mut view = match snapshot {
        std::borrow::Cow::Owned(prepared) => prepared,
        std::borrow::Cow::Borrowed(_) => view,
    };
    let evaluation = crate::evaluate::Evaluation::new(&view, &selected, config);
    // The plan is made: the DB clusters are read again with each part.
    let thinned = crate::shard::thin(&mut view);
    let view = &view;
    // Accounts the completeness check made up are stubs too (only gaps);
    // named again by the topology's reading, after the report takes the
    // completeness.
    let missing = completeness.missing.clone();
    let made_up: std::collections::BTreeSet<&str> = missing.iter().map(String::as_str).collect();
    let mut finisher = Finisher::new(config, opts);
    let mut spool = SpoolWriter::new().map_err(spool_error)?;
    let mut inventories = std::collections::HashMap::new();
    let mut digests = std::collections::HashMap::new();
    crate::shard::bodies(
        parts,
        view,
        &summary,
        &made_up,
        Some(&thinned),
        &mut |accounts| {
            for a in &accounts {
                inventories.insert(a.name.clone(), crate::report::Inventory::of(a));
                if opts.digest {
                    digests.insert(a.name.clone(), account_digest(a, view));
                }
            }
            let tags = crate::waivers::tags_of(&accounts);
            let refs: Vec<&crate::snapshot::Account> = accounts.iter().collect();
            evaluation
                .accounts(&refs, &mut |mut chunk| {
                    finisher.chunk(&mut chunk, &tags);
                    spool.push(&chunk)
                })
                .map_err(spool_error)
        },
    )?;
    let findings = Findings::Spooled(spool.finish().map_err(spool_error)?);
    // Every account of the view went through the second reading once.
    let digest = opts
        .digest
        .then(|| {
            evaluated_digest(view, &mut |a| {
                digests.get(&a.name).copied().ok_or_else(|| {
                    Error::Usage(format!(
                        "account `{}` was not read again: the parts changed while being read",
                        a.name
                    ))
                })
            })
        })
        .transpose()?;
    // The evaluation borrows the selected rules, which the report takes.
    drop(evaluation);
    let prepared = Prepared {
        snapshot: std::borrow::Cow::Borrowed(view),
        rules: selected,
        not_evaluated,
        completeness,
    };
    let mut report = finisher.report(prepared, findings, opts);
    report.input_digest = digest;
    for a in &mut report.accounts {
        if let Some(inv) = inventories.remove(&a.name) {
            a.inventory = inv;
        }
    }
    if opts.topology {
        report.topology = Some(topology(
            parts, view, &summary, &made_up, &thinned, &report,
        )?);
    }
    Ok((report, summary))
}

/// The HTML report's topology of a sharded run: a third reading of the
/// parts, each account's diagrams drawn against the failing rules of every
/// resource of the report, at most twice the page's diagrams held.
fn topology(
    parts: &mut PartReader<'_>,
    view: &Snapshot,
    summary: &crate::shard::MergeSummary,
    made_up: &std::collections::BTreeSet<&str>,
    thinned: &crate::shard::Thinned,
    report: &Report,
) -> Result<crate::report::html::Topology, Error> {
    let failing = crate::report::html::failing_of(report).map_err(spool_error)?;
    let failing = crate::report::html::borrowed(&failing);
    let in_report: std::collections::BTreeSet<&str> =
        report.accounts.iter().map(|a| a.name.as_str()).collect();
    let mut topology = crate::report::html::TopologyBuilder::default();
    crate::shard::bodies(
        parts,
        view,
        summary,
        made_up,
        Some(thinned),
        &mut |accounts| {
            for a in accounts
                .iter()
                .filter(|a| in_report.contains(a.name.as_str()))
            {
                topology.add_account(a, &failing);
            }
            Ok(())
        },
    )?;
    Ok(topology.finish())
}

/// Judges a report against a baseline: failing findings are marked new or
/// existing, the fixed ones listed, and the gate decided again (it gates on
/// new failures only). For a baseline known only once the report is built
/// (`--baseline last` chooses an accepted run of the history). `basis`
/// names the baseline and why it was chosen; the gate's reason carries it.
pub fn rebaseline(
    report: &mut Report,
    baseline: &[FindingSummary],
    opts: &AuditOptions,
    basis: Option<&str>,
) -> Result<(), Error> {
    let mut annotator = Annotator::new(baseline);
    let mut tally = Tally::default();
    let mut gated = GateTally::new(opts.fail_on);
    report
        .findings
        .map_chunks(|chunk| {
            annotator.annotate(chunk);
            for f in chunk.iter() {
                tally.add(f);
                gated.add(f);
            }
        })
        .map_err(spool_error)?;
    let fixed = annotator.fixed();
    report.baseline = Some(tally.baseline_summary(fixed.len()));
    report.fixed = Some(fixed);
    report.gate = gated.decide(opts.on_incomplete, None);
    if let Some(basis) = basis {
        report.gate.reason.push_str(&format!("; baseline: {basis}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> (Snapshot, Config) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        (
            Snapshot::load(&root.join("fixtures/demo/snapshot.json")).unwrap(),
            Config::load(&root.join("fixtures/demo/dbaudit.toml")).unwrap(),
        )
    }

    pub(super) fn options(selection: Selection) -> AuditOptions {
        AuditOptions {
            fail_on: Severity::High,
            on_incomplete: OnIncomplete::Fail,
            waivers: vec![],
            baseline: None,
            as_of: Date::parse("2026-11-30").unwrap(),
            selection,
            spool: false,
            digest: false,
            topology: false,
        }
    }

    #[test]
    fn an_audit_is_a_report_with_its_gate() {
        let (snapshot, config) = demo();
        let rules = RuleSet::load(&[], &[]).unwrap();
        let a = audit(&snapshot, &rules, &config, &options(Selection::default())).unwrap();
        assert_eq!(a.gate.exit_code, 1);
        assert_eq!(a.gate.failing, 18);
        assert_eq!(a.rules.len(), rules.rules.len());
        assert!(a.not_evaluated.is_empty());
    }

    #[test]
    fn a_selection_narrows_the_rules_and_says_so() {
        let (snapshot, config) = demo();
        let rules = RuleSet::load(&[], &[]).unwrap();
        let sel = Selection {
            rules: vec!["db.encryption.*".into()],
            ..Selection::default()
        };
        let a = audit(&snapshot, &rules, &config, &options(sel)).unwrap();
        assert!(
            a.rules
                .iter()
                .all(|r| r.doc.id.starts_with("db.encryption."))
        );
        assert_eq!(a.not_evaluated.len(), rules.rules.len() - a.rules.len());
        // test-shared is unencrypted: a high failure, so the gate fails.
        assert_eq!(a.gate.exit_code, 1);
    }
}

#[cfg(test)]
mod parts_tests {
    use super::*;
    use crate::snapshot::ShardPart;

    /// The demo as two shard parts (one account in the first, the others
    /// in the second).
    fn parts() -> (Vec<(String, Snapshot)>, Config) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let whole = Snapshot::load(&root.join("fixtures/demo/snapshot.json")).unwrap();
        let config = Config::load(&root.join("fixtures/demo/dbaudit.toml")).unwrap();
        let plan: Vec<crate::snapshot::PlannedAccount> = whole
            .accounts
            .iter()
            .enumerate()
            .map(|(i, a)| crate::snapshot::PlannedAccount {
                name: a.name.clone(),
                environment: a.environment.clone(),
                account_id: a.account_id.clone(),
                regions: Vec::new(),
                shard: if i == 0 { 1 } else { 2 },
            })
            .collect();
        let out = (1..=2)
            .map(|k| {
                let mut p = Snapshot::new(whole.collected_at.clone());
                p.accounts = (whole.accounts.iter().enumerate())
                    .filter(|(i, _)| (*i == 0) == (k == 1))
                    .map(|(_, a)| a.clone())
                    .collect();
                p.shard = Some(ShardPart {
                    run_id: "t".into(),
                    index: k,
                    count: 2,
                    plan: plan.clone(),
                    completed: p.accounts.iter().map(|a| a.name.clone()).collect(),
                });
                (format!("part-{k}.json"), p)
            })
            .collect();
        (out, config)
    }

    fn options() -> AuditOptions {
        AuditOptions {
            spool: true,
            digest: true,
            topology: false,
            ..super::tests::options(Selection::default())
        }
    }

    /// Runs `audit_parts` with a second pass that `change` may alter.
    fn run(change: impl Fn(&mut Vec<(String, Snapshot)>)) -> Result<Report, Error> {
        let (first, config) = parts();
        let rules = RuleSet::load(&[], &[]).unwrap();
        let mut calls = 0;
        let mut reader = || -> Result<Parts, Error> {
            calls += 1;
            let mut p = first.clone();
            if calls == 2 {
                change(&mut p);
            }
            Ok(Box::new(p.into_iter().map(Ok)))
        };
        audit_parts(&mut reader, None, &rules, &config, &options()).map(|(r, _)| r)
    }

    #[test]
    fn parts_read_twice_give_the_merged_snapshots_report() {
        let report = run(|_| {}).unwrap();
        let (p, config) = parts();
        let (merged, _) = crate::shard::merge_each(p.into_iter().map(Ok), None).unwrap();
        let rules = RuleSet::load(&[], &[]).unwrap();
        let whole = audit(&merged, &rules, &config, &options()).unwrap();
        assert_eq!(
            serde_json::to_string(&report).unwrap(),
            serde_json::to_string(&whole).unwrap()
        );
        // The same input to the history, read as parts or merged.
        assert!(report.input_digest.is_some());
        assert_eq!(report.input_digest, whole.input_digest);
    }

    #[test]
    fn parts_that_change_between_the_passes_are_refused() {
        // An account gone.
        let e = run(|p| p[1].1.accounts.clear()).map(|_| ()).unwrap_err();
        assert!(e.to_string().contains("the parts changed"), "{e}");
        // A cluster changed.
        let e = run(|p| {
            let a = &mut p[1].1.accounts[0];
            let c = a.regions.iter_mut().find_map(|r| r.db_clusters.first_mut());
            c.unwrap().engine_version.push_str(".1");
        })
        .map(|_| ())
        .unwrap_err();
        assert!(e.to_string().contains("DB clusters differ"), "{e}");
        // An account twice.
        let e = run(|p| {
            let again = p[1].1.accounts[0].clone();
            p[1].1.accounts.push(again);
        })
        .map(|_| ())
        .unwrap_err();
        assert!(e.to_string().contains("read twice"), "{e}");
    }
}
