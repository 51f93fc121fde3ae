//! Every metric the daemon exports, with the HELP text Prometheus shows and the unit: one list,
//! so that `/metrics` explains itself and docs/deployment.md, the alert rules and the Grafana
//! dashboard have one place to check names against.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

/// What kind of series a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One exported metric family.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

const fn family(name: &'static str, kind: Kind, help: &'static str) -> Family {
    Family { name, kind, help }
}

/// The metrics of the daemon (`run`) and the relay (`outbox relay`, or `run` with the relay on).
pub const FAMILIES: &[Family] = &[
    family(
        "rotessa_sync_last_success_timestamp_seconds",
        Kind::Gauge,
        "Unix time of the last successful run of the stream for the client.",
    ),
    family(
        "rotessa_sync_schedule_interval_seconds",
        Kind::Gauge,
        "Longest gap between two scheduled runs of the stream over the coming week (enabled streams).",
    ),
    family(
        "rotessa_sync_run_duration_seconds",
        Kind::Histogram,
        "Duration of each run, by stream and outcome (succeeded, failed, cancelled).",
    ),
    family(
        "rotessa_sync_rows_total",
        Kind::Counter,
        "Rows read, by stream and what happened to them.",
    ),
    family(
        "rotessa_outbox_events_total",
        Kind::Counter,
        "Events written to rotessa.outbox, by type.",
    ),
    family(
        "rotessa_api_requests_total",
        Kind::Counter,
        "Requests to Rotessa, by endpoint and HTTP status.",
    ),
    family(
        "rotessa_api_retries_total",
        Kind::Counter,
        "Requests to Rotessa retried, by endpoint and cause.",
    ),
    family(
        "rotessa_page_retries_total",
        Kind::Counter,
        "Page transactions redone after a transient database failure, by stream.",
    ),
    family(
        "rotessa_rejected_rows_total",
        Kind::Counter,
        "Rows that could not be stored, quarantined in rotessa.rejected_records, by stream.",
    ),
    family(
        "rotessa_status_anomalies_total",
        Kind::Counter,
        "Observations recorded for review in rotessa.status_anomalies, by stream.",
    ),
    family(
        "rotessa_stale_observations_total",
        Kind::Counter,
        "Observations not applied because they are not newer than the stored row, by stream.",
    ),
    family(
        "rotessa_removed_rows_total",
        Kind::Counter,
        "Rows marked removed because Rotessa no longer reports them, by stream.",
    ),
    family(
        "rotessa_list_maybe_cut_total",
        Kind::Counter,
        "Unpaged lists of exactly whole pages (possibly cut): nothing marked removed after them.",
    ),
    family(
        "rotessa_unparsed_fields_total",
        Kind::Counter,
        "Optional fields stored as NULL because they could not be parsed, by field.",
    ),
    family(
        "rotessa_duplicate_rows_total",
        Kind::Counter,
        "Exact repeats of a row within one page, applied once, by stream.",
    ),
    family(
        "rotessa_runs_pruned_total",
        Kind::Counter,
        "Finished runs deleted by run retention.",
    ),
    family(
        "rotessa_outbox_pruned_total",
        Kind::Counter,
        "Outbox events deleted by retention.",
    ),
    family(
        "rotessa_leader",
        Kind::Gauge,
        "1 on the replica holding the scheduler lease, 0 on a standby.",
    ),
    family(
        "rotessa_scheduler_skipped_ticks_total",
        Kind::Counter,
        "Scheduled runs skipped because the previous run of the stream was still going.",
    ),
    family(
        "rotessa_outbox_consumer_backlog_events",
        Kind::Gauge,
        "Events after each registered outbox consumer's acked position (exported by the leader).",
    ),
    family(
        "rotessa_outbox_consumer_oldest_unacked_age_seconds",
        Kind::Gauge,
        "Age of each registered outbox consumer's oldest un-acked event, 0 when caught up.",
    ),
    family(
        "rotessa_outbox_consumer_parked_events",
        Kind::Gauge,
        "Events each registered outbox consumer parked and has not handled since: parked or awaiting replay (exported by the leader).",
    ),
    family(
        "rotessa_relay_events_total",
        Kind::Counter,
        "Events the relay published and acked, by broker.",
    ),
    family(
        "rotessa_relay_retries_total",
        Kind::Counter,
        "Batches the broker did not take, published again after a backoff, by broker.",
    ),
    family(
        "rotessa_relay_lag_events",
        Kind::Gauge,
        "Events the relay's outbox consumer has not acked.",
    ),
    family(
        "rotessa_relay_oldest_unrelayed_age_seconds",
        Kind::Gauge,
        "Age of the oldest event not yet relayed.",
    ),
    family(
        "rotessa_http_unauthorized_total",
        Kind::Counter,
        "Requests to a token-protected page refused for a missing or wrong token, by path.",
    ),
    family(
        "rotessa_build_info",
        Kind::Gauge,
        "Always 1; the version label says which build is running.",
    ),
    family(
        "rotessa_api_request_duration_seconds",
        Kind::Histogram,
        "Time of each request to Rotessa until its whole body arrived (or it failed), by endpoint.",
    ),
    family(
        "rotessa_outbox_events_held_by_fence",
        Kind::Gauge,
        "Committed events consumers cannot see yet because an older transaction is still open (exported by the leader).",
    ),
    family(
        "rotessa_outbox_oldest_held_age_seconds",
        Kind::Gauge,
        "Age of the oldest event held behind the visibility fence, 0 when none is.",
    ),
    family(
        "rotessa_reconciliation_open_mismatches",
        Kind::Gauge,
        "Client settlement dates whose last comparison was a mismatch (exported by the leader).",
    ),
    family(
        "rotessa_reconciliation_oldest_open_mismatch_age_seconds",
        Kind::Gauge,
        "Time since the longest-open mismatch was first seen, 0 when every date matches.",
    ),
];

/// Registers the HELP text (and unit) of every family with the installed recorder.
pub fn describe_all() {
    for f in FAMILIES {
        let unit = if f.name.ends_with("_seconds") {
            Some(Unit::Seconds)
        } else {
            None
        };
        match (f.kind, unit) {
            (Kind::Counter, _) => describe_counter!(f.name, f.help),
            (Kind::Gauge, Some(unit)) => describe_gauge!(f.name, unit, f.help),
            (Kind::Gauge, None) => describe_gauge!(f.name, f.help),
            (Kind::Histogram, Some(unit)) => describe_histogram!(f.name, unit, f.help),
            (Kind::Histogram, None) => describe_histogram!(f.name, f.help),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every metric name written anywhere in the source is in the catalog, and the other way
    /// round: a new metric cannot ship without HELP text.
    #[test]
    fn the_catalog_lists_exactly_the_metrics_the_source_writes() {
        let mut written = BTreeSet::new();
        let mut stack = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src"
        ))];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                // The store writes no metrics, and its SQL names columns such as
                // `rotessa_total_approved`.
                if path.ends_with("src/store") {
                    for file in std::fs::read_dir(&path).unwrap() {
                        let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
                        assert!(!text.contains("metrics::"), "the store writes no metrics");
                    }
                } else if path.is_dir() {
                    stack.push(path);
                } else if path.is_file()
                    && path.extension().is_some_and(|e| e == "rs")
                    && !path.ends_with("telemetry/catalog.rs")
                {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for (i, _) in text.match_indices("\"rotessa_") {
                        let name: String = text[i + 1..]
                            .chars()
                            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                            .collect();
                        // Not metrics: the schema, the demo database.
                        if !matches!(name.as_str(), "rotessa_outbox" | "rotessa_recon_demo") {
                            written.insert(name);
                        }
                    }
                }
            }
        }
        let listed: BTreeSet<String> = FAMILIES.iter().map(|f| f.name.to_owned()).collect();
        assert_eq!(written, listed);
    }
}
