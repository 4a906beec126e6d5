//! The only place that reads the time.
//!
//! Everything else takes `now` as an argument, so builds, digest selection and
//! the scheduler can be tested with a fake clock. `SHORTS_NOW` (an RFC 3339
//! date-time) sets the clock for a whole process: it reads that instant at
//! start and runs on in real time from there, so a short-lived command sees a
//! fixed time and `shorts schedule` can be started just before a slot.

use std::sync::OnceLock;
use std::time::Instant;

use chrono::{DateTime, Utc};

pub const NOW_ENV: &str = "SHORTS_NOW";

/// The current time, or `SHORTS_NOW` plus the time since the process first asked.
pub fn now() -> anyhow::Result<DateTime<Utc>> {
    static START: OnceLock<Instant> = OnceLock::new();
    let started = *START.get_or_init(Instant::now);
    match std::env::var(NOW_ENV) {
        Ok(value) => {
            let pinned = DateTime::parse_from_rfc3339(value.trim()).map_err(|e| {
                anyhow::anyhow!(
                    "{NOW_ENV}={value:?} is not an RFC 3339 date-time (e.g. 2026-06-08T09:00:00Z): {e}"
                )
            })?;
            let elapsed = chrono::Duration::from_std(started.elapsed()).unwrap_or_default();
            Ok(pinned.with_timezone(&Utc) + elapsed)
        }
        #[allow(clippy::disallowed_methods)] // this module is the clock
        Err(_) => Ok(Utc::now()),
    }
}
