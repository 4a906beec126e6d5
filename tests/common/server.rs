//! `shorts serve` started by a test on a free loopback port, stopped on drop.
#![allow(dead_code)] // each test file uses its own subset

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};

pub struct Server {
    pub child: Child,
    pub base: String,
    /// `http://HOST:PORT/metrics`, when started with its metrics.
    pub metrics: Option<String>,
}

impl Server {
    pub fn start(site: &Path, now: &str) -> Server {
        Server::start_with(site, now, &[])
    }

    /// [`Server::start`] with these environment variables set too.
    pub fn start_with(site: &Path, now: &str, env: &[(&str, &str)]) -> Server {
        Server::start_on(site, now, env, 0)
    }

    /// [`Server::start_with`] on loopback port `port` (0: a free one).
    pub fn start_on(site: &Path, now: &str, env: &[(&str, &str)], port: u16) -> Server {
        Server::launch(site, now, env, port, false)
    }

    /// [`Server::start`] with its metrics on a free loopback port.
    pub fn start_with_metrics(site: &Path, now: &str) -> Server {
        Server::launch(site, now, &[], 0, true)
    }

    fn launch(site: &Path, now: &str, env: &[(&str, &str)], port: u16, metrics: bool) -> Server {
        // Without metrics, none: parallel tests' servers need not race
        // for the default port.
        let metrics_bind = if metrics { "127.0.0.1:0" } else { "" };
        let mut child = crate::common::shorts_command(site, now)
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .args(["--metrics-bind", metrics_bind])
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            // `SHORTS_TEST_SERVE_LOG=1` shows serve's log, for debugging a test.
            .stderr(if std::env::var_os("SHORTS_TEST_SERVE_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .unwrap();
        // The pipe stays open (in `child`) while it runs: it may print more.
        let mut said = BufReader::new(child.stdout.as_mut().unwrap());
        let base = address_in(&mut said).trim_end_matches('/').to_string();
        let metrics = metrics.then(|| address_in(&mut said));
        drop(said);
        Server {
            child,
            base,
            metrics,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// The `http://` address on the next line `serve` prints.
fn address_in(said: &mut impl BufRead) -> String {
    let mut line = String::new();
    said.read_line(&mut line).unwrap();
    line.split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
