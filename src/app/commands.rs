//! The commands that neither audit nor collect: `rules`, `access`, `diff`,
//! `init` and `man`.

use std::path::Path;

use super::{Io, load_config, write_err};
use crate::cli::{AccessArgs, Cli, DiffArgs, DiffFormat, InitArgs, RulesCommand};
use crate::error::Error;
use crate::rules::RuleSet;
use crate::snapshot::Snapshot;

/// The man pages, generated from the same clap definitions as `--help`.
pub fn man(dir: Option<&Path>, io: &mut Io) -> Result<i32, Error> {
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

pub fn access(args: AccessArgs, verbose: bool, io: &mut Io) -> Result<i32, Error> {
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

/// `dbaudit merge DIR -o FILE`: the parts of one sharded run, as one
/// snapshot. Exit 0 when it is complete, 3 when it has gaps (a missing part
/// or account among them), 2 when the parts disagree.
pub fn merge(args: crate::cli::MergeArgs, io: &mut Io) -> Result<i32, Error> {
    let access = args.aws.clone();
    let source = std::path::PathBuf::from(crate::shard::expand(&args.source.to_string_lossy()));
    let run_id = args.run_id.as_deref().map(crate::shard::expand);
    let args = crate::cli::MergeArgs { run_id, ..args };
    // A directory or an S3 prefix is read twice, one part at a time, and
    // written as it is read (the merged snapshot is never held); a file is
    // one snapshot (with its database parts, if any).
    let (merged, summary) = if is_parts_source(&source) {
        let mut file = crate::error::AtomicFile::create(&args.output)?;
        let mut reader = || read_parts(&source, &access);
        let merged = crate::shard::merge_streamed(
            &mut reader,
            args.run_id.as_deref(),
            &mut file,
            &args.output,
        )?;
        file.commit()?;
        merged
    } else {
        let parts = read_parts(&source, &access)?;
        let (merged, summary) = crate::shard::merge_each(parts, args.run_id.as_deref())?;
        crate::error::write_atomic(&args.output, merged.to_json().as_bytes())?;
        (merged, summary)
    };
    if !args.quiet && summary.whole {
        let _ = writeln!(
            io.stderr,
            "attached {} database part(s) to the snapshot: {} cluster(s)",
            summary.database_parts, summary.attached
        );
    } else if !args.quiet {
        let _ = writeln!(
            io.stderr,
            "merged {} of {} part(s) of run `{}`: {} account(s){}{}{}{}",
            summary.parts,
            summary.count,
            summary.run_id,
            merged.accounts.len(),
            if summary.missing_parts.is_empty() {
                String::new()
            } else {
                format!(
                    "; part(s) {} missing",
                    summary
                        .missing_parts
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            if summary.missing_accounts.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} account(s) not collected: {}",
                    summary.missing_accounts.len(),
                    summary.missing_accounts.join(", ")
                )
            },
            if summary.other_runs > 0 {
                format!("; {} part(s) of other runs left out", summary.other_runs)
            } else {
                String::new()
            },
            if summary.database_parts > 0 {
                format!(
                    "; {} database part(s) attached to {} cluster(s)",
                    summary.database_parts, summary.attached
                )
            } else {
                String::new()
            }
        );
        let _ = writeln!(io.stderr, "{}", parts_age(&merged, &summary.run_id));
    }
    // A part for a cluster the snapshot does not have is left out: a
    // warning even with --quiet, since it usually means the part read an
    // older or another snapshot's clusters.
    for u in &summary.unattached {
        let _ = writeln!(io.stderr, "warning: database part not attached: {u}");
    }
    let incomplete = merged.accounts.iter().any(|a| !a.gaps.is_empty());
    Ok(if incomplete {
        crate::report::gate::EXIT_INCOMPLETE
    } else {
        crate::report::gate::EXIT_OK
    })
}

/// When the merged parts were collected and how old the oldest is, so that
/// yesterday's parts are not taken for tonight's.
fn parts_age(merged: &crate::snapshot::Snapshot, run_id: &str) -> String {
    use crate::model::lifecycle::epoch;
    let times: Vec<&str> = merged
        .accounts
        .iter()
        .filter_map(|a| a.collected_at.as_deref())
        .collect();
    let (Some(oldest), Some(newest)) = (times.iter().min(), times.iter().max()) else {
        return format!("run `{run_id}`: no part holds a collected account");
    };
    let age = epoch(&crate::history::now())
        .zip(epoch(oldest))
        .map(|(now, then)| (now - then) as f64 / 3600.0)
        .map(|h| format!(" (the oldest {h:.1} h ago)"))
        .unwrap_or_default();
    format!("run `{run_id}`: parts collected from {oldest} to {newest}{age}")
}

/// How to reach the shard store (an `s3://` source).
pub(crate) type StoreAccess = crate::cli::AwsArgs;

/// Whether `source` holds shard parts (a directory or an `s3://` prefix)
/// rather than being one snapshot file.
pub(crate) fn is_parts_source(source: &std::path::Path) -> bool {
    source.is_dir() || source.to_str().is_some_and(|s| s.starts_with("s3://"))
}

/// The parts under a directory or `s3://` prefix, each read (an S3
/// object fetched) and parsed only when the merge takes it: one part in
/// memory at a time.
pub(crate) type Parts = Box<dyn Iterator<Item = Result<(String, Snapshot), Error>>>;

pub(crate) fn read_parts(source: &std::path::Path, access: &StoreAccess) -> Result<Parts, Error> {
    if let Some(url) = source.to_str().filter(|s| s.starts_with("s3://")) {
        return store_parts(url, access);
    }
    let mut files = Vec::new();
    json_files(source, &mut files)?;
    files.sort();
    Ok(Box::new(files.into_iter().map(|f| {
        Snapshot::load(&f).map(|snapshot| (f.display().to_string(), snapshot))
    })))
}

/// The parts under an `s3://` prefix: listed once, each object fetched
/// when the reader reaches it.
#[cfg(feature = "aws")]
fn store_parts(url: &str, access: &StoreAccess) -> Result<Parts, Error> {
    let url = crate::collect::store::S3Url::parse(url)
        .ok_or_else(|| Error::Usage(format!("`{url}` is not s3://BUCKET/PREFIX")))?;
    let reader = super::live::store_reader(access, &url)?;
    let keys = reader.list_json()?;
    Ok(Box::new(keys.into_iter().map(move |key| {
        let name = url.display(&key);
        let text = reader.get(&key)?;
        Snapshot::parse(&text, std::path::Path::new(&name)).map(|s| (name, s))
    })))
}

#[cfg(not(feature = "aws"))]
fn store_parts(_: &str, _: &StoreAccess) -> Result<Parts, Error> {
    Err(Error::Usage(
        "this dbaudit was built without the `aws` feature: it cannot read s3:// parts".into(),
    ))
}

/// Every `*.json` file in `dir` and below.
fn json_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) -> Result<(), Error> {
    let io_error = |error| Error::Io {
        path: dir.to_path_buf(),
        error,
    };
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let path = entry.map_err(io_error)?.path();
        if path.is_dir() {
            json_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

pub fn diff(args: DiffArgs, io: &mut Io) -> Result<i32, Error> {
    let d = match (&args.environments[..], &args.new) {
        ([], Some(new)) => crate::diff::load(&args.old, new)?,
        ([], None) => {
            return Err(Error::Usage(
                "diff needs OLD and NEW (two reports or two snapshots), or --environment twice and a snapshot"
                    .to_string(),
            ));
        }
        ([left, right], new) => {
            let paths: Vec<std::path::PathBuf> = std::iter::once(args.old.clone())
                .chain(new.clone())
                .collect();
            let access = StoreAccess {
                endpoint_url: std::env::var("AWS_ENDPOINT_URL").ok(),
                ..StoreAccess::default()
            };
            let snapshot = super::load_snapshots(&paths, &access)?;
            let config = load_config(args.config.as_deref())?;
            // The parameters allowed to differ, as parity.parameters reads
            // them (the right-hand environment's parameters).
            let builtin = crate::rules::RuleSet::load(&[], &[])?.params;
            let may_differ: Vec<String> = config
                .params_for(right, &builtin)
                .get("parity_may_differ")
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            crate::diff::environments(
                &snapshot,
                left,
                right,
                &crate::diff::EnvironmentScope {
                    service_tag: &config.service_tag,
                    may_differ: &may_differ,
                    all: args.all,
                },
            )?
        }
        (other, _) => {
            return Err(Error::Usage(format!(
                "--environment compares two environments: give it twice (e.g. --environment test --environment prod), found {}",
                other.len()
            )));
        }
    };
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

pub fn rules(cmd: RulesCommand, io: &mut Io) -> Result<i32, Error> {
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
            // The same loading as `--rules` (and the same refusal of a
            // whole pack without --no-builtin): the two always agree.
            let set = crate::rules::RuleSet::load_pack(&paths, no_builtin, &[])?;
            let user = set.rules.iter().filter(|r| !r.source.builtin).count();
            writeln!(io.stdout, "ok: {user} rule(s) valid").map_err(write_err)?;
            Ok(0)
        }
        RulesCommand::Fields { kind } => {
            let schema = crate::model::facts_json_schema(kind);
            serde_json::to_writer_pretty(&mut *io.stdout, &schema)
                .map_err(|e| write_err(e.into()))?;
            writeln!(io.stdout).map_err(write_err)?;
            Ok(0)
        }
    }
}

pub fn init(args: InitArgs, io: &mut Io) -> Result<i32, Error> {
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
