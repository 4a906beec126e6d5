//! A real SMTP server on a loopback port that the test scripts to misbehave:
//! answer chosen recipients' `RCPT` or end of `DATA` with chosen codes, drop
//! the connection in the middle of `DATA`, stall past the client's timeout,
//! or take its time over every message. It speaks enough of RFC 5321 for a
//! real client (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT, and PIPELINING
//! unless told not to offer it) and keeps what it accepted, with counts of
//! sessions and of envelopes that came pipelined, so tests can prove nothing
//! was lost or delivered twice.
#![allow(dead_code)] // each test file uses its own subset

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the server does to one attempt at one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer `RCPT TO` with this code.
    Rcpt(u16),
    /// Accept the recipient, then answer the end of `DATA` with this code.
    Data(u16),
    /// Read part of the message, then close the connection without a reply.
    DropInData,
    /// Read the whole message, then wait this long and close without a reply.
    Stall(Duration),
}

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub to: Vec<String>,
    pub data: Vec<u8>,
}

#[derive(Default)]
struct State {
    accepted: Vec<Accepted>,
    /// recipient → what to do on its 1st, 2nd, … attempt; later attempts succeed.
    faults: HashMap<String, Vec<Fault>>,
    attempts: HashMap<String, usize>,
    /// Time taken before answering the end of every message.
    delay: Duration,
    sessions: usize,
    faults_injected: usize,
    /// Leave PIPELINING out of the EHLO answer.
    no_pipelining: bool,
    /// Answer `DATA` with 354 even when no recipient was accepted, as a
    /// broken server might; a message that then ends is kept, with no `to`.
    data_without_recipients: bool,
    /// `MAIL` commands whose `RCPT` had already arrived when they were read.
    pipelined: usize,
}

pub struct FaultySmtp {
    pub port: u16,
    state: Arc<Mutex<State>>,
    open: Arc<AtomicUsize>,
    most_open: Arc<AtomicUsize>,
}

impl FaultySmtp {
    pub fn start() -> FaultySmtp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("address").port();
        let server = FaultySmtp {
            port,
            state: Arc::new(Mutex::new(State::default())),
            open: Arc::new(AtomicUsize::new(0)),
            most_open: Arc::new(AtomicUsize::new(0)),
        };
        let (state, open, most_open) = (
            Arc::clone(&server.state),
            Arc::clone(&server.open),
            Arc::clone(&server.most_open),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (state, open, most_open) = (
                    Arc::clone(&state),
                    Arc::clone(&open),
                    Arc::clone(&most_open),
                );
                std::thread::spawn(move || {
                    let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                    most_open.fetch_max(now, Ordering::SeqCst);
                    state.lock().unwrap().sessions += 1;
                    let _ = session(stream, &state);
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        server
    }

    /// Script `recipient`'s first attempts; the attempt after the last fault succeeds.
    pub fn script(&self, recipient: &str, faults: &[Fault]) {
        self.state
            .lock()
            .unwrap()
            .faults
            .insert(recipient.to_string(), faults.to_vec());
    }

    /// Stop offering PIPELINING (RFC 2920) to new sessions.
    pub fn without_pipelining(&self) {
        self.state.lock().unwrap().no_pipelining = true;
    }

    /// Take `DATA` even after every `RCPT` was refused (see the field).
    pub fn take_data_without_recipients(&self) {
        self.state.lock().unwrap().data_without_recipients = true;
    }

    /// Envelopes whose commands came in one write, not each after the
    /// answer to the one before.
    pub fn pipelined(&self) -> usize {
        self.state.lock().unwrap().pipelined
    }

    /// Wait this long before accepting each message.
    pub fn slow(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    pub fn accepted(&self) -> Vec<Accepted> {
        self.state.lock().unwrap().accepted.clone()
    }

    /// How many messages each recipient got.
    pub fn per_recipient(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for message in self.accepted() {
            for to in message.to {
                *counts.entry(to).or_default() += 1;
            }
        }
        counts
    }

    pub fn sessions(&self) -> usize {
        self.state.lock().unwrap().sessions
    }

    pub fn faults_injected(&self) -> usize {
        self.state.lock().unwrap().faults_injected
    }

    /// The most sessions that were open at the same time.
    pub fn most_concurrent_sessions(&self) -> usize {
        self.most_open.load(Ordering::SeqCst)
    }
}

fn reply(stream: &mut TcpStream, line: &str) -> std::io::Result<()> {
    stream.write_all(line.as_bytes())?;
    stream.write_all(b"\r\n")?;
    stream.flush()
}

/// The fault for this attempt at `recipient`, counting the attempt.
fn next_fault(state: &Mutex<State>, recipient: &str) -> Option<Fault> {
    let mut state = state.lock().unwrap();
    let attempt = {
        let n = state.attempts.entry(recipient.to_string()).or_default();
        *n += 1;
        *n
    };
    let fault = state
        .faults
        .get(recipient)
        .and_then(|faults| faults.get(attempt - 1))
        .copied();
    if fault.is_some() {
        state.faults_injected += 1;
    }
    fault
}

fn address(argument: &str) -> String {
    let start = argument.find('<').map_or(0, |i| i + 1);
    let end = argument.rfind('>').unwrap_or(argument.len());
    argument[start..end].to_string()
}

fn session(mut stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    reply(&mut stream, "220 faulty.test ESMTP ready")?;
    let mut to: Vec<String> = Vec::new();
    let mut pending: Option<Fault> = None;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_string();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => {
                reply(&mut stream, "250-faulty.test")?;
                reply(&mut stream, "250-8BITMIME")?;
                if state.lock().unwrap().no_pipelining {
                    reply(&mut stream, "250 SMTPUTF8")?;
                } else {
                    reply(&mut stream, "250-SMTPUTF8")?;
                    reply(&mut stream, "250 PIPELINING")?;
                }
            }
            "HELO" => reply(&mut stream, "250 faulty.test")?,
            "MAIL" => {
                to.clear();
                pending = None;
                if reader.buffer().starts_with(b"RCPT") {
                    state.lock().unwrap().pipelined += 1;
                }
                reply(&mut stream, "250 2.1.0 OK")?;
            }
            "RCPT" => {
                let recipient = address(&command);
                match next_fault(state, &recipient) {
                    Some(Fault::Rcpt(code)) => {
                        reply(
                            &mut stream,
                            &format!("{code} test fault at RCPT for {recipient}"),
                        )?;
                        if code == 421 {
                            return Ok(()); // 421 closes the session
                        }
                    }
                    other => {
                        pending = other;
                        to.push(recipient);
                        reply(&mut stream, "250 2.1.5 OK")?;
                    }
                }
            }
            "DATA" => {
                if to.is_empty() && !state.lock().unwrap().data_without_recipients {
                    reply(&mut stream, "554 5.5.1 no valid recipients")?;
                    continue;
                }
                reply(&mut stream, "354 end with <CRLF>.<CRLF>")?;
                let mut data = Vec::new();
                let mut lines = 0;
                loop {
                    line.clear();
                    if reader.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    lines += 1;
                    if pending == Some(Fault::DropInData) && lines == 5 {
                        return Ok(()); // the connection drops mid-message
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                    data.extend_from_slice(unstuffed.as_bytes());
                }
                let delay = state.lock().unwrap().delay;
                std::thread::sleep(delay);
                match pending.take() {
                    Some(Fault::Data(code)) => {
                        reply(&mut stream, &format!("{code} test fault at end of DATA"))?;
                        if code == 421 {
                            return Ok(());
                        }
                    }
                    Some(Fault::Stall(wait)) => {
                        std::thread::sleep(wait);
                        return Ok(()); // never answered: the message was not taken
                    }
                    _ => {
                        // Record before answering: once "250" is sent the message is ours.
                        state.lock().unwrap().accepted.push(Accepted {
                            to: std::mem::take(&mut to),
                            data,
                        });
                        reply(&mut stream, "250 2.0.0 queued")?;
                    }
                }
                to.clear();
            }
            "RSET" => {
                to.clear();
                pending = None;
                reply(&mut stream, "250 2.0.0 OK")?;
            }
            "NOOP" => reply(&mut stream, "250 2.0.0 OK")?,
            "QUIT" => {
                reply(&mut stream, "221 2.0.0 bye")?;
                return Ok(());
            }
            _ => reply(&mut stream, "502 5.5.2 not implemented")?,
        }
    }
}
