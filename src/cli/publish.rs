//! `shorts publish`: what cron runs. Build, then send the digest if one is due.

use shorts::delivery;
use shorts::publish;

use super::digest::unfinished_digest;
use super::error::OnInvalid;
use super::terminal::{ProgressLine, stop_on_signals};
use super::{CliError, Ctx};

pub fn run(ctx: &Ctx<'_>) -> Result<(), CliError> {
    let config = ctx.config;
    let bar = ProgressLine::new(ctx.quiet);
    let result = publish::publish(
        config,
        ctx.now,
        stop_on_signals(),
        &|| delivery::from_config(config),
        &|n, done, total| bar.update(n, done, total),
    );
    bar.finish();
    let report =
        result.on_invalid("nothing was written or sent; the previous output is unchanged")?;
    ctx.say(&report.to_string());
    match report.digest.as_ref().and_then(unfinished_digest) {
        Some(error) => Err(error),
        None => Ok(()),
    }
}
