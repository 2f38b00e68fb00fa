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
    /// unless an output needs every finding at once.
    pub spool: bool,
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

fn run(
    snapshot: &Snapshot,
    rules: &RuleSet,
    config: &Config,
    opts: &AuditOptions,
    adjust: Option<&mut Adjust<'_>>,
) -> Result<Report, Error> {
    let (rules, mut not_evaluated) = opts.selection.rules(rules)?;
    let narrowed = opts.selection.accounts(snapshot)?;
    let snapshot = narrowed.as_ref().unwrap_or(snapshot);
    // What the snapshot was meant to hold and does not: gaps, before
    // anything is evaluated.
    let (completed, completeness) =
        crate::expected::check(snapshot, config, &opts.selection.environments)?;
    let snapshot = completed.as_ref().unwrap_or(snapshot);
    let (rules, pairs_left_out) = crate::selection::pairs_in_run(rules, snapshot);
    not_evaluated.extend(pairs_left_out);

    // Everything after evaluation is done an account's findings at a time
    // (all of them at once when they are held), counted as it goes, so
    // that spooled findings are written once and not read again here.
    let tags = crate::waivers::tags_by_arn(snapshot);
    let config_path = config.repository_path();
    let mut waiving = crate::waivers::Waiving::new(&opts.waivers, opts.as_of);
    let mut annotator = (opts.baseline.as_ref()).map(|b| Annotator::new(&b.findings));
    let mut tally = Tally::default();
    let mut gated = GateTally::new(opts.fail_on);
    let mut finish = |chunk: &mut [Finding]| {
        for f in chunk.iter_mut() {
            if let Some(t) = tags.get(&*f.resource_arn) {
                f.source = t.get(&config.sarif.source_tag).cloned();
            }
            if f.outcome != Outcome::Pass && f.location.is_none() {
                f.location = Some(config.locate(f, &config_path));
            }
        }
        waiving.apply(chunk, &tags);
        if let Some(a) = annotator.as_mut() {
            a.annotate(chunk);
        }
        for f in chunk.iter() {
            tally.add(f);
            gated.add(f);
        }
    };
    let findings = match adjust {
        None if opts.spool => {
            let mut spool = SpoolWriter::new().map_err(spool_error)?;
            crate::evaluate::evaluate_each(snapshot, &rules, config, &mut |mut chunk| {
                finish(&mut chunk);
                spool.push(&chunk)
            })
            .map_err(spool_error)?;
            Findings::Spooled(spool.finish().map_err(spool_error)?)
        }
        adjust => {
            let mut findings = crate::evaluate::evaluate(snapshot, &rules, config);
            if let Some(adjust) = adjust {
                adjust(snapshot, &mut findings);
            }
            finish(&mut findings);
            Findings::Memory(findings)
        }
    };
    let mut gate = gated.decide(opts.on_incomplete, None);
    let fixed = annotator.map(Annotator::fixed);
    if let Some(b) = &opts.baseline {
        gate.reason.push_str(&format!("; baseline: {}", b.basis));
    }
    let mut report = Report::build_counted(snapshot, &rules, findings, &tally, gate);
    report.waivers = waiving.status();
    report.not_evaluated = not_evaluated;
    report.completeness = completeness.noteworthy().then_some(completeness);
    if let Some(fixed) = fixed {
        report.baseline = Some(tally.baseline_summary(fixed.len()));
        report.fixed = Some(fixed);
    }
    Ok(report)
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

    fn options(selection: Selection) -> AuditOptions {
        AuditOptions {
            fail_on: Severity::High,
            on_incomplete: OnIncomplete::Fail,
            waivers: vec![],
            baseline: None,
            as_of: Date::parse("2026-11-30").unwrap(),
            selection,
            spool: false,
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
