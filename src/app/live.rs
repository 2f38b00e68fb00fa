//! `collect` and `scan`: the live commands (AWS), with progress on stderr.

use std::io::IsTerminal;

use super::{Io, default_config, load_rules, report_snapshot};
use crate::cli::{CollectArgs, ScanArgs, TargetArgs};
use crate::config::Config;
use crate::error::Error;
use crate::report;
use crate::snapshot::Snapshot;

pub fn collect(args: CollectArgs, io: &mut Io) -> Result<i32, Error> {
    let config = Config::load(&args.config)?;
    let config = with_organization(config, &options(&args.target), false, io)?.0;
    if let Some(url) = args
        .output
        .to_str()
        .and_then(crate::collect::store::S3Url::parse)
    {
        return collect_to_store(&config, &args.target, &url, io);
    }
    // A shard part is written once: a retried shard whose part is already
    // there does not collect again, and the write itself never replaces a
    // part (two attempts racing leave one complete part).
    let part = args.target.shard.is_some();
    if part && args.output.exists() {
        existing_part(&args.output, &args.target)?;
        let _ = writeln!(
            io.stderr,
            "{} already holds this part (a retried shard?): not collected again, not overwritten",
            args.output.display()
        );
        return Ok(report::gate::EXIT_OK);
    }
    // The output must be writable before anything is collected: a scan of
    // every account that ends in "no such directory" wastes the night.
    crate::error::writable(&args.output)?;
    let snapshot = collect_snapshot(&config, &args.target, io)?;
    if part {
        if !crate::error::write_new(&args.output, snapshot.to_json().as_bytes())? {
            let _ = writeln!(
                io.stderr,
                "{} was written by another attempt meanwhile: kept, this one discarded",
                args.output.display()
            );
        }
    } else {
        crate::error::write_atomic(&args.output, snapshot.to_json().as_bytes())?;
    }
    let incomplete = snapshot.accounts.iter().any(|a| !a.gaps.is_empty());
    // `collect` has no gate; it tells how complete the snapshot is.
    Ok(if incomplete {
        report::gate::EXIT_INCOMPLETE
    } else {
        report::gate::EXIT_OK
    })
}

/// The part already at `path` is this run's (a retried shard): the same
/// run id, shard and count. A part of another run in the way (a local
/// directory does not keep runs apart as a store prefix does) is refused
/// naming both runs; so is a file that is not a part. Without `--run-id`
/// (run `unnamed`) a part collected on another day is another run.
fn existing_part(path: &std::path::Path, target: &TargetArgs) -> Result<(), Error> {
    let this_run = target
        .run_id
        .as_deref()
        .map(crate::shard::expand)
        .unwrap_or_else(|| crate::shard::DEFAULT_RUN_ID.to_string());
    let spec = match &target.shard {
        Some(s) => {
            crate::shard::ShardSpec::parse(s, |v| std::env::var(v).ok()).map_err(Error::Usage)?
        }
        None => return Ok(()),
    };
    let refuse = |what: String| {
        Error::Usage(format!(
            "{} holds {what}, not part {} of {} of run `{this_run}`: give each run its own directory or file (e.g. -o parts/{{date}}/part-{}.json, or --run-id), or remove it",
            path.display(),
            spec.index,
            spec.count,
            spec.index
        ))
    };
    let existing = Snapshot::load(path)
        .map_err(|e| refuse(format!("something that is not a readable shard part ({e})")))?;
    let Some(part) = &existing.shard else {
        return Err(refuse(format!(
            "a snapshot that is not a shard part (collected at {})",
            existing.collected_at
        )));
    };
    let today = crate::waivers::Date::today().to_string();
    let same_day = existing.collected_at.starts_with(&today);
    let same_run =
        part.run_id == this_run && (this_run != crate::shard::DEFAULT_RUN_ID || same_day);
    if !same_run || part.index != spec.index || part.count != spec.count {
        return Err(refuse(format!(
            "part {} of {} of run `{}` (collected at {})",
            part.index, part.count, part.run_id, existing.collected_at
        )));
    }
    Ok(())
}

/// `collect --shard K/N --run-id RUN -o s3://BUCKET/PREFIX`: the part goes
/// to `PREFIX/RUN/part-K-of-N.json`, written once.
fn collect_to_store(
    config: &Config,
    target: &TargetArgs,
    url: &crate::collect::store::S3Url,
    io: &mut Io,
) -> Result<i32, Error> {
    use crate::collect::store;
    let (Some(spec), Some(run)) = (&target.shard, &target.run_id) else {
        return Err(Error::Usage(
            "an s3:// output is a shard store: give --shard K/N and --run-id RUN (the part is written as PREFIX/RUN/part-K-of-N.json)".to_string(),
        ));
    };
    let spec =
        crate::shard::ShardSpec::parse(spec, |v| std::env::var(v).ok()).map_err(Error::Usage)?;
    let run = crate::shard::expand(run);
    let key = url.key(&format!("{run}/{}", spec.part_name()));
    let opts = options(target);
    if store::exists(&opts, url, &key)? {
        let _ = writeln!(
            io.stderr,
            "{} already holds this part (a retried shard?): not collected again, not overwritten",
            url.display(&key)
        );
        return Ok(report::gate::EXIT_OK);
    }
    let snapshot = collect_snapshot(config, target, io)?;
    if !store::put_new(&opts, url, &key, snapshot.to_json().into_bytes())? {
        let _ = writeln!(
            io.stderr,
            "{} was written by another attempt meanwhile: kept, this one discarded",
            url.display(&key)
        );
    }
    let incomplete = snapshot.accounts.iter().any(|a| !a.gaps.is_empty());
    Ok(if incomplete {
        report::gate::EXIT_INCOMPLETE
    } else {
        report::gate::EXIT_OK
    })
}

/// The parts under `s3://BUCKET/PREFIX`, as text (parsed one at a time by
/// the merge).
pub fn store_reader(
    access: &crate::cli::AwsArgs,
    url: &crate::collect::store::S3Url,
) -> Result<crate::collect::store::Reader, Error> {
    crate::collect::store::Reader::new(&aws_options(access), url)
}

pub fn scan(args: ScanArgs, io: &mut Io) -> Result<i32, Error> {
    let Some(path) = args.report.config.as_deref().or_else(default_config) else {
        return Err(Error::Usage(
            "scan needs a configuration: --config FILE, DBAUDIT_CONFIG, or ./dbaudit.toml (`dbaudit init` writes one); the accounts to scan are declared there"
                .to_string(),
        ));
    };
    let config = Config::load(path)?;
    let config = with_organization(config, &options(&args.target), false, io)?.0;
    // Load rules and open the history before collecting: a broken rule
    // file or history store fails fast.
    let rules = load_rules(&config, &args.report.rules, args.report.no_builtin)?;
    // A plan is never recorded: its run opens no history.
    if args.plan.is_none() {
        drop(super::open_history(&config, &args.report)?);
    }
    // Every output can be written, before anything is collected.
    super::output::check_outputs(&args.report)?;
    if let Some(p) = &args.save_snapshot {
        crate::error::writable(p)?;
    }
    // A plan is read before collecting too.
    if let Some(p) = &args.plan {
        super::output::check_plan_args(&args.report)?;
        crate::plan::PlanJson::load(p)?;
    }
    let target = environment_target(&config, &args.target, &args.report.environment)?;
    let snapshot = collect_snapshot(&config, &target, io)?;
    if let Some(p) = &args.save_snapshot {
        crate::error::write_atomic(p, snapshot.to_json().as_bytes())?;
    }
    if let Some(plan) = &args.plan {
        let plan_target = crate::plan::Target {
            account: (args.target.accounts.len() == 1).then(|| args.target.accounts[0].clone()),
            region: args.target.region.clone(),
        };
        return super::output::report_plan(
            &snapshot,
            (plan, plan_target, &args.plan_flags),
            &config,
            &rules,
            &args.report,
            io,
        );
    }
    report_snapshot(&snapshot, &config, &rules, &args.report, io)
}

/// `scan --environment ENV`: only the selected accounts of those
/// environments are collected (an unknown environment is exit 2).
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

/// The config with the accounts of `[organization]` added: from its
/// `accounts_file` when that exists (unless `refresh`), else listed in
/// AWS Organizations. Unmapped and skipped accounts are said on stderr:
/// never dropped silently.
fn with_organization(
    config: Config,
    opts: &crate::collect::Options,
    refresh: bool,
    io: &mut Io,
) -> Result<(Config, Option<crate::org::Resolved>), Error> {
    let Some(org) = &config.organization else {
        return Ok((config, None));
    };
    let cached = match org.accounts_file.as_ref().filter(|_| !refresh) {
        Some(f) => cached_accounts(f, opts)?,
        None => None,
    };
    let resolved = match cached {
        Some(r) => r,
        None => crate::collect::discover_organization(org, opts)?,
    };
    let names = |v: &[crate::org::OrgAccount]| {
        v.iter()
            .map(|a| format!("{} ({})", a.name, a.id))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !resolved.unmapped.is_empty() {
        let _ = writeln!(
            io.stderr,
            "organization: {} account(s) match no [[organization.environment]] and are not scanned: {}",
            resolved.unmapped.len(),
            names(&resolved.unmapped)
        );
    }
    if !resolved.skipped.is_empty() {
        let _ = writeln!(
            io.stderr,
            "organization: {} suspended or closing account(s) skipped: {}",
            resolved.skipped.len(),
            names(&resolved.skipped)
        );
    }
    Ok((
        crate::org::with_accounts(&config, &resolved),
        Some(resolved),
    ))
}

/// The account list of `accounts_file`, if it is there: a local file or
/// an object in S3 (read through the store's guarded client).
fn cached_accounts(
    file: &std::path::Path,
    opts: &crate::collect::Options,
) -> Result<Option<crate::org::Resolved>, Error> {
    let spec = crate::shard::expand(&file.to_string_lossy());
    match crate::collect::store::S3Url::parse(&spec) {
        Some(url) => crate::collect::store::get_one(opts, &url)?
            .map(|text| crate::org::Resolved::parse(&text, std::path::Path::new(&spec)))
            .transpose(),
        None => {
            let p = std::path::Path::new(&spec);
            p.exists()
                .then(|| crate::org::Resolved::load(p))
                .transpose()
        }
    }
}

/// `dbaudit accounts`: every account a scan covers, and where it comes from.
pub fn accounts(args: crate::cli::AccountsArgs, io: &mut Io) -> Result<i32, Error> {
    let config = Config::load(&args.config)?;
    let opts = aws_options(&args.aws);
    let declared: std::collections::BTreeSet<String> =
        config.accounts.iter().map(|a| a.name.clone()).collect();
    let (full, resolved) = with_organization(config, &opts, args.refresh, io)?;
    if let (Some(path), Some(r)) = (&args.output, &resolved) {
        let spec = crate::shard::expand(&path.to_string_lossy());
        match crate::collect::store::S3Url::parse(&spec) {
            // Written once, like shard parts: the first resolution of the
            // night is the one every shard reads.
            Some(url) => {
                let key = url.prefix.clone();
                if !crate::collect::store::put_new(&opts, &url, &key, r.to_json().into_bytes())? {
                    let _ = writeln!(
                        io.stderr,
                        "{} already holds an account list: kept, not overwritten",
                        url.display(&key)
                    );
                }
            }
            None => {
                crate::error::write_atomic(std::path::Path::new(&spec), r.to_json().as_bytes())?
            }
        }
    } else if args.output.is_some() {
        return Err(Error::Usage(
            "-o writes the accounts resolved from [organization], and the config has none"
                .to_string(),
        ));
    }
    let source = |name: &str| -> String {
        if declared.contains(name) {
            "dbaudit.toml".to_string()
        } else {
            resolved
                .as_ref()
                .and_then(|r| r.accounts.iter().find(|a| a.name == name))
                .map(|a| a.source.clone())
                .unwrap_or_default()
        }
    };
    let mut out = String::new();
    match args.format {
        crate::cli::ListFormat::Json => {
            let rows: Vec<serde_json::Value> = full
                .accounts
                .iter()
                .map(|a| {
                    serde_json::json!({
                        "name": a.name, "account_id": a.account_id, "environment": a.environment,
                        "role_arn": a.role_arn, "source": source(&a.name),
                    })
                })
                .collect();
            let doc = serde_json::json!({
                "accounts": rows,
                "unmapped": resolved.as_ref().map(|r| r.unmapped.clone()).unwrap_or_default(),
                "skipped": resolved.as_ref().map(|r| r.skipped.clone()).unwrap_or_default(),
            });
            out.push_str(&serde_json::to_string_pretty(&doc).unwrap_or_default());
            out.push('\n');
        }
        crate::cli::ListFormat::Table => {
            let mut rows = vec![vec![
                "NAME".to_string(),
                "ACCOUNT".into(),
                "ENVIRONMENT".into(),
                "ROLE".into(),
                "SOURCE".into(),
            ]];
            for a in &full.accounts {
                rows.push(vec![
                    a.name.clone(),
                    a.account_id.clone(),
                    a.environment.clone(),
                    a.role_arn
                        .clone()
                        .unwrap_or_else(|| "(base credentials)".into()),
                    source(&a.name),
                ]);
            }
            out.push_str(&super::text_columns(&rows));
        }
    }
    io.stdout
        .write_all(out.as_bytes())
        .map_err(super::write_err)?;
    Ok(report::gate::EXIT_OK)
}

/// `dbaudit publish securityhub REPORT.json`.
pub fn publish(args: crate::cli::PublishArgs, io: &mut Io) -> Result<i32, Error> {
    let Some(path) = args.config.as_deref().or_else(default_config) else {
        return Err(Error::Usage(
            "publish needs the configuration that names each account's role: --config FILE, DBAUDIT_CONFIG, or ./dbaudit.toml".to_string(),
        ));
    };
    let config = Config::load(path)?;
    let report = report::Report::load(&args.report)?;
    let opts = aws_options(&args.aws);
    let published = crate::collect::runtime(None)?.block_on(async {
        let base = crate::collect::base_config(&opts).await;
        crate::collect::publish::securityhub(&report, &config, &base).await
    });
    let mut out = String::new();
    for (account, region, n) in &published.imported {
        out.push_str(&format!(
            "securityhub: imported {n} finding(s) into account {account} in {region}\n"
        ));
    }
    for w in published.left_out.iter().chain(&published.failures) {
        out.push_str(&format!("securityhub: {w}\n"));
    }
    io.stderr
        .write_all(out.as_bytes())
        .map_err(super::write_err)?;
    Ok(if published.failures.is_empty() {
        report::gate::EXIT_OK
    } else {
        report::gate::EXIT_INCOMPLETE
    })
}

/// `dbaudit databases --snapshot S --account A -o PART`: the account's
/// databases, read from here (in the cluster, where the endpoints are
/// reachable), as a database part for `merge`. Only `[databases]` of the
/// configuration is used; no AWS API is called (the IAM tokens are signed
/// locally with this process's credentials).
pub fn databases(args: crate::cli::DatabasesArgs, io: &mut Io) -> Result<i32, Error> {
    let Some(path) = args.config.as_deref().or_else(default_config) else {
        return Err(Error::Usage(
            "databases needs the configuration holding [databases]: --config FILE, DBAUDIT_CONFIG, or ./dbaudit.toml".to_string(),
        ));
    };
    let config = Config::load(path)?;
    let Some(settings) = config.databases.clone() else {
        return Err(Error::Usage(format!(
            "{} has no `[databases]` with `connect = true`: it says how to sign in to the databases (docs/in-database.md)",
            path.display()
        )));
    };
    let snapshot = super::load_snapshots(std::slice::from_ref(&args.snapshot), &args.aws)?;
    let Some(from) = snapshot.accounts.iter().find(|a| a.name == args.account) else {
        return Err(Error::Usage(format!(
            "no account `{}` in {}; it has: {}",
            args.account,
            args.snapshot.display(),
            snapshot.account_names()
        )));
    };
    let mut account = crate::snapshot::Account {
        name: from.name.clone(),
        environment: from.environment.clone(),
        account_id: from.account_id.clone(),
        partition: from.partition.clone(),
        regions: from
            .regions
            .iter()
            .map(|r| crate::snapshot::Region {
                name: r.name.clone(),
                db_clusters: r.db_clusters.clone(),
                db_instances: r.db_instances.clone(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let opts = aws_options(&args.aws);
    let password = std::env::var("DBAUDIT_DB_PASSWORD").ok();
    crate::collect::runtime(None)?.block_on(async {
        let base = crate::collect::base_config(&opts).await;
        crate::collect::read_databases(&base, &mut account, settings, password).await;
    });
    // The part holds what was read inside the databases, nothing else.
    for r in &mut account.regions {
        r.db_clusters.clear();
        r.db_instances.clear();
    }
    account
        .regions
        .retain(|r| r.pg_databases.as_ref().is_some_and(|d| !d.is_empty()));
    let dbs: Vec<&crate::snapshot::PgDatabase> = account
        .regions
        .iter()
        .flat_map(|r| r.pg_databases.iter().flatten())
        .collect();
    let unreadable: Vec<String> = dbs
        .iter()
        .filter_map(|d| {
            d.unreadable
                .as_ref()
                .map(|why| format!("{}/{}: {why}", d.cluster_id, d.database))
        })
        .collect();
    let clusters: std::collections::BTreeSet<&str> =
        dbs.iter().map(|d| d.cluster_id.as_str()).collect();
    let summary = format!(
        "read {} database(s) of {} cluster(s) of account `{}`{}",
        dbs.len() - unreadable.len(),
        clusters.len(),
        account.name,
        if unreadable.is_empty() {
            String::new()
        } else {
            format!("; {} could not be read", unreadable.len())
        }
    );
    let mut part = Snapshot::new(crate::history::now());
    let run_id = args.run_id.as_deref().map(crate::shard::expand);
    part.databases_part = Some(crate::snapshot::DatabasesPart {
        account: account.name.clone(),
        snapshot_collected_at: snapshot.collected_at.clone(),
        run_id: run_id.clone(),
    });
    let name = format!("databases-{}.json", account.name);
    part.accounts = vec![account];
    part.normalize();
    let output = args.output.to_string_lossy();
    if let Some(url) = crate::collect::store::S3Url::parse(&output) {
        let key = url.key(&match &run_id {
            Some(run) => format!("{run}/{name}"),
            None => name,
        });
        if !crate::collect::store::put_new(&opts, &url, &key, part.to_json().into_bytes())? {
            let _ = writeln!(
                io.stderr,
                "{} was written by an earlier attempt: kept, this one discarded",
                url.display(&key)
            );
        }
    } else {
        crate::error::write_atomic(&args.output, part.to_json().as_bytes())?;
    }
    if !args.quiet {
        let mut out = summary + "\n";
        for u in &unreadable {
            out.push_str(&format!("  {u}\n"));
        }
        io.stderr
            .write_all(out.as_bytes())
            .map_err(super::write_err)?;
    }
    Ok(if unreadable.is_empty() {
        report::gate::EXIT_OK
    } else {
        report::gate::EXIT_INCOMPLETE
    })
}

/// How a command with a few AWS calls of its own reaches AWS.
fn aws_options(aws: &crate::cli::AwsArgs) -> crate::collect::Options {
    crate::collect::Options {
        profile: aws.profile.clone(),
        region: aws.region.clone(),
        endpoint_url: aws.endpoint_url.clone(),
        ..crate::collect::Options::default()
    }
}

/// How to reach AWS, from the command line.
fn options(target: &TargetArgs) -> crate::collect::Options {
    crate::collect::Options {
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
    }
}

/// Runs collection for the selected accounts, with progress on stderr.
fn collect_snapshot(config: &Config, target: &TargetArgs, io: &mut Io) -> Result<Snapshot, Error> {
    let mut accounts = config.select_accounts(&target.accounts, target.all_accounts)?;
    let shard = match &target.shard {
        Some(spec) => {
            let spec = crate::shard::ShardSpec::parse(spec, |v| std::env::var(v).ok())
                .map_err(Error::Usage)?;
            let plan = crate::shard::plan(&accounts, spec.count, &config.regions);
            accounts = crate::shard::select(accounts, spec);
            Some((spec, plan))
        }
        None => None,
    };
    let opts = options(target);
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
    let mut snapshot = snapshot?;
    if let Some((spec, plan)) = shard {
        // This part's own plan is its share of the run's.
        for p in snapshot.plan.iter_mut().flatten() {
            p.shard = spec.index;
        }
        snapshot.shard = Some(crate::snapshot::ShardPart {
            run_id: target
                .run_id
                .as_deref()
                .map(crate::shard::expand)
                .unwrap_or_else(|| crate::shard::DEFAULT_RUN_ID.to_string()),
            index: spec.index,
            count: spec.count,
            plan,
            completed: snapshot.accounts.iter().map(|a| a.name.clone()).collect(),
        });
    }
    if !target.quiet {
        let gaps: usize = snapshot.accounts.iter().map(|a| a.gaps.len()).sum();
        // An account whose role could not be assumed was not collected.
        let reached = snapshot
            .accounts
            .iter()
            .filter(|a| !crate::snapshot::Gap::unreached(&a.gaps))
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

#[cfg(test)]
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
