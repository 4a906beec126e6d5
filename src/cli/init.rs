//! `shorts init [DIR]`: a new site that builds at once; never over a file.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use shorts::diagnostics::display_path;
use shorts::scaffold::{self, SiteSettings};

use super::CliError;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The folder to make the site in (made if missing).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The site's title, in feeds, pages and emails.
    #[arg(long, default_value = "My shorts")]
    title: String,
    /// Where the site will be served from (`[site] base_url`).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080/")]
    url: String,
    /// Your name, as the author of every short.
    #[arg(long, value_name = "NAME", default_value = "Your Name")]
    author: String,
    /// The site's time zone (IANA, like Europe/Berlin) [default: this machine's]
    #[arg(long, value_name = "ZONE")]
    timezone: Option<Tz>,
}

pub fn run(args: &Args, now: DateTime<Utc>, quiet: bool) -> Result<(), CliError> {
    let settings = SiteSettings {
        title: args.title.clone(),
        base_url: args.url.clone(),
        author: args.author.clone(),
        timezone: args.timezone.unwrap_or_else(scaffold::local_timezone),
    };
    let written = scaffold::init(&args.dir, &settings, now)?;
    if quiet {
        return Ok(());
    }
    let dir = display_path(&args.dir);
    let mut lines = vec![format!("created a site in {dir}:")];
    lines.extend(written.iter().map(|p| format!("  {}", display_path(p))));
    lines.push(format!(
        "next: cd {dir}, then `shorts build` and `shorts serve` (http://127.0.0.1:8080/shorts/);\n\
         `shorts new \"A title\"` writes a short; edit config.toml's title, base_url, \
         author, and the digest's from and postal_address before you publish"
    ));
    super::terminal::print_line(format_args!("{}", lines.join("\n")));
    Ok(())
}
