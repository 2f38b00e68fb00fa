//! Live collection: the only code that talks to AWS. It knows nothing about
//! rules; it fills a [`Snapshot`].
//!
//! Per account: base credentials from the standard chain, then `AssumeRole`
//! (optionally chained through `via_roles`) with the external id, and the
//! assumed-role ARN (or, on base credentials, `GetCallerIdentity`) must name
//! the configured account. Then accounts ×
//! regions × services run concurrently under one bound (`--concurrency`), with
//! standard retries (jittered, capped backoff) and timeouts. Every failure becomes a [`Gap`]; nothing
//! aborts the other accounts, regions or services.

mod calls;
mod ec2;
mod eks;
pub mod error;
pub mod guard;
mod iam;
mod organizations;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod publish;
mod rds;
pub mod registry;
mod session;
pub mod store;
#[cfg(test)]
mod wire;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::config::{AccountConfig, Config};
use crate::error::Error;
use crate::snapshot::{Account, Region as RegionData, Snapshot, Tags};
use crate::vocab::Scope;
pub use calls::Calls;
pub(crate) use calls::GapSource;
pub use guard::{ReadOnlyGuard, Stats};
pub use iam::decode_policy;
use registry::{Plan, REGISTRY, Task};

/// How to reach AWS.
#[derive(Debug, Clone)]
pub struct Options {
    pub profile: Option<String>,
    /// Region for STS and for accounts that list none.
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    /// Collection tasks running at once.
    pub concurrency: usize,
    /// Timeout of one attempt of one call.
    pub attempt_timeout: Duration,
    /// Timeout of one call including its retries.
    pub operation_timeout: Duration,
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    /// Runtime worker threads; `None`: one per core.
    pub workers: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            profile: None,
            region: None,
            endpoint_url: None,
            concurrency: 64,
            attempt_timeout: Duration::from_secs(20),
            operation_timeout: Duration::from_secs(90),
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            workers: None,
        }
    }
}

pub(crate) fn tags_of<'a>(pairs: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>) -> Tags {
    pairs
        .filter_map(|(k, v)| Some((k?.to_string(), v.unwrap_or_default().to_string())))
        .collect()
}

/// An SDK answer's text as the snapshot keeps it: absent is empty (the
/// fields kept as plain strings are ids and names AWS always sends).
pub(crate) fn text(v: Option<&str>) -> String {
    v.unwrap_or_default().to_string()
}

/// The text `field` of each item that has one: the id lists of the SDK's
/// answers (security group ids, CIDR blocks, subnet ids…).
pub(crate) fn texts<'a, T: 'a>(
    items: impl IntoIterator<Item = &'a T>,
    field: impl Fn(&'a T) -> Option<&'a str>,
) -> Vec<String> {
    items
        .into_iter()
        .filter_map(field)
        .map(str::to_string)
        .collect()
}

/// Collects `accounts` into a snapshot on a runtime of its own: the
/// calling thread, or `opts.workers` threads when more than one is asked
/// for. `stats` tracks progress as it goes (a display can read it). SIGINT
/// or SIGTERM abandons the run: nothing has been written, and
/// [`Error::Interrupted`] says so.
///
/// One thread by default: the work waits on the network (a scan of 500
/// clusters uses a tenth of one core), and every call is in flight at once
/// either way (`--concurrency`). Collected on the thread that then
/// evaluates, the answers' parsing leaves its freed memory where the
/// evaluation reuses it; on worker threads it stayed with their allocator
/// arena, beside the evaluation's (`scan --json` at 500 clusters: 44 MB
/// peak against 39 MB; docs/performance.md).
pub fn run(
    config: &Config,
    accounts: &[AccountConfig],
    opts: &Options,
    stats: Arc<Stats>,
) -> Result<Snapshot, Error> {
    runtime(opts.workers.filter(|&n| n > 1))?.block_on(async {
        let base = base_config(opts).await;
        let work = collect(config, accounts, &base, opts, stats, now_rfc3339());
        tokio::select! {
            snapshot = work => Ok(snapshot),
            interrupted = interrupted() => Err(interrupted),
        }
    })
}

/// A runtime for a command's AWS calls: `workers` threads, or the calling
/// thread (`None`).
pub(crate) fn runtime(workers: Option<usize>) -> Result<tokio::runtime::Runtime, Error> {
    let mut b = match workers {
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n.max(1));
            b
        }
        None => tokio::runtime::Builder::new_current_thread(),
    };
    b.enable_all().build().map_err(|e| Error::Io {
        path: std::path::PathBuf::from("<tokio runtime>"),
        error: e,
    })
}

/// Lists the organization (`[organization]`) with its reader role, or the
/// base credentials, and resolves its accounts: mapped to environments with
/// their audit roles, the unmapped and the skipped listed.
pub fn discover_organization(
    org: &crate::config::OrganizationConfig,
    opts: &Options,
) -> Result<crate::org::Resolved, Error> {
    let failed = |g: crate::snapshot::Gap| Error::Io {
        path: std::path::PathBuf::from("[organization]"),
        error: std::io::Error::other(format!(
            "listing the organization failed: {} {}: {}",
            g.operation, g.code, g.message
        )),
    };
    runtime(None)?.block_on(async {
        let base = base_config(opts).await;
        let guard = ReadOnlyGuard::new(Arc::new(Stats::default()));
        let (conf, partition) = match &org.role_arn {
            Some(arn) => {
                let reader = AccountConfig {
                    name: "organization".into(),
                    environment: String::new(),
                    account_id: text(arn.split(':').nth(4)),
                    role_arn: Some(arn.clone()),
                    external_id: org.external_id.clone(),
                    ..AccountConfig::default()
                };
                session::open(&reader, &base, &guard)
                    .await
                    .map_err(failed)?
            }
            None => (base, "aws".to_string()),
        };
        let client = aws_sdk_organizations::Client::from_conf(
            aws_sdk_organizations::config::Builder::from(&conf)
                .interceptor(guard)
                .build(),
        );
        let mut calls = Calls::new(crate::vocab::Service::Organizations, None);
        let tags = org.environments.iter().any(|m| m.tag.is_some());
        let listed = organizations::discover(&client, tags, &mut calls)
            .await
            .map_err(failed)?;
        for g in &calls.gaps {
            warn!(
                "organization: {} failed for an account: {} {}",
                g.operation, g.code, g.message
            );
        }
        Ok(crate::org::resolve(org, listed, &partition))
    })
}

/// Resolves when SIGINT or SIGTERM arrives.
async fn interrupted() -> Error {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = int.recv() => Error::Interrupted { signal: 2, name: "SIGINT" },
            _ = term.recv() => Error::Interrupted { signal: 15, name: "SIGTERM" },
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        Error::Interrupted {
            signal: 2,
            name: "SIGINT",
        }
    }
}

/// At most this many of one account's collection tasks run at once: API
/// rate limits are per account (and region), so one account with many
/// regions neither bursts into its own throttling nor takes every permit.
pub const PER_ACCOUNT_TASKS: usize = 8;

/// The longest wait between two attempts of a call.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Loads the base configuration: the standard credential chain, profile,
/// region, endpoint, retries and timeouts.
pub async fn base_config(opts: &Options) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        // Standard retries: exponential backoff with full jitter from
        // `initial_backoff`, capped at MAX_BACKOFF. Not the adaptive mode:
        // its client-side rate limiter, after one throttle at a low request
        // rate, slowed the client to a trickle (one throttled
        // DescribeDBClusters cost 22 s, two 41 s). Concurrency is bounded
        // by `--concurrency` instead.
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(opts.max_attempts)
                .with_initial_backoff(opts.initial_backoff)
                .with_max_backoff(MAX_BACKOFF),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(3100))
                .operation_attempt_timeout(opts.attempt_timeout)
                .operation_timeout(opts.operation_timeout)
                .build(),
        );
    if let Some(p) = &opts.profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = &opts.region {
        loader = loader.region(Region::new(r.clone()));
    }
    if let Some(e) = &opts.endpoint_url {
        loader = loader.endpoint_url(e);
    }
    let mut conf = loader.load().await;
    if conf.region().is_none() {
        conf = conf
            .into_builder()
            .region(Region::from_static("us-east-1"))
            .build();
    }
    conf
}

/// Collects the given accounts into a snapshot.
pub async fn collect(
    config: &Config,
    accounts: &[AccountConfig],
    base: &SdkConfig,
    opts: &Options,
    stats: Arc<Stats>,
    collected_at: String,
) -> Snapshot {
    let limit = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    // Each account is one pipeline (assume, verify, collect), and at most
    // `concurrency` of them are in flight: otherwise every account's
    // AssumeRole would queue for the task permits before any collection,
    // front-loading the run, and every account's session would be held
    // open at once.
    let in_flight = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    stats
        .accounts_total
        .store(accounts.len() as u64, Ordering::Relaxed);
    let mut set = JoinSet::new();
    let mut owners = std::collections::HashMap::new();
    // The in-database collection's settings, and its password (read once).
    let databases: Option<Arc<InDatabase>> = config.databases.clone().map(|d| {
        Arc::new(InDatabase {
            password: std::env::var("DBAUDIT_DB_PASSWORD").ok(),
            settings: d,
        })
    });
    for (i, acct) in accounts.iter().enumerate() {
        let acct = acct.clone();
        let scps = config.collect_scps;
        let databases = databases.clone();
        let regions = config.regions_of(&acct).to_vec();
        let base = base.clone();
        let limit = limit.clone();
        let stats = stats.clone();
        let in_flight = in_flight.clone();
        let handle = set.spawn(async move {
            let _slot = in_flight.acquire_owned().await;
            (
                i,
                collect_account(acct, regions, scps, databases, base, limit, stats).await,
            )
        });
        owners.insert(handle.id(), i);
    }
    let mut results: Vec<(usize, Account)> = Vec::new();
    while let Some(r) = set.join_next_with_id().await {
        match r {
            Ok((_, x)) => results.push(x),
            // A panic is a bug, but it must not make an account vanish
            // from the snapshot (and pass): it becomes the account's gap.
            Err(e) => {
                let i = owners.get(&e.id()).copied().unwrap_or_default();
                let acct = &accounts[i];
                warn!(account = %acct.name, "an account task panicked: {e}");
                results.push((
                    i,
                    Account {
                        name: acct.name.clone(),
                        environment: acct.environment.clone(),
                        account_id: acct.account_id.clone(),
                        partition: "aws".to_string(),
                        gaps: vec![panic_gap(crate::vocab::Service::Sts, None, &e)],
                        ..Account::default()
                    },
                ));
            }
        }
    }
    results.sort_by_key(|(i, _)| *i);
    let mut snapshot = Snapshot::new(collected_at);
    snapshot.plan = Some(config.plan(accounts));
    snapshot.accounts = results.into_iter().map(|(_, a)| a).collect();
    snapshot.normalize();
    snapshot
}

/// `[databases]` and the password of `auth = "password"`.
struct InDatabase {
    settings: crate::config::DatabasesConfig,
    // Read only by the collector of the `postgres` feature.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    password: Option<String>,
}

async fn collect_account(
    acct: AccountConfig,
    regions: Vec<String>,
    config_scps: bool,
    databases: Option<Arc<InDatabase>>,
    base: SdkConfig,
    limit: Arc<Semaphore>,
    stats: Arc<Stats>,
) -> Account {
    let mut account = Account {
        name: acct.name.clone(),
        environment: acct.environment.clone(),
        account_id: acct.account_id.clone(),
        partition: "aws".to_string(),
        collected_at: Some(now_rfc3339()),
        tool_version: Some(crate::VERSION.to_string()),
        ..Account::default()
    };
    let guard = ReadOnlyGuard::new(stats.clone());
    let conf = {
        let _permit = limit.acquire().await;
        match session::open(&acct, &base, &guard).await {
            Ok((conf, partition)) => {
                account.partition = partition;
                conf
            }
            Err(gap) => {
                info!(account = %acct.name, "cannot reach account: {} {}", gap.code, gap.message);
                account.gaps.push(gap);
                stats.accounts_done.fetch_add(1, Ordering::Relaxed);
                return account;
            }
        }
    };
    info!(account = %acct.name, "credentials verified for {}", acct.account_id);

    // Every region exists in the account (once, however often it is
    // listed) before the collectors write their sections into it.
    let regions: Vec<String> = regions
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    account.regions = regions
        .iter()
        .map(|r| RegionData {
            name: r.clone(),
            ..RegionData::default()
        })
        .collect();
    let plan = Plan {
        collect_scps: config_scps,
    };
    let own = Arc::new(Semaphore::new(PER_ACCOUNT_TASKS));
    let mut set = JoinSet::new();
    let mut owners = TaskOwners::new();
    for collector in REGISTRY.iter().filter(|c| c.wanted(&plan)) {
        let service = collector.service();
        let task_regions: Vec<Option<&String>> = match service.scope() {
            Scope::Regional => regions.iter().map(Some).collect(),
            Scope::Global | Scope::Session | Scope::Store | Scope::Publish => vec![None],
        };
        stats
            .tasks_total
            .fetch_add(task_regions.len() as u64, Ordering::Relaxed);
        for region in task_regions {
            let conf = match region {
                Some(r) => conf
                    .clone()
                    .into_builder()
                    .region(Region::new(r.clone()))
                    .build(),
                None => conf.clone(),
            };
            let task = Task {
                conf,
                guard: guard.clone(),
                account_id: acct.account_id.clone(),
                calls: Calls::new(service, region.map(String::as_str)),
            };
            let limit = limit.clone();
            let own = own.clone();
            let owner = (service, region.cloned());
            let handle = set.spawn(async move {
                // The account's own bound first: while it waits, it holds
                // none of the permits other accounts could use.
                let _own = own.acquire().await;
                let _permit = limit.acquire().await;
                let done = collector.run(task).await;
                debug!(%service, gaps = done.gaps.len(), "collected");
                done
            });
            owners.insert(handle.id(), owner);
        }
    }
    join_tasks(&mut set, &owners, &mut account, &stats).await;
    // Inside the databases, once their endpoints are known.
    if let Some(db) = databases.filter(|d| d.settings.wanted(&acct.environment)) {
        match db.settings.via {
            crate::config::DbVia::Direct => in_database(&conf, &mut account, &db).await,
            crate::config::DbVia::Parts => awaiting_parts(&mut account),
        }
    }
    stats.accounts_done.fetch_add(1, Ordering::Relaxed);
    account
}

/// Reads the databases of every PostgreSQL host of `account` (its regions'
/// [`Region::postgres_hosts`](crate::snapshot::Region::postgres_hosts)) with `settings`, signing IAM tokens with
/// `conf`'s credentials: `dbaudit databases`, where the endpoints are
/// reachable.
pub async fn read_databases(
    conf: &SdkConfig,
    account: &mut Account,
    settings: crate::config::DatabasesConfig,
    password: Option<String>,
) {
    in_database(conf, account, &InDatabase { settings, password }).await;
}

#[cfg(feature = "postgres")]
async fn in_database(conf: &SdkConfig, account: &mut Account, db: &InDatabase) {
    let settings = postgres::Settings {
        databases: &db.settings,
        password: db.password.clone(),
    };
    postgres::collect(conf, account, &settings).await;
}

/// With `via = "parts"`: every Aurora PostgreSQL cluster (and standalone
/// RDS for PostgreSQL instance) is recorded as
/// awaiting the database part `dbaudit databases` reads in the cluster;
/// `merge` replaces the entry with the part's, and a cluster whose part
/// never comes stays unreadable (its rules are errors, never passes).
fn awaiting_parts(account: &mut Account) {
    every_cluster_unreadable(account, AWAITING_PART);
}

/// Each PostgreSQL cluster's or instance's databases as one unreadable
/// entry.
fn every_cluster_unreadable(account: &mut Account, why: &str) {
    for region in &mut account.regions {
        region.pg_databases = Some(
            region
                .postgres_hosts()
                .into_iter()
                .map(|h| crate::snapshot::PgDatabase {
                    cluster_id: h.id,
                    database: "*".into(),
                    unreadable: Some(why.into()),
                    ..Default::default()
                })
                .collect(),
        );
    }
}

/// Why a cluster's databases are not in a snapshot collected with
/// `[databases] via = "parts"` until `merge` attaches its part.
pub const AWAITING_PART: &str = "awaiting its database part: read where the database is reachable with `dbaudit databases` and attached with `dbaudit merge` (docs/in-database.md)";

/// Built without the `postgres` feature: every cluster's databases are
/// unreadable, saying why (their rules are errors, never passes).
#[cfg(not(feature = "postgres"))]
async fn in_database(_conf: &SdkConfig, account: &mut Account, _db: &InDatabase) {
    every_cluster_unreadable(
        account,
        "this dbaudit was built without the `postgres` feature",
    );
}

/// Which service and region each collection task reads.
type TaskOwners =
    std::collections::HashMap<tokio::task::Id, (crate::vocab::Service, Option<String>)>;

/// Joins an account's collection tasks into it. A task that panicked
/// becomes a gap of its service and region (so every rule that needed it
/// is an `error`), never a section silently missing.
async fn join_tasks(
    set: &mut JoinSet<registry::Done>,
    owners: &TaskOwners,
    account: &mut Account,
    stats: &Stats,
) {
    while let Some(r) = set.join_next_with_id().await {
        stats.tasks_done.fetch_add(1, Ordering::Relaxed);
        match r {
            Ok((_, done)) => {
                (done.apply)(account);
                account.gaps.extend(done.gaps);
            }
            Err(e) => {
                warn!(account = %account.name, "a collection task panicked: {e}");
                let (service, region) = owners
                    .get(&e.id())
                    .cloned()
                    .unwrap_or((crate::vocab::Service::Sts, None));
                account.gaps.push(panic_gap(service, region, &e));
            }
        }
    }
}

/// The gap of a task that panicked (or was cancelled).
fn panic_gap(
    service: crate::vocab::Service,
    region: Option<String>,
    e: &tokio::task::JoinError,
) -> crate::snapshot::Gap {
    crate::snapshot::Gap {
        service,
        region,
        operation: "(collection task)".to_string(),
        code: if e.is_panic() { "Panic" } else { "Cancelled" }.to_string(),
        message: format!(
            "the collection task did not finish: {e} (a dbaudit bug: please report it)"
        ),
    }
}

/// RFC 3339 time now (UTC, seconds).
pub fn now_rfc3339() -> String {
    aws_smithy_types::DateTime::from(std::time::SystemTime::now())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::Service;

    /// A collector that panics (a test collector: the registry's own never
    /// should) leaves a gap for its service and region, and the other
    /// tasks' sections are still applied; rules that need it are errors.
    #[tokio::test]
    async fn a_panicking_collection_task_becomes_a_gap() {
        let mut set: JoinSet<registry::Done> = JoinSet::new();
        let mut owners = TaskOwners::new();
        let panicking = set.spawn(async {
            if std::hint::black_box(true) {
                panic!("injected: a collector bug");
            }
            unreachable!()
        });
        owners.insert(
            panicking.id(),
            (Service::Rds, Some("eu-west-1".to_string())),
        );
        let fine = set.spawn(async {
            registry::Done {
                gaps: Vec::new(),
                apply: Box::new(|a: &mut Account| a.partition = "aws".to_string()),
            }
        });
        owners.insert(fine.id(), (Service::Ec2, Some("eu-west-1".to_string())));
        let mut account = Account {
            name: "prod".to_string(),
            environment: "prod".to_string(),
            regions: vec![RegionData {
                name: "eu-west-1".to_string(),
                ..RegionData::default()
            }],
            ..Account::default()
        };
        join_tasks(&mut set, &owners, &mut account, &Stats::default()).await;
        assert_eq!(account.partition, "aws", "the other task's part is applied");
        assert_eq!(account.gaps.len(), 1, "{:?}", account.gaps);
        let gap = &account.gaps[0];
        assert_eq!(gap.service, Service::Rds);
        assert_eq!(gap.region.as_deref(), Some("eu-west-1"));
        assert_eq!(gap.code, "Panic");
        assert!(!crate::model::is_fact_level(gap), "every RDS rule errors");

        // Evaluated, the region's cluster rules are errors, never passes
        // (the databases of a region whose listing panicked are unknown).
        let mut snapshot = Snapshot::new("2026-12-01T00:00:00Z".to_string());
        account.account_id = "222222222222".to_string();
        snapshot.accounts.push(account);
        let rules = crate::rules::RuleSet::load(&[], &[]).unwrap();
        let findings = crate::evaluate::evaluate(&snapshot, &rules, &Config::default());
        let sg = findings
            .iter()
            .filter(|f| &*f.rule_id == "db.deletion-protection")
            .collect::<Vec<_>>();
        assert!(!sg.is_empty());
        assert!(
            sg.iter()
                .all(|f| f.outcome == crate::finding::Outcome::Error),
            "{sg:?}"
        );
    }
}
