//! `shorts inbound`: read mail that came back (bounces, complaints,
//! `mailto:` unsubscribes) from standard input or a Maildir, and act on it.
//!
//! From standard input (a mail server's pipe), every failure exits 75
//! (EX_TEMPFAIL), never 1 or 3: the server then keeps the message and tries
//! again, where any other code would bounce it — and a bounce of a bounce
//! is thrown away. A message that was read but not acted on is kept in
//! `[inbound] keep_dir` and the command succeeds.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context as _;
use shorts::inbound::{self, Context, Effect};
use shorts::store::Database;
use shorts::tokens::Secret;

use super::{CliError, Ctx};

pub const AFTER_HELP: &str = "\
Reading from standard input, every failure exits 75 so that the mail server keeps the \
message and tries again. Postfix: in master.cf, `shorts-inbound unix - n n - - pipe \
flags=Rq user=shorts argv=/usr/local/bin/shorts --config /srv/site/config.toml inbound`; \
see the README's \"Mail that comes back\".";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Read every message in this Maildir (new/ and cur/) and move each into
    /// its `.processed` or `.unrecognised` sub-folder. Without it, one
    /// message is read from standard input.
    #[arg(long, value_name = "DIR")]
    maildir: Option<PathBuf>,
}

impl Args {
    /// Whether a mail server is waiting on the exit code.
    pub fn reads_stdin(&self) -> bool {
        self.maildir.is_none()
    }
}

pub fn run(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
    let config = ctx.config;
    let secret = Secret::load(config.data_dir(), &config.database)?;
    let store = Database::open(&config.database)?;
    let inbound = Context {
        store: &store,
        secret: &secret,
        bounce: config.delivery.bounce_address.as_ref(),
        settings: &config.inbound,
        now: ctx.now,
    };
    match &args.maildir {
        Some(dir) => maildir(ctx, &inbound, dir),
        None => stdin(ctx, &inbound),
    }
}

fn stdin(ctx: &Ctx<'_>, inbound: &Context<'_>) -> Result<(), CliError> {
    let mut raw = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut raw)
        .context("reading the message from standard input")?;
    let handled = inbound::handle(&raw, "stdin", inbound)?;
    if let Effect::Unrecognised(_) = handled.effect {
        let dir = ctx.config.inbound_keep_dir();
        let kept = inbound::keep(&dir, &raw, ctx.now)?;
        ctx.say(&format!("{handled} (kept in {})", kept.display()));
    } else {
        ctx.say(&handled.to_string());
    }
    Ok(())
}

fn maildir(ctx: &Ctx<'_>, inbound: &Context<'_>, dir: &std::path::Path) -> Result<(), CliError> {
    let moved = inbound::process_maildir(dir, inbound, |moved| {
        ctx.say(&format!("{} → {}", moved.handled, moved.to.display()));
    })?;
    let unrecognised = moved
        .iter()
        .filter(|m| matches!(m.handled.effect, Effect::Unrecognised(_)))
        .count();
    ctx.say(&format!(
        "{} message{} read, {} acted on or recorded, {unrecognised} not recognised (in {})",
        moved.len(),
        if moved.len() == 1 { "" } else { "s" },
        moved.len() - unrecognised,
        dir.join(inbound::mailbox::UNRECOGNISED).display()
    ));
    Ok(())
}
