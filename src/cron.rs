//! What a valid schedule is: six cron fields, seconds first, read by the same parser the
//! daemon's scheduler uses. Configuration checks its schedules here at start-up, without
//! knowing anything of the scheduler itself.

/// Checks a six-field cron schedule (seconds first); the error says why it is not one.
pub fn validate(schedule: &str) -> Result<(), String> {
    tokio_cron_scheduler::Job::new(schedule, |_, _| {})
        .map(|_| ())
        .map_err(|e| format!("not a valid cron schedule ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_fields_with_seconds_are_valid_and_words_are_not() {
        assert!(validate("0 */15 * * * *").is_ok());
        assert!(validate("0 30 * * * *").is_ok());
        assert!(validate("every minute").is_err());
        assert!(validate("hourly").is_err());
    }
}
