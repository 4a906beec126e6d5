//! When digests are due: slots of `[digest] schedule`, a cron expression read
//! in the site's time zone.
//!
//! Pure: every function takes the instant it reasons about. Daylight-saving
//! changes follow croner's rules: a slot inside a skipped hour runs once at the
//! first valid minute after it, and a slot inside a repeated hour runs once.

use chrono::{DateTime, SubsecRound, Utc};
use chrono_tz::Tz;
use croner::Cron;

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

#[cfg(test)]
mod tests {
    use super::*;
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
}
