//! The `customers` stream: each client's customer list (`GET /v2/clients/{id}/customers`, or
//! v1's `GET /v1/customers`), one request and one transaction per list, into
//! `rotessa.customers` and, from each customer's nested `transaction_schedules`,
//! `rotessa.transaction_schedules`. A `customer.changed` event per new or changed customer.
//!
//! Personal data is minimised (README "Personal data"): bank numbers masked, phones and the
//! address kept only with `sync.customers.store_contact`, nested financial transactions never;
//! a refused row is quarantined with the same fields masked or withheld.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tracing::Instrument;

use super::apply::{PageOutcome, record_rejected, with_db_retries};
use super::convert::{looks_private, to_customer};
use super::events;
use super::run::{RunError, RunReport};
use super::{Advance, Syncer};
use crate::domain::{Customer, PRIVATE_FIELDS, Schedule, mask};
use crate::rotessa::RejectedRow;
use crate::store::customers::{self, Stored};
use crate::store::lease::Fence;
use crate::store::rejected::Origin;
use crate::store::runs::Progress;
use crate::store::{self, Store};

/// The stream's name in tables, logs and metrics.
pub const STREAM: &str = "customers";

/// One run of the stream for one client (`None`: a v1 account's single list).
pub async fn run_scope(syncer: &Syncer, client: Option<i64>) -> RunReport {
    let client_id = client.unwrap_or(0);
    let span = tracing::info_span!(
        "run",
        run_id = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        stream = STREAM,
        client = client_id
    );
    async {
        let run = match syncer.start_run(STREAM, client_id, None).await {
            Ok(run) => run,
            Err(e) => return RunReport::not_started(STREAM, client_id, e),
        };
        let result = async {
            let (rows, refused) = tokio::select! {
                biased;
                _ = syncer.cancel.cancelled() => return Err(RunError::Cancelled),
                fetched = syncer.client.customers(client) => fetched?,
            };
            let store_contact = syncer.settings.sync.customers.store_contact == Some(true);
            let mut rejected: Vec<RejectedRow> = refused
                .into_iter()
                .map(|r| RejectedRow {
                    raw: redact(&r.raw),
                    error: r.error,
                })
                .collect();
            // A list of exactly whole pages may be the first page of a list Rotessa pages
            // without saying so: it says nothing of which customers are gone.
            let listed = rows.len() + rejected.len();
            let maybe_cut = listed > 0 && listed.is_multiple_of(syncer.client.page_size());
            if maybe_cut {
                metrics::counter!("rotessa_list_maybe_cut_total", "stream" => STREAM).increment(1);
                tracing::warn!(
                    rows = listed,
                    "the customer list holds exactly whole pages and is documented without \
                     paging: it may be cut short, so no customer is marked removed this run"
                );
            }
            let mut list: Vec<(Customer, Option<Vec<Schedule>>)> = Vec::with_capacity(rows.len());
            let mut by_id: HashMap<i64, usize> = HashMap::new();
            let mut duplicates = 0;
            for row in rows {
                let id = row.id;
                let converted = match to_customer(row, client, store_contact) {
                    Ok(converted) => converted,
                    Err(error) => {
                        rejected.push(withheld(id, error));
                        continue;
                    }
                };
                match by_id.get(&id).map(|&i| &list[i]) {
                    None => {
                        by_id.insert(id, list.len());
                        list.push(converted);
                    }
                    Some(first) if *first == converted => duplicates += 1,
                    Some(_) => rejected.push(withheld(
                        id,
                        "the list names this customer earlier with other values; the first is kept"
                            .to_owned(),
                    )),
                }
            }
            let retries = syncer.settings.database.page_retries;
            let scope = Scope {
                run_id: run.id,
                client,
                fetched_after: run.started_at,
                complete: !maybe_cut,
                store_contact,
            };
            let outcome = with_db_retries(STREAM, retries, |_| {
                apply(
                    &syncer.store,
                    syncer.fence.as_ref(),
                    scope,
                    &list,
                    &rejected,
                )
            })
            .await?;
            run.record(&outcome, &rejected, duplicates);
            Ok(())
        }
        .await;
        run.finish(
            &syncer.store,
            result,
            Some(Advance {
                cursor: syncer.today(),
                whole_window: true,
            }),
            syncer.stop_reason(),
        )
        .await
    }
    .instrument(span)
    .await
}

/// Why a refused row's fields are missing from `rotessa.rejected_records`.
const WITHHELD: &str = "personal data of a refused customer row is not stored";

/// A customer refused after parsing, quarantined by its id alone.
fn withheld(id: i64, error: String) -> RejectedRow {
    RejectedRow {
        raw: serde_json::json!({ "id": id, "withheld": WITHHELD }).to_string(),
        error,
    }
}

/// A refused row as quarantined: bank numbers masked, contact details and nested financial
/// transactions withheld (also inside a payout's nested `customer`). A row that is not a JSON
/// object is withheld whole.
pub fn redact(raw: &str) -> String {
    fn scrub(map: &mut serde_json::Map<String, Value>) {
        for (name, v) in map.iter_mut() {
            if v.is_null() || name == "transaction_schedules" {
                continue;
            }
            let private = PRIVATE_FIELDS.contains(&name.as_str()) || looks_private(name);
            *v = match name.as_str() {
                "account_number" | "transit_number" | "institution_number" | "routing_number" => {
                    let text = match &*v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    Value::String(mask(&text))
                }
                _ if private => Value::String("[withheld]".into()),
                _ => continue,
            };
        }
        if let Some(Value::Object(customer)) = map.get_mut("customer") {
            scrub(customer);
        }
    }
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(mut map)) => {
            scrub(&mut map);
            Value::Object(map).to_string()
        }
        _ => serde_json::json!({ "withheld": format!("{} bytes that are not a JSON object", raw.len()) })
            .to_string(),
    }
}

/// Which list a transaction writes, and how.
#[derive(Debug, Clone, Copy)]
struct Scope {
    run_id: i64,
    client: Option<i64>,
    /// The list was fetched after this instant (the run's start, by the database's clock): a
    /// row written since came from a newer read and is never marked removed by this one.
    fetched_after: DateTime<Utc>,
    /// The list is whole (not possibly cut at a page boundary): absences mean removals.
    complete: bool,
    /// `sync.customers.store_contact`: when off, contact details still stored are cleared.
    store_contact: bool,
}

/// What to write of one row against what is stored.
enum Verdict {
    New,
    Changed,
    Unchanged,
    /// Rotessa's `updated_at` is older than the stored one's: an older view, not applied.
    Stale,
}

fn verdict<T: PartialEq>(
    incoming: &T,
    stored: Option<&Stored<T>>,
    updated_at: impl Fn(&T) -> Option<chrono::DateTime<chrono::Utc>>,
) -> Verdict {
    match stored {
        None => Verdict::New,
        Some(s) => match (updated_at(incoming), updated_at(&s.row)) {
            (Some(new), Some(old)) if new < old => Verdict::Stale,
            _ if s.removed || s.row != *incoming => Verdict::Changed,
            _ => Verdict::Unchanged,
        },
    }
}

/// One transaction: the list compared and written, its schedules, removals, events, refused
/// rows and the run's progress.
async fn apply(
    store: &Store,
    fence: Option<&Fence>,
    scope: Scope,
    list: &[(Customer, Option<Vec<Schedule>>)],
    rejected: &[RejectedRow],
) -> Result<PageOutcome, store::Error> {
    let mut tx = store.begin().await?;
    customers::lock_list(&mut tx, scope.client).await?;
    let ids: Vec<i64> = list.iter().map(|(c, _)| c.id).collect();
    let stored = customers::current(&mut tx, &ids).await?;
    let (mut writes, mut outbox) = (Vec::new(), Vec::new());
    let mut progress = Progress {
        pages: 1,
        rows_seen: (list.len() + rejected.len()) as i64,
        rejected: rejected.len() as i64,
        ..Progress::default()
    };
    let mut stale = HashSet::new();
    for (c, _) in list {
        let before = stored.get(&c.id);
        match verdict(c, before, |c| c.api_updated_at) {
            Verdict::New => {
                progress.inserted += 1;
                outbox.push(events::customer_changed(c, None)?);
                writes.push(c);
            }
            Verdict::Changed => {
                progress.updated += 1;
                if let Some(b) = before.filter(|b| !c.changed_fields(&b.row).is_empty()) {
                    outbox.push(events::customer_changed(c, Some(&b.row))?);
                }
                writes.push(c);
            }
            Verdict::Unchanged => progress.unchanged += 1,
            Verdict::Stale => {
                progress.stale += 1;
                stale.insert(c.id);
            }
        }
    }
    customers::upsert(&mut tx, &writes).await?;

    // Schedules of the customers whose list carried them (v1's list does not), unless that
    // view of the customer is older than the stored one.
    let with_schedules: Vec<(&Customer, &Vec<Schedule>)> = list
        .iter()
        .filter(|(c, _)| !stale.contains(&c.id))
        .filter_map(|(c, s)| s.as_ref().map(|s| (c, s)))
        .collect();
    let schedule_ids: Vec<i64> = with_schedules
        .iter()
        .flat_map(|(_, s)| s.iter().map(|s| s.id))
        .collect();
    let stored_schedules = customers::current_schedules(&mut tx, &schedule_ids).await?;
    let mut schedule_writes = Vec::new();
    let mut seen_schedules = HashSet::new();
    for schedule in with_schedules.iter().flat_map(|(_, s)| s.iter()) {
        if !seen_schedules.insert(schedule.id) {
            continue;
        }
        let before = stored_schedules.get(&schedule.id);
        if let Verdict::New | Verdict::Changed = verdict(schedule, before, |s| s.api_updated_at) {
            schedule_writes.push(schedule);
        }
    }
    customers::upsert_schedules(&mut tx, &schedule_writes).await?;
    let listed_by: Vec<i64> = with_schedules.iter().map(|(c, _)| c.id).collect();
    let mut schedules_removed =
        customers::mark_schedules_removed(&mut tx, &listed_by, &schedule_ids, scope.fetched_after)
            .await?;

    // Only a whole list read in full says which customers are gone: a refused row might be one.
    if rejected.is_empty() && scope.complete {
        let gone =
            customers::mark_removed(&mut tx, scope.client, &ids, scope.fetched_after).await?;
        if !gone.is_empty() {
            tracing::warn!(
                count = gone.len(),
                "customers no longer listed by Rotessa: marked removed with their schedules"
            );
            metrics::counter!("rotessa_removed_rows_total", "stream" => STREAM)
                .increment(gone.len() as u64);
            schedules_removed +=
                customers::mark_schedules_removed(&mut tx, &gone, &[], scope.fetched_after).await?;
        }
    }
    if schedules_removed > 0 {
        tracing::info!(
            schedules_removed,
            "transaction schedules no longer listed: marked removed"
        );
        metrics::counter!("rotessa_removed_rows_total", "stream" => "transaction_schedules")
            .increment(schedules_removed);
    }
    if !scope.store_contact {
        let cleared = customers::clear_contact(&mut tx, scope.client).await?;
        if cleared > 0 {
            tracing::info!(
                cleared,
                "contact details cleared: sync.customers.store_contact is off"
            );
        }
    }

    store::outbox::append(&mut tx, &outbox).await?;
    let origin = Origin {
        stream: STREAM,
        client_id: scope.client.unwrap_or(0),
        run_id: scope.run_id,
        page: 1,
    };
    record_rejected(&mut tx, rejected, origin).await?;
    progress.events = outbox.len() as i64;
    store::runs::add_progress(&mut tx, scope.run_id, &progress).await?;
    if !outbox.is_empty() {
        store::outbox::notify(&mut tx).await?;
    }
    store::commit(tx, fence).await?;
    Ok(PageOutcome {
        progress,
        anomalies: Vec::new(),
        event_types: outbox.iter().map(|e| e.event_type).collect(),
        unparsed: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_rows_are_quarantined_without_personal_data() {
        let raw = r#"{"id": "x", "account_number": "23123132", "transit_number": 11111,
                      "phone": "2045551234", "address": {"address_1": "123 Main Street"},
                      "financial_transactions": [{"id": 1}], "name": "Mike Smith",
                      "mobile_phone": "2045557777",
                      "customer": {"account_number": "99988877", "home_phone": "2045550000"}}"#;
        let kept = redact(raw);
        for secret in [
            "23123132",
            "11111",
            "2045551234",
            "Main Street",
            "99988877",
            "2045550000",
        ] {
            assert!(!kept.contains(secret), "{secret} in {kept}");
        }
        assert!(
            kept.contains("*****132") && kept.contains("Mike Smith"),
            "{kept}"
        );
        assert!(!redact("[1, 2").contains("1, 2"));
    }
}
