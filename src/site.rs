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
use crate::render::feeds;
use crate::render::pages::{self, ArchivedDigest, PageTemplates};
use crate::store::Store;

/// Why a build did not happen.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The input is wrong; the output folder was not touched.
    #[error("{0}")]
    Invalid(Problems),
    #[error(transparent)]
    Render(#[from] render::feeds::FeedError),
    #[error(transparent)]
    Pages(#[from] render::pages::PageError),
    #[error("reading the digest archive: {0}")]
    Archive(#[from] crate::store::StoreError),
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
    let files = render_site(config, collection, &archived_digests(config)?, now)?;
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

/// Rebuilds after a digest went out, so its archive page and the digest
/// feed exist as soon as subscribers can click "Past digests". Only the
/// archive files change; the rest is already current and is not rewritten.
pub fn refresh_archive(
    config: &Config,
    collection: &Collection,
    now: DateTime<Utc>,
) -> Result<WriteReport, BuildError> {
    let files = render_site(config, collection, &archived_digests(config)?, now)?;
    Ok(output::write_site(&config.output_dir, &files)?)
}

/// `shorts check`: every problem in the content and what it renders to, without writing.
pub fn check(config: &Config, now: DateTime<Utc>) -> Result<usize, BuildError> {
    let collection = content::load(config).map_err(BuildError::Invalid)?;
    render_site(config, &collection, &[], now)?;
    Ok(collection.shorts.len())
}

/// Every file of the site: the feeds, then the pages that link them.
pub fn render_site(
    config: &Config,
    collection: &Collection,
    digests: &[ArchivedDigest],
    now: DateTime<Utc>,
) -> Result<Vec<render::OutputFile>, BuildError> {
    let templates = PageTemplates::load(config).map_err(BuildError::Invalid)?;
    let entries = feeds::entries(collection, config, now);
    let plan = feeds::plan(&entries, collection, config)?;
    let mut files = feeds::render(&plan, config)?;
    files.extend(pages::render(
        &templates, collection, &plan, digests, config, now,
    )?);
    Ok(files)
}

/// The digests the ledger says were sent, for the archive pages; none
/// before the first `digest send` has created the database.
fn archived_digests(config: &Config) -> Result<Vec<ArchivedDigest>, BuildError> {
    let Some(store) = Store::open_read_only(&config.database)? else {
        return Ok(Vec::new());
    };
    store
        .sent_digests()?
        .into_iter()
        .map(|digest| {
            Ok(ArchivedDigest {
                number: digest.number,
                slot: digest.slot,
                slugs: store.digest_slugs(digest.number)?,
            })
        })
        .collect()
}
