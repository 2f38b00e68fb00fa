//! AWS errors become recorded gaps, never crashes and never passes.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::snapshot::Gap;
use crate::vocab::Operation;

/// The gap recorded for a failed call.
pub fn gap<E, R>(operation: Operation, region: Option<&str>, err: &SdkError<E, R>) -> Gap
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    let (code, message) = classify(err);
    // The whole chain, for `-vv`; the gap keeps one line.
    tracing::debug!(
        operation = operation.name,
        region = region.unwrap_or("-"),
        "{code}: {}",
        DisplayErrorContext(err)
    );
    Gap {
        service: operation.service,
        region: region.map(str::to_string),
        operation: operation.name.to_string(),
        code,
        message,
    }
}

/// Code and one-line message of any SDK error.
pub fn classify<E, R>(err: &SdkError<E, R>) -> (String, String)
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    if let Some(refused) = find_source::<super::guard::MutationRefused>(err) {
        return ("MutatingOperationRefused".to_string(), refused.to_string());
    }
    if let Some(bad) = find_source::<super::guard::MalformedBody>(err) {
        return ("MalformedResponse".to_string(), bad.to_string());
    }
    // No credentials at all (the chain fell through every provider, the
    // last one instance metadata): one line that says what to do, not the
    // chain of every provider tried (that is at -vv).
    if let Some(cred) = find_source::<aws_credential_types::provider::error::CredentialsError>(err)
    {
        use aws_credential_types::provider::error::CredentialsError as C;
        let message = match cred {
            C::CredentialsNotLoaded(_) => "no AWS credentials found (environment variables, profile, web identity, container and instance metadata were tried): set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or give --profile (-vv shows each provider's answer)".to_string(),
            C::ProviderTimedOut(_) => "the credential provider timed out (-vv shows which)".to_string(),
            other => format!("the credentials could not be loaded: {}", one_line(&first_line(other))),
        };
        return ("NoCredentials".to_string(), message);
    }
    match err {
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            (
                e.code().unwrap_or("ServiceError").to_string(),
                e.message()
                    .map(str::to_string)
                    .unwrap_or_else(|| one_line(&DisplayErrorContext(e).to_string())),
            )
        }
        SdkError::TimeoutError(_) => ("Timeout".to_string(), "the operation timed out".to_string()),
        SdkError::DispatchFailure(d) if d.is_timeout() => {
            ("Timeout".to_string(), one_line(&chain(err)))
        }
        SdkError::DispatchFailure(_) => ("ConnectionError".to_string(), one_line(&chain(err))),
        SdkError::ResponseError(_) => ("MalformedResponse".to_string(), one_line(&chain(err))),
        _ => {
            let text = DisplayErrorContext(err).to_string();
            // A role that cannot be assumed surfaces as a credentials error.
            let code = if text.contains("CredentialsError")
                || text.contains("credentials")
                || text.contains("AssumeRole")
            {
                "CredentialsError"
            } else {
                "RequestFailed"
            };
            (code.to_string(), one_line(&text))
        }
    }
}

fn find_source<'a, T: std::error::Error + 'static>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<T>() {
            return Some(t);
        }
        cur = e.source();
    }
    None
}

/// An error and its sources as one line of their messages (`dispatch
/// failure: io error: … Connection refused`), without the Debug dump the
/// SDK's `DisplayErrorContext` appends; each message once.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = e.source();
    }
    parts.join(": ")
}

/// An error's own message, without its sources.
fn first_line(e: &dyn std::error::Error) -> String {
    e.to_string()
}

fn one_line(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.len() > 500 {
        let mut end = 500;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s
    }
}
