//! TLS to a PostgreSQL history, with rustls (the AWS-LC provider the AWS
//! SDK already builds): the server's certificate is always verified, host
//! name included (libpq's `verify-full`), against the system's CA store or
//! the CAs of `sslrootcert=FILE` / `PGSSLROOTCERT` (e.g. RDS's bundle).
//!
//! tokio-postgres-rustls does the same but pulls in ring and unsafe pin
//! projections; this crate forbids unsafe code, and the streams here are
//! `Unpin`, so plain `Pin::new` does. Channel binding is not offered
//! (SCRAM without `-PLUS`), which servers accept unless told to require it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Makes a TLS connector per connection (tokio-postgres asks with the
/// host name it connects to).
#[derive(Clone)]
pub struct MakeRustls(Arc<rustls::ClientConfig>);

impl MakeRustls {
    /// Trusting the CAs in `root_cert` (PEM), else the system's store.
    pub fn new(root_cert: Option<&std::path::Path>) -> Result<MakeRustls, String> {
        let mut roots = rustls::RootCertStore::empty();
        match root_cert {
            Some(path) => {
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
                if certs.is_empty() {
                    return Err(format!(
                        "sslrootcert {}: no PEM certificate in it",
                        path.display()
                    ));
                }
                for c in certs {
                    roots
                        .add(c)
                        .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
                }
            }
            None => {
                for c in rustls_native_certs::load_native_certs().certs {
                    // A system store may hold certificates rustls cannot
                    // use; the others still count.
                    let _ = roots.add(c);
                }
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(MakeRustls(Arc::new(config)))
    }
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type TlsConnect = Connect;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, host: &str) -> Result<Connect, Self::Error> {
        Ok(Connect {
            server: ServerName::try_from(host)?.to_owned(),
            connector: tokio_rustls::TlsConnector::from(Arc::clone(&self.0)),
        })
    }
}

pub struct Connect {
    server: ServerName<'static>,
    connector: tokio_rustls::TlsConnector,
}

impl<S> TlsConnect<S> for Connect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type Error = io::Error;
    type Future = Handshake<S>;

    fn connect(self, stream: S) -> Handshake<S> {
        Handshake(self.connector.connect(self.server, stream))
    }
}

pub struct Handshake<S>(tokio_rustls::Connect<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> Future for Handshake<S> {
    type Output = io::Result<Stream<S>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map_ok(Stream)
    }
}

pub struct Stream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for Stream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// The URL without the options tokio-postgres does not know, and what
/// they said: `sslrootcert=FILE` (the CA file), and `sslmode` values of
/// libpq that mean "TLS, verified" (`verify-ca`, `verify-full`), which
/// tokio-postgres spells `require` (and verifies, as rustls always does).
pub fn split_url(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let mut root = None;
    let mut kept = Vec::new();
    for p in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        match (k, v) {
            ("sslrootcert", v) => root = Some(percent_decode(v)),
            ("sslmode", "verify-ca" | "verify-full") => kept.push("sslmode=require".to_string()),
            _ => kept.push(p.to_string()),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (url, root)
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn libpq_options_are_taken_out_of_the_url() {
        let (url, root) = super::split_url(
            "postgres://a@db:5432/h?sslmode=verify-full&sslrootcert=%2Fetc%2Frds.pem&application_name=x",
        );
        assert_eq!(
            url,
            "postgres://a@db:5432/h?sslmode=require&application_name=x"
        );
        assert_eq!(root.as_deref(), Some("/etc/rds.pem"));
        assert_eq!(
            super::split_url("postgres://a@db/h"),
            ("postgres://a@db/h".to_string(), None)
        );
    }
}
