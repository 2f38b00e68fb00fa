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
pub fn report_snapshot(
    snapshot: &Snapshot,
    config: &Config,
    rules: &RuleSet,
    args: &ReportArgs,
    io: &mut Io,
) -> Result<i32, Error> {
    // Every input is read and checked before anything is evaluated or written.
    let opts = audit_options(config, args)?;
    let outputs = outputs(args)?;
    let mut history = open_history(config, args)?;
    let baseline_last = args.baseline.as_deref() == Some(Path::new(BASELINE_LAST));
    let mut report = audit(snapshot, rules, config, &opts)?;
    if let (true, Some(h)) = (baseline_last, history.as_mut()) {
        match h.last_comparable(&report)? {
            Some((run, previous)) => {
                crate::audit::rebaseline(&mut report, &previous, &opts);
                writeln!(
                    io.stderr,
                    "baseline: run {} of {} (the latest with the same accounts, regions and rule pack)",
                    run.run_id, run.at
                )
                .map_err(write_err)?;
            }
            None => {
                crate::audit::rebaseline(&mut report, &[], &opts);
                writeln!(
                    io.stderr,
                    "warning: --baseline last: the history has no run with the same accounts, regions and rule pack; every failure counts as new"
                )
                .map_err(write_err)?;
            }
        }
    }

    // The run is recorded (one transaction) before the outputs are
    // rendered, so that the HTML report's trend includes it.
    let mut ctx = RenderContext::new(Some(snapshot));
    if let Some(h) = history.as_mut() {
        let run = h.record(&report, &crate::history::now())?;
        if let Some(keep) = config.history_keep_runs {
            h.prune(keep)?;
        }
        writeln!(
            io.stderr,
            "history: recorded run {} in {} ({} period(s) opened, {} closed)",
            run.run_id,
            h.describe(),
            run.opened,
            run.closed
        )
        .map_err(write_err)?;
        if outputs.iter().any(|(f, _)| *f == Format::Html) {
            ctx.history = Some(h.view(crate::report::html::TREND_RUNS)?);
        }
    }

    // Files are streamed into temporary files beside their targets (a large
    // report is never held in memory twice); stdout is buffered. Nothing is
    // put in place until every output rendered: an error leaves no output
    // behind and the old files as they were.
    let mut files: Vec<AtomicFile> = Vec::new();
    let mut stdout: Option<Vec<u8>> = None;
    for (format, target) in outputs {
        let style = table_style(&report, args, target.is_none() && io.stdout_tty);
        let renderer = render::renderer(format, style);
        match target {
            Some(path) => {
                let mut file = AtomicFile::create(&path)?;
                let io_err = |error| Error::Io {
                    path: path.clone(),
                    error,
                };
                renderer.render(&report, &ctx, &mut file).map_err(io_err)?;
                files.push(file);
            }
            None => {
                stdout =
                    Some(render::to_bytes(renderer.as_ref(), &report, &ctx).map_err(write_err)?)
            }
        }
    }
    if let Some(dir) = &args.sarif_dir {
        std::fs::create_dir_all(dir).map_err(|error| Error::Io {
            path: dir.clone(),
            error,
        })?;
        for (stem, accounts) in crate::report::sarif::split(&report) {
            let path = dir.join(format!("{stem}.sarif"));
            let mut file = AtomicFile::create(&path)?;
            let warnings =
                crate::report::sarif::render_accounts(&report, &accounts, &mut file, Vec::new())
                    .map_err(|error| Error::Io {
                        path: path.clone(),
                        error,
                    })?;
            for w in warnings {
                ctx.warn(w);
            }
            files.push(file);
        }
    }
    for file in files {
        file.commit()?;
    }
    if let Some(buf) = stdout {
        io.stdout.write_all(&buf).map_err(write_err)?;
    }
    for w in ctx.warnings.borrow().iter() {
        writeln!(io.stderr, "warning: {w}").map_err(write_err)?;
    }
    waiver_warnings(&report, io)?;
    Ok(report.gate.exit_code)
}

/// The history of `--history` or `[history] store`, opened (created or
/// migrated; a foreign or newer store refused). `scan` calls it before
/// collecting too, so that a bad store fails in seconds, not after the scan.
pub fn open_history(config: &Config, args: &ReportArgs) -> Result<Option<History>, Error> {
    let store = args.history.clone().or_else(|| config.history.clone());
    if args.baseline.as_deref() == Some(Path::new(BASELINE_LAST)) && store.is_none() {
        return Err(Error::Usage(
            "--baseline last compares with the findings history: give --history FILE|URL or set [history] store in the configuration".to_string(),
        ));
    }
    Ok(store.as_deref().map(History::open).transpose()?)
}

/// `--baseline last`: the history's latest comparable run.
const BASELINE_LAST: &str = "last";

/// The flags as the library's audit options (waivers file, baseline and
/// dates read and checked here).
fn audit_options(config: &Config, args: &ReportArgs) -> Result<AuditOptions, Error> {
    let mut waivers = config.waivers.clone();
    if let Some(p) = &args.waivers {
        waivers.extend(crate::waivers::load_file(p)?);
    }
    let baseline = (args.baseline.as_deref())
        .filter(|p| *p != Path::new(BASELINE_LAST))
        .map(Report::load)
        .transpose()?;
    let baseline = baseline.as_ref().map(crate::baseline::failing_in);
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
    Ok(out)
}
