//! What a digest holds for one reader: the shorts they follow (by track or
//! by tag) grouped into sections, one per track.
//!
//! The one definition of a digest's sections. A subscriber's copy, the
//! archive page (a reader who follows everything), the rule that skips a
//! subscriber with nothing new (no sections) and the key under which copies
//! are shared all come from [`sections`], so a change to what a subscriber
//! follows is made here once. Pure: no rendering, no store.

use super::{Short, Track};

/// One track of a digest and its shorts there, [newest first](Short::newest_first).
#[derive(Debug, Clone)]
pub struct Section<'a> {
    pub track: &'a Track,
    pub shorts: Vec<&'a Short>,
}

/// The shorts among `shorts` that `follows` accepts, grouped by track in
/// config order; a track with none of them is left out. A reader who
/// follows a tag gets a section for each track a tagged short is in.
pub fn sections<'a>(
    shorts: &[&'a Short],
    tracks: &'a [Track],
    follows: impl Fn(&Short) -> bool,
) -> Vec<Section<'a>> {
    tracks
        .iter()
        .filter_map(|track| {
            let mut in_track: Vec<&Short> = shorts
                .iter()
                .copied()
                .filter(|s| s.track == track.slug && follows(s))
                .collect();
            in_track.sort_by(|a, b| Short::newest_first(a, b));
            (!in_track.is_empty()).then_some(Section {
                track,
                shorts: in_track,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn track(slug: &str) -> Track {
        Track {
            slug: slug.to_string(),
            title: slug.to_uppercase(),
            description: String::new(),
        }
    }

    fn short(slug: &str, track: &str, date: &str) -> Short {
        Short::sample(
            slug,
            track,
            DateTime::parse_from_rfc3339(date).expect("a test date"),
        )
    }

    fn slugs<'a>(sections: &[Section<'a>]) -> Vec<(&'a str, Vec<&'a str>)> {
        sections
            .iter()
            .map(|s| {
                let shorts = s.shorts.iter().map(|s| s.slug.as_str()).collect();
                (s.track.slug.as_str(), shorts)
            })
            .collect()
    }

    #[test]
    fn sections_follow_config_order_with_shorts_newest_first() {
        let tracks = [track("llm"), track("rag"), track("ops")];
        let shorts = [
            short("old", "rag", "2026-06-01T08:00:00+02:00"),
            short("b", "llm", "2026-06-03T08:00:00+02:00"),
            short("a", "llm", "2026-06-03T08:00:00+02:00"),
            short("new", "rag", "2026-06-05T08:00:00+02:00"),
        ];
        let shorts: Vec<&Short> = shorts.iter().collect();
        assert_eq!(
            slugs(&sections(&shorts, &tracks, |_| true)),
            [("llm", vec!["a", "b"]), ("rag", vec!["new", "old"])],
            "ops has nothing, so no section; a tie goes by slug"
        );
        assert_eq!(
            slugs(&sections(&shorts, &tracks, |s| s.track != "llm")),
            [("rag", vec!["new", "old"])]
        );
        assert_eq!(
            slugs(&sections(&shorts, &tracks, |s| s.slug != "b")),
            [("llm", vec!["a"]), ("rag", vec!["new", "old"])],
            "a section holds only the shorts followed"
        );
        assert!(sections(&shorts, &tracks, |s| s.track == "ops").is_empty());
    }
}
