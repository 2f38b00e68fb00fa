//! Live collection: the only code that talks to AWS. It knows nothing about
//! rules; it fills a [`Snapshot`].
//!
//! Per account: base credentials from the standard chain, then `AssumeRole`
//! (optionally chained through `via_roles`) with the external id, then
//! `GetCallerIdentity` must name the configured account. Then accounts ×
//! regions × services run concurrently under one bound (`--concurrency`), with
//! adaptive retries and timeouts. Every failure becomes a [`Gap`]; nothing
//! aborts the other accounts, regions or services.

mod calls;
mod ec2;
mod eks;
pub mod error;
pub mod guard;
mod iam;
mod organizations;
mod rds;
pub mod registry;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::config::{AccountConfig, Config};
use crate::error::Error;
use crate::snapshot::{Account, Gap, Region as RegionData, Snapshot, Tags};
use crate::vocab::{Scope, op};
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
            concurrency: 16,
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

/// Collects `accounts` into a snapshot on a runtime of its own
/// (`opts.workers` threads, default: the machine's cores). `stats` tracks
/// progress as it goes (a display can read it). SIGINT or SIGTERM abandons
/// the run: nothing has been written, and [`Error::Interrupted`] says so.
pub fn run(
    config: &Config,
    accounts: &[AccountConfig],
    opts: &Options,
    stats: Arc<Stats>,
) -> Result<Snapshot, Error> {
    let workers = opts.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()
        .map_err(|e| Error::Io {
            path: std::path::PathBuf::from("<tokio runtime>"),
            error: e,
        })?;
    runtime.block_on(async {
        let base = base_config(opts).await;
        let work = collect(config, accounts, &base, opts, stats, now_rfc3339());
        tokio::select! {
            snapshot = work => Ok(snapshot),
            interrupted = interrupted() => Err(interrupted),
        }
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

/// Loads the base configuration: the standard credential chain, profile,
/// region, endpoint, retries and timeouts.
pub async fn base_config(opts: &Options) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            RetryConfig::adaptive()
                .with_max_attempts(opts.max_attempts)
                .with_initial_backoff(opts.initial_backoff),
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
    stats
        .accounts_total
        .store(accounts.len() as u64, Ordering::Relaxed);
    let mut set = JoinSet::new();
    for (i, acct) in accounts.iter().enumerate() {
        let acct = acct.clone();
        let scps = config.collect_scps;
        let regions = if acct.regions.is_empty() {
            config.regions.clone()
        } else {
            acct.regions.clone()
        };
        let base = base.clone();
        let limit = limit.clone();
        let stats = stats.clone();
        set.spawn(async move {
            (
                i,
                collect_account(acct, regions, scps, base, limit, stats).await,
            )
        });
    }
    let mut results: Vec<(usize, Account)> = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(x) => results.push(x),
            Err(e) => warn!("an account task panicked: {e}"),
        }
    }
    results.sort_by_key(|(i, _)| *i);
    let mut snapshot = Snapshot::new(collected_at);
    snapshot.accounts = results.into_iter().map(|(_, a)| a).collect();
    snapshot.normalize();
    snapshot
}

async fn collect_account(
    acct: AccountConfig,
    regions: Vec<String>,
    config_scps: bool,
    base: SdkConfig,
    limit: Arc<Semaphore>,
    stats: Arc<Stats>,
) -> Account {
    let mut account = Account {
        name: acct.name.clone(),
        environment: acct.environment.clone(),
        account_id: acct.account_id.clone(),
        partition: "aws".to_string(),
        ..Account::default()
    };
    let guard = ReadOnlyGuard::new(stats.clone());
    let conf = {
        let _permit = limit.acquire().await;
        match credentials(&acct, &base, &guard).await {
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
    let mut set = JoinSet::new();
    for collector in REGISTRY.iter().filter(|c| c.wanted(&plan)) {
        let service = collector.service();
        let task_regions: Vec<Option<&String>> = match service.scope() {
            Scope::Regional => regions.iter().map(Some).collect(),
            Scope::Global | Scope::Session => vec![None],
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
            set.spawn(async move {
                let _permit = limit.acquire().await;
                let done = collector.run(task).await;
                debug!(%service, gaps = done.gaps.len(), "collected");
                done
            });
        }
    }
    while let Some(r) = set.join_next().await {
        stats.tasks_done.fetch_add(1, Ordering::Relaxed);
        match r {
            Ok(done) => {
                (done.apply)(&mut account);
                account.gaps.extend(done.gaps);
            }
            Err(e) => warn!(account = %acct.name, "a collection task panicked: {e}"),
        }
    }
    stats.accounts_done.fetch_add(1, Ordering::Relaxed);
    account
}

/// Assumes the account's role (through `via_roles` first) and checks that the
/// credentials belong to the configured account. Returns the configuration
/// to build the account's clients from, and the partition.
async fn credentials(
    acct: &AccountConfig,
    base: &SdkConfig,
    guard: &ReadOnlyGuard,
) -> Result<(SdkConfig, String), Gap> {
    let mut conf = base.clone();
    let session = acct
        .session_name
        .clone()
        .unwrap_or_else(|| "dbaudit".to_string());
    let chain: Vec<&String> = acct.via_roles.iter().chain(acct.role_arn.iter()).collect();
    for role in chain {
        let mut builder = aws_config::sts::AssumeRoleProvider::builder(role.clone())
            .session_name(session.clone())
            .configure(&conf);
        if let Some(id) = &acct.external_id
            && Some(role) == acct.role_arn.as_ref()
        {
            builder = builder.external_id(id.clone());
        }
        if let Some(d) = acct.duration_seconds {
            builder = builder.session_length(Duration::from_secs(d as u64));
        }
        let provider = builder.build().await;
        // Resolve now, so that a role that cannot be assumed is reported as
        // such (and once), not as a failure of every later call.
        if let Err(e) = provider.provide_credentials().await {
            // The whole chain for -vv; the gap gets one line.
            debug!(role = %role, error = %one_line_error(&e), "AssumeRole failed");
            let (code, message) = assume_role_error(&e);
            return Err(Gap {
                service: op::ASSUME_ROLE.service,
                region: None,
                operation: op::ASSUME_ROLE.name.into(),
                code,
                message: format!("{message} ({role})"),
            });
        }
        conf = conf
            .into_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .build();
    }
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(&conf)
            .interceptor(guard.clone())
            .build(),
    );
    let who = sts.get_caller_identity().send().await.map_err(|e| {
        let mut g = e.to_gap(op::GET_CALLER_IDENTITY, None);
        if acct.role_arn.is_none() {
            g.message = format!("base credentials: {}", g.message);
        }
        g
    })?;
    let actual = who.account().unwrap_or_default();
    if actual != acct.account_id {
        return Err(Gap {
            service: op::GET_CALLER_IDENTITY.service,
            region: None,
            operation: op::GET_CALLER_IDENTITY.name.into(),
            code: "AccountMismatch".into(),
            message: format!(
                "credentials belong to account {actual}, but `{}` is configured as {}; refusing to scan the wrong account",
                acct.name, acct.account_id
            ),
        });
    }
    let partition = who
        .arn()
        .and_then(|a| a.split(':').nth(1))
        .unwrap_or("aws")
        .to_string();
    Ok((conf, partition))
}

/// Code and message of a failed AssumeRole: STS's own error when the
/// credentials error carries one (its Debug form is a page of nested
/// structs and the raw HTTP response), else the error chain on one line.
fn assume_role_error(
    e: &aws_credential_types::provider::error::CredentialsError,
) -> (String, String) {
    use aws_smithy_types::error::metadata::ProvideErrorMetadata;
    type StsError = aws_smithy_runtime_api::client::result::SdkError<
        aws_sdk_sts::operation::assume_role::AssumeRoleError,
        aws_smithy_runtime_api::http::Response,
    >;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(sdk) = err.downcast_ref::<StsError>() {
            if let Some(service) = sdk.as_service_error() {
                return (
                    service.code().unwrap_or("AssumeRoleFailed").to_string(),
                    service
                        .message()
                        .map(str::to_string)
                        .unwrap_or_else(|| one_line_error(service)),
                );
            }
            return error::classify(sdk);
        }
        cur = err.source();
    }
    (assume_role_code(e), one_line_error(e))
}

fn assume_role_code(e: &aws_credential_types::provider::error::CredentialsError) -> String {
    let text = format!(
        "{}",
        aws_smithy_types::error::display::DisplayErrorContext(e)
    );
    for code in [
        "AccessDenied",
        "ExpiredToken",
        "InvalidClientTokenId",
        "Throttling",
        "RegionDisabledException",
    ] {
        if text.contains(code) {
            return code.to_string();
        }
    }
    "AssumeRoleFailed".to_string()
}

fn one_line_error(e: &dyn std::error::Error) -> String {
    format!(
        "{}",
        aws_smithy_types::error::display::DisplayErrorContext(e)
    )
    .split_whitespace()
    .collect::<Vec<_>>()
    .join(" ")
}

/// RFC 3339 time now (UTC, seconds).
pub fn now_rfc3339() -> String {
    aws_smithy_types::DateTime::from(std::time::SystemTime::now())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}
