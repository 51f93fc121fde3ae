//! `status`: per stream and client, the last run, its outcome, cursor, rows, events and lag;
//! then recent errors and the lease holder; as text, or with `--output json` as one JSON
//! document ([`StatusView`]).

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Args;
use serde::Serialize;

use super::Failure;
use super::output::{self, OutputFormat, rfc3339, rfc3339_opt};
use crate::config::Settings;
use crate::store::runs::{self, StreamStatus};
use crate::store::{Store, lease};

/// Arguments of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// `text` (the tables) or `json` (one document; fields in README.md "Output for scripts").
    #[arg(long, value_enum, default_value_t = OutputFormat::Text, value_name = "FORMAT")]
    pub output: OutputFormat,
}

/// Prints the status tables, or the same facts as JSON.
pub async fn run(settings: &Settings, args: StatusArgs) -> Result<ExitCode, Failure> {
    let store = Store::connect(&settings.database).await?;
    let latest = runs::latest(store.pool()).await?;
    let failures = runs::recent_failures(store.pool(), 10).await?;
    let holder = lease::holder(store.pool(), lease::SCHEDULER).await?;
    let stale_after =
        chrono::TimeDelta::seconds(i64::try_from(settings.sync.run_stale_secs).unwrap_or(i64::MAX));
    let now = Utc::now();
    let text = match args.output {
        OutputFormat::Text => render(&latest, &failures, holder.as_ref(), now, stale_after),
        OutputFormat::Json => output::to_json(&StatusView::new(
            &latest,
            &failures,
            holder.as_ref(),
            now,
            stale_after,
        ))?,
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// The outcome to show: a `running` run whose heartbeat is older than `stale_after` has lost its
/// process, and shows as `abandoned` (what the next run or the leader will record). `status`
/// only reads: an operator's settings must not mark another machine's live run.
fn outcome(s: &StreamStatus, now: DateTime<Utc>, stale_after: chrono::TimeDelta) -> &str {
    if s.status == "running" && now - s.heartbeat_at > stale_after {
        "abandoned"
    } else {
        &s.status
    }
}

/// The text `status` prints.
pub fn render(
    latest: &[StreamStatus],
    failures: &[StreamStatus],
    holder: Option<&(String, i64)>,
    now: DateTime<Utc>,
    stale_after: chrono::TimeDelta,
) -> String {
    let mut out = String::new();
    match holder {
        Some((who, token)) => out.push_str(&format!("leader: {who} (lease token {token})\n\n")),
        None => out.push_str("leader: none (no daemon holds the lease)\n\n"),
    }
    if latest.is_empty() {
        out.push_str("no runs yet: try `rotessa-recon sync`\n");
        return out;
    }
    out.push_str(&format!(
        "{:<13} {:<8} {:>7} {:<10} {:<20} {:<11} {:>6} {:>9} {:>9} {:>8} {:>8} {:>10}\n",
        "stream",
        "client",
        "run",
        "outcome",
        "started",
        "cursor",
        "pages",
        "rows",
        "written",
        "rejected",
        "events",
        "lag"
    ));
    for s in latest {
        let client = if s.client_id == 0 {
            "all".to_owned()
        } else {
            s.client_id.to_string()
        };
        let lag = s
            .last_success_at
            .map_or("never".to_owned(), |t| human(now - t));
        out.push_str(&format!(
            "{:<13} {:<8} {:>7} {:<10} {:<20} {:<11} {:>6} {:>9} {:>9} {:>8} {:>8} {:>10}\n",
            s.stream,
            client,
            s.run_id,
            outcome(s, now, stale_after),
            s.started_at.format("%Y-%m-%d %H:%M:%S"),
            s.cursor_date.map_or("-".to_owned(), |d| d.to_string()),
            s.pages,
            s.rows_seen,
            s.rows_inserted + s.rows_updated,
            s.rows_rejected,
            s.events_emitted,
            lag
        ));
    }
    for s in latest
        .iter()
        .filter(|s| outcome(s, now, stale_after) != s.status)
    {
        out.push_str(&format!(
            "run {}: no heartbeat since {}: its process stopped\n",
            s.run_id,
            s.heartbeat_at.format("%Y-%m-%d %H:%M:%S")
        ));
    }
    out.push_str("\nrecent errors:\n");
    if failures.is_empty() {
        out.push_str("  none\n");
    }
    for f in failures {
        out.push_str(&format!(
            "  run {} {} client {} {} at {}: {}\n",
            f.run_id,
            f.stream,
            f.client_id,
            f.status,
            f.finished_at
                .unwrap_or(f.started_at)
                .format("%Y-%m-%d %H:%M:%S"),
            f.error.as_deref().unwrap_or("-")
        ));
    }
    out
}

/// `status --output json`: the facts of the text tables, with stable field names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusView {
    /// When `status` read the database (RFC 3339, UTC); lags are measured from it.
    pub generated_at: String,
    /// The daemon holding the single-writer lease, or `null` when none does.
    pub leader: Option<LeaderView>,
    /// One entry per stream and client: its latest run.
    pub streams: Vec<StreamView>,
    /// The most recent failed or abandoned runs, newest first.
    pub recent_errors: Vec<ErrorView>,
}

/// The lease holder.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaderView {
    /// Who holds it, as the daemon recorded itself in `rotessa.leases`.
    pub holder: String,
    /// The lease's fencing token.
    pub token: i64,
}

/// The latest run of one stream for one client.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamView {
    /// `transactions`, `declines`, `settlements`, `clients`, `customers` or `payouts`.
    pub stream: String,
    /// The client, or `null` for a run over all clients (the text's `all`).
    pub client_id: Option<i64>,
    /// The run's id in `rotessa.sync_runs`.
    pub run_id: i64,
    /// What the text's `outcome` column shows: the recorded status, or `abandoned` for a
    /// `running` run whose heartbeat is older than `sync.run_stale_secs`.
    pub outcome: String,
    /// The status as recorded (`running`, `succeeded`, `failed`, `abandoned`, ...).
    pub recorded_status: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// RFC 3339, UTC; `null` while running.
    pub finished_at: Option<String>,
    /// RFC 3339, UTC.
    pub heartbeat_at: String,
    /// The stream's cursor (ISO date), `null` when it has none.
    pub cursor_date: Option<String>,
    /// Pages committed.
    pub pages: i32,
    /// Rows read from Rotessa.
    pub rows_seen: i64,
    /// Rows inserted.
    pub rows_inserted: i64,
    /// Rows updated.
    pub rows_updated: i64,
    /// `rows_inserted + rows_updated` (the text's `written`).
    pub rows_written: i64,
    /// Rows rejected as malformed.
    pub rows_rejected: i64,
    /// Outbox events emitted.
    pub events_emitted: i64,
    /// The last successful run's end (RFC 3339, UTC), `null` if never.
    pub last_success_at: Option<String>,
    /// Seconds since `last_success_at` (the text's `lag`), `null` if never.
    pub lag_secs: Option<i64>,
    /// The run's error, if it failed.
    pub error: Option<String>,
}

/// A recent failed or abandoned run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorView {
    /// The run's id.
    pub run_id: i64,
    /// The stream.
    pub stream: String,
    /// The client, or `null` for a run over all clients.
    pub client_id: Option<i64>,
    /// `failed` or `abandoned`.
    pub status: String,
    /// When it ended (or started, if it never recorded an end); RFC 3339, UTC.
    pub at: String,
    /// The error text.
    pub error: Option<String>,
}

impl StatusView {
    /// The view of what `run` read, `now` being the time lags are measured from.
    pub fn new(
        latest: &[StreamStatus],
        failures: &[StreamStatus],
        holder: Option<&(String, i64)>,
        now: DateTime<Utc>,
        stale_after: chrono::TimeDelta,
    ) -> Self {
        let client = |id: i64| (id != 0).then_some(id);
        Self {
            generated_at: rfc3339(now),
            leader: holder.map(|(holder, token)| LeaderView {
                holder: holder.clone(),
                token: *token,
            }),
            streams: latest
                .iter()
                .map(|s| StreamView {
                    stream: s.stream.clone(),
                    client_id: client(s.client_id),
                    run_id: s.run_id,
                    outcome: outcome(s, now, stale_after).to_owned(),
                    recorded_status: s.status.clone(),
                    started_at: rfc3339(s.started_at),
                    finished_at: rfc3339_opt(s.finished_at),
                    heartbeat_at: rfc3339(s.heartbeat_at),
                    cursor_date: s.cursor_date.map(|d| d.to_string()),
                    pages: s.pages,
                    rows_seen: s.rows_seen,
                    rows_inserted: s.rows_inserted,
                    rows_updated: s.rows_updated,
                    rows_written: s.rows_inserted + s.rows_updated,
                    rows_rejected: s.rows_rejected,
                    events_emitted: s.events_emitted,
                    last_success_at: rfc3339_opt(s.last_success_at),
                    lag_secs: s.last_success_at.map(|t| (now - t).num_seconds().max(0)),
                    error: s.error.clone(),
                })
                .collect(),
            recent_errors: failures
                .iter()
                .map(|f| ErrorView {
                    run_id: f.run_id,
                    stream: f.stream.clone(),
                    client_id: client(f.client_id),
                    status: f.status.clone(),
                    at: rfc3339(f.finished_at.unwrap_or(f.started_at)),
                    error: f.error.clone(),
                })
                .collect(),
        }
    }
}

fn human(d: chrono::TimeDelta) -> String {
    let secs = d.num_seconds().max(0);
    match secs {
        0..=119 => format!("{secs}s"),
        120..=7199 => format!("{}m", secs / 60),
        7200..=172_799 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}
