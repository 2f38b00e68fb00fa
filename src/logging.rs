//! Tracing to stderr, off unless asked for with -v or RUST_LOG.
//!
//! Every log line goes through [`Scrub`]: the AWS SDK's debug logs print
//! credential identities (`access_key_id: "AKIA…"`; it redacts secrets
//! itself), and `-vvv` or RUST_LOG can enable them. The scrubber masks access
//! key ids and the exact values of the credential environment variables, so
//! no log level can put credentials on stderr.

use std::io::{self, Write};
use std::sync::Arc;

pub fn init(verbose: u8) {
    // The SDK's interceptor context logs an ERROR ("orchestrator context
    // received an error but one was already present") when an error answer
    // cannot be parsed, e.g. the HTML page of an emulator that lacks the
    // operation; the failure itself is recorded as a gap and counted in the
    // run summary, so at the default level that line is noise.
    // The SDK's own warnings (a region it could not read from instance
    // metadata, each provider of the credential chain) repeat what the
    // recorded gap says in one line: by default only dbaudit speaks; -vv
    // adds the SDK's warnings and each failure's full error chain.
    let default = match verbose {
        0 => "dbaudit=warn",
        1 => "dbaudit=info",
        2 => "dbaudit=debug,aws_config=warn,aws_smithy_runtime=warn",
        _ => "dbaudit=trace,aws_smithy_runtime=debug,aws_config=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let secrets: Arc<Vec<String>> = Arc::new(
        [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
        ]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .filter(|v| v.len() >= 8)
        .collect(),
    );
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || Scrub {
            inner: io::stderr(),
            secrets: secrets.clone(),
        })
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .with_target(false)
        .try_init();
}

/// A writer that masks credentials in what passes through it.
pub struct Scrub<W: Write> {
    pub inner: W,
    pub secrets: Arc<Vec<String>>,
}

impl<W: Write> Write for Scrub<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.inner
            .write_all(scrub(&text, &self.secrets).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Masks AWS access key ids (`AKIA`/`ASIA`/… + 16 characters) and the given
/// secret values.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "** redacted **");
        }
    }
    let bytes = out.as_bytes();
    let mut result = String::with_capacity(out.len());
    let mut i = 0;
    while i < bytes.len() {
        let prefix = bytes.get(i..i + 4);
        let is_key_prefix = matches!(
            prefix,
            Some(b"AKIA" | b"ASIA" | b"AIDA" | b"AROA" | b"ANPA" | b"AGPA")
        );
        if is_key_prefix {
            let run = bytes[i + 4..]
                .iter()
                .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
                .count();
            if run >= 12 {
                result.push_str(&out[i..i + 4]);
                result.push_str("****");
                i += 4 + run;
                continue;
            }
        }
        let ch = out[i..].chars().next().unwrap_or_default();
        result.push(ch);
        i += ch.len_utf8().max(1);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn masks_key_ids_and_known_secrets() {
        let line = r#"Credentials { access_key_id: "ASIAU3HBXAVKR7354HTH", secret_access_key: "** redacted **" } token=SeCrEtToKeN123"#;
        let s = scrub(line, &["SeCrEtToKeN123".to_string()]);
        assert!(
            !s.contains("ASIAU3HBXAVKR7354HTH") && s.contains("ASIA****"),
            "{s}"
        );
        assert!(!s.contains("SeCrEtToKeN123"), "{s}");
        // Ordinary words that start like a key are left alone.
        assert_eq!(
            scrub("AKIA is a prefix; ASIAN food", &[]),
            "AKIA is a prefix; ASIAN food"
        );
        assert_eq!(scrub("héllo AKIAABCDEFGHIJKLMNOP", &[]), "héllo AKIA****");
    }
}
