//! What a valid schedule is: six cron fields, seconds first, read by the same parser the
//! daemon's scheduler uses; and how far apart its runs fall. Configuration checks its schedules here at start-up, without
//! knowing anything of the scheduler itself.

use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::parser::{CronParser, Seconds};

/// Checks a six-field cron schedule (seconds first); the error says why it is not one.
pub fn validate(schedule: &str) -> Result<(), String> {
    tokio_cron_scheduler::Job::new(schedule, |_, _| {})
        .map(|_| ())
        .map_err(|e| format!("not a valid cron schedule ({e})"))
}

/// The longest gap between two runs of `schedule` over the week after `from` (UTC, as the
/// scheduler reads schedules), or between its next two runs when they are further apart: how
/// long a stream may normally go without a run, which dashboards compare its last success with.
/// `None` if the schedule does not parse or never fires twice.
pub fn longest_gap(schedule: &str, from: DateTime<Utc>) -> Option<Duration> {
    // As tokio-cron-scheduler builds its parser: day of month AND day of week must both match.
    let cron = CronParser::builder()
        .seconds(Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(schedule)
        .ok()?;
    let horizon = from + chrono::Duration::days(8);
    let mut previous: Option<DateTime<Utc>> = None;
    let mut longest: Option<Duration> = None;
    // At most one run a second for a week, but a look at the first 20,000 runs is plenty.
    for at in cron.iter_after(from).take(20_000) {
        if at > horizon && longest.is_some() {
            break;
        }
        if let Some(before) = previous {
            let gap = (at - before).to_std().ok()?;
            longest = Some(longest.map_or(gap, |l| l.max(gap)));
        }
        previous = Some(at);
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_gap_spans_the_weekend_for_weekday_schedules() {
        let monday = "2026-11-23T00:00:00Z".parse().unwrap();
        let gap = |s| longest_gap(s, monday).map(|d| d.as_secs());
        assert_eq!(gap("0 */15 * * * *"), Some(15 * 60));
        assert_eq!(gap("0 5 * * * *"), Some(3600));
        assert_eq!(gap("0 30 6 * * *"), Some(86_400));
        assert_eq!(gap("0 0 6 * * Mon-Fri"), Some(3 * 86_400));
        // The first Monday of the month, as the scheduler reads it (not every Monday).
        assert!(gap("0 0 6 1-7 * Mon").is_some_and(|g| g >= 28 * 86_400));
        assert_eq!(gap("0 0 0 1 1 *"), Some(365 * 86_400), "once a year");
        assert_eq!(gap("hourly"), None);
    }

    #[test]
    fn six_fields_with_seconds_are_valid_and_words_are_not() {
        assert!(validate("0 */15 * * * *").is_ok());
        assert!(validate("0 30 * * * *").is_ok());
        assert!(validate("every minute").is_err());
        assert!(validate("hourly").is_err());
    }
}
