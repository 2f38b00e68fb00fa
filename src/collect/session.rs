//! An account's session: its role assumed once (after the `via_roles`
//! hops), its account verified, and kept with the account's clients for its
//! whole collection. The account is read from the assumed-role ARN that STS
//! returns with the credentials, so a role needs no `GetCallerIdentity`;
//! base credentials (no role) are verified with `GetCallerIdentity`.
//!
//! Each hop is an [`AssumedRole`] provider that calls STS itself, through a
//! client carrying the read-only guard (so AssumeRole is counted with every
//! other call), and caches the credentials until they near expiry. The
//! SDK's shared identity cache is not used: it holds 64 entries and evicts
//! at random, so at organization scale an account's credentials were gone
//! before its collectors used them and it was assumed again (measured: 593
//! AssumeRole calls for 100 accounts).

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_config::identity::IdentityCache;
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, ProvideCredentials, SharedCredentialsProvider};
use tokio::sync::Mutex;

use super::{GapSource, ReadOnlyGuard, text};
use crate::config::AccountConfig;
use crate::snapshot::Gap;
use crate::vocab::op;

/// Credentials are renewed this long before they expire.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// One role, assumed with the previous hop's credentials.
struct AssumedRole {
    sts: aws_sdk_sts::Client,
    role: String,
    session: String,
    external_id: Option<String>,
    duration: Option<i32>,
    cached: Mutex<Option<Credentials>>,
    /// The assumed-role ARN STS answered with (the identity of the
    /// credentials: its account is the role's account).
    arn: std::sync::Mutex<Option<String>>,
}

impl fmt::Debug for AssumedRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssumedRole")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

type AssumeError = aws_smithy_runtime_api::client::result::SdkError<
    aws_sdk_sts::operation::assume_role::AssumeRoleError,
    aws_smithy_runtime_api::http::Response,
>;

impl AssumedRole {
    /// The cached credentials, or new ones from one AssumeRole call.
    async fn get(&self) -> Result<Credentials, AssumeError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && c.expiry()
                .is_none_or(|e| e > SystemTime::now() + RENEW_BEFORE)
        {
            return Ok(c.clone());
        }
        let out = self
            .sts
            .assume_role()
            .role_arn(&self.role)
            .role_session_name(&self.session)
            .set_external_id(self.external_id.clone())
            .set_duration_seconds(self.duration)
            .send()
            .await?;
        let c = out.credentials().map(|c| {
            Credentials::new(
                c.access_key_id(),
                c.secret_access_key(),
                Some(c.session_token().to_string()),
                SystemTime::try_from(*c.expiration()).ok(),
                "dbaudit-assume-role",
            )
        });
        let Some(c) = c else {
            return Err(AssumeError::construction_failure(
                "AssumeRole answered without credentials",
            ));
        };
        if let Some(user) = out.assumed_role_user() {
            *self.arn.lock().unwrap_or_else(|e| e.into_inner()) = Some(user.arn().to_string());
        }
        *cached = Some(c.clone());
        Ok(c)
    }
}

impl ProvideCredentials for AssumedRole {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            self.get().await.map_err(CredentialsError::provider_error)
        })
    }
}

/// Assumes the account's role (through `via_roles` first), each hop once,
/// and checks that the credentials belong to the configured account: by the
/// last hop's assumed-role ARN, or with `GetCallerIdentity` for base
/// credentials (or an AssumeRole answer without the ARN, which AWS always
/// sends).
/// Returns the configuration to build the account's clients from, and the
/// partition.
pub(crate) async fn open(
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
    let mut identity: Option<String> = None;
    for role in chain {
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&conf)
                .interceptor(guard.clone())
                .build(),
        );
        let hop = AssumedRole {
            sts,
            role: role.clone(),
            session: session.clone(),
            external_id: acct
                .external_id
                .clone()
                .filter(|_| Some(role) == acct.role_arn.as_ref()),
            duration: acct.duration_seconds,
            cached: Mutex::new(None),
            arn: std::sync::Mutex::new(None),
        };
        // Assume now, so that a role that cannot be assumed is reported as
        // such (and once), not as a failure of every later call.
        if let Err(e) = hop.get().await {
            let mut g = e.to_gap(op::ASSUME_ROLE, None);
            g.message = format!("{} ({role})", g.message);
            return Err(g);
        }
        identity = hop.arn.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // The hop caches its own credentials: no SDK cache in between.
        conf = conf
            .into_builder()
            .credentials_provider(SharedCredentialsProvider::new(hop))
            .identity_cache(IdentityCache::no_cache())
            .build();
    }
    let (arn, told_by) = match identity {
        Some(arn) => (arn, op::ASSUME_ROLE),
        None => (
            caller_identity(&conf, guard, acct).await?,
            op::GET_CALLER_IDENTITY,
        ),
    };
    // arn:PARTITION:SERVICE::ACCOUNT:RESOURCE
    let mut fields = arn.split(':');
    let partition = fields.nth(1).unwrap_or("aws").to_string();
    let actual = fields.nth(2).unwrap_or_default();
    if actual != acct.account_id {
        return Err(Gap {
            service: told_by.service,
            region: None,
            operation: told_by.name.into(),
            code: "AccountMismatch".into(),
            message: format!(
                "credentials belong to account {actual}, but `{}` is configured as {}; refusing to scan the wrong account",
                acct.name, acct.account_id
            ),
        });
    }
    Ok((conf, partition))
}

/// The ARN of the identity `conf`'s credentials belong to, from STS.
async fn caller_identity(
    conf: &SdkConfig,
    guard: &ReadOnlyGuard,
    acct: &AccountConfig,
) -> Result<String, Gap> {
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(conf)
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
    Ok(text(who.arn()))
}
