//! Applying one report page to the database in one transaction (SPEC.md "Transactions, crash
//! safety"): compare without locks first, then lock only new or differing rows in id order,
//! re-compare under the lock by the status rules (Rotessa's clock first, then the lifecycle),
//! and write rows, history, events, anomalies, rejected rows and the run's progress together.
//! Two writers on the same data still emit each transition once, and a page applied late (it
//! was fetched ahead, or waited for a lock) cannot undo a newer commit: it is compared with
//! what is stored when it holds the lock.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use chrono::NaiveDate;
use tracing::Instrument;

use crate::domain::{AnomalyKind, Observed, Order, Source, Stored, Transaction, Transition};
use crate::rotessa::{Page, RejectedRow};
use crate::store::anomalies::Anomaly;
use crate::store::history::Entry;
use crate::store::lease::Fence;
use crate::store::page_digests::{self, Coverage, WindowKey};
use crate::store::rejected::{Origin, Rejected};
use crate::store::runs::Progress;
use crate::store::transactions::{Fingerprinted, Stored as StoredRow, Update};
use crate::store::{self, ResultExt, Store};

use super::events;

/// Where a page belongs.
#[derive(Debug, Clone, Copy)]
pub struct PageContext<'a> {
    pub run_id: i64,
    pub stream: &'static str,
    pub client_id: i64,
    pub source: Source,
    /// The daemon's lease, checked before commit.
    pub fence: Option<&'a Fence>,
    /// Where to record the page's digest once applied (`sync.page_cache`), or `None`.
    pub window: Option<WindowKey<'a>>,
}

/// What a committed page did.
#[derive(Debug, Default)]
pub struct PageOutcome {
    pub progress: Progress,
    pub anomalies: Vec<Anomaly>,
    /// The type of each event written.
    pub event_types: Vec<&'static str>,
    /// Rows written with optional fields that could not be parsed (NULL, text in `extra`).
    pub unparsed: Vec<(i64, Vec<&'static str>)>,
}

/// Applies a page, retrying the whole transaction on transient database errors (a dropped
/// connection, a deadlock); a failed attempt leaves nothing behind.
pub async fn apply_page_with_retries(
    store: &Store,
    ctx: PageContext<'_>,
    page: &Page<Transaction>,
    retries: u32,
) -> Result<PageOutcome, store::Error> {
    let rows: Vec<Fingerprinted<'_>> = page
        .rows
        .rows
        .iter()
        .map(|row| Fingerprinted {
            row,
            fingerprint: row.fingerprint(),
        })
        .collect();
    with_db_retries(ctx.stream, retries, |attempt| {
        apply_page(store, ctx, page, &rows, attempt)
    })
    .await
}

/// Runs a whole database transaction again while it fails transiently, up to `retries` times;
/// the closure gets the attempt number (0 first). Each attempt runs in a `db.transaction` span
/// (stream, attempt counted from 1 like a request's; `otel.status_code` ERROR when it failed).
pub async fn with_db_retries<T, F, Fut>(
    stream: &'static str,
    retries: u32,
    mut attempt_once: F,
) -> Result<T, store::Error>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Result<T, store::Error>>,
{
    let mut attempt = 0;
    loop {
        let span = tracing::info_span!(
            "db.transaction",
            stream,
            attempt = i64::from(attempt) + 1,
            otel.status_code = tracing::field::Empty,
        );
        let result = attempt_once(attempt).instrument(span.clone()).await;
        if result.is_err() {
            span.record("otel.status_code", "ERROR");
        }
        drop(span);
        match result {
            Ok(outcome) => return Ok(outcome),
            Err(e) if e.is_transient() && attempt < retries => {
                attempt += 1;
                let delay = jittered(Duration::from_millis(100 << attempt.min(6)));
                metrics::counter!("rotessa_page_retries_total", "stream" => stream).increment(1);
                tracing::warn!(
                    attempt,
                    delay_ms = delay.as_millis() as u64,
                    error = %e,
                    "database transaction failed transiently; retrying it whole"
                );
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// A delay between half of `base` and `base`, at random: retries of writers that failed
/// together (a restarted server, a killed batch of connections) do not retry in lockstep.
fn jittered(base: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let half = base / 2;
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    half + Duration::from_nanos(random % nanos.saturating_add(1))
}

async fn apply_page(
    store: &Store,
    ctx: PageContext<'_>,
    page: &Page<Transaction>,
    rows: &[Fingerprinted<'_>],
    attempt: u32,
) -> Result<PageOutcome, store::Error> {
    let ids: Vec<i64> = rows.iter().map(|r| r.row.id).collect();

    // 1. Cheap: what is stored, without a transaction or a lock. Rotessa's clock for a row only
    //    moves forward, so an observation older than it now is stale under any lock too.
    let stored = store::transactions::versions(store.pool(), &ids).await?;
    let mut coverage = Coverage::new(stored.others);
    let mut new = Vec::new();
    let mut differing = Vec::new();
    let mut older = Vec::new();
    let mut unchanged = 0i64;
    // The transaction report decides whether a row is reported at all: one it returns again
    // after it was marked removed is restored.
    let restores = ctx.source == Source::TransactionReport;
    // A digest vouches for every row of its page: a page with rows the parser refused (the
    // digest would not know them) or rows left marked removed (the digest counts only rows not
    // removed) gets none, and is parsed again each time.
    let mut cacheable = page.rows.rejected.is_empty();
    for r in rows {
        cacheable &= restores || !stored.rows.get(&r.row.id).is_some_and(|v| v.removed);
        match stored.rows.get(&r.row.id) {
            None => new.push(*r),
            Some(v) if v.removed && restores => differing.push(*r),
            Some(v) if v.fingerprint == r.fingerprint => {
                unchanged += 1;
                coverage.add(r.row.id, r.fingerprint);
            }
            Some(v) if Order::of(r.row.api_updated_at, v.latest_updated_at) == Order::Older => {
                older.push(*r);
                coverage.add(r.row.id, v.fingerprint);
            }
            Some(_) => differing.push(*r),
        }
    }
    let mut anomalies = stale_anomalies(store, &older).await?;
    let mut stale = older.len() as i64;
    let rows_seen = page.rows.len as i64;
    if new.is_empty()
        && differing.is_empty()
        && page.rows.rejected.is_empty()
        && anomalies.is_empty()
    {
        // Nothing to write: this page cost one read (and, with the page cache, a note of its
        // digest so that the same body is not even parsed next time). Its counts reach the run
        // at its end.
        if let Some(window) = ctx.window.filter(|_| cacheable) {
            let mut conn = store.pool().acquire().await.op("recording a page digest")?;
            page_digests::record(
                &mut conn,
                window,
                page.number,
                page.rows.digest,
                page.rows.len,
                &coverage,
            )
            .await?;
        }
        return Ok(PageOutcome {
            progress: Progress {
                pages: 1,
                rows_seen,
                unchanged,
                stale,
                ..Progress::default()
            },
            ..PageOutcome::default()
        });
    }

    let mut tx = store.begin().await?;
    let observed_at = page.fetched_at;
    let mut history = Vec::new();
    let mut outbox = Vec::new();
    // The settlement dates whose comparison the page may change, under old and new values.
    let mut noted = BTreeSet::new();

    // 2. New rows: COPY them (a first attempt), or insert skipping rows another writer has
    //    inserted since (a retry). Only rows we inserted are first sightings.
    new.sort_by_key(|r| r.row.id);
    let inserted: HashSet<i64> = if attempt == 0 {
        store::transactions::copy_new(&mut tx, &new).await?;
        new.iter().map(|r| r.row.id).collect()
    } else {
        store::transactions::insert_new(&mut tx, &new)
            .await?
            .into_iter()
            .collect()
    };
    for r in &new {
        if inserted.contains(&r.row.id) {
            note_dates(
                &mut noted,
                r.row.client_id,
                r.row.settlement_date,
                r.row.decline_date,
            );
            history.push(entry(r.row, None));
            outbox.push(events::transaction_status_changed(
                r.row,
                None,
                observed_at,
                ctx.source,
                false,
            )?);
            coverage.add(r.row.id, r.fingerprint);
        } else {
            // Another writer inserted it first: compare under the lock like any change.
            differing.push(*r);
        }
    }

    // 3. Differing rows: lock in id order, re-compare, apply the status rules.
    let mut updates = Vec::new();
    let mut restored = Vec::new();
    if !differing.is_empty() {
        differing.sort_by_key(|r| r.row.id);
        let ids: Vec<i64> = differing.iter().map(|r| r.row.id).collect();
        let current: HashMap<i64, StoredRow> = store::transactions::lock_current(&mut tx, &ids)
            .await?
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        for r in &differing {
            let cur = current
                .get(&r.row.id)
                .ok_or(sqlx::Error::RowNotFound)
                .op("a transaction row vanished while its page was written")?;
            cacheable &= restores || !cur.removed;
            let transition = (cur.fingerprint != r.fingerprint).then(|| {
                Transition::classify(
                    Stored {
                        change: &cur.change,
                        latest_updated_at: cur.latest_updated_at,
                        previous: cur
                            .previous
                            .as_ref()
                            .map(|(change, source)| (change, *source)),
                    },
                    Observed {
                        change: &r.row.status_change(),
                        updated_at: r.row.api_updated_at,
                        source: ctx.source,
                    },
                    true,
                )
            });
            if cur.removed && restores {
                // Restored whatever the observation's age (the report returns the row), with
                // the status it was removed with; a change of status, if the observation is
                // applied, follows as its own transition.
                restored.push(r.row.id);
                note_change(&mut noted, cur, r.row);
                history.push(Entry {
                    transaction_id: r.row.id,
                    from_status: Some(cur.change.status.as_str()),
                    to_status: cur.change.status.as_str(),
                    status_reason: cur.change.status_reason.clone(),
                    decline_date: cur.change.decline_date,
                    change: "restored",
                });
                outbox.push(events::transaction_restored(
                    r.row,
                    &cur.change,
                    observed_at,
                )?);
            }
            let Some(transition) = transition else {
                unchanged += 1;
                coverage.add(r.row.id, r.fingerprint);
                continue;
            };
            match transition {
                Transition::Stale => {
                    coverage.add(r.row.id, cur.fingerprint);
                    stale += 1;
                    if cur.change.status != r.row.status {
                        anomalies.push(anomaly(AnomalyKind::Stale, cur, r.row));
                    }
                }
                Transition::Backward => {
                    coverage.add(r.row.id, cur.fingerprint);
                    anomalies.push(anomaly(AnomalyKind::Backward, cur, r.row));
                }
                Transition::StatusChanged { reversal } => {
                    note_change(&mut noted, cur, r.row);
                    coverage.add(r.row.id, r.fingerprint);
                    updates.push(Update {
                        row: *r,
                        status_changed: true,
                    });
                    history.push(entry(r.row, Some(cur.change.status.as_str())));
                    outbox.push(events::transaction_status_changed(
                        r.row,
                        Some(cur.change.status),
                        observed_at,
                        ctx.source,
                        reversal,
                    )?);
                    if reversal {
                        anomalies.push(anomaly(AnomalyKind::Reversal, cur, r.row));
                    }
                }
                Transition::FieldsOnly | Transition::Unchanged => {
                    note_change(&mut noted, cur, r.row);
                    coverage.add(r.row.id, r.fingerprint);
                    updates.push(Update {
                        row: *r,
                        status_changed: false,
                    });
                }
            }
        }
        store::transactions::update(&mut tx, &updates).await?;
        store::transactions::restore(&mut tx, &restored).await?;
    }

    // 4. Everything else the page produced, in the same transaction.
    let source = ctx.source.as_str();
    store::history::append(&mut tx, &history, page.fetched_at, source, ctx.run_id).await?;
    store::outbox::append(&mut tx, &outbox).await?;
    store::anomalies::record(&mut tx, &anomalies, source, ctx.run_id).await?;
    let noted: Vec<(i64, NaiveDate)> = noted.into_iter().collect();
    store::reconciliation::note_pending(&mut tx, &noted).await?;
    let origin = Origin {
        stream: ctx.stream,
        client_id: ctx.client_id,
        run_id: ctx.run_id,
        page: i32::try_from(page.number).unwrap_or(i32::MAX),
    };
    record_rejected(&mut tx, &page.rows.rejected, origin).await?;
    let progress = Progress {
        pages: 1,
        rows_seen,
        inserted: inserted.len() as i64,
        updated: updates.len() as i64,
        unchanged,
        rejected: page.rows.rejected.len() as i64,
        stale,
        anomalies: anomalies.len() as i64,
        events: outbox.len() as i64,
    };
    store::runs::add_progress(&mut tx, ctx.run_id, &progress).await?;
    if let Some(window) = ctx.window.filter(|_| cacheable) {
        page_digests::record(
            &mut tx,
            window,
            page.number,
            page.rows.digest,
            page.rows.len,
            &coverage,
        )
        .await?;
    }
    if !outbox.is_empty() {
        store::outbox::notify(&mut tx).await?;
    }
    store::commit(tx, ctx.fence).await?;
    // Unparseable optional fields are reported when their row is written, not at every read.
    let unparsed = new
        .iter()
        .filter(|r| inserted.contains(&r.row.id))
        .chain(updates.iter().map(|u| &u.row))
        .filter(|r| !r.row.unparsed.is_empty())
        .map(|r| (r.row.id, r.row.unparsed.clone()))
        .collect();
    Ok(PageOutcome {
        progress,
        anomalies,
        event_types: outbox.iter().map(|e| e.event_type).collect(),
        unparsed,
    })
}

/// The anomalies of observations found older than the stored rows without a lock: those whose
/// status differs from what is stored now.
async fn stale_anomalies(
    store: &Store,
    older: &[Fingerprinted<'_>],
) -> Result<Vec<Anomaly>, store::Error> {
    if older.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = older.iter().map(|r| r.row.id).collect();
    let current: HashMap<i64, StoredRow> = store::transactions::current(store.pool(), &ids)
        .await?
        .into_iter()
        .map(|s| (s.id, s))
        .collect();
    Ok(older
        .iter()
        .filter_map(|r| {
            let cur = current.get(&r.row.id)?;
            (cur.change.status != r.row.status).then(|| anomaly(AnomalyKind::Stale, cur, r.row))
        })
        .collect())
}

/// An observation `observed` of a row stored as `stored`, recorded as `kind`.
fn anomaly(kind: AnomalyKind, stored: &StoredRow, observed: &Transaction) -> Anomaly {
    Anomaly {
        kind,
        transaction_id: observed.id,
        stored_status: stored.change.status.as_str(),
        stored_status_reason: stored.change.status_reason.clone(),
        stored_status_at: stored.status_changed_at,
        stored_updated_at: stored.latest_updated_at,
        observed_status: observed.status.as_str(),
        observed_status_reason: observed.status_reason.clone(),
        observed_updated_at: observed.api_updated_at,
    }
}

/// Notes the dates a transaction's row counts on in the reconciliation: its settlement date,
/// and its decline date (where a chargeback counts under one model).
fn note_dates(
    noted: &mut BTreeSet<(i64, NaiveDate)>,
    client_id: Option<i64>,
    settlement_date: Option<NaiveDate>,
    decline_date: Option<NaiveDate>,
) {
    if let Some(client_id) = client_id {
        for date in [settlement_date, decline_date].into_iter().flatten() {
            noted.insert((client_id, date));
        }
    }
}

/// Notes the dates a rewritten row counted on before and counts on now.
fn note_change(noted: &mut BTreeSet<(i64, NaiveDate)>, stored: &StoredRow, row: &Transaction) {
    let before = (
        stored.client_id,
        stored.settlement_date,
        stored.change.decline_date,
    );
    note_dates(noted, before.0, before.1, before.2);
    note_dates(noted, row.client_id, row.settlement_date, row.decline_date);
}

/// Quarantines rows the parser refused, in the caller's transaction.
pub async fn record_rejected(
    conn: &mut sqlx::PgConnection,
    rows: &[RejectedRow],
    origin: Origin<'_>,
) -> Result<(), store::Error> {
    let rows: Vec<Rejected<'_>> = rows
        .iter()
        .map(|r| Rejected {
            raw: &r.raw,
            error: &r.error,
        })
        .collect();
    store::rejected::record(conn, &rows, origin).await
}

fn entry(t: &Transaction, from: Option<&'static str>) -> Entry {
    Entry {
        transaction_id: t.id,
        from_status: from,
        to_status: t.status.as_str(),
        status_reason: t.status_reason.clone(),
        decline_date: t.decline_date,
        change: "status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jittered_delay_stays_between_half_and_all_of_its_base() {
        let base = Duration::from_millis(400);
        let delays: Vec<Duration> = (0..200).map(|_| jittered(base)).collect();
        assert!(delays.iter().all(|d| *d >= base / 2 && *d <= base));
        let first = delays[0];
        assert!(delays.iter().any(|d| *d != first), "the delays vary");
        assert_eq!(jittered(Duration::ZERO), Duration::ZERO);
    }
}
