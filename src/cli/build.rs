//! `shorts build`: the feeds and pages into the output folder, under the run lock.

use shorts::diagnostics::display_path;
use shorts::lock::RunLock;
use shorts::site;
use shorts::site::plural;

use super::error::OnInvalid;
use super::{CliError, Ctx};

pub fn run(ctx: &Ctx<'_>) -> Result<(), CliError> {
    let config = ctx.config;
    // The same lock as publish and the daemon's rebuilds: two writers to
    // public/ at once could leave a mix of both.
    let _lock = RunLock::acquire(config.data_dir())?;
    let report = site::build(config, ctx.now)
        .on_invalid("nothing was written; the previous output is unchanged")?;
    ctx.say(&format!(
        "built {} into {}: {} written, {} unchanged, {} removed in {} ms",
        report.shorts_summary(),
        display_path(&config.output_dir),
        plural(report.files.written, "file", "files"),
        report.files.unchanged,
        report.files.removed,
        report.elapsed.as_millis()
    ));
    Ok(())
}
