//! The HTTP requests `shorts` makes on its own behalf: `serve`'s HTTPS
//! GETs (fetching an SNS signing certificate, confirming an SNS
//! subscription) and the POSTs that tell WebSub hubs a feed changed
//! (`crate::websub`, to an http or https hub). TLS by rustls (the Mozilla
//! roots of webpki-roots); one HTTP/1.1 request per connection, a timeout,
//! and a cap on the answer's size.
//!
//! It must not decide which URLs are safe to fetch: callers check the host
//! first (`inbound::sns`), or take it from the site's own config. Two
//! settings exist for the tests only, which cannot reach AWS: `connect_to`
//! sends every request to one local address (TLS still checks the
//! certificate against the URL's host name), and `roots_pem` trusts those
//! CA certificates instead of the built-in roots.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::TlsConnector;
use url::{Position, Url};

/// How long one request may take, connection and answer included.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request failed; each names the URL or host.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0} is not an https URL with a host name")]
    NotHttps(String),
    #[error("{0} is not an http(s) URL with a host name")]
    NotHttp(String),
    #[error("connecting to {host}: {message}")]
    Connect { host: String, message: String },
    #[error("{url} answered {status}")]
    Status { url: String, status: StatusCode },
    #[error("{url}: the answer is larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("{url}: no answer within {} s", TIMEOUT.as_secs())]
    Timeout { url: String },
}

/// What a server answered a POST.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    /// Its `Retry-After` in seconds, if it gave one.
    pub retry_after: Option<Duration>,
    /// Where it redirects to, if it does.
    pub location: Option<String>,
    /// The start of its body, for a message that says why.
    pub text: String,
}

/// How much of an answer to a POST is read for [`Answer::text`].
const ANSWER_TEXT_LIMIT: usize = 300;

/// A TLS client configuration, and where connections go.
pub struct HttpClient {
    tls: TlsConnector,
    connect_to: Option<String>,
}

impl HttpClient {
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
        Ok(HttpClient {
            tls: TlsConnector::from(Arc::new(config)),
            connect_to,
        })
    }

    /// The body of `url` when it answers 200, at most `limit` bytes.
    pub async fn get(&self, url: &Url, limit: usize) -> Result<Bytes, FetchError> {
        in_time(url, self.get_now(url, limit)).await
    }

    async fn get_now(&self, url: &Url, limit: usize) -> Result<Bytes, FetchError> {
        if url.scheme() != "https" || url.host_str().is_none() {
            return Err(FetchError::NotHttps(url.to_string()));
        }
        let (mut sender, host) = self.connect(url).await?;
        let request = request(url, &host, Request::get(url_path(url)), Bytes::new())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(http_failed(&host))?;
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

    /// POSTs `form` (`application/x-www-form-urlencoded`) to `url`, http or
    /// https, and gives what it answered, whatever the status.
    pub async fn post_form(&self, url: &Url, form: String) -> Result<Answer, FetchError> {
        in_time(url, self.post_form_now(url, form)).await
    }

    async fn post_form_now(&self, url: &Url, form: String) -> Result<Answer, FetchError> {
        let (mut sender, host) = self.connect(url).await?;
        let post = Request::post(url_path(url))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        let request = request(url, &host, post, Bytes::from(form))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(http_failed(&host))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.trim().parse().ok())
            .map(Duration::from_secs);
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut body = response.into_body();
        let mut text = Vec::new();
        while text.len() < ANSWER_TEXT_LIMIT {
            match body.frame().await {
                Some(Ok(frame)) => text.extend(frame.into_data().unwrap_or_default()),
                _ => break,
            }
        }
        text.truncate(ANSWER_TEXT_LIMIT);
        Ok(Answer {
            status,
            retry_after,
            location,
            text: String::from_utf8_lossy(&text).trim().to_string(),
        })
    }

    /// An HTTP/1.1 connection to `url`'s host, over TLS for https (the
    /// certificate must be valid for the host), and that host's name.
    async fn connect(&self, url: &Url) -> Result<(SendRequest<Full<Bytes>>, String), FetchError> {
        let (secure, host) = match (url.scheme(), url.host_str()) {
            ("https", Some(host)) => (true, host.to_string()),
            ("http", Some(host)) => (false, host.to_string()),
            _ => return Err(FetchError::NotHttp(url.to_string())),
        };
        let connect = |message: String| FetchError::Connect {
            host: host.clone(),
            message,
        };
        let port = url.port_or_known_default().unwrap_or(443);
        let address = match &self.connect_to {
            Some(address) => address.clone(),
            // An IPv6 host is in brackets already, as an address needs it.
            None => format!("{host}:{port}"),
        };
        let tcp = tokio::net::TcpStream::connect(&address)
            .await
            .map_err(|e| connect(e.to_string()))?;
        let handshake_failed = http_failed(&host);
        let sender = if secure {
            let name = ServerName::try_from(host.clone()).map_err(|e| connect(e.to_string()))?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| connect(format!("TLS: {e}")))?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(handshake_failed)?;
            drive(connection);
            sender
        } else {
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .map_err(handshake_failed)?;
            drive(connection);
            sender
        };
        Ok((sender, host))
    }
}

/// What `request` to `url` gives, or a timeout once [`TIMEOUT`] passes.
async fn in_time<T>(
    url: &Url,
    request: impl Future<Output = Result<T, FetchError>>,
) -> Result<T, FetchError> {
    tokio::time::timeout(TIMEOUT, request)
        .await
        .map_err(|_| FetchError::Timeout {
            url: url.to_string(),
        })?
}

/// Runs a connection's I/O in the background while its request is sent.
fn drive(connection: impl Future<Output = Result<(), hyper::Error>> + Send + 'static) {
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "HTTP connection ended with an error");
        }
    });
}

/// The request line's target: `url`'s path and query.
fn url_path(url: &Url) -> &str {
    &url[Position::BeforePath..Position::AfterQuery]
}

/// A request to `url` built by `builder`, with `Host` (and its port, if
/// not the default), our `User-Agent` and `body`.
fn request(
    url: &Url,
    host: &str,
    builder: axum::http::request::Builder,
    body: Bytes,
) -> Result<Request<Full<Bytes>>, FetchError> {
    let host_header = &url[Position::BeforeHost..Position::AfterPort];
    builder
        .header(header::HOST, host_header)
        .header(
            header::USER_AGENT,
            concat!("shorts/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(body))
        .map_err(|e| FetchError::NotHttp(format!("{url} ({e}; host {host})")))
}

/// The error for a request `host` did not answer.
fn http_failed(host: &str) -> impl Fn(hyper::Error) -> FetchError + '_ {
    move |e| FetchError::Connect {
        host: host.to_string(),
        message: format!("HTTP: {e}"),
    }
}
