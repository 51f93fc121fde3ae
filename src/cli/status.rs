//! `status`: per stream and client, the last run, its outcome, cursor, rows, events and lag;
//! then recent errors and the lease holder.

use std::process::ExitCode;

use chrono::{DateTime, Utc};

use super::Failure;
use crate::config::Settings;
use crate::store::runs::{self, StreamStatus};
use crate::store::{Store, lease};

/// Prints the status tables.
pub async fn run(settings: &Settings) -> Result<ExitCode, Failure> {
    let store = Store::connect(&settings.database).await?;
    let latest = runs::latest(store.pool()).await?;
    let failures = runs::recent_failures(store.pool(), 10).await?;
    let holder = lease::holder(store.pool(), lease::SCHEDULER).await?;
    let stale_after =
        chrono::TimeDelta::seconds(i64::try_from(settings.sync.run_stale_secs).unwrap_or(i64::MAX));
    print!(
        "{}",
        render(&latest, &failures, holder.as_ref(), Utc::now(), stale_after)
    );
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

fn human(d: chrono::TimeDelta) -> String {
    let secs = d.num_seconds().max(0);
    match secs {
        0..=119 => format!("{secs}s"),
        120..=7199 => format!("{}m", secs / 60),
        7200..=172_799 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}
