//! `outbox stats`: how far behind each registered consumer is.

use std::process::ExitCode;

use chrono::{DateTime, Utc};

use super::{Failure, connect};
use crate::config::Settings;
use crate::store::outbox::{self, Summary};
use crate::store::outbox_consumers::{self, Lag};

/// Prints the outbox summary and one line per registered consumer, most behind first.
pub async fn run(settings: &Settings) -> Result<ExitCode, Failure> {
    let store = connect(settings).await?;
    let summary = outbox::summary(store.pool()).await?;
    let lag = outbox_consumers::lag(store.pool()).await?;
    print!("{}", render(&summary, &lag, settings.outbox.retention_days));
    Ok(ExitCode::SUCCESS)
}

/// The text `outbox stats` prints.
pub fn render(summary: &Summary, lag: &[Lag], retention_days: u32) -> String {
    let when = |t: Option<DateTime<Utc>>| {
        t.map_or("-".to_owned(), |t| {
            t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
        })
    };
    let mut out = format!(
        "outbox: {} events (oldest {}, newest {}), {} committed but waiting behind an open transaction; retention {} days\n",
        summary.events,
        when(summary.oldest_at),
        when(summary.newest_at),
        summary.behind_fence,
        retention_days,
    );
    if lag.is_empty() {
        out.push_str(
            "no registered consumers: retention keeps every event (register one with `rotessa-recon outbox register NAME`)\n",
        );
        return out;
    }
    out.push_str(&format!(
        "{:<24} {:>10} {:>15}  {:<22} {}\n",
        "consumer", "backlog", "oldest un-acked", "position (txid:seq)", "last ack"
    ));
    for c in lag {
        out.push_str(&format!(
            "{:<24} {:>10} {:>15}  {:<22} {}\n",
            c.name,
            c.backlog,
            c.oldest_unacked_age_secs.map_or("-".to_owned(), age),
            c.position,
            when(Some(c.updated_at)),
        ));
    }
    out
}

/// `3d 4h`, `2h 5m`, `7m 3s`, `12s`.
fn age(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    let (d, h, m) = (s / 86_400, s / 3600 % 24, s / 60 % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {}s", s % 60),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_short_and_readable() {
        assert_eq!(age(12.7), "12s");
        assert_eq!(age(423.0), "7m 3s");
        assert_eq!(age(7500.0), "2h 5m");
        assert_eq!(age(273_600.0), "3d 4h");
        assert_eq!(age(-1.0), "0s");
    }
}
