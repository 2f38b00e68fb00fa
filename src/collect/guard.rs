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
// The hooks' arguments under short names, so that each hook's signature
// is one line: what it sees, at a glance.
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef as Answer,
    BeforeSerializationInterceptorContextRef as Request,
    BeforeTransmitInterceptorContextRef as Attempt,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents as Components;
use aws_smithy_types::config_bag::ConfigBag as Bag;

/// What an interceptor hook returns.
type Hook = Result<(), BoxError>;

pub use crate::vocab::is_allowed;

/// The error a refused operation fails with.
#[derive(Debug, thiserror::Error)]
#[error(
    "dbaudit refused to send {service}:{operation}: only the reads its collectors make are allowed, and the shard store's calls in the bucket the command names"
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
    /// The shard store's bucket: the only one in which the store's
    /// operations (and its one write, PutObject) are allowed.
    store_bucket: Option<Arc<str>>,
    /// `dbaudit publish`: the session's calls and the publish write only
    /// (no read, no other write).
    publish: bool,
}

impl ReadOnlyGuard {
    pub fn new(stats: Arc<Stats>) -> Self {
        ReadOnlyGuard {
            stats,
            store_bucket: None,
            publish: false,
        }
    }

    /// The guard of `dbaudit publish`: it lets through the session's calls
    /// and `securityhub:BatchImportFindings`, and refuses everything else.
    pub fn for_publish(stats: Arc<Stats>) -> Self {
        ReadOnlyGuard {
            stats,
            store_bucket: None,
            publish: true,
        }
    }

    /// A guard for the shard store's client: besides the reads, the store's
    /// operations in `bucket` and nowhere else.
    pub fn for_store(stats: Arc<Stats>, bucket: &str) -> Self {
        ReadOnlyGuard {
            stats,
            store_bucket: Some(Arc::from(bucket)),
            publish: false,
        }
    }
}

/// The bucket a shard-store request addresses.
fn store_bucket_of(
    input: &aws_smithy_runtime_api::client::interceptors::context::Input,
) -> Option<&str> {
    use aws_sdk_s3::operation::{
        get_object::GetObjectInput, list_objects_v2::ListObjectsV2Input, put_object::PutObjectInput,
    };
    input
        .downcast_ref::<PutObjectInput>()
        .and_then(|i| i.bucket())
        .or_else(|| {
            input
                .downcast_ref::<GetObjectInput>()
                .and_then(|i| i.bucket())
        })
        .or_else(|| {
            input
                .downcast_ref::<ListObjectsV2Input>()
                .and_then(|i| i.bucket())
        })
}

impl Intercept for ReadOnlyGuard {
    fn name(&self) -> &'static str {
        "dbaudit::ReadOnlyGuard"
    }

    // The operation's metadata is in the config bag from serialisation on;
    // this hook still runs before any byte is sent.
    fn read_before_serialization(&self, req: &Request<'_>, _: &Components, cfg: &mut Bag) -> Hook {
        // Fail closed: an operation we cannot name is not sent either.
        let (service, operation) = match cfg.load::<Metadata>() {
            Some(m) => (m.service().to_string(), m.name().to_string()),
            None => ("unknown".to_string(), "unknown".to_string()),
        };
        let in_store = || {
            crate::vocab::is_store_operation(&service, &operation)
                && self
                    .store_bucket
                    .as_deref()
                    .is_some_and(|b| store_bucket_of(req.input()) == Some(b))
        };
        let allowed = if self.publish {
            crate::vocab::is_publish_operation(&service, &operation)
                || crate::vocab::is_session_operation(&service, &operation)
        } else {
            is_allowed(&service, &operation) || in_store()
        };
        if !allowed {
            let operation = match store_bucket_of(req.input()) {
                Some(bucket) => format!("{operation} (bucket `{bucket}`)"),
                None => operation,
            };
            return Err(Box::new(MutationRefused { service, operation }));
        }
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn read_after_deserialization(&self, answer: &Answer<'_>, _: &Components, _: &mut Bag) -> Hook {
        if let Some(body) = answer.response().body().bytes() {
            check_body(body).map_err(|e| Box::new(MalformedBody(e)) as BoxError)?;
        }
        Ok(())
    }

    fn read_before_attempt(&self, _: &Attempt<'_>, _: &Components, _: &mut Bag) -> Hook {
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

    /// The shard store's client may write only in its bucket; any other
    /// client, no store call at all. Refused before anything is sent: the
    /// replayed S3 sees the one allowed write and nothing else.
    #[tokio::test]
    async fn the_store_writes_only_to_its_own_bucket() {
        use crate::collect::wire::{Wire, replayed};
        use aws_smithy_types::error::display::DisplayErrorContext;
        let wire = Wire::load(&["s3/shard-bucket"]);
        let client = replayed!(aws_sdk_s3, wire, |b| b.interceptor(
            ReadOnlyGuard::for_store(Arc::new(Stats::default()), "dbaudit-shards")
        ));
        let part = client.put_object().bucket("dbaudit-shards");
        part.key("r1/part-1-of-2.json").send().await.unwrap();
        let elsewhere = client.put_object().bucket("prod-data").key("x.json");
        let err = DisplayErrorContext(elsewhere.send().await.unwrap_err()).to_string();
        assert!(
            err.contains("refused") && err.contains("prod-data"),
            "{err}"
        );
        let audit = replayed!(aws_sdk_s3, wire, |b| b
            .interceptor(ReadOnlyGuard::new(Arc::new(Stats::default()))));
        let put = audit.put_object().bucket("dbaudit-shards").key("k");
        assert!(put.send().await.is_err());
        let get = audit.get_object().bucket("dbaudit-shards").key("k");
        assert!(get.send().await.is_err());
        assert_eq!(wire.hits("put-part"), 1);
        assert_eq!(wire.hits("anything-else"), 0, "a refused call was sent");
        assert_eq!(wire.unanswered(), Vec::<String>::new());
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
