//! What the live site published: every short's address (its slug, and each
//! alias that redirects to it) with the id of the short there. Kept in the
//! output's private folder (`.shorts/published.tsv`), written with every
//! build and switched live with it, so it always describes the site readers
//! see.
//!
//! Read to keep a short's id across renames (a slug it was published under
//! keeps its id when it becomes an alias, or when its alias is dropped
//! later), for `serve`'s redirects, and to warn when an address the site
//! published disappears. Must not: judge the content (that is `content`'s),
//! or be needed: a missing or damaged record is an empty one, and ids then
//! come from the front matter alone.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::model::{Collection, Short};
use crate::paths;

/// Addresses (slugs) and what is at each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    by_slug: BTreeMap<String, Place>,
}

/// What one published slug is: the page of the short `target`, or a
/// redirect to it when `target` is another slug; `id` is that short's.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Place {
    id: String,
    target: String,
}

impl Published {
    /// The record of the live output in `output_dir`, or an empty one.
    pub fn load(output_dir: &Path) -> Published {
        match std::fs::read_to_string(output_dir.join(paths::PUBLISHED)) {
            Ok(text) => Published::parse(&text),
            Err(_) => Published::default(),
        }
    }

    /// What a build of `collection` at `now` publishes.
    pub fn of(collection: &Collection, now: DateTime<Utc>) -> Published {
        let mut by_slug = BTreeMap::new();
        for short in collection.published(now) {
            for slug in std::iter::once(&short.slug).chain(&short.aliases) {
                let place = Place {
                    id: short.id.clone(),
                    target: short.slug.clone(),
                };
                by_slug.insert(slug.clone(), place);
            }
        }
        Published { by_slug }
    }

    /// Lines of `slug <TAB> id <TAB> target`; slugs never hold a tab or a
    /// line break, so a line that does not split in three is foreign and
    /// skipped.
    fn parse(text: &str) -> Published {
        let by_slug = text
            .lines()
            .filter_map(|line| {
                let mut fields = line.split('\t');
                let (slug, id, target) = (fields.next()?, fields.next()?, fields.next()?);
                let place = Place {
                    id: id.to_string(),
                    target: target.to_string(),
                };
                (fields.next().is_none() && !slug.is_empty()).then(|| (slug.to_string(), place))
            })
            .collect();
        Published { by_slug }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(self.by_slug.len() * 48);
        for (slug, place) in &self.by_slug {
            out.push_str(&format!("{slug}\t{}\t{}\n", place.id, place.target));
        }
        out.into_bytes()
    }

    /// The id of the short published at `slug`, if one was.
    pub fn id_at(&self, slug: &str) -> Option<&str> {
        self.by_slug.get(slug).map(|place| place.id.as_str())
    }

    /// The slug whose page `slug` redirects to, when it is an alias.
    pub fn redirect(&self, slug: &str) -> Option<&str> {
        let place = self.by_slug.get(slug)?;
        (place.target != slug).then_some(place.target.as_str())
    }

    /// The slugs published here that `next` no longer answers for, with
    /// the id that was there: addresses that would turn into 404s.
    pub fn vanished_from<'a>(
        &'a self,
        next: &'a Published,
    ) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.by_slug
            .iter()
            .filter(|(slug, _)| !next.by_slug.contains_key(*slug))
            .map(|(slug, place)| (slug.as_str(), place.id.as_str()))
    }
}

/// Addresses `before` published that a build of `collection` at `now`
/// would turn into 404s, each as a warning for the author.
pub fn vanished_warnings(
    before: &Published,
    collection: &Collection,
    now: DateTime<Utc>,
) -> Vec<String> {
    let next = Published::of(collection, now);
    before
        .vanished_from(&next)
        .map(|(slug, id)| {
            format!(
                "`{}` was published and would now answer 404: if its short was renamed, add `aliases = [\"{slug}\"]` to its front matter (its id is `{id}`, which keeps feeds and digests from taking it for a new one); if it was withdrawn, this is expected",
                paths::short(slug)
            )
        })
        .collect()
}

/// Gives each short without an `id` in its front matter the id it was
/// published under: the one recorded at its slug or at one of its aliases
/// (so a chain of renames keeps the first), else its oldest alias's (the
/// record may be gone, as on a fresh checkout), else its slug.
pub fn resolve_ids(shorts: &mut [Short], before: &Published) {
    for short in shorts.iter_mut().filter(|s| !s.id_is_declared) {
        let recorded = std::iter::once(&short.slug)
            .chain(&short.aliases)
            .find_map(|slug| before.id_at(slug));
        short.id = match (recorded, short.aliases.first()) {
            (Some(id), _) => id.to_string(),
            (None, Some(oldest)) => oldest.clone(),
            (None, None) => short.slug.clone(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Collection, Track};

    fn short(slug: &str, aliases: &[&str]) -> Short {
        let date = DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z").unwrap();
        Short {
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            ..Short::sample(slug, "llm", date)
        }
    }

    fn collection(shorts: Vec<Short>) -> Collection {
        let track = Track {
            slug: "llm".into(),
            title: "LLM".into(),
            description: String::new(),
        };
        Collection::new(vec![track], shorts)
    }

    fn now() -> DateTime<Utc> {
        "2026-07-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_chain_of_renames_keeps_the_first_id() {
        // Published as `a`; renamed `b` with `a` as an alias; then `c`
        // with only `b`: the record still knows `b` was `a`'s.
        let mut shorts = vec![short("a", &[])];
        resolve_ids(&mut shorts, &Published::default());
        let first = Published::of(&collection(shorts), now());
        let mut shorts = vec![short("b", &["a"])];
        resolve_ids(&mut shorts, &first);
        assert_eq!(shorts[0].id, "a");
        let second = Published::of(&collection(shorts), now());
        assert_eq!(second.redirect("a"), Some("b"));
        assert_eq!(second.redirect("b"), None);
        let mut shorts = vec![short("c", &["b"])];
        resolve_ids(&mut shorts, &second);
        assert_eq!(shorts[0].id, "a");
        let third = Published::of(&collection(shorts), now());
        let vanished: Vec<_> = second.vanished_from(&third).collect();
        assert_eq!(vanished, [("a", "a")]);
    }

    #[test]
    fn without_a_record_the_oldest_alias_is_the_id_and_a_declared_id_always_wins() {
        let mut shorts = vec![short("c", &["a", "b"]), short("d", &[])];
        shorts[1].id = "kept".into();
        shorts[1].id_is_declared = true;
        resolve_ids(&mut shorts, &Published::default());
        assert_eq!(shorts[0].id, "a");
        assert_eq!(shorts[1].id, "kept");
    }

    #[test]
    fn the_record_reads_back_what_it_wrote_and_skips_foreign_lines() {
        let mut shorts = vec![short("b", &["a"])];
        resolve_ids(&mut shorts, &Published::default());
        let published = Published::of(&collection(shorts), now());
        let mut text = String::from_utf8(published.to_bytes()).unwrap();
        assert_eq!(text, "a\ta\tb\nb\ta\tb\n");
        text.push_str("garbage\n\tx\ty\nx\ty\tz\tw\n");
        assert_eq!(Published::parse(&text), published);
    }
}
