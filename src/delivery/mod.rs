//! Getting messages out: the outbox (one `.eml` file per message) or SMTP
//! through lettre's pooled transport, behind one [`Transport`] trait.
//!
//! Owns what a failure means: [`Failure::Transient`] (4xx, network, timeout:
//! try again later), [`Failure::Permanent`] (5xx for this recipient) and
//! [`Failure::Fatal`] (the server refuses us, e.g. bad credentials: stop the
//! run rather than blame every subscriber) and [`Failure::Unreachable`] (no
//! connection: retried like a 4xx, then the run stops too, since every other
//! message would wait out the same retries). Retries with backoff happen here;
//! what is recorded in the ledger is `digest`'s job. Which certificates the
//! SMTP client trusts is [`trust`]'s.

pub mod body;
pub mod compose;
mod dkim_key;
pub mod trust;
pub mod verp;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::Transport as _;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls as Secured, TlsParameters};
use lettre::transport::smtp::{PoolConfig, SmtpTransport};
use rustls::CertificateError;

use crate::config::{SmtpConfig, Tls};
use compose::Composed;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("temporary failure: {0}")]
    Transient(String),
    #[error("permanent failure: {0}")]
    Permanent(String),
    #[error("the server refused the session: {0}")]
    Fatal(String),
    #[error("the server cannot be reached: {0}")]
    Unreachable(String),
    /// The settings cannot work as they are (TLS fails, no STARTTLS, not an
    /// SMTP server on that port): waiting will not help, fixing the config will.
    #[error("the SMTP settings do not work: {0}")]
    Misconfigured(String),
    /// Too many messages in a row were deferred (greylisting, a 421 on every
    /// RCPT, an account over quota): the server is not taking mail now, and
    /// every other message would only wait out the same retries. Never
    /// returned by a transport; the send stage concludes it.
    #[error("the server is deferring every message: {0}")]
    Deferring(String),
}

impl Failure {
    /// Whether the whole run should stop: nothing else can get through either.
    pub fn stops_the_run(&self) -> bool {
        matches!(
            self,
            Failure::Fatal(_)
                | Failure::Unreachable(_)
                | Failure::Misconfigured(_)
                | Failure::Deferring(_)
        )
    }

    pub fn message(&self) -> &str {
        let (Failure::Transient(m)
        | Failure::Permanent(m)
        | Failure::Fatal(m)
        | Failure::Unreachable(m)
        | Failure::Misconfigured(m)
        | Failure::Deferring(m)) = self;
        m
    }
}

/// Somewhere messages can be handed to. Implementations are shared by the
/// sending threads.
pub trait Transport: Sync {
    /// Hands over one message; `Ok` means the other side accepted it.
    /// `batch` names what it belongs to ("digest-12", "confirmations").
    fn send(&self, message: &Composed, batch: &str) -> Result<(), Failure>;
    /// How many messages may be in flight at once.
    fn parallelism(&self) -> usize {
        1
    }
    /// Wait before attempt `n` (1-based) after a transient failure, or `None` to give up.
    fn backoff(&self, _attempt: u32) -> Option<Duration> {
        None
    }
    /// Proves the way out works without sending anything (for SMTP: connect,
    /// TLS, authenticate, NOOP) and says what was checked.
    fn check(&self) -> Result<String, Failure> {
        Ok("nothing to connect to".to_string())
    }
    /// What messages are handed to, for errors: `host:port` for SMTP.
    fn name(&self) -> String {
        "the transport".to_string()
    }
    /// Messages in a row that may end in a temporary failure, after their
    /// retries, before the run stops; 0 = never stop.
    fn max_consecutive_failures(&self) -> u32 {
        0
    }
}

/// The transport `[delivery]` configures.
pub fn from_config(config: &crate::config::Config) -> Result<Box<dyn Transport>, SmtpSetupError> {
    Ok(match &config.delivery.transport {
        crate::config::Transport::Outbox => Box::new(Outbox {
            dir: config.delivery.outbox_dir.clone(),
        }),
        crate::config::Transport::Smtp(smtp) => Box::new(Smtp::new(smtp)?),
    })
}

/// Writes each message to `outbox/<batch>/<message id>.eml`.
pub struct Outbox {
    pub dir: PathBuf,
}

impl Transport for Outbox {
    fn name(&self) -> String {
        format!("the outbox {}", self.dir.display())
    }

    fn check(&self) -> Result<String, Failure> {
        Ok(format!(
            "the outbox: messages are written to {}",
            self.dir.display()
        ))
    }

    fn send(&self, message: &Composed, batch: &str) -> Result<(), Failure> {
        let folder = self.dir.join(batch);
        let name: String = message
            .message_id
            .trim_matches(['<', '>'])
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '@') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let target = folder.join(format!("{name}.eml"));
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&folder)?;
            let tmp = folder.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, &message.bytes)?;
            std::fs::rename(&tmp, &target)
        };
        // A full disk may free up; anything else will not get better by waiting either.
        write().map_err(|e| Failure::Transient(format!("writing {}: {e}", target.display())))
    }
}

/// SMTP through a pool of reused connections.
pub struct Smtp {
    transport: SmtpTransport,
    /// `host:port`, for messages that say which server failed.
    server: String,
    timeout_secs: u64,
    pool_size: usize,
    attempts: u32,
    backoff: Duration,
    rate: Option<RateLimit>,
    max_consecutive_failures: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum SmtpSetupError {
    #[error("`delivery.smtp.password_env` names {0}, which is not set in the environment")]
    MissingPassword(String),
    #[error("SMTP setup for {host}: {message}")]
    Setup { host: String, message: String },
    /// Checked when the config loads; seen here only if the file changed since.
    #[error("`delivery.smtp.ca_file`: {0}")]
    CaFile(String),
}

impl Smtp {
    pub fn new(config: &SmtpConfig) -> Result<Smtp, SmtpSetupError> {
        let mut builder = SmtpTransport::builder_dangerous(&config.host)
            .tls(secured(config)?)
            .port(config.port())
            .timeout(Some(Duration::from_secs(config.timeout_secs)))
            // Idle connections are closed before a typical server's 60 s idle timeout.
            .pool_config(
                PoolConfig::new()
                    .max_size(config.pool_size)
                    .idle_timeout(Duration::from_secs(30)),
            );
        if let (Some(user), Some(env)) = (&config.username, &config.password_env) {
            let password =
                std::env::var(env).map_err(|_| SmtpSetupError::MissingPassword(env.clone()))?;
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Smtp {
            transport: builder.build(),
            server: format!("{}:{}", config.host, config.port()),
            timeout_secs: config.timeout_secs,
            pool_size: config.pool_size as usize,
            attempts: config.attempts,
            backoff: Duration::from_millis(config.backoff_ms),
            rate: (config.rate_limit > 0.0).then(|| RateLimit::new(config.rate_limit)),
            max_consecutive_failures: config.max_consecutive_failures,
        })
    }
}

/// How `tls` secures the connection: STARTTLS is required, never skipped
/// when the server does not offer it.
fn secured(config: &SmtpConfig) -> Result<Secured, SmtpSetupError> {
    Ok(match config.tls {
        Tls::None => Secured::None,
        Tls::Starttls => Secured::Required(tls_parameters(config)?),
        Tls::Tls => Secured::Wrapper(tls_parameters(config)?),
    })
}

/// The certificate must be valid for `host` and chain to a built-in web
/// root or to a CA of `ca_file`.
fn tls_parameters(config: &SmtpConfig) -> Result<TlsParameters, SmtpSetupError> {
    let mut parameters = TlsParameters::builder(config.host.clone());
    if let Some(file) = &config.ca_file {
        let certificate = trust::read_ca_file(file).map_err(SmtpSetupError::CaFile)?;
        parameters = parameters.add_root_certificate(certificate);
    }
    parameters.build().map_err(|e| SmtpSetupError::Setup {
        host: config.host.clone(),
        message: e.to_string(),
    })
}

impl Transport for Smtp {
    fn send(&self, message: &Composed, _batch: &str) -> Result<(), Failure> {
        if let Some(rate) = &self.rate {
            rate.wait();
        }
        self.transport
            .send_raw(&message.envelope, &message.bytes)
            .map(|_| ())
            .map_err(|e| self.classify(&e))
    }

    fn parallelism(&self) -> usize {
        self.pool_size
    }

    fn name(&self) -> String {
        self.server.clone()
    }

    fn max_consecutive_failures(&self) -> u32 {
        self.max_consecutive_failures
    }

    fn check(&self) -> Result<String, Failure> {
        match self.transport.test_connection() {
            Ok(true) => Ok(format!(
                "{}: connected, TLS and login as configured, nothing sent",
                self.server
            )),
            Ok(false) => Err(Failure::Transient(format!(
                "{}: connected, but the server did not answer NOOP",
                self.server
            ))),
            Err(e) => Err(self.classify(&e)),
        }
    }

    fn backoff(&self, attempt: u32) -> Option<Duration> {
        (attempt < self.attempts)
            .then(|| self.backoff * 2u32.saturating_pow(attempt.saturating_sub(1)))
    }
}

impl Smtp {
    /// What an SMTP error means for the run, said in terms of the settings
    /// to check rather than the library's.
    fn classify(&self, e: &lettre::transport::smtp::Error) -> Failure {
        if let Some(refused) = certificate_refused(e) {
            return self.untrusted(refused);
        }
        let server = &self.server;
        let cause = std::error::Error::source(e).map_or_else(|| e.to_string(), |c| c.to_string());
        let code = e.status().map(|c| c.to_string());
        match code.as_deref() {
            // Authentication and policy refusals of the session itself.
            Some("530" | "534" | "535" | "538") => Failure::Fatal(format!("{server}: {e}")),
            Some(_) if e.is_permanent() => Failure::Permanent(e.to_string()),
            Some(_) => Failure::Transient(e.to_string()),
            None if e.is_tls() || tls_refused(&cause) => Failure::Misconfigured(format!(
                "TLS with {server} failed ({cause}); check `tls` in [delivery.smtp] (\"starttls\" on port 587, \"tls\" on 465) and that the server's certificate is valid for its name"
            )),
            None if e.is_client() && cause.contains("STARTTLS") => Failure::Misconfigured(format!(
                "{server} does not offer STARTTLS; set `tls = \"tls\"` in [delivery.smtp] if it expects TLS from the first byte, or check `port`"
            )),
            // An answer that is not SMTP at all; one cut short is a dropped
            // connection, which another try may get past.
            None if e.is_response() && !cause.contains("incomplete") => {
                Failure::Misconfigured(format!(
                    "{server} did not answer like an SMTP server ({cause}); check `port` in [delivery.smtp]"
                ))
            }
            None if e.is_timeout() || waited_too_long(e) => Failure::Unreachable(format!(
                "{server} did not answer within {} s; check `host` and `port` in [delivery.smtp] and that nothing drops the connection",
                self.timeout_secs
            )),
            // lettre has no public test for "could not connect"; its message
            // for that kind is fixed ("Connection error: …").
            None if e.to_string().starts_with("Connection error") => Failure::Unreachable(format!(
                "{server}: {cause}; check `host` and `port` in [delivery.smtp] and that the server is running"
            )),
            None => Failure::Transient(format!("{server}: {e}")),
        }
    }

    /// A certificate rustls refused, said as what to change: most often a
    /// private CA that `ca_file` should name, or a `host` the certificate is
    /// not for.
    fn untrusted(&self, refused: &CertificateError) -> Failure {
        let server = &self.server;
        Failure::Misconfigured(match refused {
            CertificateError::UnknownIssuer => format!(
                "TLS with {server} failed: its certificate is not trusted (no built-in root and no CA of `ca_file` signed it); if the relay uses a private CA, set `ca_file` in [delivery.smtp] to that CA's certificate (PEM; SSL_CERT_FILE is not read)"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "TLS with {server} failed: the certificate's name does not match `host` ({refused}); set `host` in [delivery.smtp] to a name the certificate is for"
                )
            }
            other => format!(
                "TLS with {server} failed: its certificate was refused ({other}); check the certificate the server presents, and `host` and `ca_file` in [delivery.smtp]"
            ),
        })
    }
}

/// Why rustls refused the server's certificate, if that is what failed:
/// the refusal comes wrapped in the I/O error of the first read after the
/// TLS hello.
fn certificate_refused(e: &lettre::transport::smtp::Error) -> Option<&CertificateError> {
    let mut cause = std::error::Error::source(e);
    while let Some(error) = cause {
        if let Some(rustls::Error::InvalidCertificate(refused)) = error.downcast_ref() {
            return Some(refused);
        }
        cause = match error.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
    }
    None
}

/// A read that timed out: lettre only recognises `TimedOut`, but a socket
/// read timeout shows as `WouldBlock` on Linux.
fn waited_too_long(e: &lettre::transport::smtp::Error) -> bool {
    std::error::Error::source(e)
        .and_then(|cause| cause.downcast_ref::<std::io::Error>())
        .is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            )
        })
}

/// rustls' handshake failures reach us as network errors with its message:
/// a plain-text server answered a TLS hello, or the certificate is refused.
fn tls_refused(cause: &str) -> bool {
    ["corrupt message", "certificate", "handshake"]
        .iter()
        .any(|sign| cause.contains(sign))
}

/// Spaces sends evenly across all connections.
struct RateLimit {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateLimit {
    fn new(per_second: f64) -> Self {
        RateLimit {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: Mutex::new(Instant::now()),
        }
    }

    fn wait(&self) {
        let slot = {
            let mut next = self
                .next
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        std::thread::sleep(slot.saturating_duration_since(Instant::now()));
    }
}

/// Sends with retries: transient failures wait `transport.backoff(n)` and try
/// again; returns the last failure when the transport gives up.
pub fn send_with_retry(
    transport: &dyn Transport,
    message: &Composed,
    batch: &str,
) -> Result<u32, (Failure, u32)> {
    let mut attempt = 1;
    loop {
        match transport.send(message, batch) {
            Ok(()) => return Ok(attempt),
            Err(failure @ (Failure::Transient(_) | Failure::Unreachable(_))) => {
                match transport.backoff(attempt) {
                    Some(wait) => {
                        tracing::debug!(attempt, ?wait, error = %failure, "temporary failure; retrying");
                        std::thread::sleep(wait);
                        attempt += 1;
                    }
                    None => return Err((failure, attempt)),
                }
            }
            Err(other) => return Err((other, attempt)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_spaces_sends() {
        let rate = RateLimit::new(100.0);
        let start = Instant::now();
        for _ in 0..6 {
            rate.wait();
        }
        assert!(
            start.elapsed() >= Duration::from_millis(50),
            "{:?}",
            start.elapsed()
        );
    }
}
