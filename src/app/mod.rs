//! The commands: glue between the CLI and the library. Each command loads
//! its inputs, calls the library, and writes what it returns; it writes only
//! to the writers it is given, returns the exit code, and never exits.
//!
//! - [`output`]: `evaluate` and `scan`'s reporting (audit, render, write);
//! - [`live`]: `collect` and `scan` (AWS; the `aws` feature);
//! - [`commands`]: `rules`, `access`, `diff`, `init`, `man`.

mod commands;
mod history;
#[cfg(feature = "aws")]
mod live;
mod output;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::cli::{Cli, Command, EvaluateArgs};
use crate::config::Config;
use crate::error::Error;
use crate::rules::RuleSet;
use crate::snapshot::Snapshot;
pub use output::{open_history, report_snapshot};

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
        Command::Plan(args) => {
            let config = load_config(args.report.config.as_deref())?;
            let rules = load_rules(&config, &args.report.rules, args.report.no_builtin)?;
            let snapshot = load_snapshots(&args.snapshot, &crate::cli::AwsArgs::default())?;
            let target = crate::plan::Target {
                account: args.account.clone(),
                region: args.region.clone(),
            };
            output::report_plan(
                &snapshot,
                (&args.plan, target, &args.flags),
                &config,
                &rules,
                &args.report,
                io,
            )
        }
        Command::Collect(args) => live::collect(args, io),
        Command::Scan(args) => live::scan(args, io),
        Command::Rules(cmd) => commands::rules(cmd, io),
        Command::Init(args) => commands::init(args, io),
        Command::Diff(args) => commands::diff(args, io),
        Command::Merge(args) => commands::merge(args, io),
        Command::Databases(args) => live::databases(args, io),
        Command::Accounts(args) => live::accounts(args, io),
        Command::Publish(crate::cli::PublishCommand::Securityhub(args)) => live::publish(args, io),
        Command::Evidence(args) => {
            let config = load_config(args.config.as_deref())?;
            let rules = load_rules(&config, &args.rules, false)?;
            let snapshot = load_snapshots(&args.snapshots, &args.aws)?;
            output::evidence(&snapshot, &config, &rules, &args, io)
        }
        Command::History(cmd) => history::run(cmd, io),
        Command::Access(args) => commands::access(args, cli.verbose > 0, io),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "dbaudit", io.stdout);
            Ok(0)
        }
        Command::Man { dir } => commands::man(dir.as_deref(), io),
    }
}

/// Rows as left-aligned text columns (the first row is the header).
pub(crate) fn text_columns(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

pub(crate) fn write_err(e: std::io::Error) -> Error {
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

pub(crate) fn load_rules(
    config: &Config,
    dirs: &[PathBuf],
    no_builtin: bool,
) -> Result<RuleSet, Error> {
    let mut extra: Vec<String> = config.params.keys().cloned().collect();
    for p in config.environment_params.values() {
        extra.extend(p.keys().cloned());
    }
    let rules = RuleSet::load_pack(dirs, no_builtin, &extra)?;
    // Parameter names and types are known only with the rules that read them.
    rules.check_params(config)?;
    Ok(rules)
}

/// Merges several snapshots into one (accounts must not repeat). One
/// directory or `s3://` prefix of shard parts is merged as `dbaudit merge`
/// does (every part and account there, or gaps).
pub fn load_snapshots(
    paths: &[PathBuf],
    access: &commands::StoreAccess,
) -> Result<Snapshot, Error> {
    if let [one] = paths {
        let source = PathBuf::from(crate::shard::expand(&one.to_string_lossy()));
        if commands::is_parts_source(&source) {
            let parts = commands::read_parts(&source, access)?;
            return Ok(crate::shard::merge_each(parts, None)?.0);
        }
    }
    let mut merged: Option<Snapshot> = None;
    for p in paths {
        let mut s = Snapshot::load(p)?;
        if s.databases_part.is_some() {
            return Err(Error::Usage(format!(
                "{} is a database part (`dbaudit databases`): attach it to the collected snapshot with `dbaudit merge DIR -o snapshot.json` (DIR holding both), then evaluate that",
                p.display()
            )));
        }
        if paths.len() > 1 && s.shard.is_some() {
            return Err(Error::Usage(format!(
                "{} is one part of a sharded collection: merge the parts first (`dbaudit merge DIR -o snapshot.json`), which checks that none is missing",
                p.display()
            )));
        }
        // Each account keeps when it was collected.
        for a in &mut s.accounts {
            if a.collected_at.is_none() {
                a.collected_at = Some(s.collected_at.clone());
            }
        }
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
                // The plans add up; one snapshot without a plan leaves
                // the configuration as the reference for all of them.
                m.plan = match (m.plan.take(), s.plan) {
                    (Some(mut a), Some(b)) => {
                        a.extend(b);
                        Some(a)
                    }
                    _ => None,
                };
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
    let rules = load_rules(&config, &args.report.rules, args.report.no_builtin)?;
    // A directory of parts (or an S3 prefix) is evaluated a part at a time.
    if let [one] = &args.snapshots[..] {
        let source = PathBuf::from(crate::shard::expand(&one.to_string_lossy()));
        if commands::is_parts_source(&source) {
            let mut parts = || commands::read_parts(&source, &args.aws);
            return output::report_parts(&mut parts, &config, &rules, &args.report, io);
        }
    }
    let snapshot = load_snapshots(&args.snapshots, &args.aws)?;
    report_snapshot(&snapshot, &config, &rules, &args.report, io)
}

/// `./dbaudit.toml`, when there is one.
pub(crate) fn default_config<'a>() -> Option<&'a Path> {
    let p = Path::new(DEFAULT_CONFIG);
    p.is_file().then_some(p)
}

/// The config file used when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "dbaudit.toml";

/// Whether stdout is a terminal.
pub fn stdout_is_tty() -> bool {
    std::io::stdout().is_terminal()
}

/// Without the `aws` feature, the live commands explain themselves.
#[cfg(not(feature = "aws"))]
mod live {
    use super::Io;
    use crate::cli::{CollectArgs, ScanArgs};
    use crate::error::Error;

    pub fn collect(_: CollectArgs, _: &mut Io) -> Result<i32, Error> {
        Err(Error::Usage(
            "this dbaudit was built without the `aws` feature: it cannot collect".to_string(),
        ))
    }

    pub fn scan(_: ScanArgs, _: &mut Io) -> Result<i32, Error> {
        Err(Error::Usage(
            "this dbaudit was built without the `aws` feature: it cannot scan".to_string(),
        ))
    }

    pub fn accounts(_: crate::cli::AccountsArgs, _: &mut Io) -> Result<i32, Error> {
        Err(Error::Usage(
            "this dbaudit was built without the `aws` feature: it cannot list accounts".to_string(),
        ))
    }

    pub fn publish(_: crate::cli::PublishArgs, _: &mut Io) -> Result<i32, Error> {
        Err(Error::Usage(
            "this dbaudit was built without the `aws` feature: it cannot publish".to_string(),
        ))
    }

    pub fn databases(_: crate::cli::DatabasesArgs, _: &mut Io) -> Result<i32, Error> {
        Err(Error::Usage(
            "this dbaudit was built without the `aws` feature: it cannot sign in to databases"
                .to_string(),
        ))
    }
}
