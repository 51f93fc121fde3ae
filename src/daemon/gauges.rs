//! Gauges read from the database by the leader: each outbox consumer's backlog and parked events,
//! the events held
//! behind the visibility fence, and the open reconciliation mismatches. One replica exports them
//! (the leader, for its term), so that dashboards and alerts see one figure, not one per replica.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::{Store, outbox, outbox_consumers, reconciliation};

/// How often the leader reads the gauges, and how long one reading may take.
const EVERY: Duration = Duration::from_secs(30);
const TIMEOUT: Duration = Duration::from_secs(10);

/// Exports the gauges every [`EVERY`] while `term` lasts (the leader's term), each reading
/// bounded by [`TIMEOUT`]; then sets them to 0, so that a replica that is no longer leader does
/// not go on exporting stale figures. A consumer unregistered meanwhile is set to 0 at the next
/// reading, so an alert about it clears.
///
/// `clients` limits the mismatch gauges to the configured clients (`None`: every client).
pub async fn export(store: Store, clients: Option<Vec<i64>>, term: CancellationToken) {
    let mut consumers: BTreeSet<String> = BTreeSet::new();
    loop {
        if let Some(lag) = read(
            "the outbox consumers' backlog",
            outbox_consumers::lag(store.pool()),
        )
        .await
        {
            let now: BTreeSet<String> = lag.iter().map(|c| c.name.clone()).collect();
            for gone in consumers.difference(&now) {
                set_backlog(gone, 0.0, 0.0, 0.0);
            }
            for c in lag {
                set_backlog(
                    &c.name,
                    c.backlog as f64,
                    c.oldest_unacked_age_secs.unwrap_or(0.0),
                    (c.parked + c.awaiting_replay) as f64,
                );
            }
            consumers = now;
        }
        if let Some((held, age)) = read(
            "the events held behind the fence",
            outbox::held_by_fence(store.pool()),
        )
        .await
        {
            set_held(held as f64, age);
        }
        if let Some((open, age)) = read(
            "the open mismatches",
            reconciliation::open_mismatches(store.pool(), clients.as_deref()),
        )
        .await
        {
            set_mismatches(open as f64, age);
        }
        tokio::select! {
            _ = term.cancelled() => break,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
    for name in &consumers {
        set_backlog(name, 0.0, 0.0, 0.0);
    }
    set_held(0.0, 0.0);
    set_mismatches(0.0, 0.0);
}

/// One bounded reading; a failure or a timeout is logged and leaves the gauges as they were.
async fn read<T>(
    what: &'static str,
    reading: impl Future<Output = Result<T, crate::store::Error>>,
) -> Option<T> {
    match tokio::time::timeout(TIMEOUT, reading).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot read {what}");
            None
        }
        Err(_) => {
            tracing::warn!(timeout_secs = TIMEOUT.as_secs(), "reading {what} timed out");
            None
        }
    }
}

/// A consumer's backlog, the age of its oldest un-acked event, and the events it parked that are
/// not handled yet (parked, or awaiting replay).
fn set_backlog(consumer: &str, events: f64, age_secs: f64, parked: f64) {
    metrics::gauge!("rotessa_outbox_consumer_backlog_events", "consumer" => consumer.to_owned())
        .set(events);
    metrics::gauge!(
        "rotessa_outbox_consumer_oldest_unacked_age_seconds",
        "consumer" => consumer.to_owned()
    )
    .set(age_secs);
    metrics::gauge!("rotessa_outbox_consumer_parked_events", "consumer" => consumer.to_owned())
        .set(parked);
}

fn set_held(events: f64, age_secs: f64) {
    metrics::gauge!("rotessa_outbox_events_held_by_fence").set(events);
    metrics::gauge!("rotessa_outbox_oldest_held_age_seconds").set(age_secs);
}

fn set_mismatches(open: f64, age_secs: f64) {
    metrics::gauge!("rotessa_reconciliation_open_mismatches").set(open);
    metrics::gauge!("rotessa_reconciliation_oldest_open_mismatch_age_seconds").set(age_secs);
}
