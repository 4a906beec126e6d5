//! The tags the site uses, for the preferences page: read from the search
//! index the last build wrote into `public/`, not from the content, because
//! `serve` runs for weeks while `publish` rebuilds the site beside it. Read
//! again only when the file's modification time or size changes.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::model::Tag;
use crate::paths;
use crate::render::pages::search_index_tags;

/// The last tags read.
#[derive(Default)]
pub struct SiteTags {
    cached: Mutex<Option<Cached>>,
}

/// Tags as read from the index when it had this modification time and size.
struct Cached {
    stamp: (SystemTime, u64),
    tags: Arc<Vec<Tag>>,
}

impl SiteTags {
    /// The tags of the site built into `output_dir`, by slug; none while
    /// there is no build (or the index cannot be read, which is logged: the
    /// page then offers the reader's own tags only, rather than failing).
    pub fn read(&self, output_dir: &Path) -> Arc<Vec<Tag>> {
        let path = output_dir.join(paths::search_index());
        let Ok(stamp) = std::fs::metadata(&path).and_then(|m| Ok((m.modified()?, m.len()))) else {
            return Arc::default();
        };
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hit) = cached.as_ref()
            && hit.stamp == stamp
        {
            return Arc::clone(&hit.tags);
        }
        let tags = Arc::new(load(&path));
        *cached = Some(Cached {
            stamp,
            tags: Arc::clone(&tags),
        });
        tags
    }
}

fn load(path: &Path) -> Vec<Tag> {
    let read = std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| search_index_tags(&bytes).map_err(|e| e.to_string()));
    read.unwrap_or_else(|e| {
        tracing::warn!(
            "{}: expected the search index `shorts build` writes ({e}); the preferences page offers no site tags until the next build",
            path.display()
        );
        Vec::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_each_rebuild_of_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let tags = SiteTags::default();
        assert!(tags.read(dir.path()).is_empty(), "no build yet");
        let index = dir.path().join(paths::search_index());
        std::fs::create_dir_all(index.parent().unwrap()).unwrap();
        std::fs::write(&index, r#"[{"tags":["rust"],"tag_names":["Rust"]}]"#).unwrap();
        let slugs = |tags: &[Tag]| tags.iter().map(|t| t.slug.clone()).collect::<Vec<_>>();
        assert_eq!(slugs(&tags.read(dir.path())), ["rust"]);
        // Another length is another file, whatever the clock's resolution.
        std::fs::write(
            &index,
            r#"[{"tags":["rust","gqa"],"tag_names":["Rust","GQA"]}]"#,
        )
        .unwrap();
        assert_eq!(slugs(&tags.read(dir.path())), ["gqa", "rust"]);
        std::fs::write(&index, "not json").unwrap();
        assert!(tags.read(dir.path()).is_empty(), "unreadable: no tags");
    }
}
