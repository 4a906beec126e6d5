//! `shorts check`: every problem in the config, the shorts, the templates and
//! the delivery settings, printed at once; writes nothing.

use shorts::delivery;
use shorts::diagnostics::{Problem, Problems};
use shorts::render::digest::DigestTemplates;
use shorts::site::{self, BuildError};

use super::{CliError, Ctx};

pub fn run(ctx: &Ctx<'_>) -> Result<(), CliError> {
    let config = ctx.config;
    let mut problems = Problems::default();
    let shorts = match site::check(config, ctx.now) {
        Ok(shorts) => shorts,
        Err(BuildError::Invalid(p)) => {
            problems.extend(p);
            0
        }
        Err(other) => return Err(other.into()),
    };
    if let Err(p) = DigestTemplates::load(config) {
        problems.extend(p);
    }
    problems.extend(delivery_problems(config));
    if !problems.is_empty() {
        return Err(CliError::invalid(problems.sorted())
            .consequence("fix them and run `shorts check` again"));
    }
    ctx.say(&format!(
        "ok: config.toml, {shorts} shorts and the digest templates are valid"
    ));
    Ok(())
}

/// What would otherwise only show at send time: a DKIM key that cannot be
/// read, an SMTP password variable that is not set.
fn delivery_problems(config: &shorts::config::Config) -> Problems {
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
