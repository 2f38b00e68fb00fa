//! The commands: glue between the CLI and the library. Writes only to the
//! writers it is given, returns the exit code, and never exits itself.

use crate::waivers::WaiverState;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

#[cfg(feature = "aws")]
use crate::cli::TargetArgs;
use crate::cli::{
    AccessArgs, Cli, CollectArgs, Command, DiffArgs, DiffFormat, EvaluateArgs, Format, InitArgs,
    ReportArgs, RulesCommand, ScanArgs,
};
use crate::config::Config;
use crate::error::Error;
use crate::report;
use crate::rules::{ResourceKind, RuleSet};
use crate::snapshot::Snapshot;

/// Where command output goes.
pub struct Io<'a> {
    pub stdout: &'a mut dyn Write,
    pub stderr: &'a mut dyn Write,
    /// stdout is a terminal (for colours).
    pub stdout_tty: bool,
}

pub fn run(cli: Cli, io: &mut Io) -> Result<i32, Error> {
    match cli.command {
        Command::Evaluate(args) => evaluate(args, io),
        Command::Collect(args) => collect(args, io),
        Command::Scan(args) => scan(args, io),
        Command::Rules(cmd) => rules(cmd, io),
        Command::Init(args) => init(args, io),
        Command::Diff(args) => diff(args, io),
        Command::Access(args) => access(args, cli.verbose > 0, io),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "dbaudit", io.stdout);
            Ok(0)
        }
        Command::Man { dir } => man(dir.as_deref(), io),
    }
}

/// The man pages, generated from the same clap definitions as `--help`.
fn man(dir: Option<&Path>, io: &mut Io) -> Result<i32, Error> {
    let cmd = <Cli as clap::CommandFactory>::command();
    let Some(dir) = dir else {
        clap_mangen::Man::new(cmd)
            .render(io.stdout)
            .map_err(write_err)?;
        return Ok(0);
    };
    std::fs::create_dir_all(dir).map_err(|error| Error::Io {
        path: dir.to_path_buf(),
        error,
    })?;
    let mut pages: Vec<(String, clap::Command)> = vec![("dbaudit".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands() {
        let name = format!("dbaudit-{}", sub.get_name());
        // clap names commands with &'static str: a page name lives as long
        // as the process, which is this command's whole life.
        let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
        pages.push((name, sub.clone().name(leaked)));
    }
    for (name, page) in pages {
        let mut buf = Vec::new();
        clap_mangen::Man::new(page)
            .render(&mut buf)
            .map_err(write_err)?;
        crate::error::write_atomic(&dir.join(format!("{name}.1")), &buf)?;
    }
    Ok(0)
}

fn write_err(e: std::io::Error) -> Error {
    Error::Io {
        path: PathBuf::from("<stdout>"),
        error: e,
    }
}

/// The config of `--config` (or `DBAUDIT_CONFIG`), else `./dbaudit.toml`
/// when it exists, else the defaults.
pub fn load_config(path: Option<&Path>) -> Result<Config, Error> {
    match path.or_else(default_config) {
        Some(p) => Config::load(p),
        None => Ok(Config {
            service_tag: "service".to_string(),
            ..Config::default()
        }),
    }
}

fn load_rules(config: &Config, dirs: &[PathBuf]) -> Result<RuleSet, Error> {
    let mut extra: Vec<String> = config.params.keys().cloned().collect();
    for p in config.environment_params.values() {
        extra.extend(p.keys().cloned());
    }
    let rules = RuleSet::load(dirs, &extra)?;
    // Parameter names and types are known only with the rules that read them.
    rules.check_params(config)?;
    Ok(rules)
}

/// Merges several snapshots into one (accounts must not repeat).
pub fn load_snapshots(paths: &[PathBuf]) -> Result<Snapshot, Error> {
    let mut merged: Option<Snapshot> = None;
    for p in paths {
        let s = Snapshot::load(p)?;
        match &mut merged {
            None => merged = Some(s),
            Some(m) => {
                for a in s.accounts {
                    if m.accounts.iter().any(|x| x.name == a.name) {
                        return Err(Error::Input {
                            location: crate::error::Location::new(p, 1, 1),
                            message: format!("account `{}` is also in an earlier snapshot", a.name),
                        });
                    }
                    m.accounts.push(a);
                }
                // The report's time is the earliest collection.
                if s.collected_at < m.collected_at {
                    m.collected_at = s.collected_at;
                }
            }
        }
    }
    let mut s = merged.ok_or_else(|| Error::Usage("no snapshot given".to_string()))?;
    s.normalize();
    Ok(s)
}

fn evaluate(args: EvaluateArgs, io: &mut Io) -> Result<i32, Error> {
    let config = load_config(args.report.config.as_deref())?;
    let rules = load_rules(&config, &args.report.rules)?;
    let snapshot = load_snapshots(&args.snapshots)?;
    report_snapshot(&snapshot, &config, &rules, &args.report, io)
}

/// Evaluates a snapshot, writes the reports and returns the gate's exit code.
pub fn report_snapshot(
    snapshot: &Snapshot,
    config: &Config,
    rules: &RuleSet,
    args: &ReportArgs,
    io: &mut Io,
) -> Result<i32, Error> {
    // Every input is read and checked before anything is evaluated or written.
    let mut waivers = config.waivers.clone();
    if let Some(p) = &args.waivers {
        waivers.extend(crate::waivers::load_file(p)?);
    }
    let baseline = args
        .baseline
        .as_deref()
        .map(crate::report::Report::load)
        .transpose()?;
    let as_of = match &args.as_of {
        Some(s) => crate::waivers::Date::parse(s).ok_or_else(|| {
            Error::Usage(format!("--as-of must be a date as YYYY-MM-DD, found `{s}`"))
        })?,
        None => crate::waivers::Date::today(),
    };
    let outputs = outputs(args)?;
    let opts = crate::audit::AuditOptions {
        fail_on: args.fail_on.into(),
        on_incomplete: args.on_incomplete,
        waivers,
        baseline,
        as_of,
        selection: crate::selection::Selection {
            rules: args.rule.clone(),
            skip: args.skip_rule.clone(),
            min_severity: args.severity.map(Into::into),
            environments: args.environment.clone(),
            disabled: config.disabled_rules.clone(),
        },
    };
    let crate::audit::Audit { report, rules } =
        crate::audit::audit(snapshot, rules, config, &opts)?;
    let rules = &rules;
    let exit = report.gate.exit_code;

    // Render everything first, then write: an error leaves no output behind.
    let sarif_opts = crate::report::sarif::Options {
        rules,
        config_uri: config_uri(config),
        account_lines: config
            .accounts
            .iter()
            .filter_map(|a| Some((a.name.clone(), a.declared_at.as_ref()?.line)))
            .collect(),
        mappings: &config.sarif.mappings,
    };
    let mut rendered: Vec<(Option<PathBuf>, Vec<u8>)> = Vec::new();
    let mut warnings = Vec::new();
    for (format, target) in outputs {
        let mut buf = Vec::new();
        let color = target.is_none()
            && format == Format::Table
            && io.stdout_tty
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        match format {
            Format::Json => report::json::render(&report, &mut buf),
            Format::Table => report::table::render(
                &report,
                &mut buf,
                report::table::Style {
                    color,
                    show_passed: args.show_passed,
                    width: table_width(),
                    tty: target.is_none() && io.stdout_tty,
                    compact: args.compact.unwrap_or_else(|| {
                        report.summary.total.fail + report.summary.total.error > COMPACT_ABOVE
                    }),
                },
            ),
            Format::Sarif => {
                report::sarif::render(&report, &sarif_opts, &mut buf).map(|w| warnings.extend(w))
            }
            Format::Junit => report::junit::render(&report, &mut buf),
            Format::Markdown => report::markdown::render(&report, &mut buf),
        }
        .map_err(write_err)?;
        rendered.push((target, buf));
    }
    for (target, buf) in &rendered {
        match target {
            Some(path) => crate::error::write_atomic(path, buf)?,
            None => io.stdout.write_all(buf).map_err(write_err)?,
        }
    }
    for w in &warnings {
        writeln!(io.stderr, "warning: {w}").map_err(write_err)?;
    }
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
    Ok(exit)
}

/// Above this many failing and error findings the table shows the per-rule
/// summary only, unless `--compact=false`.
const COMPACT_ABOVE: usize = 200;

/// The width the table must fit: `COLUMNS` when set; otherwise the table
/// measures the terminal, or (into a file or pipe) uses a fixed width and
/// leaves prose lines whole for grep.
fn table_width() -> Option<u16> {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|w| *w >= 40)
}

/// The primary output plus `--json/--sarif/--junit/--markdown`; `-` is stdout,
/// which only one output may use.
fn outputs(args: &ReportArgs) -> Result<Vec<(Format, Option<PathBuf>)>, Error> {
    let mut out = vec![(args.format, args.output.clone())];
    for (format, path) in [
        (Format::Json, &args.json),
        (Format::Sarif, &args.sarif),
        (Format::Junit, &args.junit),
        (Format::Markdown, &args.markdown),
    ] {
        if let Some(p) = path {
            let target = (p.as_os_str() != "-").then(|| p.clone());
            out.push((format, target));
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

/// dbaudit.toml as a repository-relative URI, for SARIF locations.
fn config_uri(config: &Config) -> String {
    let Some(path) = &config.path else {
        return "dbaudit.toml".to_string();
    };
    let rel = if path.is_absolute() {
        std::env::current_dir()
            .ok()
            .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from(path.file_name().unwrap_or_default()))
    } else {
        path.clone()
    };
    rel.to_string_lossy()
        .trim_start_matches("./")
        .replace('\\', "/")
}

fn access(args: AccessArgs, verbose: bool, io: &mut Io) -> Result<i32, Error> {
    use crate::access;
    let snapshot = Snapshot::load(&args.snapshot)?;
    let config = load_config(args.config.as_deref())?;
    let json = args.format == DiffFormat::Json;
    let usage = |e: access::AccessError| Error::Usage(e.to_string());
    let (out, code) = if let Some(env) = &args.who_can_write {
        let writers = access::who_can_write(&snapshot, &config, env).map_err(usage)?;
        let out = if json {
            serde_json::to_string_pretty(&writers).unwrap_or_default() + "\n"
        } else {
            access::render_writers(env, &writers, verbose)
        };
        (out, 0)
    } else {
        let (Some(principal), Some(action), Some(resource)) =
            (&args.principal, &args.action, &args.resource)
        else {
            return Err(Error::Usage(
                "--principal needs --action and --resource".to_string(),
            ));
        };
        let answer = access::ask(
            &snapshot,
            &access::Question {
                principal,
                action,
                resource,
                context: &args.context,
                absent: &args.context_absent,
            },
        )
        .map_err(usage)?;
        let code = match args.expect {
            Some(e) if format!("{e:?}").to_ascii_lowercase() != answer.outcome() => 1,
            _ => 0,
        };
        let out = if json {
            serde_json::to_string_pretty(&answer).unwrap_or_default() + "\n"
        } else {
            access::render_answer(&answer)
        };
        (out, code)
    };
    io.stdout.write_all(out.as_bytes()).map_err(write_err)?;
    Ok(code)
}

fn diff(args: DiffArgs, io: &mut Io) -> Result<i32, Error> {
    let d = crate::diff::load(&args.old, &args.new)?;
    let mut buf = Vec::new();
    match args.format {
        DiffFormat::Json => {
            serde_json::to_writer_pretty(&mut buf, &d).map_err(|e| write_err(e.into()))?;
            buf.push(b'\n');
        }
        DiffFormat::Table => crate::diff::render_text(&d, &mut buf, false).map_err(write_err)?,
        DiffFormat::Markdown => crate::diff::render_text(&d, &mut buf, true).map_err(write_err)?,
    }
    match &args.output {
        Some(p) => crate::error::write_atomic(p, &buf)?,
        None => io.stdout.write_all(&buf).map_err(write_err)?,
    }
    Ok(0)
}

#[cfg(feature = "aws")]
fn collect(args: CollectArgs, io: &mut Io) -> Result<i32, Error> {
    let config = Config::load(&args.config)?;
    let snapshot = collect_snapshot(&config, &args.target, io)?;
    crate::error::write_atomic(&args.output, snapshot.to_json().as_bytes())?;
    let incomplete = snapshot.accounts.iter().any(|a| !a.gaps.is_empty());
    // `collect` has no gate; it tells how complete the snapshot is.
    Ok(if incomplete {
        report::gate::EXIT_INCOMPLETE
    } else {
        report::gate::EXIT_OK
    })
}

/// `./dbaudit.toml`, when there is one.
fn default_config<'a>() -> Option<&'a Path> {
    let p = Path::new(DEFAULT_CONFIG);
    p.is_file().then_some(p)
}

/// The config file used when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "dbaudit.toml";

#[cfg(feature = "aws")]
fn scan(args: ScanArgs, io: &mut Io) -> Result<i32, Error> {
    let Some(path) = args.report.config.as_deref().or_else(default_config) else {
        return Err(Error::Usage(
            "scan needs a configuration: --config FILE, DBAUDIT_CONFIG, or ./dbaudit.toml (`dbaudit init` writes one); the accounts to scan are declared there"
                .to_string(),
        ));
    };
    let config = Config::load(path)?;
    // Load rules before collecting: a broken rule file fails fast.
    let rules = load_rules(&config, &args.report.rules)?;
    let target = environment_target(&config, &args.target, &args.report.environment)?;
    let snapshot = collect_snapshot(&config, &target, io)?;
    if let Some(p) = &args.save_snapshot {
        crate::error::write_atomic(p, snapshot.to_json().as_bytes())?;
    }
    report_snapshot(&snapshot, &config, &rules, &args.report, io)
}

/// `scan --environment ENV`: only the selected accounts of those
/// environments are collected (an unknown environment is exit 2).
#[cfg(feature = "aws")]
fn environment_target(
    config: &Config,
    target: &TargetArgs,
    environments: &[String],
) -> Result<TargetArgs, Error> {
    let mut t = target.clone();
    if environments.is_empty() {
        return Ok(t);
    }
    let known: std::collections::BTreeSet<&str> = config
        .accounts
        .iter()
        .map(|a| a.environment.as_str())
        .collect();
    if let Some(e) = environments.iter().find(|e| !known.contains(e.as_str())) {
        return Err(Error::Usage(format!(
            "no environment `{e}` in the config; known: {}",
            known.into_iter().collect::<Vec<_>>().join(", ")
        )));
    }
    let names: Vec<String> = config
        .select_accounts(&target.accounts, target.all_accounts)?
        .into_iter()
        .filter(|a| environments.contains(&a.environment))
        .map(|a| a.name)
        .collect();
    if names.is_empty() {
        return Err(Error::Usage(format!(
            "no selected account is in environment(s) {}",
            environments.join(", ")
        )));
    }
    t.all_accounts = false;
    t.accounts = names;
    Ok(t)
}

#[cfg(feature = "aws")]
/// Runs collection for the selected accounts, with progress on stderr.
fn collect_snapshot(config: &Config, target: &TargetArgs, io: &mut Io) -> Result<Snapshot, Error> {
    let accounts = config.select_accounts(&target.accounts, target.all_accounts)?;
    let opts = crate::collect::Options {
        profile: target.profile.clone(),
        region: target.region.clone(),
        endpoint_url: target.endpoint_url.clone(),
        concurrency: usize::from(target.concurrency),
        attempt_timeout: std::time::Duration::from_secs(target.timeout.max(1)),
        operation_timeout: std::time::Duration::from_secs(
            target.timeout.max(1) * u64::from(target.max_attempts) + 30,
        ),
        max_attempts: target.max_attempts,
        initial_backoff: std::time::Duration::from_millis(target.retry_backoff_ms),
        workers: target.workers.map(usize::from),
    };
    let stats = std::sync::Arc::new(crate::collect::Stats::default());
    let started = std::time::Instant::now();
    let progress = (!target.quiet && std::io::stderr().is_terminal())
        .then(|| crate::progress::Ticker::start(stats.clone()));
    // A signal during collection abandons it: nothing has been written yet,
    // and nothing will be (outputs are written only after evaluation). Once
    // collection is over, the handlers stay installed, so a late signal waits
    // for the run to finish writing instead of cutting a file in half.
    let snapshot = crate::collect::run(config, &accounts, &opts, stats.clone());
    if let Some(p) = progress {
        p.stop();
    }
    let snapshot = snapshot?;
    if !target.quiet {
        let gaps: usize = snapshot.accounts.iter().map(|a| a.gaps.len()).sum();
        // An account whose role could not be assumed was not collected.
        let reached = snapshot
            .accounts
            .iter()
            .filter(|a| {
                !a.gaps
                    .iter()
                    .any(|g| g.service == crate::vocab::Service::Sts)
            })
            .count();
        let unreached = snapshot.accounts.len() - reached;
        let _ = writeln!(
            io.stderr,
            "collected {reached} of {} account(s){} in {:.1}s: {} API calls, {} retries, {} gap(s)",
            snapshot.accounts.len(),
            if unreached > 0 {
                format!(" ({unreached} not reached)")
            } else {
                String::new()
            },
            started.elapsed().as_secs_f64(),
            stats.calls.load(std::sync::atomic::Ordering::Relaxed),
            stats.retries(),
            gaps
        );
    }
    Ok(snapshot)
}

#[cfg(not(feature = "aws"))]
fn collect(_: CollectArgs, _: &mut Io) -> Result<i32, Error> {
    Err(Error::Usage(
        "this dbaudit was built without the `aws` feature: it cannot collect".to_string(),
    ))
}

#[cfg(not(feature = "aws"))]
fn scan(_: ScanArgs, _: &mut Io) -> Result<i32, Error> {
    Err(Error::Usage(
        "this dbaudit was built without the `aws` feature: it cannot scan".to_string(),
    ))
}

fn rules(cmd: RulesCommand, io: &mut Io) -> Result<i32, Error> {
    match cmd {
        RulesCommand::List { rules, format } => {
            let set = RuleSet::load(&rules, &[])?;
            let out = &mut *io.stdout;
            match format {
                crate::cli::ListFormat::Json => {
                    let list: Vec<serde_json::Value> = set
                        .rules
                        .iter()
                        .map(|r| {
                            serde_json::json!({
                                "id": r.id, "title": r.title, "severity": r.severity,
                                "resource": r.resource, "environments": r.environments,
                            })
                        })
                        .collect();
                    serde_json::to_writer_pretty(&mut *out, &list)
                        .map_err(|e| write_err(e.into()))?;
                    writeln!(out).map_err(write_err)?;
                }
                crate::cli::ListFormat::Table => {
                    for r in &set.rules {
                        let envs = if r.environments.is_empty() {
                            "all".to_string()
                        } else {
                            r.environments.join(",")
                        };
                        writeln!(
                            out,
                            "{:<38} {:<8} {:<11} {:<9} {}",
                            r.id,
                            r.severity.as_str(),
                            r.resource.as_str(),
                            envs,
                            r.title
                        )
                        .map_err(write_err)?;
                    }
                }
            }
            Ok(0)
        }
        RulesCommand::Explain { id, rules } => {
            let set = RuleSet::load(&rules, &[])?;
            let Some(rule) = set.get(&id) else {
                let ids: Vec<&str> = set.rules.iter().map(|r| r.id.as_str()).collect();
                let hint = crate::tomlspan::closest(&id, &ids)
                    .map(|k| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                return Err(Error::Usage(format!(
                    "no rule `{id}`{hint}; `dbaudit rules list` shows them all"
                )));
            };
            io.stdout
                .write_all(crate::docs::rule_markdown(rule, 1).as_bytes())
                .map_err(write_err)?;
            Ok(0)
        }
        RulesCommand::Validate { paths, no_builtin } => {
            // A directory with its own params.toml is a whole rule pack (a
            // copy of rules/, or rules/ itself): validate it on its own
            // rather than report each rule as a duplicate of the built-ins.
            let no_builtin = no_builtin
                || paths
                    .iter()
                    .any(|p| p.is_dir() && p.join("params.toml").is_file());
            let mut files = if no_builtin {
                Vec::new()
            } else {
                crate::rules::builtin_files()
            };
            // On its own, a copy of the pack brings its parameter defaults
            // (a directory's params.toml, as rules/ has) instead of ours.
            let mut params = None;
            for p in &paths {
                for f in crate::rules::user_files(p)? {
                    if p.is_dir() && f.path.file_name() == Some("params.toml".as_ref()) {
                        params = Some(crate::config::BuiltinParams::parse(&f.text, &f.path)?);
                    } else {
                        files.push(f);
                    }
                }
            }
            let set = match params {
                Some(params) => crate::rules::load_files_with_params(&files, &[], params)?,
                None => crate::rules::load_files(&files, &[])?,
            };
            let user = set.rules.iter().filter(|r| !r.source.builtin).count();
            writeln!(io.stdout, "ok: {user} rule(s) valid").map_err(write_err)?;
            Ok(0)
        }
        RulesCommand::Fields { kind } => {
            let Some(k) = ResourceKind::parse(&kind) else {
                return Err(Error::Usage(format!(
                    "unknown resource kind `{kind}`; expected db_cluster, db_instance, account or iam_principal"
                )));
            };
            let schema = crate::model::facts_json_schema(k);
            serde_json::to_writer_pretty(&mut *io.stdout, &schema)
                .map_err(|e| write_err(e.into()))?;
            writeln!(io.stdout).map_err(write_err)?;
            Ok(0)
        }
    }
}

fn init(args: InitArgs, io: &mut Io) -> Result<i32, Error> {
    // `-o -`: the example on stdout, as with the other commands.
    if args.output.as_os_str() == "-" {
        io.stdout
            .write_all(crate::config::EXAMPLE.as_bytes())
            .map_err(write_err)?;
        return Ok(0);
    }
    if args.output.exists() && !args.force {
        return Err(Error::Usage(format!(
            "{} already exists; pass --force to overwrite it",
            args.output.display()
        )));
    }
    crate::error::write_atomic(&args.output, crate::config::EXAMPLE.as_bytes())?;
    writeln!(io.stderr, "wrote {}", args.output.display()).map_err(write_err)?;
    Ok(0)
}

/// Whether stdout is a terminal.
pub fn stdout_is_tty() -> bool {
    std::io::stdout().is_terminal()
}

#[cfg(all(test, feature = "aws"))]
mod tests {
    use clap::Parser;

    #[test]
    fn a_repeated_account_is_selected_once() {
        let config = crate::config::Config::parse(
            "regions = [\"eu-west-1\"]\n[[account]]\nname = \"prod\"\nenvironment = \"prod\"\naccount_id = \"222222222222\"\n",
            std::path::Path::new("dbaudit.toml"),
        )
        .unwrap();
        let cli = crate::cli::Cli::parse_from([
            "dbaudit",
            "collect",
            "--account",
            "prod",
            "--account",
            "prod",
            "-o",
            "s.json",
            "--config",
            "c.toml",
        ]);
        let crate::cli::Command::Collect(args) = cli.command else {
            panic!("collect expected");
        };
        let selected = config
            .select_accounts(&args.target.accounts, args.target.all_accounts)
            .unwrap();
        assert_eq!(selected.len(), 1);
    }
}
