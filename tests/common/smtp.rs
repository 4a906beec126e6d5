//! A real SMTP server for tests: mailin-embedded on a loopback port, keeping
//! every accepted message, and answering chosen recipients with chosen codes.
#![allow(dead_code)] // each test file uses its own subset

use std::collections::HashMap;
use std::net::{IpAddr, TcpListener};
use std::sync::{Arc, Mutex};

use mailin_embedded::{Handler, Response, Server, response};

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
    rcpt_attempts: HashMap<String, usize>,
}

#[derive(Clone)]
struct Sink {
    state: Arc<Mutex<State>>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Sink {
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
        if let Some(code) = state
            .faults
            .get(to)
            .and_then(|codes| codes.get(attempt - 1))
            .copied()
        {
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
}
