//! Live collection: the only code that talks to AWS. It knows nothing about
//! rules; it fills a [`Snapshot`].
//!
//! Per account: base credentials from the standard chain, then `AssumeRole`
//! (optionally chained through `via_roles`) with the external id, then
//! `GetCallerIdentity` must name the configured account. Then accounts ×
//! regions × services run concurrently under one bound (`--concurrency`), with
//! adaptive retries and timeouts. Every failure becomes a [`Gap`]; nothing
//! aborts the other accounts, regions or services.

mod ec2;
mod eks;
pub mod error;
pub mod guard;
mod iam;
mod organizations;
mod rds;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::config::{AccountConfig, Config};
use crate::snapshot::{Account, Gap, Iam, Region as RegionData, Snapshot, Tags};
pub use guard::{ReadOnlyGuard, Stats};
pub use iam::decode_policy;

/// Every AWS operation the collectors send, as `service:Operation` (IAM
/// action names). docs/audit-role/policy.json grants exactly these; a test
/// keeps the two in step, and each is a read the guard lets through.
pub const OPERATIONS: &[&str] = &[
    "rds:DescribeDBClusters",
    "rds:DescribeDBInstances",
    "rds:DescribeDBSubnetGroups",
    "rds:DescribeGlobalClusters",
    "ec2:DescribeVpcs",
    "ec2:DescribeSubnets",
    "ec2:DescribeRouteTables",
    "ec2:DescribeInternetGateways",
    "ec2:DescribeNatGateways",
    "ec2:DescribeEgressOnlyInternetGateways",
    "ec2:DescribeSecurityGroups",
    "eks:ListClusters",
    "eks:DescribeCluster",
    "eks:ListNodegroups",
    "eks:DescribeNodegroup",
    "iam:GetAccountAuthorizationDetails",
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
    "iam:ListOpenIDConnectProviders",
    "organizations:ListParents",
    "organizations:ListPoliciesForTarget",
    "organizations:DescribePolicy",
];

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
        }
    }
}

/// The regional part of one service's collection.
pub(crate) struct Collected<'a> {
    pub region: String,
    pub region_data: &'a mut RegionData,
    pub gaps: Vec<Gap>,
}

/// Anything an AWS call can fail with, as a gap.
pub(crate) trait GapSource {
    fn to_gap(&self, service: &str, region: Option<&str>, operation: &str) -> Gap;
}

impl<E, R> GapSource for SdkError<E, R>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    fn to_gap(&self, service: &str, region: Option<&str>, operation: &str) -> Gap {
        error::gap(service, region, operation, self)
    }
}

pub(crate) fn tags_of<'a>(pairs: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>) -> Tags {
    pairs
        .filter_map(|(k, v)| Some((k?.to_string(), v.unwrap_or_default().to_string())))
        .collect()
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
    collect_scps: bool,
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

    let mut set = JoinSet::new();
    let services: [&'static str; 3] = ["ec2", "rds", "eks"];
    stats.tasks_total.fetch_add(
        (regions.len() * services.len() + 1) as u64,
        Ordering::Relaxed,
    );
    for region in &regions {
        for service in services {
            let (conf, guard, limit, region) =
                (conf.clone(), guard.clone(), limit.clone(), region.clone());
            set.spawn(async move {
                let _permit = limit.acquire().await;
                let mut data = RegionData {
                    name: region.clone(),
                    ..RegionData::default()
                };
                let mut out = Collected {
                    region: region.clone(),
                    region_data: &mut data,
                    gaps: Vec::new(),
                };
                let r = Region::new(region.clone());
                match service {
                    "ec2" => {
                        let c = aws_sdk_ec2::config::Builder::from(&conf)
                            .region(r)
                            .interceptor(guard)
                            .build();
                        ec2::collect(&aws_sdk_ec2::Client::from_conf(c), &mut out).await
                    }
                    "rds" => {
                        let c = aws_sdk_rds::config::Builder::from(&conf)
                            .region(r)
                            .interceptor(guard)
                            .build();
                        rds::collect(&aws_sdk_rds::Client::from_conf(c), &mut out).await
                    }
                    _ => {
                        let c = aws_sdk_eks::config::Builder::from(&conf)
                            .region(r)
                            .interceptor(guard)
                            .build();
                        eks::collect(&aws_sdk_eks::Client::from_conf(c), &mut out).await
                    }
                }
                let gaps = out.gaps;
                debug!(%region, service, gaps = gaps.len(), "collected");
                TaskResult::Regional {
                    region,
                    data: Box::new(data),
                    gaps,
                }
            });
        }
    }
    {
        let (conf, guard, limit) = (conf.clone(), guard.clone(), limit.clone());
        set.spawn(async move {
            let _permit = limit.acquire().await;
            // IAM is global; its endpoint lives in us-east-1 for the aws partition.
            let c = aws_sdk_iam::config::Builder::from(&conf)
                .interceptor(guard)
                .build();
            let mut gaps = Vec::new();
            let iam = iam::collect(&aws_sdk_iam::Client::from_conf(c), &mut gaps).await;
            TaskResult::Iam { iam, gaps }
        });
    }
    if collect_scps {
        let (conf, guard, limit, id) = (
            conf.clone(),
            guard.clone(),
            limit.clone(),
            acct.account_id.clone(),
        );
        stats.tasks_total.fetch_add(1, Ordering::Relaxed);
        set.spawn(async move {
            let _permit = limit.acquire().await;
            let c = aws_sdk_organizations::config::Builder::from(&conf)
                .interceptor(guard)
                .build();
            let mut gaps = Vec::new();
            let scps = organizations::collect(
                &aws_sdk_organizations::Client::from_conf(c),
                &id,
                &mut gaps,
            )
            .await;
            TaskResult::Scps { scps, gaps }
        });
    }

    let mut by_region: BTreeMap<String, RegionData> = regions
        .iter()
        .map(|r| {
            (
                r.clone(),
                RegionData {
                    name: r.clone(),
                    ..RegionData::default()
                },
            )
        })
        .collect();
    while let Some(r) = set.join_next().await {
        stats.tasks_done.fetch_add(1, Ordering::Relaxed);
        match r {
            Ok(TaskResult::Regional { region, data, gaps }) => {
                merge(by_region.entry(region).or_default(), *data);
                account.gaps.extend(gaps);
            }
            Ok(TaskResult::Iam { iam, gaps }) => {
                account.iam = iam;
                account.gaps.extend(gaps);
            }
            Ok(TaskResult::Scps { scps, gaps }) => {
                account.scps = scps;
                account.gaps.extend(gaps);
            }
            Err(e) => warn!(account = %acct.name, "a collection task panicked: {e}"),
        }
    }
    account.regions = by_region.into_values().collect();
    stats.accounts_done.fetch_add(1, Ordering::Relaxed);
    account
}

enum TaskResult {
    Regional {
        region: String,
        data: Box<RegionData>,
        gaps: Vec<Gap>,
    },
    Iam {
        iam: Option<Iam>,
        gaps: Vec<Gap>,
    },
    Scps {
        scps: Option<Vec<crate::snapshot::ScpLevel>>,
        gaps: Vec<Gap>,
    },
}

/// Each service fills its own fields of the region.
fn merge(into: &mut RegionData, from: RegionData) {
    let RegionData {
        name: _,
        vpcs,
        subnets,
        route_tables,
        internet_gateways,
        nat_gateways,
        egress_only_internet_gateways,
        security_groups,
        db_subnet_groups,
        db_clusters,
        db_instances,
        global_clusters,
        eks_clusters,
    } = from;
    into.vpcs.extend(vpcs);
    into.subnets.extend(subnets);
    into.route_tables.extend(route_tables);
    into.internet_gateways.extend(internet_gateways);
    into.nat_gateways.extend(nat_gateways);
    into.egress_only_internet_gateways
        .extend(egress_only_internet_gateways);
    into.security_groups.extend(security_groups);
    into.db_subnet_groups.extend(db_subnet_groups);
    into.db_clusters.extend(db_clusters);
    into.db_instances.extend(db_instances);
    into.global_clusters.extend(global_clusters);
    into.eks_clusters.extend(eks_clusters);
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
                service: "sts".into(),
                region: None,
                operation: "AssumeRole".into(),
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
        let mut g = e.to_gap("sts", None, "GetCallerIdentity");
        if acct.role_arn.is_none() {
            g.message = format!("base credentials: {}", g.message);
        }
        g
    })?;
    let actual = who.account().unwrap_or_default();
    if actual != acct.account_id {
        return Err(Gap {
            service: "sts".into(),
            region: None,
            operation: "GetCallerIdentity".into(),
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
