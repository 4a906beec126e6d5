//! `shorts schedule`: the daemon, until SIGTERM or SIGINT.

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use shorts::clock;
use shorts::daemon::Daemon;
use shorts::delivery;

use super::terminal::stop_on_signals;
use super::{CliError, Ctx};

pub fn run(ctx: &Ctx<'_>) -> Result<(), CliError> {
    let config = ctx.config;
    // Every publish would stop on it: said once, at start (exit 1), rather
    // than every retry while nothing is built.
    shorts::tokens::Secret::load(config.data_dir(), &config.database)?;
    let clock = || clock::now().unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let daemon = Daemon {
        config,
        cancel: stop_on_signals(),
        clock: &clock,
        transport: &|| delivery::from_config(config),
    };
    daemon.run().context("watching content/ and templates/")?;
    Ok(())
}
