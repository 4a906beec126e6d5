//! Skipping a test whose outside program (Chromium, nginx, Postfix) is not
//! installed — visibly: the test harness captures `eprintln!`, so a skipped
//! test would otherwise show as plainly "ok".
#![allow(dead_code)] // each test file uses its own subset

use std::io::Write as _;

/// Fails when `required_env` is set (`.ci/run` installs everything and sets
/// it); otherwise says on the terminal, past the harness's capture, that
/// the calling test skips and why. The caller then returns.
pub fn skip(required_env: &str, reason: &str) {
    assert!(
        std::env::var_os(required_env).is_none(),
        "{required_env} is set but {reason}"
    );
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let _ = writeln!(std::io::stderr(), "\nSKIPPED {test}: {reason}");
}
