//! The shard store in S3: parts of a sharded collection written once
//! (`If-None-Match: *`, so a retried shard never replaces a completed part)
//! and read back by `dbaudit merge`. The client is the SDK's, with the same
//! guard as every other client: it may call the store's three operations
//! only in the bucket the command names (`ReadOnlyGuard::for_store`).

use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::{Options, ReadOnlyGuard, Stats, base_config};
use crate::error::Error;

/// `s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    /// Without leading or trailing `/` (may be empty).
    pub prefix: String,
}

impl S3Url {
    /// `Some` for an `s3://` URL with a bucket; `None` for anything else (a
    /// local path).
    pub fn parse(s: &str) -> Option<S3Url> {
        let rest = s.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        (!bucket.is_empty()).then(|| S3Url {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }

    /// The key of `name` under the prefix.
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    pub fn display(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

/// A failed store call, in one line: the same classification as the gaps
/// of collection (no credentials, a connection refused, a timeout, the
/// service's own code and message); the whole chain is logged at -vv.
fn failed<E, R>(
    url: String,
    what: &str,
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    let (code, message) = super::error::classify(e);
    tracing::debug!(
        "{url}: {what}: {}",
        aws_smithy_types::error::display::DisplayErrorContext(e)
    );
    Error::Io {
        path: url.into(),
        error: std::io::Error::other(format!("{what} failed: {code}: {message}")),
    }
}

async fn client(opts: &Options, bucket: &str) -> aws_sdk_s3::Client {
    let base = base_config(opts).await;
    let guard = ReadOnlyGuard::for_store(Arc::new(Stats::default()), bucket);
    let mut b = aws_sdk_s3::config::Builder::from(&base).interceptor(guard);
    // An endpoint override (an emulator, a VPC endpoint by IP) does not
    // resolve bucket.host names: address the bucket in the path there.
    if opts.endpoint_url.is_some() {
        b = b.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(b.build())
}

/// Runs `f` with the store's guarded client for the URL's bucket, on a
/// runtime of its own.
fn with_client<T>(
    opts: &Options,
    url: &S3Url,
    f: impl AsyncFnOnce(aws_sdk_s3::Client) -> Result<T, Error>,
) -> Result<T, Error> {
    super::runtime(None)?.block_on(async { f(client(opts, &url.bucket).await).await })
}

/// Whether `key` exists (a listing of exactly that prefix: it needs only
/// `s3:ListBucket`, not a read of the object).
pub fn exists(opts: &Options, url: &S3Url, key: &str) -> Result<bool, Error> {
    with_client(opts, url, async |c| {
        let listed = c
            .list_objects_v2()
            .bucket(&url.bucket)
            .prefix(key)
            .max_keys(10);
        let out = listed
            .send()
            .await
            .map_err(|e| failed(url.display(key), "ListObjectsV2", &e))?;
        Ok(out.contents().iter().any(|o| o.key() == Some(key)))
    })
}

/// Writes `bytes` at `key` unless an object is there already
/// (`If-None-Match: *`); `Ok(false)` when one was.
pub fn put_new(opts: &Options, url: &S3Url, key: &str, bytes: Vec<u8>) -> Result<bool, Error> {
    with_client(opts, url, async |c| {
        let put = c
            .put_object()
            .bucket(&url.bucket)
            .key(key)
            .if_none_match("*");
        let sent = put
            .content_type("application/json")
            .body(ByteStream::from(bytes))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(e) => {
                let precondition = e.raw_response().is_some_and(|r| r.status().as_u16() == 412)
                    || e.code() == Some("PreconditionFailed");
                if precondition {
                    Ok(false)
                } else {
                    Err(failed(url.display(key), "PutObject", &e))
                }
            }
        }
    })
}

/// The store's guarded client for one bucket, on a runtime of its own,
/// kept for a reading of many objects: the listing and every part fetched
/// as a reader reaches it share one client (credentials resolved once).
pub struct Reader {
    runtime: tokio::runtime::Runtime,
    client: aws_sdk_s3::Client,
    url: S3Url,
}

impl Reader {
    pub fn new(opts: &Options, url: &S3Url) -> Result<Reader, Error> {
        let runtime = super::runtime(None)?;
        let client = runtime.block_on(client(opts, &url.bucket));
        Ok(Reader {
            runtime,
            client,
            url: url.clone(),
        })
    }

    /// The keys of every `*.json` object under the URL's prefix, in the
    /// listing's order (by key).
    pub fn list_json(&self) -> Result<Vec<String>, Error> {
        let (c, url) = (&self.client, &self.url);
        self.runtime.block_on(async {
            let prefix = if url.prefix.is_empty() {
                String::new()
            } else {
                format!("{}/", url.prefix)
            };
            let pages: Vec<aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output> = c
                .list_objects_v2()
                .bucket(&url.bucket)
                .prefix(&prefix)
                .into_paginator()
                .send()
                .try_collect()
                .await
                .map_err(|e| failed(url.display(&prefix), "ListObjectsV2", &e))?;
            Ok(pages
                .iter()
                .flat_map(|p| p.contents())
                .filter_map(|o| o.key().filter(|k| k.ends_with(".json")))
                .map(str::to_string)
                .collect())
        })
    }

    /// The text of the object at `key` of the bucket.
    pub fn get(&self, key: &str) -> Result<String, Error> {
        self.runtime
            .block_on(get_text(&self.client, &self.url, key))
    }
}

/// The text of the object at `key`.
async fn get_text(c: &aws_sdk_s3::Client, url: &S3Url, key: &str) -> Result<String, Error> {
    let shown = url.display(key);
    let obj = c
        .get_object()
        .bucket(&url.bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| failed(shown.clone(), "GetObject", &e))?;
    let bytes = obj.body.collect().await.map_err(|e| Error::Io {
        path: shown.clone().into(),
        error: std::io::Error::other(e.to_string()),
    })?;
    String::from_utf8(bytes.to_vec()).map_err(|_| Error::Io {
        path: shown.into(),
        error: std::io::Error::other("not UTF-8"),
    })
}

/// The text of the object at the URL's whole path (`s3://bucket/key`), or
/// `None` when there is none.
pub fn get_one(opts: &Options, url: &S3Url) -> Result<Option<String>, Error> {
    let key = url.prefix.clone();
    if !exists(opts, url, &key)? {
        return Ok(None);
    }
    with_client(opts, url, async |c| get_text(&c, url, &key).await.map(Some))
}

#[cfg(test)]
mod tests {
    use super::S3Url;

    #[test]
    fn urls() {
        let u = S3Url::parse("s3://shards/dbaudit/nightly/").unwrap();
        assert_eq!(u.bucket, "shards");
        assert_eq!(
            u.key("r1/part-1-of-4.json"),
            "dbaudit/nightly/r1/part-1-of-4.json"
        );
        assert_eq!(S3Url::parse("s3://b").unwrap().key("k"), "k");
        assert!(S3Url::parse("parts/").is_none());
        assert!(S3Url::parse("s3:///x").is_none());
    }
}
