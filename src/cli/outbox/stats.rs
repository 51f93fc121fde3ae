//! `outbox stats`: how far behind each registered consumer is, and how many events it parked;
//! with `--output json`, as one
//! JSON document ([`StatsView`]).

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Args;
use serde::Serialize;

use super::{Failure, connect};
use crate::cli::output::{self, OutputFormat, rfc3339, rfc3339_opt};
use crate::config::Settings;
use crate::store::outbox::{self, Summary};
use crate::store::outbox_consumers::{self, Lag};

/// Arguments of `outbox stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// `text` (the table) or `json` (one document; fields in README.md "Output for scripts").
    #[arg(long, value_enum, default_value_t = OutputFormat::Text, value_name = "FORMAT")]
    pub output: OutputFormat,
}

/// Prints the outbox summary and one line per registered consumer, most behind first.
pub async fn run(settings: &Settings, args: StatsArgs) -> Result<ExitCode, Failure> {
    let store = connect(settings).await?;
    let summary = outbox::summary(store.pool()).await?;
    let lag = outbox_consumers::lag(store.pool()).await?;
    let retention_days = settings.outbox.retention_days;
    let text = match args.output {
        OutputFormat::Text => render(&summary, &lag, retention_days),
        OutputFormat::Json => output::to_json(&StatsView::new(&summary, &lag, retention_days))?,
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// `outbox stats --output json`: the outbox as a whole and each registered consumer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsView {
    /// Events in the outbox.
    pub events: i64,
    /// `occurred_at` of the oldest event (RFC 3339, UTC), `null` when empty.
    pub oldest_at: Option<String>,
    /// `occurred_at` of the newest event (RFC 3339, UTC), `null` when empty.
    pub newest_at: Option<String>,
    /// Committed events waiting behind a transaction still open on the server.
    pub behind_fence: i64,
    /// `outbox.retention_days`.
    pub retention_days: u32,
    /// Registered consumers, most behind first (empty: retention keeps every event).
    pub consumers: Vec<ConsumerView>,
}

/// One registered consumer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsumerView {
    /// The consumer's name.
    pub name: String,
    /// Events after its position.
    pub backlog: i64,
    /// `occurred_at` of its oldest un-acked event (RFC 3339, UTC), `null` when caught up.
    pub oldest_unacked_at: Option<String>,
    /// Whole seconds since that event occurred, `null` when caught up.
    pub oldest_unacked_age_secs: Option<i64>,
    /// Events it parked (gave up on) and nobody marked for replay yet.
    pub parked: i64,
    /// Parked events marked for replay that it has not finished.
    pub awaiting_replay: i64,
    /// Its acked position, `txid:seq`.
    pub position: String,
    /// When it last acked or registered (RFC 3339, UTC).
    pub last_ack_at: String,
}

impl StatsView {
    /// The view of what `run` read.
    pub fn new(summary: &Summary, lag: &[Lag], retention_days: u32) -> Self {
        Self {
            events: summary.events,
            oldest_at: rfc3339_opt(summary.oldest_at),
            newest_at: rfc3339_opt(summary.newest_at),
            behind_fence: summary.behind_fence,
            retention_days,
            consumers: lag
                .iter()
                .map(|c| ConsumerView {
                    name: c.name.clone(),
                    backlog: c.backlog,
                    oldest_unacked_at: rfc3339_opt(c.oldest_unacked_at),
                    oldest_unacked_age_secs: c
                        .oldest_unacked_age_secs
                        .map(|s| s.max(0.0).floor() as i64),
                    parked: c.parked,
                    awaiting_replay: c.awaiting_replay,
                    position: c.position.clone(),
                    last_ack_at: rfc3339(c.updated_at),
                })
                .collect(),
        }
    }
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
        "{:<24} {:>10} {:>15} {:>7} {:>7}  {:<22} {}\n",
        "consumer",
        "backlog",
        "oldest un-acked",
        "parked",
        "replay",
        "position (txid:seq)",
        "last ack"
    ));
    for c in lag {
        out.push_str(&format!(
            "{:<24} {:>10} {:>15} {:>7} {:>7}  {:<22} {}\n",
            c.name,
            c.backlog,
            c.oldest_unacked_age_secs.map_or("-".to_owned(), age),
            c.parked,
            c.awaiting_replay,
            c.position,
            when(Some(c.updated_at)),
        ));
    }
    if lag.iter().any(|c| c.parked > 0) {
        out.push_str(
            "parked: events a consumer gave up on (`rotessa-recon outbox parked --consumer NAME`); replay: marked for replay, not done yet\n",
        );
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
