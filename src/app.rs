//! The commands: glue between the CLI and the library. Writes only to the
//! writers it is given, returns the exit code, and never exits itself.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::cli::{
    Cli, CollectArgs, Command, EvaluateArgs, Format, InitArgs, ReportArgs, RulesCommand, ScanArgs,
    TargetArgs,
};
use crate::config::Config;
use crate::error::Error;
use crate::report::{self, Report, gate};
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
    }
}

fn write_err(e: std::io::Error) -> Error {
    Error::Io {
        path: PathBuf::from("<stdout>"),
        source: e,
    }
}

pub fn load_config(path: Option<&Path>) -> Result<Config, Error> {
    match path {
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
    RuleSet::load(dirs, &extra)
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

/// Evaluates a snapshot, writes the report and returns the gate's exit code.
pub fn report_snapshot(
    snapshot: &Snapshot,
    config: &Config,
    rules: &RuleSet,
    args: &ReportArgs,
    io: &mut Io,
) -> Result<i32, Error> {
    let findings = crate::evaluate::evaluate(snapshot, rules, config);
    let gate = gate::decide(&findings, args.fail_on.into(), args.on_incomplete);
    let exit = gate.exit_code;
    let report = Report::build(snapshot, rules, findings, gate);
    let mut buf = Vec::new();
    let color = args.output.is_none()
        && args.format == Format::Table
        && io.stdout_tty
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    match args.format {
        Format::Json => report::json::render(&report, &mut buf),
        Format::Table => report::table::render(
            &report,
            &mut buf,
            report::table::Style {
                color,
                show_passed: args.show_passed,
                width: None,
            },
        ),
    }
    .map_err(write_err)?;
    match &args.output {
        Some(path) => crate::error::write_atomic(path, &buf)?,
        None => io.stdout.write_all(&buf).map_err(write_err)?,
    }
    Ok(exit)
}

fn collect(args: CollectArgs, io: &mut Io) -> Result<i32, Error> {
    let config = Config::load(&args.config)?;
    let snapshot = collect_snapshot(&config, &args.target, io)?;
    crate::error::write_atomic(&args.output, snapshot.to_json().as_bytes())?;
    let incomplete = snapshot.accounts.iter().any(|a| !a.gaps.is_empty());
    // `collect` has no gate; it tells how complete the snapshot is.
    Ok(if incomplete {
        gate::EXIT_INCOMPLETE
    } else {
        gate::EXIT_OK
    })
}

fn scan(args: ScanArgs, io: &mut Io) -> Result<i32, Error> {
    let Some(path) = args.report.config.as_deref() else {
        return Err(Error::Usage(
            "scan needs --config (or DBAUDIT_CONFIG): the accounts to scan are declared there"
                .to_string(),
        ));
    };
    let config = Config::load(path)?;
    // Load rules before collecting: a broken rule file fails fast.
    let rules = load_rules(&config, &args.report.rules)?;
    let snapshot = collect_snapshot(&config, &args.target, io)?;
    if let Some(p) = &args.save_snapshot {
        crate::error::write_atomic(p, snapshot.to_json().as_bytes())?;
    }
    report_snapshot(&snapshot, &config, &rules, &args.report, io)
}

/// Runs collection for the selected accounts, with progress on stderr.
fn collect_snapshot(config: &Config, target: &TargetArgs, io: &mut Io) -> Result<Snapshot, Error> {
    let accounts = select_accounts(config, target)?;
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
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Io {
            path: PathBuf::from("<tokio runtime>"),
            source: e,
        })?;
    let stats = std::sync::Arc::new(crate::collect::Stats::default());
    let started = std::time::Instant::now();
    let progress = (!target.quiet && std::io::stderr().is_terminal())
        .then(|| crate::progress::Ticker::start(stats.clone()));
    let snapshot = runtime.block_on(async {
        let base = crate::collect::base_config(&opts).await;
        crate::collect::collect(
            config,
            &accounts,
            &base,
            &opts,
            stats.clone(),
            crate::collect::now_rfc3339(),
        )
        .await
    });
    if let Some(p) = progress {
        p.stop();
    }
    if !target.quiet {
        let gaps: usize = snapshot.accounts.iter().map(|a| a.gaps.len()).sum();
        let _ = writeln!(
            io.stderr,
            "collected {} account(s) in {:.1}s: {} API calls, {} retries, {} gap(s)",
            snapshot.accounts.len(),
            started.elapsed().as_secs_f64(),
            stats.calls.load(std::sync::atomic::Ordering::Relaxed),
            stats.retries(),
            gaps
        );
    }
    Ok(snapshot)
}

fn select_accounts(
    config: &Config,
    target: &TargetArgs,
) -> Result<Vec<crate::config::AccountConfig>, Error> {
    if config.accounts.is_empty() {
        return Err(Error::Usage(
            "the config declares no [[account]]".to_string(),
        ));
    }
    if target.all_accounts {
        return Ok(config.accounts.clone());
    }
    let mut out = Vec::new();
    for name in &target.accounts {
        match config.account(name) {
            Some(a) => out.push(a.clone()),
            None => {
                let names: Vec<&str> = config.accounts.iter().map(|a| a.name.as_str()).collect();
                return Err(Error::Usage(format!(
                    "no account `{name}` in the config; known accounts: {}",
                    names.join(", ")
                )));
            }
        }
    }
    for a in &out {
        if a.regions.is_empty() && config.regions.is_empty() {
            return Err(Error::Usage(format!(
                "account `{}` lists no regions and the config has no top-level `regions`",
                a.name
            )));
        }
    }
    Ok(out)
}

fn rules(cmd: RulesCommand, io: &mut Io) -> Result<i32, Error> {
    match cmd {
        RulesCommand::List { rules, format } => {
            let set = RuleSet::load(&rules, &[])?;
            let out = &mut *io.stdout;
            match format {
                Format::Json => {
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
                Format::Table => {
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
        RulesCommand::Validate { paths } => {
            let mut files = crate::rules::builtin_files();
            for p in &paths {
                files.extend(crate::rules::user_files(p)?);
            }
            let set = crate::rules::load_files(&files, &[])?;
            let user = set.rules.iter().filter(|r| !r.source.builtin).count();
            writeln!(io.stdout, "ok: {user} rule(s) valid").map_err(write_err)?;
            Ok(0)
        }
        RulesCommand::Fields { kind } => {
            let Some(k) = ResourceKind::parse(&kind) else {
                return Err(Error::Usage(format!(
                    "unknown resource kind `{kind}`; expected db_cluster, db_instance or account"
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
