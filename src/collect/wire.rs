//! The collectors' unit tests talk to a replayed AWS: a real SDK client
//! whose HTTP client answers each request from scenario files of wire
//! bodies (`tests/fixtures/wire/*.toml`), the way the service answers. The
//! SDK's own deserialisers read them, so a test covers the protocol too
//! (EC2's `item` lists, RDS's member names, JSON error types), and what the
//! emulator cannot serve (pagination, Pod Identity, an organization's
//! SCPs, fields moto leaves out) is written down as data beside the tests.
//!
//! A scenario file is a list of answers; a request gets the first answer,
//! over the files in the order given, whose `request` strings all occur in
//! it and none of whose `unless` strings do. The request is seen as one
//! text: `METHOD URI`, the `X-Amz-Target` header, then the body (a query
//! protocol's form, a JSON protocol's document).
//!
//! ```toml
//! [[answer]]
//! name = "page-2"                       # for hits("page-2")
//! request = ["Action=DescribeSubnets&", "NextToken=t2"]
//! status = 200                          # the default
//! headers = { "x-amzn-errortype" = "AccessDeniedException" }
//! body = "<DescribeSubnetsResponse>…</DescribeSubnetsResponse>"
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    answer: Vec<Answer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    name: Option<String>,
    request: Vec<String>,
    #[serde(default)]
    unless: Vec<String>,
    #[serde(default = "ok")]
    status: u16,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    body: String,
}

fn ok() -> u16 {
    200
}

/// The replayed AWS of one test: its answers, and what was asked.
#[derive(Clone)]
pub struct Wire {
    answers: Arc<Vec<(Answer, AtomicUsize)>>,
    unanswered: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wire").finish_non_exhaustive()
    }
}

impl Wire {
    /// The answers of `tests/fixtures/wire/NAME.toml` for each name, in
    /// order.
    pub fn load(names: &[&str]) -> Wire {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wire");
        let mut answers = Vec::new();
        for name in names {
            let path = dir.join(format!("{name}.toml"));
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let scenario: Scenario =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            answers.extend(
                scenario
                    .answer
                    .into_iter()
                    .map(|a| (a, AtomicUsize::new(0))),
            );
        }
        Wire {
            answers: Arc::new(answers),
            unanswered: Arc::default(),
        }
    }

    /// How many requests the answer called `name` answered.
    pub fn hits(&self, name: &str) -> usize {
        self.answers
            .iter()
            .filter(|(a, _)| a.name.as_deref() == Some(name))
            .map(|(_, n)| n.load(Ordering::Relaxed))
            .sum()
    }

    /// The requests no answer matched (each also failed in the SDK).
    pub fn unanswered(&self) -> Vec<String> {
        self.unanswered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn answer(&self, request: &HttpRequest) -> Response<SdkBody> {
        let seen = format!(
            "{} {}\n{}\n{}",
            request.method(),
            request.uri(),
            request.headers().get("x-amz-target").unwrap_or_default(),
            String::from_utf8_lossy(request.body().bytes().unwrap_or_default()),
        );
        let found = self.answers.iter().find(|(a, _)| {
            a.request.iter().all(|s| seen.contains(s.as_str()))
                && !a.unless.iter().any(|s| seen.contains(s.as_str()))
        });
        let Some((answer, hits)) = found else {
            self.unanswered
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(seen.clone());
            // Not retried (a 4xx), and the gap says which request it was.
            return Response::new(
                StatusCode::try_from(404).expect("a status"),
                SdkBody::from(format!("no answer in the scenario for:\n{seen}")),
            );
        };
        hits.fetch_add(1, Ordering::Relaxed);
        let status = StatusCode::try_from(answer.status).expect("a scenario's status");
        let mut response = Response::new(status, SdkBody::from(answer.body.clone()));
        for (k, v) in &answer.headers {
            response.headers_mut().insert(k.clone(), v.clone());
        }
        response
    }
}

impl HttpConnector for Wire {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        HttpConnectorFuture::ready(Ok(self.answer(&request)))
    }
}

impl HttpClient for Wire {
    fn http_connector(
        &self,
        _: &HttpConnectorSettings,
        _: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

/// A client of the SDK crate `$sdk` (test credentials, us-east-1) whose
/// requests `$wire` answers; `$configure` may add to its configuration
/// (an interceptor).
macro_rules! replayed {
    ($sdk:ident, $wire:expr) => {
        $crate::collect::wire::replayed!($sdk, $wire, |b| b)
    };
    ($sdk:ident, $wire:expr, $configure:expr) => {{
        let configure: fn($sdk::config::Builder) -> $sdk::config::Builder = $configure;
        $sdk::Client::from_conf(
            configure($sdk::Config::builder().with_test_defaults_v2())
                .http_client($wire.clone())
                .build(),
        )
    }};
}
pub(crate) use replayed;

/// What a regional collector's `collect` (the calling module's
/// `super::collect`) makes of the scenario's answers in eu-west-1: the
/// region, the gaps it recorded, and the wire.
macro_rules! region_of {
    ($sdk:ident, $service:expr, $scenario:expr) => {{
        let wire = $crate::collect::wire::Wire::load($scenario);
        let mut calls = $crate::collect::Calls::new($service, Some("eu-west-1"));
        let client = $crate::collect::wire::replayed!($sdk, wire);
        let region = super::collect(&client, &mut calls).await;
        (region, calls.gaps, wire)
    }};
}
pub(crate) use region_of;
