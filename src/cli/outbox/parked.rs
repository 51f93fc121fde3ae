//! `outbox parked` / `outbox unpark`: the events a consumer parked (gave up on), and marking them
//! for replay once the cause is fixed (docs/outbox-consumers.md "Parking poison events").

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Args;
use serde::Serialize;
use uuid::Uuid;

use super::{Failure, connect, consumer_failure};
use crate::cli::output::{self, OutputFormat, rfc3339, rfc3339_opt};
use crate::config::Settings;
use crate::store::outbox_parked::{self, ParkState, Parked};

/// Arguments of `outbox parked`.
#[derive(Debug, Args)]
pub struct ParkedArgs {
    /// The consumer whose parked events to list.
    #[arg(long, value_name = "NAME")]
    pub consumer: String,
    /// `text` (the table) or `json` (an array; fields in README.md "Output for scripts").
    #[arg(long, value_enum, default_value_t = OutputFormat::Text, value_name = "FORMAT")]
    pub output: OutputFormat,
}

/// Arguments of `outbox unpark`.
#[derive(Debug, Args)]
pub struct UnparkArgs {
    /// The consumer whose parked events to replay.
    #[arg(long, value_name = "NAME")]
    pub consumer: String,
    /// The parked event to replay (its id, as `outbox parked` shows it).
    #[arg(
        value_name = "EVENT_ID",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub event_id: Option<Uuid>,
    /// Every event the consumer parked.
    #[arg(long)]
    pub all: bool,
}

/// Lists a consumer's parked events, in delivery order.
pub async fn list(settings: &Settings, args: ParkedArgs) -> Result<ExitCode, Failure> {
    let store = connect(settings).await?;
    let parked = outbox_parked::list(store.pool(), &args.consumer)
        .await
        .map_err(consumer_failure)?;
    let text = match args.output {
        OutputFormat::Text => render(&args.consumer, &parked),
        OutputFormat::Json => output::to_json(
            &parked
                .iter()
                .map(ParkedView::new)
                .collect::<Vec<ParkedView>>(),
        )?,
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// Marks one parked event, or all of them, for replay; an event that is not parked (never was,
/// or already marked) is a usage error.
pub async fn unpark(settings: &Settings, args: UnparkArgs) -> Result<ExitCode, Failure> {
    let store = connect(settings).await?;
    let marked = outbox_parked::unpark(store.pool(), &args.consumer, args.event_id)
        .await
        .map_err(consumer_failure)?;
    match args.event_id {
        Some(id) if marked == 0 => Err(Failure::Usage(format!(
            "outbox consumer {:?} has no parked event {id} (never parked, already marked for \
             replay, or done: see `rotessa-recon outbox parked --consumer {}`)",
            args.consumer, args.consumer
        ))),
        Some(id) => {
            println!(
                "marked event {id} of outbox consumer {:?} for replay",
                args.consumer
            );
            Ok(ExitCode::SUCCESS)
        }
        None => {
            println!(
                "marked {marked} parked event{} of outbox consumer {:?} for replay",
                if marked == 1 { "" } else { "s" },
                args.consumer
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One parked event in `outbox parked --output json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParkedView {
    /// The event's id.
    pub event_id: Uuid,
    /// The event's type (`null` if the event is no longer in the outbox).
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// The event's aggregate id (`null` likewise).
    pub aggregateid: Option<String>,
    /// `parked` or `replay` (marked for replay).
    pub state: ParkState,
    /// The error the consumer recorded when it last parked the event.
    pub error: String,
    /// How many times it was parked.
    pub times_parked: i32,
    /// When it was first parked (RFC 3339, UTC).
    pub first_parked_at: String,
    /// When it was last parked (RFC 3339, UTC).
    pub parked_at: String,
    /// When the event occurred (RFC 3339, UTC; `null` if it is no longer in the outbox).
    pub occurred_at: Option<String>,
}

impl ParkedView {
    /// The view of one listed event.
    pub fn new(p: &Parked) -> Self {
        Self {
            event_id: p.event_id,
            event_type: p.event_type.clone(),
            aggregateid: p.aggregateid.clone(),
            state: p.state,
            error: p.error.clone(),
            times_parked: p.times_parked,
            first_parked_at: rfc3339(p.first_parked_at),
            parked_at: rfc3339(p.parked_at),
            occurred_at: rfc3339_opt(p.occurred_at),
        }
    }
}

/// The text `outbox parked` prints: one line per event, then the error of each, which can be
/// long.
pub fn render(consumer: &str, parked: &[Parked]) -> String {
    if parked.is_empty() {
        return format!("outbox consumer {consumer:?} has no parked events\n");
    }
    let when = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let mut out = format!(
        "{:<36}  {:<6}  {:<26}  {:<14}  {:>5}  {:<23}  {}\n",
        "event", "state", "type", "aggregate", "times", "parked at", "error"
    );
    for p in parked {
        out.push_str(&format!(
            "{:<36}  {:<6}  {:<26}  {:<14}  {:>5}  {:<23}  {}\n",
            p.event_id,
            p.state.as_str(),
            p.event_type.as_deref().unwrap_or("-"),
            p.aggregateid.as_deref().unwrap_or("-"),
            p.times_parked,
            when(p.parked_at),
            one_line(&p.error),
        ));
    }
    let parked_count = parked
        .iter()
        .filter(|p| p.state == ParkState::Parked)
        .count();
    out.push_str(&format!(
        "{} parked, {} awaiting replay (`rotessa-recon outbox unpark --consumer {consumer} --all` marks every parked event for replay)\n",
        parked_count,
        parked.len() - parked_count,
    ));
    out
}

/// An error on one line: newlines become spaces.
fn one_line(error: &str) -> String {
    error.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parked(state: ParkState, error: &str) -> Parked {
        let at = DateTime::<Utc>::from_timestamp(1_764_000_000, 0).unwrap_or_default();
        Parked {
            event_id: Uuid::nil(),
            event_type: Some("transaction.status_changed".into()),
            aggregateid: Some("42".into()),
            state,
            error: error.into(),
            times_parked: 2,
            first_parked_at: at,
            parked_at: at,
            occurred_at: None,
        }
    }

    #[test]
    fn the_table_has_a_line_per_event_and_the_counts() {
        let text = render(
            "billing",
            &[
                parked(ParkState::Parked, "no such\ncustomer"),
                parked(ParkState::Replay, "timeout"),
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[1].contains("parked") && lines[1].ends_with("no such customer"));
        assert!(lines[2].contains("replay") && lines[2].contains("2025-11-24 16:00:00 UTC"));
        assert!(
            lines[3].starts_with("1 parked, 1 awaiting replay"),
            "{text}"
        );
        assert!(render("billing", &[]).contains("no parked events"));
    }

    #[test]
    fn json_names_the_fields_scripts_use() {
        let view = serde_json::to_value(ParkedView::new(&parked(ParkState::Replay, "x")))
            .unwrap_or_default();
        assert_eq!(view["state"], "replay");
        assert_eq!(view["type"], "transaction.status_changed");
        assert_eq!(view["parked_at"], "2025-11-24T16:00:00Z");
        assert!(view["occurred_at"].is_null());
    }
}
