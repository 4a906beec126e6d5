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
use crate::published::{self, Published};
use crate::render::feeds;
use crate::render::key::KeyHasher;
use crate::render::pages::{self, ArchivedDigest, PageTemplates};
use crate::render::{self, Output, Previous, Sink, key};
use crate::schedule::{self, Publication};
use crate::store::{Database, Ledger};
use crate::websub;

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
    #[error(transparent)]
    WebSub(#[from] websub::RecordError),
}

/// What a build did.
#[derive(Debug, Clone)]
pub struct BuildReport {
    pub shorts: usize,
    pub published: usize,
    /// Not published because `draft = true`.
    pub drafts: usize,
    /// Not published yet: dated after the build.
    pub scheduled: usize,
    pub files: WriteReport,
    pub elapsed: std::time::Duration,
    /// When this output goes stale by itself (a short's `date` or `updated`
    /// passing), so `shorts schedule` can build again then.
    pub next_publication: Option<Publication>,
}

impl BuildReport {
    /// "25 shorts (23 published, 1 draft, 1 scheduled)": why some are not on the site.
    pub fn shorts_summary(&self) -> String {
        let mut held = Vec::new();
        if self.drafts > 0 {
            held.push(plural(self.drafts, "draft", "drafts"));
        }
        if self.scheduled > 0 {
            held.push(format!("{} scheduled", self.scheduled));
        }
        let total = plural(self.shorts, "short", "shorts");
        if held.is_empty() {
            return format!("{total} (all published)");
        }
        format!(
            "{total} ({} published, {})",
            self.published,
            held.join(", ")
        )
    }
}

/// "1 short", "2 shorts": a count with its noun in the right number.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `shorts build`: loads the content, renders everything first, then writes
/// only what changed. Any problem before the write leaves the output folder as it was.
pub fn build(config: &Config, now: DateTime<Utc>) -> Result<BuildReport, BuildError> {
    let started = Instant::now();
    let collection = content::load(config).map_err(BuildError::Invalid)?;
    tracing::debug!(
        shorts = collection.shorts.len(),
        ms = started.elapsed().as_millis(),
        "content loaded"
    );
    build_collection(config, &collection, now, started)
}

/// Renders and writes an already loaded collection; does neither when the
/// live output was built from exactly these inputs.
pub fn build_collection(
    config: &Config,
    collection: &Collection,
    now: DateTime<Utc>,
    started: Instant,
) -> Result<BuildReport, BuildError> {
    let report = write_if_changed(config, collection, now)?;
    tracing::debug!(
        written = report.written,
        unchanged = report.unchanged,
        not_rendered = report.kept,
        removed = report.removed,
        "output written"
    );
    Ok(BuildReport {
        shorts: collection.shorts.len(),
        published: collection.published(now).count(),
        drafts: collection.shorts.iter().filter(|s| s.draft).count(),
        scheduled: collection
            .shorts
            .iter()
            .filter(|s| !s.draft && !s.is_published(now))
            .count(),
        files: report,
        elapsed: started.elapsed(),
        next_publication: schedule::next_publication(collection, now),
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
    write_if_changed(config, collection, now)
}

/// Renders and writes the site, unless the live output was built from
/// exactly these inputs (the digest archive included).
fn write_if_changed(
    config: &Config,
    collection: &Collection,
    now: DateTime<Utc>,
) -> Result<WriteReport, BuildError> {
    let digests = archived_digests(config)?;
    let vanished =
        published::vanished_warnings(&Published::load(&config.output_dir), collection, now);
    let stamp = inputs_stamp(config, collection, &digests, now);
    if let Some(unchanged) = output::current_files(&config.output_dir, &stamp) {
        tracing::info!("inputs unchanged since the last build; nothing to render");
        return Ok(WriteReport {
            unchanged,
            ..WriteReport::default()
        });
    }
    let report = write(config, collection, &digests, now, &stamp)?;
    for warning in vanished {
        tracing::warn!("{warning}");
    }
    Ok(report)
}

/// Renders the site straight into the next generation of the output folder,
/// which becomes the live one only if every file rendered. The feeds that
/// changed are recorded for the WebSub hubs before the switch.
fn write(
    config: &Config,
    collection: &Collection,
    digests: &[ArchivedDigest],
    now: DateTime<Utc>,
    stamp: &str,
) -> Result<WriteReport, BuildError> {
    let next = output::NextGeneration::begin(&config.output_dir);
    let emit = |file: Output| Ok(next.take(&file)?);
    let sink = Sink::new(Previous::new(next.earlier()), &emit);
    let started = Instant::now();
    render_site(config, collection, digests, now, &sink)?;
    tracing::debug!(ms = started.elapsed().as_millis(), "rendered");
    if !config.feeds.websub_hubs.is_empty() {
        let feeds = websub::record_changed(config, &next.changed())?;
        tracing::debug!(feeds, "changed feeds recorded for the WebSub hubs");
    }
    let report = next.finish(stamp)?;
    tracing::debug!(ms = started.elapsed().as_millis(), "switched");
    Ok(report)
}

/// A hash of everything the output is made from: this binary, the config
/// file, the site's templates, every short as loaded (and whether it is
/// published, and its `updated` shown, at `now`) and the digest archive.
/// Equal stamps give equal output, so a rebuild with nothing changed renders
/// nothing.
fn inputs_stamp(
    config: &Config,
    collection: &Collection,
    digests: &[ArchivedDigest],
    now: DateTime<Utc>,
) -> String {
    let mut hash = KeyHasher::new();
    hash.key(&key::build_key(&config.path, &config.templates_dir));
    for short in &collection.shorts {
        hash.text(&short.slug);
        hash.text(&short.id);
        hash.text(&short.aliases.join(" "));
        hash.text(&short.source.to_string_lossy());
        hash.text(&short.title);
        hash.text(&short.summary);
        hash.text(&short.date.to_rfc3339());
        hash.text(&format!("{:?}", short.updated_by(now)));
        hash.text(&short.track);
        for tag in &short.tags {
            hash.text(&tag.slug);
            hash.text(&tag.name);
        }
        hash.text(&short.body_html);
        hash.text(&format!(
            "{} {}",
            short.reading_minutes,
            short.is_published(now)
        ));
    }
    for digest in digests {
        hash.text(&format!("{} {}", digest.number, digest.slot.to_rfc3339()));
        hash.text(&digest.short_ids.join(" "));
    }
    hash.finish_hex()
}

/// `shorts check`: every problem in the content and what it renders to, without writing.
pub fn check(config: &Config, now: DateTime<Utc>) -> Result<Collection, BuildError> {
    let collection = content::load_without_writing(config).map_err(BuildError::Invalid)?;
    render_site(
        config,
        &collection,
        &[],
        now,
        &Sink::new(Previous::none(), &|_| Ok(())),
    )?;
    Ok(collection)
}

/// Every file of the site, each handed to `sink` as soon as it is rendered
/// (or kept, where `sink` has the last build's file from the same inputs):
/// the feeds, and the pages that link them.
pub fn render_site(
    config: &Config,
    collection: &Collection,
    digests: &[ArchivedDigest],
    now: DateTime<Utc>,
    sink: &Sink<'_, BuildError>,
) -> Result<(), BuildError> {
    let build = key::build_key(&config.path, &config.templates_dir);
    let templates = PageTemplates::load(config).map_err(BuildError::Invalid)?;
    // An `updated` still ahead is not shown yet; `schedule` rebuilds when it passes.
    let as_of = collection.as_of(now);
    let collection: &Collection = &as_of;
    let entries = feeds::entries(collection, config, now);
    let plan = feeds::plan(&entries, collection, config, now)?;
    let started = Instant::now();
    let (feeds, pages) = rayon::join(
        || {
            let feeds = feeds::render(&plan, config, build, sink);
            tracing::debug!(ms = started.elapsed().as_millis(), "feeds rendered");
            feeds
        },
        || {
            let pages = pages::render(
                &templates, collection, &plan, digests, config, now, build, sink,
            );
            tracing::debug!(ms = started.elapsed().as_millis(), "pages rendered");
            pages
        },
    );
    feeds.and(pages).map_err(|e| template_at_fault(config, e))
}

/// A page template that fails to render is a problem in the site's input,
/// reported at its line like any other, not a failed build.
fn template_at_fault(config: &Config, error: BuildError) -> BuildError {
    match error {
        BuildError::Pages(pages::PageError::Render {
            template, message, ..
        }) => BuildError::Invalid(Problems(vec![render::templates::render_problem(
            config, template, &message,
        )])),
        other => other,
    }
}

/// Every file of the site, in memory; for tests and tools that inspect the
/// output without writing it.
pub fn render_files(
    config: &Config,
    collection: &Collection,
    digests: &[ArchivedDigest],
    now: DateTime<Utc>,
) -> Result<Vec<render::OutputFile>, BuildError> {
    let files = std::sync::Mutex::new(Vec::new());
    let emit = |output: Output| {
        let file = output.into_file()?;
        files.lock().unwrap_or_else(|e| e.into_inner()).extend(file);
        Ok(())
    };
    render_site(
        config,
        collection,
        digests,
        now,
        &Sink::new(Previous::none(), &emit),
    )?;
    Ok(files.into_inner().unwrap_or_else(|e| e.into_inner()))
}

/// The digests the ledger says were sent, for the archive pages; none
/// before the first `digest send` has created the database.
fn archived_digests(config: &Config) -> Result<Vec<ArchivedDigest>, BuildError> {
    let Some(store) = Database::open_read_only(&config.database)? else {
        return Ok(Vec::new());
    };
    store
        .sent_digests()?
        .into_iter()
        .map(|digest| {
            // By the issue number readers see; the default cadence's are
            // the ledger's own until another cadence sends.
            Ok(ArchivedDigest {
                number: digest.issue,
                slot: digest.slot,
                short_ids: store.digest_short_ids(digest.number)?,
                note: content::digest_note::load(config, digest.issue, digest.slot)
                    .map_err(|problem| BuildError::Invalid(Problems(vec![problem])))?,
            })
        })
        .collect()
}
