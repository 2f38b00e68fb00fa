//! The read-only guard: an interceptor on every AWS client that refuses,
//! before it is serialised, any operation that is not one of the reads
//! dbaudit's collectors make or the two STS calls that establish the session:
//! exactly the rows of `vocab::OPERATIONS`, from which the audit role's
//! policy is generated. An allow
//! list, not a name prefix: `Get*`/`Describe*` include reads an auditor must
//! never make (`secretsmanager:GetSecretValue`, `ec2:GetPasswordData`,
//! `rds:DownloadDBLogFilePortion`, `s3:GetObject`). It also counts calls and
//! retries for the progress display.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextRef,
    BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

pub use crate::vocab::is_allowed;

/// The error a refused operation fails with.
#[derive(Debug, thiserror::Error)]
#[error(
    "dbaudit refused to send {service}:{operation}: only the reads its collectors make are allowed"
)]
pub struct MutationRefused {
    pub service: String,
    pub operation: String,
}

/// A response whose body is not a complete document.
#[derive(Debug, thiserror::Error)]
#[error("the response body is incomplete or malformed ({0}); its data was not used")]
pub struct MalformedBody(pub String);

/// Whether a response body is a complete XML or JSON document. The SDK's
/// XML parser accepts a truncated document and returns what it read so
/// far (found with the fault proxy: half a DescribeDBSubnetGroups answer gave
/// one complete group, one empty one and no error), so a cut answer would be
/// silently partial data. Checked after deserialisation, on the buffered body.
pub fn check_body(body: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(body).map_err(|_| "not UTF-8".to_string())?;
    let t = text.trim();
    if t.is_empty() {
        return Ok(());
    }
    if t.starts_with('{') || t.starts_with('[') {
        return serde_json::from_str::<serde::de::IgnoredAny>(t)
            .map(|_| ())
            .map_err(|e| format!("invalid JSON: {e}"));
    }
    if t.starts_with('<') {
        // The root element: the first tag that is not a declaration,
        // comment or processing instruction.
        let mut rest = t;
        let root = loop {
            let Some(open) = rest.find('<') else {
                return Err("no root element".into());
            };
            rest = &rest[open + 1..];
            if rest.starts_with('?') || rest.starts_with('!') {
                continue;
            }
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
                .unwrap_or(rest.len());
            break &rest[..end];
        };
        if root.is_empty() {
            return Err("no root element".into());
        }
        if t.ends_with(&format!("</{root}>")) || (t.ends_with("/>") && t.matches('<').count() <= 2)
        {
            return Ok(());
        }
        return Err(format!("the root element <{root}> is not closed"));
    }
    Err("neither XML nor JSON".to_string())
}

/// Counters shared by every client of a run.
#[derive(Debug, Default)]
pub struct Stats {
    /// Operations started (one per API call, whatever its retries).
    pub calls: AtomicU64,
    /// HTTP attempts (calls plus retries).
    pub attempts: AtomicU64,
    /// Collection tasks (account × region × service) planned and finished.
    pub tasks_total: AtomicU64,
    pub tasks_done: AtomicU64,
    pub accounts_total: AtomicU64,
    pub accounts_done: AtomicU64,
}

impl Stats {
    pub fn retries(&self) -> u64 {
        self.attempts
            .load(Ordering::Relaxed)
            .saturating_sub(self.calls.load(Ordering::Relaxed))
    }
}

#[derive(Debug, Clone)]
pub struct ReadOnlyGuard {
    stats: Arc<Stats>,
}

impl ReadOnlyGuard {
    pub fn new(stats: Arc<Stats>) -> Self {
        ReadOnlyGuard { stats }
    }
}

impl Intercept for ReadOnlyGuard {
    fn name(&self) -> &'static str {
        "dbaudit::ReadOnlyGuard"
    }

    // The operation's metadata is in the config bag from serialisation on;
    // this hook still runs before any byte is sent.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Fail closed: an operation we cannot name is not sent either.
        let (service, operation) = match cfg.load::<Metadata>() {
            Some(m) => (m.service().to_string(), m.name().to_string()),
            None => ("unknown".to_string(), "unknown".to_string()),
        };
        if !is_allowed(&service, &operation) {
            return Err(Box::new(MutationRefused { service, operation }));
        }
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(body) = context.response().body().bytes() {
            check_body(body).map_err(|e| Box::new(MalformedBody(e)) as BoxError)?;
        }
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.stats.attempts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_must_be_complete_documents() {
        assert!(check_body(b"<?xml version=\"1.0\"?><DescribeDBSubnetGroupsResponse xmlns=\"x\"><a/></DescribeDBSubnetGroupsResponse>\n").is_ok());
        assert!(check_body(b"<DescribeDBSubnetGroupsResponse><DescribeDBSubnetGroupsResult><DBSubnetGroups><DBSubnetGroup>").is_err());
        assert!(check_body(br#"{"clusters": ["a"]}"#).is_ok());
        assert!(check_body(br#"{"clusters": ["a""#).is_err());
        assert!(check_body(b"").is_ok());
    }

    #[test]
    fn only_the_collectors_reads_and_the_session_calls_are_allowed() {
        for (svc, op) in [
            ("RDS", "DescribeDBClusters"),
            ("EKS", "ListClusters"),
            ("IAM", "GetAccountAuthorizationDetails"),
            ("Organizations", "ListParents"),
            ("STS", "AssumeRole"),
            ("STS", "GetCallerIdentity"),
        ] {
            assert!(is_allowed(svc, op), "{svc}:{op}");
        }
        for (svc, op) in [
            ("RDS", "DeleteDBCluster"),
            ("RDS", "ModifyDBCluster"),
            ("EC2", "CreateSecurityGroup"),
            ("EC2", "AuthorizeSecurityGroupIngress"),
            ("IAM", "PutRolePolicy"),
            ("STS", "AssumeRoleWithWebIdentity"),
            // Reads by name, never by an auditor.
            ("Secrets Manager", "GetSecretValue"),
            ("EC2", "GetPasswordData"),
            ("RDS", "DownloadDBLogFilePortion"),
            ("S3", "GetObject"),
            ("SSM", "GetParameter"),
            ("KMS", "GetPublicKey"),
            ("IAM", "GetUser"),
            // A read of the table, but for another service.
            ("EC2", "DescribeDBClusters"),
            ("RDS", "Describ"),
            ("", ""),
        ] {
            assert!(!is_allowed(svc, op), "{svc}:{op}");
        }
    }
}
