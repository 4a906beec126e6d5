//! `shorts check`: every problem in the config, the shorts, the templates and
//! the delivery settings, printed at once; writes nothing.

use shorts::config::Config;
use shorts::delivery::{self, Failure};
use shorts::diagnostics::{Problem, Problems};
use shorts::model::Collection;
use shorts::published::{self, Published};
use shorts::render::digest::DigestTemplates;
use shorts::render::subscription_mail::SubscriptionMail;
use shorts::site::{self, BuildError};

use super::{CliError, Ctx};

/// How many of the newest shorts the sample digest carries.
const SAMPLE_SHORTS: usize = 5;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also connect to the SMTP server: TLS, login and a NOOP, sending nothing.
    #[arg(long)]
    smtp: bool,
}

pub fn run(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
    let config = ctx.config;
    let mut problems = Problems::default();
    let collection = match site::check(config, ctx.now) {
        Ok(collection) => Some(collection),
        Err(BuildError::Invalid(p)) => {
            problems.extend(p);
            None
        }
        Err(other) => return Err(other.into()),
    };
    problems.extend(digest_problems(ctx, collection.as_ref()));
    problems.extend(Problems(shorts::content::digest_note::check_all(config)));
    problems.extend(subscription_mail_problems(config));
    problems.extend(delivery_problems(config));
    if !problems.is_empty() {
        return Err(CliError::invalid(problems.sorted())
            .consequence("fix them and run `shorts check` again"));
    }
    if let Some(collection) = &collection {
        let before = Published::load(&config.output_dir);
        for warning in published::vanished_warnings(&before, collection, ctx.now) {
            eprintln!("warning: {warning}");
        }
    }
    let shorts = collection.map_or(0, |c| c.shorts.len());
    ctx.say(&format!(
        "ok: config.toml, {} and the digest templates are valid",
        shorts::site::plural(shorts, "short", "shorts")
    ));
    if args.smtp {
        ctx.say(&format!("ok: {}", check_the_way_out(config)?));
    }
    Ok(())
}

/// `--smtp`: the transport proves it works without sending anything. A
/// refusal that the settings explain is a problem in them (exit 1); a server
/// that is down or busy is temporary (exit 75).
fn check_the_way_out(config: &Config) -> Result<String, CliError> {
    let transport = delivery::from_config(config)?;
    transport.check().map_err(|failure| match failure {
        Failure::Transient(_) | Failure::Unreachable(_) | Failure::Deferring(_) => {
            CliError::temporary(failure.to_string())
        }
        Failure::Misconfigured(_) | Failure::Fatal(_) | Failure::Permanent(_) => {
            CliError::invalid_message(failure.to_string())
        }
    })
}

/// The digest templates compile, and render a sample digest of the newest shorts.
fn digest_problems(ctx: &Ctx<'_>, collection: Option<&Collection>) -> Problems {
    let config = ctx.config;
    let templates = match DigestTemplates::load(config) {
        Ok(templates) => templates,
        Err(problems) => return problems,
    };
    let (Some(digest_config), Some(collection)) = (&config.digest, collection) else {
        return Problems::default();
    };
    let newest = collection.published(ctx.now).take(SAMPLE_SHORTS).collect();
    match templates.check(config, digest_config, newest, ctx.now) {
        Ok(()) => Problems::default(),
        Err(problem) => Problems(vec![problem]),
    }
}

/// The templates of the confirmation, welcome and manage emails compile
/// and render for a sample subscriber.
fn subscription_mail_problems(config: &Config) -> Problems {
    if config.digest.is_none() {
        return Problems::default();
    }
    match SubscriptionMail::load(config) {
        Ok(mail) => Problems(mail.check(config).err().into_iter().collect()),
        Err(problems) => problems,
    }
}

/// What would otherwise only show at send time: a DKIM key that cannot be
/// read, an SMTP password variable that is not set.
fn delivery_problems(config: &Config) -> Problems {
    let mut problems = Problems::default();
    if let Some(dkim) = &config.delivery.dkim
        && let Err(e) = delivery::compose::Signer::load(dkim)
    {
        problems.push(Problem::new(
            &config.path,
            None,
            format!("[delivery.dkim]: {e}"),
        ));
    }
    if let Err(e) = delivery::from_config(config) {
        problems.push(Problem::new(&config.path, None, e.to_string()));
    }
    problems
}
