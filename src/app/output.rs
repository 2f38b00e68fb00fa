//! Reporting: from the command's flags to the library's audit options, the
//! audit, then every requested output rendered in memory and written only
//! when all of them rendered (an error leaves nothing half-written).

use std::path::{Path, PathBuf};

use super::{Io, write_err};
use crate::audit::{AuditOptions, audit};
use crate::cli::{ReportArgs, ReportSpec};
use crate::config::Config;
use crate::error::{AtomicFile, Error};
use crate::history::History;
use crate::report::render::{self, Format, RenderContext};
use crate::report::{Report, table};
use crate::rules::RuleSet;
use crate::selection::Selection;
use crate::snapshot::Snapshot;
use crate::waivers::{Date, WaiverState};

/// Evaluates a snapshot, writes the reports and returns the gate's exit code.
///
/// A run recorded in the history is committed only after every output was
/// written: an error (exit 2) leaves neither outputs nor a recorded run.
pub fn report_snapshot(
    snapshot: &Snapshot,
    config: &Config,
    rules: &RuleSet,
    args: &ReportArgs,
    io: &mut Io,
) -> Result<i32, Error> {
    let (mut run, history) = Run::new(Some(snapshot), config, rules, args)?;
    // The findings are spooled an account at a time (the history records
    // them an account at a time too). One account's findings are one
    // chunk, held while spooled: spooling them saves nothing (`scan
    // --account prod`).
    run.opts.spool = snapshot.accounts.len() > 1;
    let report = audit(snapshot, rules, config, &run.opts)?;
    run.finish(report, history, io)
}

/// `dbaudit evaluate DIR`: a sharded run's parts evaluated without holding
/// the merged snapshot (`audit::audit_parts`: read twice, one part at a
/// time, findings spooled; a third time when the HTML report is written,
/// for its topology), recorded into the history an account at a time.
pub fn report_parts(
    parts: &mut crate::audit::PartReader<'_>,
    config: &Config,
    rules: &RuleSet,
    args: &ReportArgs,
    io: &mut Io,
) -> Result<i32, Error> {
    let (mut run, history) = Run::new(None, config, rules, args)?;
    run.opts.spool = true;
    // The HTML report's topology: drawn in a third reading of the parts.
    run.opts.topology = run.outputs.iter().any(|(f, _)| *f == Format::Html);
    let opts = &run.opts;
    let (report, summary) = crate::audit::audit_parts(parts, None, rules, config, opts)?;
    writeln!(
        io.stderr,
        "evaluated {} a part at a time ({} part(s) read {}, {} account(s); the merged snapshot was not built)",
        if summary.whole {
            "the snapshot and its database parts".to_string()
        } else {
            format!("run `{}`", summary.run_id)
        },
        summary.parts.max(1),
        if opts.topology {
            "three times (the third for the HTML report's topology)"
        } else {
            "twice"
        },
        report.accounts.len()
    )
    .map_err(write_err)?;
    run.finish(report, history, io)
}

/// What a run reports with, once evaluated: the snapshot (`None` when its
/// parts were evaluated one at a time), the inputs and the outputs asked.
struct Run<'a> {
    snapshot: Option<&'a Snapshot>,
    config: &'a Config,
    rules: &'a RuleSet,
    opts: AuditOptions,
    args: &'a ReportArgs,
    outputs: Vec<(Format, Option<PathBuf>)>,
}

impl<'a> Run<'a> {
    /// The run's options, outputs and history store: every input read and
    /// checked before anything is evaluated or written.
    fn new(
        snapshot: Option<&'a Snapshot>,
        config: &'a Config,
        rules: &'a RuleSet,
        args: &'a ReportArgs,
    ) -> Result<(Run<'a>, Option<History>), Error> {
        let mut opts = audit_options(config, args)?;
        let outputs = outputs(args)?;
        let history = open_history(config, args)?;
        opts.digest = history.is_some() && !args.no_history;
        let run = Run {
            snapshot,
            config,
            rules,
            opts,
            args,
            outputs,
        };
        Ok((run, history))
    }

    /// The evaluated report compared with `--baseline last`, recorded into
    /// the history (unless it holds this input already), written; returns
    /// the gate's exit code.
    fn finish(
        &self,
        mut report: Report,
        mut history: Option<History>,
        io: &mut Io,
    ) -> Result<i32, Error> {
        let (config, args) = (self.config, self.args);
        // Whether this run is recorded, and the digest of what it evaluated.
        let mut record: Option<String> = None;
        let mut backfill = false;
        if let Some(h) = history.as_mut().filter(|_| !args.no_history) {
            let digest = input_digest(&report, self.rules, config, &self.opts);
            match h.recorded_input(&digest)? {
                Some(run) => writeln!(
                    io.stderr,
                    "history: run {} already holds this snapshot, rule set and configuration: evaluated and reported, not recorded again",
                    run.run_id
                )
                .map_err(write_err)?,
                None => {
                    backfill = check_time_order(h, &report.collected_at, args.backfill)?;
                    record = Some(digest);
                }
            }
        }
        let baseline_last = args.baseline.as_deref() == Some(Path::new(BASELINE_LAST));
        if let (true, Some(h)) = (baseline_last, history.as_mut()) {
            let choice = h.baseline_for(&report)?;
            crate::audit::rebaseline(&mut report, &choice.findings, &self.opts, Some(&choice.why))?;
            writeln!(io.stderr, "baseline: {}", choice.why).map_err(write_err)?;
        }
        report.frameworks = report.scorecards(self.rules, &args.framework)?;

        // The run is recorded in a transaction left open while the outputs
        // are rendered (the HTML report's trend includes it), and committed
        // only once every output is written.
        let mut ctx = RenderContext::new(self.snapshot);
        let mut recorded = None;
        if let (Some(h), Some(digest)) = (history.as_mut(), &record) {
            let run = h.begin_record(&report, &crate::history::now(), digest)?;
            if backfill && let Err(e) = h.rebuild_periods() {
                h.rollback();
                return Err(e.into());
            }
            recorded = Some(run);
        }
        let written = (|| {
            if let Some(h) = history.as_mut()
                && self.outputs.iter().any(|(f, _)| *f == Format::Html)
            {
                ctx.history = Some(h.view(crate::report::html::TREND_RUNS)?);
            }
            render_outputs(&report, &self.outputs, args, &ctx, io)
        })();
        let (files, stdout) = match written {
            Ok(w) => w,
            Err(e) => {
                if let (Some(h), Some(_)) = (history.as_mut(), &recorded) {
                    h.rollback();
                }
                return Err(e);
            }
        };
        if let (Some(h), Some(run)) = (history.as_mut(), &recorded) {
            h.commit()?;
            if let Some(keep) = config.history_keep_runs {
                h.prune(keep)?;
            }
            if backfill {
                writeln!(
                    io.stderr,
                    "history: inserted run {} in {} in time order (collected {}); every period was replayed",
                    run.run_id,
                    h.describe(),
                    run.at
                )
            } else {
                writeln!(
                    io.stderr,
                    "history: recorded run {} in {} ({} period(s) opened, {} closed)",
                    run.run_id,
                    h.describe(),
                    run.opened,
                    run.closed
                )
            }
            .map_err(write_err)?;
        }
        put_in_place(files, stdout, &ctx, io)?;
        waiver_warnings(&report, io)?;
        Ok(report.gate.exit_code)
    }
}

/// `dbaudit plan` (and `scan --plan`): the plan evaluated on the snapshot,
/// the reports written; never recorded in the history.
pub fn report_plan(
    snapshot: &Snapshot,
    (plan_path, target, flags): (&Path, crate::plan::Target, &crate::cli::PlanFlags),
    config: &Config,
    rules: &RuleSet,
    args: &ReportArgs,
    io: &mut Io,
) -> Result<i32, Error> {
    check_plan_args(args)?;
    let opts = audit_options(config, args)?;
    let outputs = outputs(args)?;
    let plan = crate::plan::PlanJson::load(plan_path)?;
    let popts = crate::plan::PlanOptions {
        target,
        on_unknown: flags.on_unknown,
        tf_dir: flags.tf_dir.clone(),
        repo_root: flags.repo_root.clone(),
        gate_existing: flags.gate_existing,
        file: plan_path.display().to_string(),
    };
    let mut report = crate::plan::audit_plan(snapshot, &plan, rules, config, &opts, &popts)?;
    report.frameworks = report.scorecards(rules, &args.framework)?;
    let ctx = RenderContext::new(Some(snapshot));
    let (files, stdout) = render_outputs(&report, &outputs, args, &ctx, io)?;
    put_in_place(files, stdout, &ctx, io)?;
    if args.history.is_some() || config.history.is_some() {
        writeln!(
            io.stderr,
            "history: a plan is not recorded (it predicts a state, it does not observe one)"
        )
        .map_err(write_err)?;
    }
    waiver_warnings(&report, io)?;
    Ok(report.gate.exit_code)
}

/// The reporting flags a plan refuses (checked before `scan --plan`
/// collects).
pub fn check_plan_args(args: &ReportArgs) -> Result<(), Error> {
    if args.baseline.is_some() {
        return Err(Error::Usage(
            "--baseline does not apply to a plan: its baseline is the live snapshot's own evaluation (--gate-existing gates on every failure)".to_string(),
        ));
    }
    if args.backfill {
        return Err(Error::Usage(
            "--backfill does not apply to a plan: a plan is never recorded in the history"
                .to_string(),
        ));
    }
    Ok(())
}

/// The rendered outputs put in place (files renamed, stdout written), then
/// the renderers' warnings on stderr.
fn put_in_place(
    files: Vec<AtomicFile>,
    stdout: Option<crate::error::Spill>,
    ctx: &RenderContext,
    io: &mut Io,
) -> Result<(), Error> {
    for file in files {
        file.commit()?;
    }
    if let Some(held) = stdout {
        held.copy_to(&mut *io.stdout).map_err(write_err)?;
    }
    for w in ctx.warnings.borrow().iter() {
        writeln!(io.stderr, "warning: {w}").map_err(write_err)?;
    }
    Ok(())
}

/// Every output rendered: files into temporary files beside their targets
/// (a large report is never held in memory twice), stdout into a
/// [`Spill`](crate::error::Spill) (memory, then a temporary file).
/// Nothing is put in place here.
///
/// The outputs are rendered on up to one thread per core, each reading the
/// findings on its own (a spool is read a chunk at a time by each): on two
/// cores the JSON report, JUnit and a SARIF directory of 1,000 accounts
/// take about the time of the slowest of them, not their sum. Files are
/// committed, and warnings said, in the order of the flags either way.
fn render_outputs(
    report: &Report,
    outputs: &[(Format, Option<PathBuf>)],
    args: &ReportArgs,
    ctx: &RenderContext,
    io: &Io,
) -> Result<(Vec<AtomicFile>, Option<crate::error::Spill>), Error> {
    let mut jobs: Vec<Job> = outputs
        .iter()
        .map(|(format, target)| {
            let style = table_style(report, args, target.is_none() && io.stdout_tty);
            Job::Output(*format, style, target.clone())
        })
        .collect();
    let mut sarif_accounts = Vec::new();
    if let Some(dir) = &args.sarif_dir {
        std::fs::create_dir_all(dir).map_err(|error| Error::Io {
            path: dir.clone(),
            error,
        })?;
        for (stem, accounts) in crate::report::sarif::split(report) {
            jobs.push(Job::Sarif(
                dir.join(format!("{stem}.sarif")),
                sarif_accounts.len(),
            ));
            sarif_accounts.push(accounts);
        }
    }
    // What the renderers read of the context; each job has its own
    // warnings.
    let (snapshot, history) = (ctx.snapshot, ctx.history.as_ref());
    let results: Vec<std::sync::Mutex<Option<Rendered>>> =
        jobs.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(job) = jobs.get(i) else {
                return;
            };
            let done = match job {
                Job::Output(format, style, target) => {
                    let own = RenderContext {
                        snapshot,
                        history: history.filter(|_| *format == Format::Html).cloned(),
                        warnings: Default::default(),
                    };
                    let renderer = render::renderer(*format, *style);
                    match target {
                        Some(path) => render_file(path, |file| {
                            renderer.render(report, &own, file)?;
                            Ok(std::mem::take(&mut *own.warnings.borrow_mut()))
                        }),
                        None => {
                            let mut held = crate::error::Spill::default();
                            renderer
                                .render(report, &own, &mut held)
                                .map(|()| (Out::Stdout(held), own.warnings.into_inner()))
                                .map_err(write_err)
                        }
                    }
                }
                Job::Sarif(path, k) => render_file(path, |file| {
                    crate::report::sarif::render_accounts(
                        report,
                        &sarif_accounts[*k],
                        file,
                        Vec::new(),
                    )
                }),
            };
            *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(done);
        }
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len());
    if threads <= 1 {
        work();
    } else {
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(work);
            }
        });
    }
    let mut files = Vec::new();
    let mut stdout = None;
    for r in results {
        let (out, warnings) = r
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .expect("every job ran")?;
        for w in warnings {
            ctx.warn(w);
        }
        match out {
            Out::File(file) => files.push(file),
            Out::Stdout(bytes) => stdout = Some(bytes),
        }
    }
    Ok((files, stdout))
}

/// An output to render: a report format into a file or stdout, or one
/// file of the SARIF directory (its accounts by index).
enum Job {
    Output(Format, table::Style, Option<PathBuf>),
    Sarif(PathBuf, usize),
}

/// A rendered output, not yet in place.
enum Out {
    File(AtomicFile),
    Stdout(crate::error::Spill),
}

/// A rendered output with the renderer's warnings.
type Rendered = Result<(Out, Vec<String>), Error>;

/// `render` into a new temporary file beside `path`; an error names `path`.
fn render_file(
    path: &Path,
    render: impl FnOnce(&mut AtomicFile) -> std::io::Result<Vec<String>>,
) -> Rendered {
    let mut file = AtomicFile::create(path)?;
    let warnings = render(&mut file).map_err(|error| Error::Io {
        path: path.to_path_buf(),
        error,
    })?;
    // On disk from this thread, while other outputs still render: only the
    // renames are left for when all are done.
    file.seal()?;
    Ok((Out::File(file), warnings))
}

/// A snapshot collected before the history's latest run, recorded at the
/// end, would reopen what later runs closed and reset ages: refused (it can
/// still be evaluated with `--no-history`), unless `--backfill` asks to
/// insert it in time order. Returns whether it is such a backfill.
fn check_time_order(h: &mut History, collected_at: &str, backfill: bool) -> Result<bool, Error> {
    use crate::model::lifecycle::epoch;
    let Some(latest) = h.latest_run()? else {
        return Ok(false);
    };
    let older = matches!(
        (epoch(collected_at), epoch(&latest.at)),
        (Some(this), Some(last)) if this < last
    );
    if older && !backfill {
        return Err(Error::Usage(format!(
            "the snapshot was collected at {collected_at}, before the history's latest run {} (collected at {}): recording it at the end would reopen findings that later runs closed and reset their ages; insert it in time order with --backfill, or evaluate it with --no-history",
            latest.run_id, latest.at
        )));
    }
    Ok(older)
}

/// What a recorded run evaluated, as one digest: the snapshot as evaluated
/// (`Report::input_digest`: the same whether it was merged or evaluated a
/// part at a time), the rules (built-in pack and user rules as loaded, with
/// the selection) and the configuration. The same digest is not recorded
/// twice.
fn input_digest(report: &Report, rules: &RuleSet, config: &Config, opts: &AuditOptions) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(
        report
            .input_digest
            .as_deref()
            .unwrap_or_default()
            .as_bytes(),
    );
    h.update([0]);
    h.update(crate::rules::pack_digest().as_bytes());
    for r in &rules.rules {
        h.update(format!("{r:?}").as_bytes());
    }
    h.update(format!("{:?}", rules.params).as_bytes());
    h.update(format!("{config:?}").as_bytes());
    h.update(format!("{:?}", opts.selection).as_bytes());
    h.update(opts.fail_on.as_str().as_bytes());
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The history of `--history` or `[history] store`, opened (created or
/// migrated; a foreign or newer store refused). `scan` calls it before
/// collecting too, so that a bad store fails in seconds, not after the scan.
pub fn open_history(config: &Config, args: &ReportArgs) -> Result<Option<History>, Error> {
    let store = args.history.clone().or_else(|| config.history.clone());
    let baseline_last = args.baseline.as_deref() == Some(Path::new(BASELINE_LAST));
    if baseline_last && store.is_none() {
        return Err(Error::Usage(
            "--baseline last compares with the findings history: give --history FILE|URL or set [history] store in the configuration".to_string(),
        ));
    }
    // --no-history: nothing is recorded; the store is still read for
    // --baseline last.
    if args.no_history && !baseline_last {
        return Ok(None);
    }
    Ok(store.as_deref().map(History::open).transpose()?)
}

/// `dbaudit evidence`: the audit of `snapshot`, and the pack of each
/// framework written into a fresh directory, renamed into place once whole.
pub fn evidence(
    snapshot: &Snapshot,
    config: &Config,
    rules: &RuleSet,
    args: &crate::cli::EvidenceArgs,
    io: &mut Io,
) -> Result<i32, Error> {
    use sha2::Digest;
    let dir = &args.output;
    if dir.exists() && std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_some()) {
        return Err(Error::Usage(format!(
            "{}: exists and is not an empty directory: the evidence pack is written into a new or empty one",
            dir.display()
        )));
    }
    let mut waivers = config.waivers.clone();
    if let Some(p) = &args.waivers {
        waivers.extend(crate::waivers::load_file(p)?);
    }
    let as_of = match &args.as_of {
        Some(s) => Date::parse(s).ok_or_else(|| {
            Error::Usage(format!("--as-of must be a date as YYYY-MM-DD, found `{s}`"))
        })?,
        None => Date::today(),
    };
    let opts = AuditOptions {
        fail_on: crate::rules::Severity::High,
        on_incomplete: crate::report::gate::OnIncomplete::Fail,
        waivers,
        baseline: None,
        as_of,
        // The pack reads the findings an account at a time (it holds the
        // failing ones only).
        spool: snapshot.accounts.len() > 1,
        digest: true,
        topology: false,
        selection: Selection {
            disabled: config.disabled_rules.clone(),
            ..Selection::default()
        },
    };
    let store = args.history.clone().or_else(|| config.history.clone());
    let mut history = store.as_deref().map(History::open).transpose()?;
    let report = audit(snapshot, rules, config, &opts)?;
    let cards = report.scorecards(rules, &args.framework)?;
    let id = crate::report::evidence::RunIdentity {
        snapshot_sha256: {
            let mut h = sha2::Sha256::new();
            let _ = serde_json::to_writer(&mut h, snapshot);
            h.finalize().iter().map(|b| format!("{b:02x}")).collect()
        },
        input_digest: input_digest(&report, rules, config, &opts),
    };
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".dbaudit-evidence-")
        .tempdir_in(parent)
        .map_err(|e| Error::Io {
            path: parent.to_path_buf(),
            error: e,
        })?;
    let mut failed: Option<Error> = None;
    let mut count = 0;
    for card in &cards {
        let lookup = |rules: &[String]| -> Option<Vec<crate::report::evidence::RuleRun>> {
            let h = history.as_mut()?;
            let names: Vec<&str> = rules.iter().map(String::as_str).collect();
            // A failure to read the history stops the pack (below): an
            // evidence page never says "no history" when there is one.
            match h.rule_history(&names) {
                Ok(runs) => Some(runs),
                Err(e) => {
                    failed.get_or_insert(e.into());
                    None
                }
            }
        };
        let lookup = std::cell::RefCell::new(lookup);
        let files =
            crate::report::evidence::files(&report, card, &id, &|r| (lookup.borrow_mut())(r))
                .map_err(crate::findings::spool_error)?;
        for (rel, text) in files {
            let path = tmp.path().join(&rel);
            if let Some(p) = path.parent() {
                std::fs::create_dir_all(p).map_err(|e| Error::Io {
                    path: p.to_path_buf(),
                    error: e,
                })?;
            }
            std::fs::write(&path, text).map_err(|e| Error::Io {
                path: path.clone(),
                error: e,
            })?;
            count += 1;
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if dir.exists() {
        std::fs::remove_dir(dir).map_err(|e| Error::Io {
            path: dir.clone(),
            error: e,
        })?;
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, dir).map_err(|e| Error::Io {
        path: dir.clone(),
        error: e,
    })?;
    writeln!(
        io.stderr,
        "evidence: {count} file(s) for {} in {} (snapshot SHA-256 {})",
        args.framework.join(", "),
        dir.display(),
        id.snapshot_sha256
    )
    .map_err(write_err)?;
    Ok(crate::report::gate::EXIT_OK)
}

/// `--baseline last`: the history's latest accepted run (`History::baseline_for`).
const BASELINE_LAST: &str = "last";

/// The flags as the library's audit options (waivers file, baseline and
/// dates read and checked here).
fn audit_options(config: &Config, args: &ReportArgs) -> Result<AuditOptions, Error> {
    let mut waivers = config.waivers.clone();
    if let Some(p) = &args.waivers {
        waivers.extend(crate::waivers::load_file(p)?);
    }
    let baseline = match args
        .baseline
        .as_deref()
        .filter(|p| *p != Path::new(BASELINE_LAST))
    {
        Some(path) => {
            let previous = Report::load(path)?;
            Some(crate::audit::Baseline {
                findings: crate::baseline::failing_in(&previous)
                    .map_err(crate::findings::spool_error)?,
                basis: format!(
                    "report {} (collected {})",
                    path.display(),
                    previous.collected_at
                ),
            })
        }
        None => None,
    };
    let as_of = match &args.as_of {
        Some(s) => Date::parse(s).ok_or_else(|| {
            Error::Usage(format!("--as-of must be a date as YYYY-MM-DD, found `{s}`"))
        })?,
        None => Date::today(),
    };
    Ok(AuditOptions {
        fail_on: args.fail_on.into(),
        on_incomplete: args.on_incomplete,
        waivers,
        baseline,
        as_of,
        selection: Selection {
            rules: args.rule.clone(),
            skip: args.skip_rule.clone(),
            min_severity: args.severity.map(Into::into),
            environments: args.environment.clone(),
            disabled: config.disabled_rules.clone(),
        },
        spool: false,
        digest: false,
        topology: false,
    })
}

/// Expired and unused waivers, on stderr (the report lists them too).
fn waiver_warnings(report: &Report, io: &mut Io) -> Result<(), Error> {
    for w in report.waivers.iter().filter(|w| w.needs_attention()) {
        let what = match w.status {
            WaiverState::Expired => format!(
                "expired on {}: it no longer applies",
                w.waiver.expires.as_deref().unwrap_or("?")
            ),
            _ => "matched no failing finding: remove it or fix its selector".to_string(),
        };
        writeln!(
            io.stderr,
            "warning: waiver at {} (rule `{}`) {what}",
            w.waiver.location, w.rule
        )
        .map_err(write_err)?;
    }
    Ok(())
}

/// Above this many failing and error findings the table shows the per-rule
/// summary only, unless `--compact=false`.
const COMPACT_ABOVE: usize = 200;

/// The table's style where it goes: colours only on a terminal without
/// `NO_COLOR`; the width from `COLUMNS` (else the terminal's, measured by
/// the table, or a fixed width into a file or pipe, where prose lines stay
/// whole for grep).
fn table_style(report: &Report, args: &ReportArgs, on_tty: bool) -> table::Style {
    table::Style {
        color: on_tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        show_passed: args.show_passed,
        width: std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<u16>().ok())
            .filter(|w| *w >= 40),
        tty: on_tty,
        compact: args.compact.unwrap_or_else(|| {
            report.summary.total.fail + report.summary.total.error > COMPACT_ABOVE
        }),
    }
}

/// The primary output (`--format`, `-o`), then `--report FORMAT[=PATH]`
/// and `--json/--sarif/--junit/--markdown`; `-` (or no path) is stdout,
/// which only one output may use.
fn outputs(args: &ReportArgs) -> Result<Vec<(Format, Option<PathBuf>)>, Error> {
    let mut out = vec![(args.format, args.output.clone())];
    let stdout = |p: &PathBuf| (p.as_os_str() != "-").then(|| p.clone());
    for ReportSpec { format, path } in &args.reports {
        out.push((*format, path.as_ref().and_then(stdout)));
    }
    for (format, path) in [
        (Format::Json, &args.json),
        (Format::Sarif, &args.sarif),
        (Format::Junit, &args.junit),
        (Format::Markdown, &args.markdown),
        (Format::Html, &args.html),
    ] {
        if let Some(p) = path {
            out.push((format, stdout(p)));
        }
    }
    let on_stdout = out.iter().filter(|(_, t)| t.is_none()).count();
    if on_stdout > 1 && args.output.is_none() {
        // The primary goes to stdout by default; an explicit `-` elsewhere
        // takes its place.
        out.remove(0);
    }
    if out.iter().filter(|(_, t)| t.is_none()).count() > 1 {
        return Err(Error::Usage(
            "only one output can go to stdout (`-`)".to_string(),
        ));
    }
    // Two outputs to one file: one would silently replace the other.
    let mut seen: Vec<(PathBuf, Format)> = Vec::new();
    for (format, path) in &out {
        let Some(path) = path else { continue };
        let key = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        if let Some((_, first)) = seen.iter().find(|(p, _)| *p == key) {
            return Err(Error::Usage(format!(
                "two outputs go to {}: {} and {}; give each its own file",
                path.display(),
                first.as_str(),
                format.as_str()
            )));
        }
        seen.push((key, *format));
    }
    Ok(out)
}

/// Checks the report flags and that every output file can be written
/// (`scan` calls it before collecting, so that a typo'd directory fails in
/// seconds, not after the scan).
#[cfg(feature = "aws")]
pub fn check_outputs(args: &ReportArgs) -> Result<(), Error> {
    for path in outputs(args)?.into_iter().filter_map(|(_, p)| p) {
        crate::error::writable(&path)?;
    }
    Ok(())
}
