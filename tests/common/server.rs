//! `shorts serve` started by a test on a free loopback port, stopped on drop.
#![allow(dead_code)] // each test file uses its own subset

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};

pub struct Server {
    pub child: Child,
    pub base: String,
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
        let mut child = crate::common::shorts_command(site, now)
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
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
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .trim_end_matches('/')
            .to_string();
        Server { child, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
