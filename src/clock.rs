//! The only place that reads the time.
//!
//! Everything else takes `now` as an argument, so builds, digest selection and
//! the scheduler can be tested with a fixed clock. `SHORTS_NOW` (an RFC 3339
//! date-time) pins the clock for a whole process; tests and reproducible builds
//! use it.

use chrono::{DateTime, Utc};

pub const NOW_ENV: &str = "SHORTS_NOW";

/// The current time, or the time `SHORTS_NOW` pins.
pub fn now() -> anyhow::Result<DateTime<Utc>> {
    match std::env::var(NOW_ENV) {
        Ok(value) => DateTime::parse_from_rfc3339(value.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                anyhow::anyhow!(
                    "{NOW_ENV}={value:?} is not an RFC 3339 date-time (e.g. 2026-06-08T09:00:00Z): {e}"
                )
            }),
        #[allow(clippy::disallowed_methods)] // this module is the clock
        Err(_) => Ok(Utc::now()),
    }
}
