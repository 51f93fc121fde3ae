//! "Today" for window arithmetic: the UTC date, overridable so that the simulator, the demo and
//! tests can move time (SPEC.md "Sync streams").

use std::sync::Arc;

use chrono::{NaiveDate, Utc};

/// Where the sync gets today's date.
#[derive(Clone, Default)]
pub enum Clock {
    /// The system clock's UTC date.
    #[default]
    System,
    /// A fixed date (`sync.today`).
    Fixed(NaiveDate),
    /// Asked each time, e.g. the simulator's clock in the demo.
    Dynamic(Arc<dyn Fn() -> NaiveDate + Send + Sync>),
}

impl Clock {
    /// The clock configured by `sync.today`, or the system clock.
    pub fn from_setting(today: Option<NaiveDate>) -> Self {
        today.map_or(Self::System, Self::Fixed)
    }

    /// Today's date (UTC).
    pub fn today(&self) -> NaiveDate {
        match self {
            Self::System => Utc::now().date_naive(),
            Self::Fixed(d) => *d,
            Self::Dynamic(f) => f(),
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::System => f.write_str("Clock::System"),
            Self::Fixed(d) => write!(f, "Clock::Fixed({d})"),
            Self::Dynamic(_) => f.write_str("Clock::Dynamic"),
        }
    }
}
