//! The HTTPS GETs `serve` makes on its own behalf — fetching an SNS
//! signing certificate, confirming an SNS subscription — with rustls (the
//! Mozilla roots of webpki-roots), one HTTP/1.1 request per connection, a
//! timeout and a cap on the answer's size.
//!
//! It must not decide which URLs are safe to fetch: callers check the host
//! first (`inbound::sns`). Two settings exist for the tests only, which
//! cannot reach AWS: `connect_to` sends every request to one local address
//! (TLS still checks the certificate against the URL's host name), and
//! `roots_pem` trusts those CA certificates instead of the built-in roots.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::TlsConnector;
use url::{Position, Url};

/// How long one request may take, connection and answer included.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a GET failed; each names the URL or host.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0} is not an https URL with a host name")]
    NotHttps(String),
    #[error("connecting to {host}: {message}")]
    Connect { host: String, message: String },
    #[error("{url} answered {status}")]
    Status { url: String, status: StatusCode },
    #[error("{url}: the answer is larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("{url}: no answer within {} s", TIMEOUT.as_secs())]
    Timeout { url: String },
}

/// A TLS client configuration, and where connections go.
pub struct HttpsClient {
    tls: TlsConnector,
    connect_to: Option<String>,
}

impl HttpsClient {
    /// A client trusting webpki-roots, or only the CA certificates in
    /// `roots_pem` (tests); connecting to `connect_to` instead of each URL's
    /// host when set (tests).
    pub fn new(roots_pem: Option<&[u8]>, connect_to: Option<String>) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        match roots_pem {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| format!("reading the CA certificates: {e}"))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("a CA certificate cannot be used: {e}"))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        // Named, not the process default: the build has two providers when
        // the tests' dependencies bring aws-lc-rs.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(HttpsClient {
            tls: TlsConnector::from(Arc::new(config)),
            connect_to,
        })
    }

    /// The body of `url` when it answers 200, at most `limit` bytes.
    pub async fn get(&self, url: &Url, limit: usize) -> Result<Bytes, FetchError> {
        tokio::time::timeout(TIMEOUT, self.get_now(url, limit))
            .await
            .map_err(|_| FetchError::Timeout {
                url: url.to_string(),
            })?
    }

    async fn get_now(&self, url: &Url, limit: usize) -> Result<Bytes, FetchError> {
        let host = match (url.scheme(), url.host_str()) {
            ("https", Some(host)) => host.to_string(),
            _ => return Err(FetchError::NotHttps(url.to_string())),
        };
        let port = url.port_or_known_default().unwrap_or(443);
        let mut sender = self.connect(&host, port).await?;
        let failed = |e: hyper::Error| FetchError::Connect {
            host: host.clone(),
            message: format!("HTTP: {e}"),
        };
        let request = Request::get(&url[Position::BeforePath..Position::AfterQuery])
            .header(header::HOST, &host)
            .header(
                header::USER_AGENT,
                concat!("shorts/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|e| FetchError::NotHttps(format!("{url} ({e})")))?;
        let response = sender.send_request(request).await.map_err(failed)?;
        if response.status() != StatusCode::OK {
            return Err(FetchError::Status {
                url: url.to_string(),
                status: response.status(),
            });
        }
        match Limited::new(response.into_body(), limit).collect().await {
            Ok(body) => Ok(body.to_bytes()),
            Err(e) if e.is::<LengthLimitError>() => Err(FetchError::TooLarge {
                url: url.to_string(),
                limit,
            }),
            Err(e) => Err(FetchError::Connect {
                host,
                message: format!("reading the answer: {e}"),
            }),
        }
    }

    /// An HTTP/1.1 connection over TLS to `host`, whose certificate must
    /// be valid for `host`.
    async fn connect(
        &self,
        host: &str,
        port: u16,
    ) -> Result<SendRequest<Empty<Bytes>>, FetchError> {
        let connect = |message: String| FetchError::Connect {
            host: host.to_string(),
            message,
        };
        let address = self
            .connect_to
            .clone()
            .unwrap_or_else(|| format!("{host}:{port}"));
        let tcp = tokio::net::TcpStream::connect(&address)
            .await
            .map_err(|e| connect(e.to_string()))?;
        let name = ServerName::try_from(host.to_string()).map_err(|e| connect(e.to_string()))?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| connect(format!("TLS: {e}")))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| connect(format!("HTTP: {e}")))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "HTTPS connection ended with an error");
            }
        });
        Ok(sender)
    }
}
