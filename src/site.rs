//! The build pipeline, one step per stage: load config and content, render,
//! write. Reads like the product's data flow; each step is a call into the
//! module that owns it.

use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::content;
use crate::diagnostics::Problems;
use crate::model::Collection;
use crate::output::{self, WriteReport};
use crate::render;

/// Why a build did not happen.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The input is wrong; the output folder was not touched.
    #[error("{0}")]
    Invalid(Problems),
    #[error(transparent)]
    Render(#[from] render::feeds::FeedError),
    #[error(transparent)]
    Output(#[from] output::OutputError),
}

/// What a build did.
#[derive(Debug, Clone)]
pub struct BuildReport {
    pub shorts: usize,
    pub published: usize,
    pub files: WriteReport,
    pub elapsed: std::time::Duration,
}

/// `shorts build`: loads the content, renders everything first, then writes
/// only what changed. Any problem before the write leaves the output folder as it was.
pub fn build(config: &Config, now: DateTime<Utc>) -> Result<BuildReport, BuildError> {
    let started = Instant::now();
    let collection = content::load(config).map_err(BuildError::Invalid)?;
    tracing::debug!(shorts = collection.shorts.len(), "content loaded");
    build_collection(config, &collection, now, started)
}

/// Renders and writes an already loaded collection.
pub fn build_collection(
    config: &Config,
    collection: &Collection,
    now: DateTime<Utc>,
    started: Instant,
) -> Result<BuildReport, BuildError> {
    let files = render::feeds::render(collection, config, now)?;
    let report = output::write_site(&config.output_dir, &files)?;
    tracing::debug!(
        written = report.written,
        unchanged = report.unchanged,
        removed = report.removed,
        "output written"
    );
    Ok(BuildReport {
        shorts: collection.shorts.len(),
        published: collection.published(now).count(),
        files: report,
        elapsed: started.elapsed(),
    })
}

/// `shorts check`: every problem in the content and what it renders to, without writing.
pub fn check(config: &Config, now: DateTime<Utc>) -> Result<usize, BuildError> {
    let collection = content::load(config).map_err(BuildError::Invalid)?;
    render::feeds::render(&collection, config, now)?;
    Ok(collection.shorts.len())
}
