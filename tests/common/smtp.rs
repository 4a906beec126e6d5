//! A real SMTP server for tests: mailin-embedded on a loopback port, keeping
//! every accepted message, and answering chosen recipients (or everyone)
//! with chosen codes; optionally offering STARTTLS with a certificate from
//! `tests/fixtures/tls/` (made by `scripts/test_certs.sh`).
#![allow(dead_code)] // each test file uses its own subset

use std::collections::HashMap;
use std::net::{IpAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mailin_embedded::{Handler, Response, Server, SslConfig, response};

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Received {
    /// The envelope sender (MAIL FROM), where bounces go.
    pub from: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    /// recipient → codes to answer to RCPT, one per attempt, before accepting.
    faults: HashMap<String, Vec<u16>>,
    /// recipient → the text after the code in those answers, when not the default.
    fault_texts: HashMap<String, String>,
    /// The code every RCPT is answered with, while set.
    refuse_all: Option<u16>,
    rcpt_attempts: HashMap<String, usize>,
    /// EHLO or HELO answered: one per connection, one more after STARTTLS.
    greetings: usize,
}

#[derive(Clone)]
struct Sink {
    state: Arc<Mutex<State>>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Sink {
    fn helo(&mut self, _ip: IpAddr, _domain: &str) -> Response {
        self.state.lock().unwrap().greetings += 1;
        response::OK
    }

    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        self.from = from.to_string();
        self.to.clear();
        response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        let mut state = self.state.lock().unwrap();
        let attempt = {
            let n = state.rcpt_attempts.entry(to.to_string()).or_default();
            *n += 1;
            *n
        };
        let fault = state
            .faults
            .get(to)
            .and_then(|codes| codes.get(attempt - 1))
            .copied();
        if let Some(code) = state.refuse_all.or(fault) {
            let text = state.fault_texts.get(to).cloned();
            return Response::custom(
                code,
                text.unwrap_or_else(|| format!("test fault {code} for {to}")),
            );
        }
        self.to.push(to.to_string());
        response::OK
    }

    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        _to: &[String],
    ) -> Response {
        self.data.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let message = Received {
            from: self.from.clone(),
            to: self.to.clone(),
            data: std::mem::take(&mut self.data),
        };
        self.state.lock().unwrap().received.push(message);
        response::OK
    }
}

/// A running server; it lives until the test process ends.
pub struct SmtpServer {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        Self::start_with(None)
    }

    /// A server offering STARTTLS with `tests/fixtures/tls/<name>.pem` and
    /// its key: "localhost" (for localhost and 127.0.0.1) or "wrong-host".
    pub fn start_tls(name: &str) -> SmtpServer {
        // lettre picks ring itself; mailin-embedded takes the process default,
        // which must be chosen as both ring and aws-lc-rs are built in.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let file = |ext: &str| {
            let path = tls_fixture(&format!("{name}.{ext}"));
            path.to_str().expect("a UTF-8 path").to_string()
        };
        Self::start_with(Some(SslConfig::SelfSigned {
            cert_path: file("pem"),
            key_path: file("key"),
        }))
    }

    fn start_with(tls: Option<SslConfig>) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let sink = Sink {
            state: Arc::clone(&state),
            from: String::new(),
            to: Vec::new(),
            data: Vec::new(),
        };
        let mut server = Server::new(sink);
        server
            .with_name("test.smtp")
            .with_num_threads(8)
            .with_tcp_listener(listener);
        if let Some(tls) = tls {
            server
                .with_ssl(tls)
                .expect("the test certificate and key load");
        }
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        SmtpServer { port, state }
    }

    /// Answer RCPT TO `recipient` with `codes`, one per attempt, then accept.
    pub fn fail(&self, recipient: &str, codes: &[u16]) {
        self.state
            .lock()
            .unwrap()
            .faults
            .insert(recipient.to_string(), codes.to_vec());
    }

    /// Like [`SmtpServer::fail`], answering `code text` each time: `text` can
    /// start with an enhanced status code, as in
    /// `5.1.1 <gone@example.net>: Recipient address rejected: User unknown`.
    pub fn fail_with(&self, recipient: &str, codes: &[u16], text: &str) {
        self.fail(recipient, codes);
        self.state
            .lock()
            .unwrap()
            .fault_texts
            .insert(recipient.to_string(), text.to_string());
    }

    /// Answer every RCPT TO with `code` until [`SmtpServer::accept_all`].
    pub fn refuse_all(&self, code: u16) {
        self.state.lock().unwrap().refuse_all = Some(code);
    }

    /// Back to accepting everyone (but recipients scripted with `fail`).
    pub fn accept_all(&self) {
        self.state.lock().unwrap().refuse_all = None;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// How often RCPT TO was tried for `recipient`.
    pub fn attempts(&self, recipient: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .rcpt_attempts
            .get(recipient)
            .copied()
            .unwrap_or(0)
    }

    /// How many EHLO or HELO the server answered: one per connection, and
    /// one more on each connection that STARTTLS secured.
    pub fn greetings(&self) -> usize {
        self.state.lock().unwrap().greetings
    }

    /// How often RCPT TO was tried, over all recipients.
    pub fn all_attempts(&self) -> usize {
        self.state.lock().unwrap().rcpt_attempts.values().sum()
    }
}

/// A file of `tests/fixtures/tls/`.
pub fn tls_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}
