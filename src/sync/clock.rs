//! "Today" for window arithmetic: Rotessa's date, the date in Rotessa's time zone
//! (`sync.time_zone`, Central Time by default: Rotessa runs its banking day there), overridable
//! so that the simulator, the demo and tests can move time (SPEC.md "Sync streams").

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::config::SyncSettings;

/// Where the sync gets today's date.
#[derive(Clone)]
pub enum Clock {
    /// The system clock, read in Rotessa's time zone.
    System(Tz),
    /// A fixed instant, read in Rotessa's time zone (tests of the date line).
    At(DateTime<Utc>, Tz),
    /// A fixed date (`sync.today`).
    Fixed(NaiveDate),
    /// Asked each time, e.g. the simulator's clock in the demo.
    Dynamic(Arc<dyn Fn() -> NaiveDate + Send + Sync>),
}

impl Default for Clock {
    fn default() -> Self {
        Self::System(crate::config::DEFAULT_TIME_ZONE)
    }
}

impl Clock {
    /// The clock the settings describe: `sync.today`, or the system clock in `sync.time_zone`.
    pub fn from_settings(sync: &SyncSettings) -> Self {
        sync.today
            .map_or(Self::System(sync.time_zone()), Self::Fixed)
    }

    /// Today's date: Rotessa's date, not the UTC one (from 18:00 Central, 19:00 in summer, the
    /// UTC date is already Rotessa's tomorrow).
    pub fn today(&self) -> NaiveDate {
        match self {
            Self::System(tz) => Utc::now().with_timezone(tz).date_naive(),
            Self::At(instant, tz) => instant.with_timezone(tz).date_naive(),
            Self::Fixed(d) => *d,
            Self::Dynamic(f) => f(),
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::System(tz) => write!(f, "Clock::System({tz})"),
            Self::At(instant, tz) => write!(f, "Clock::At({instant}, {tz})"),
            Self::Fixed(d) => write!(f, "Clock::Fixed({d})"),
            Self::Dynamic(_) => f.write_str("Clock::Dynamic"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn rotessas_date_is_the_central_date_not_the_utc_one() {
        let winnipeg: Tz = "America/Winnipeg".parse().unwrap();
        let at = |y, m, d, h, min| {
            Clock::At(Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap(), winnipeg)
        };
        let date = |s: &str| s.parse::<NaiveDate>().unwrap();
        // December (UTC-6): 23:30 UTC is 17:30 the same day; 05:30 UTC is 23:30 the day before.
        assert_eq!(at(2026, 12, 3, 23, 30).today(), date("2026-12-03"));
        assert_eq!(at(2026, 12, 4, 5, 30).today(), date("2026-12-03"));
        assert_eq!(at(2026, 12, 4, 6, 0).today(), date("2026-12-04"));
        // July (UTC-5): the date turns at 05:00 UTC.
        assert_eq!(at(2026, 7, 2, 4, 59).today(), date("2026-07-01"));
        assert_eq!(at(2026, 7, 2, 5, 0).today(), date("2026-07-02"));
    }
}
