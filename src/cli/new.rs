//! `shorts new "Title"`: a draft short, dated now; never over a file.

use shorts::diagnostics::display_path;
use shorts::scaffold::{self, NewShort};

use super::{CliError, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The short's title; its slug (file name and URL) is made from it.
    title: String,
    /// The track it belongs to (a slug of config.toml's [[tracks]]) [default: the only one]
    #[arg(long, short)]
    track: Option<String>,
    /// Its tags, separated by commas.
    #[arg(long, value_delimiter = ',', value_name = "TAG,…")]
    tags: Vec<String>,
    /// Its summary, one or two sentences [default: a placeholder to replace]
    #[arg(long)]
    summary: Option<String>,
    /// The slug, when the one made from the title will not do.
    #[arg(long)]
    slug: Option<String>,
}

pub fn run(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
    let short = NewShort {
        title: args.title.clone(),
        track: args.track.clone(),
        tags: args.tags.clone(),
        summary: args.summary.clone(),
        slug: args.slug.clone(),
    };
    let path = scaffold::new_short(ctx.config, &short, ctx.now)?;
    ctx.say(&format!(
        "wrote {} (a draft: delete its `draft = true` line to publish it)",
        display_path(&path)
    ));
    Ok(())
}
