//! When things are due: slots of `[digest] schedule`, a cron expression read
//! in the site's time zone, and the next [`Publication`], when a short's
//! `date` or `updated` passes and the pages and feeds change by themselves.
//!
//! Pure: every function takes the instant it reasons about and reads no file
//! and no clock. Daylight-saving changes follow croner's rules: a slot inside
//! a skipped hour runs once at the first valid minute after it, and a slot
//! inside a repeated hour runs once.

use chrono::{DateTime, SubsecRound, Utc};
use chrono_tz::Tz;
use croner::Cron;

use crate::model::Collection;

#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    tz: Tz,
}

impl Schedule {
    pub fn new(cron: Cron, tz: Tz) -> Self {
        Schedule { cron, tz }
    }

    /// `at` in the site's zone, to the second: croner carries the fraction
    /// of a second of what it is given into the slot it finds, and a slot is
    /// on the minute (a clock read at 08:00:00.25 is in the 08:00 slot).
    fn local(&self, at: DateTime<Utc>) -> DateTime<Tz> {
        at.trunc_subsecs(0).with_timezone(&self.tz)
    }

    /// The latest slot at or before `at`.
    pub fn latest_slot(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&self.local(at), true)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The slot before `slot`.
    pub fn previous_slot(&self, slot: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&self.local(slot), false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The first slot after `at`.
    pub fn next_slot(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&self.local(at), false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// The next instant after which a build gives different pages and feeds
/// without any file changing: a future-dated short goes live, or a future
/// `updated` is reached. Drafts never count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    pub at: DateTime<Utc>,
    /// The short it is for; the first by slug when several fall at `at`.
    pub slug: String,
    pub kind: PublicationKind,
    /// How many more shorts change at the same instant.
    pub more: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PublicationKind {
    /// Its `date` passes: it appears.
    Published,
    /// Its `updated` passes: it shows as updated.
    Updated,
}

impl std::fmt::Display for Publication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            PublicationKind::Published => "is published",
            PublicationKind::Updated => "is updated",
        };
        write!(f, "short {} {what}", self.slug)?;
        if self.more > 0 {
            write!(f, " (and {} more at the same time)", self.more)?;
        }
        Ok(())
    }
}

/// The first [`Publication`] strictly after `now`, if any short is dated or
/// updated later than `now`.
pub fn next_publication(collection: &Collection, now: DateTime<Utc>) -> Option<Publication> {
    let mut upcoming: Vec<(DateTime<Utc>, PublicationKind, &str)> = collection
        .shorts
        .iter()
        .filter(|short| !short.draft)
        .flat_map(|short| {
            [
                (Some(short.date), PublicationKind::Published),
                (short.updated, PublicationKind::Updated),
            ]
            .into_iter()
            .filter_map(move |(at, kind)| Some((at?.to_utc(), kind, short.slug.as_str())))
        })
        .filter(|(at, _, _)| *at > now)
        .collect();
    upcoming.sort();
    let &(at, kind, slug) = upcoming.first()?;
    Some(Publication {
        at,
        slug: slug.to_string(),
        kind,
        more: upcoming.iter().filter(|(t, _, _)| *t == at).count() - 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Short;
    use chrono::TimeZone;

    fn schedule(expr: &str, tz: &str) -> Schedule {
        Schedule::new(expr.parse().unwrap(), tz.parse().unwrap())
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn weekly_slots_in_the_site_zone() {
        let s = schedule("0 8 * * MON", "Europe/Berlin");
        // Monday 2026-06-08 08:00 in Berlin is 06:00 UTC.
        let slot = utc("2026-06-08T06:00:00Z");
        assert_eq!(s.latest_slot(utc("2026-06-10T12:00:00Z")), Some(slot));
        assert_eq!(
            s.latest_slot(slot),
            Some(slot),
            "a slot is due at its own instant"
        );
        assert_eq!(s.previous_slot(slot), Some(utc("2026-06-01T06:00:00Z")));
        assert_eq!(s.next_slot(slot), Some(utc("2026-06-15T06:00:00Z")));
        assert_eq!(
            s.next_slot(utc("2026-06-08T05:59:58.25Z")),
            Some(slot),
            "on the minute, whatever the fraction of a second of `at`"
        );
        assert_eq!(s.latest_slot(utc("2026-06-10T12:00:00.25Z")), Some(slot));
        assert_eq!(s.latest_slot(utc("2026-06-08T06:00:00.25Z")), Some(slot));
        assert_eq!(
            s.next_slot(utc("2026-06-08T06:00:00.25Z")),
            Some(utc("2026-06-15T06:00:00Z"))
        );
    }

    #[test]
    fn slot_times_follow_daylight_saving() {
        let s = schedule("0 8 * * MON", "Europe/Berlin");
        // Clocks went back on 2026-10-25: 08:00 is 07:00 UTC from then on.
        assert_eq!(
            s.next_slot(utc("2026-10-20T00:00:00Z")),
            Some(utc("2026-10-26T07:00:00Z"))
        );
        let daily = schedule("30 2 * * *", "Europe/Berlin");
        // 02:30 did not exist on 2026-03-29; the slot runs once, right after the gap.
        let slots: Vec<_> = (0..3)
            .scan(
                Utc.with_ymd_and_hms(2026, 3, 27, 12, 0, 0).unwrap(),
                |t, _| {
                    *t = daily.next_slot(*t)?;
                    Some(*t)
                },
            )
            .collect();
        assert_eq!(slots.len(), 3);
        assert_eq!(slots[0], utc("2026-03-28T01:30:00Z"));
        assert_eq!(slots[1], utc("2026-03-29T01:00:00Z"), "03:00 CEST, once");
        assert_eq!(slots[2], utc("2026-03-30T00:30:00Z"));
    }

    fn short(slug: &str, date: &str, updated: Option<&str>) -> Short {
        let parse = |s: &str| DateTime::parse_from_rfc3339(s).unwrap();
        Short {
            updated: updated.map(parse),
            ..Short::sample(slug, "llm", parse(date))
        }
    }

    #[test]
    fn the_next_publication_is_the_first_date_or_update_after_now() {
        let now = utc("2026-06-08T09:59:50Z");
        let mut draft = short("draft", "2026-06-08T09:59:55Z", None);
        draft.draft = true;
        let collection = Collection::new(
            Vec::new(),
            vec![
                short("old", "2026-06-01T08:00:00Z", Some("2026-06-08T10:00:30Z")),
                short("gqa-kv", "2026-06-08T10:00:00+00:00", None),
                short("later", "2026-06-09T10:00:00Z", None),
                short("at-now", "2026-06-08T09:59:50Z", None),
                draft,
            ],
        );
        let next = next_publication(&collection, now).unwrap();
        assert_eq!(next.at, utc("2026-06-08T10:00:00Z"), "drafts never count");
        assert_eq!(next.to_string(), "short gqa-kv is published");
        let next = next_publication(&collection, next.at).unwrap();
        assert_eq!(next.to_string(), "short old is updated");
        assert_eq!(next.at, utc("2026-06-08T10:00:30Z"));
        let next = next_publication(&collection, next.at).unwrap();
        assert_eq!(next.to_string(), "short later is published");
        assert_eq!(next_publication(&collection, next.at), None);
    }

    #[test]
    fn shorts_at_the_same_instant_are_one_publication() {
        let at = "2026-06-08T12:00:00+02:00";
        let collection = Collection::new(
            Vec::new(),
            vec![
                short("b", at, None),
                short("a", "2026-06-08T08:00:00Z", Some(at)),
                short("c", at, None),
            ],
        );
        let next = next_publication(&collection, utc("2026-06-08T09:00:00Z")).unwrap();
        assert_eq!(next.at, utc("2026-06-08T10:00:00Z"));
        assert_eq!(
            next.to_string(),
            "short b is published (and 2 more at the same time)"
        );
    }
}
