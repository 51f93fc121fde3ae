//! Rows Rotessa stops reporting (SPEC.md "Status rules"): after each complete read of a
//! transaction-report window, the rows of the window it did not return count one more absent
//! read, and those absent from two consecutive complete reads are marked `removed_at`, with a
//! `transaction.removed` event and a history entry, never deleted. (A row that only moved to
//! another page while the pages were read is missing from one read, not two.) A removed row
//! the report returns again is restored by the page that returns it ([`super::apply`]).

use std::collections::BTreeSet;

use crate::domain::{AnomalyKind, Source, Status, Transaction};
use crate::rotessa::Page;
use crate::store;
use crate::store::anomalies::Anomaly;
use crate::store::history::Entry;
use crate::store::page_digests::WindowKey;
use crate::store::removals::{self, Gone, Read};
use crate::store::runs::Progress;

use super::Syncer;
use super::apply::{PageOutcome, with_db_retries};
use super::events::{self, Facts};
use super::run::{Run, RunError};

/// What a window's read returned, page by page.
#[derive(Debug, Default)]
pub struct WindowRead {
    parsed_ids: Vec<i64>,
    skipped_pages: Vec<i32>,
    /// The digest each skipped page matched: its ids are those of that digest.
    skipped_digests: Vec<i64>,
    /// A page had rows that could not be parsed: which rows the read returned is not known,
    /// so it does not count.
    incomplete: bool,
}

impl WindowRead {
    /// Notes a page of the read (applied, or skipped as identical to its digest).
    pub fn page(&mut self, page: &Page<Transaction>) {
        if page.rows.identical {
            self.skipped_pages
                .push(i32::try_from(page.number).unwrap_or(i32::MAX));
            self.skipped_digests.push(page.rows.digest);
        } else {
            self.parsed_ids.extend_from_slice(&page.rows.ids);
            self.incomplete |= !page.rows.rejected.is_empty();
        }
    }
}

/// Counts a complete read of `window` (`client`: the report's client, `None` for every
/// client), marking the rows gone from two reads removed, in one transaction.
pub async fn count_read(
    syncer: &Syncer,
    run: &Run,
    window: WindowKey<'_>,
    client: Option<i64>,
    read: &WindowRead,
) -> Result<(), RunError> {
    if read.incomplete {
        tracing::info!(
            "a page had rows that could not be parsed: this read does not count for removals"
        );
        return Ok(());
    }
    let retries = syncer.settings.database.page_retries;
    let outcome = with_db_retries(run.stream, retries, |_| async {
        let mut tx = syncer.store.begin().await?;
        let gone = removals::count_read(
            &mut tx,
            Read {
                window,
                client_id: client,
                parsed_ids: &read.parsed_ids,
                skipped_pages: &read.skipped_pages,
                skipped_digests: &read.skipped_digests,
            },
        )
        .await?;
        let Some(gone) = gone else {
            tracing::info!(
                "a skipped page's digest was replaced since it was read (another writer read \
                 the window): this read does not count for removals"
            );
            return Ok(PageOutcome::default());
        };
        if gone.is_empty() {
            store::commit(tx, syncer.fence.as_ref()).await?;
            return Ok(PageOutcome::default());
        }
        let observed_at = chrono::Utc::now();
        let (mut history, mut outbox, mut anomalies) = (Vec::new(), Vec::new(), Vec::new());
        let mut noted = BTreeSet::new();
        for g in &gone {
            let status = parse_status(&g.status)?;
            history.push(Entry {
                transaction_id: g.id,
                from_status: Some(status.as_str()),
                to_status: status.as_str(),
                status_reason: g.status_reason.clone(),
                decline_date: g.decline_date,
                change: "removed",
            });
            outbox.push(events::transaction_removed(facts(g, status), observed_at)?);
            if matches!(status, Status::Approved | Status::Chargeback) {
                anomalies.push(removed_anomaly(g, status));
            }
            if let Some(client_id) = g.client_id {
                for date in [g.settlement_date, g.decline_date].into_iter().flatten() {
                    noted.insert((client_id, date));
                }
            }
        }
        let source = Source::TransactionReport.as_str();
        let now = chrono::Utc::now();
        store::history::append(&mut tx, &history, now, source, run.id).await?;
        store::outbox::append(&mut tx, &outbox).await?;
        store::anomalies::record(&mut tx, &anomalies, source, run.id).await?;
        let noted: Vec<_> = noted.into_iter().collect();
        store::reconciliation::note_pending(&mut tx, &noted).await?;
        let progress = Progress {
            events: outbox.len() as i64,
            anomalies: anomalies.len() as i64,
            ..Progress::default()
        };
        store::runs::add_progress(&mut tx, run.id, &progress).await?;
        store::outbox::notify(&mut tx).await?;
        store::commit(tx, syncer.fence.as_ref()).await?;
        metrics::counter!("rotessa_removed_rows_total", "stream" => run.stream)
            .increment(gone.len() as u64);
        for g in &gone {
            tracing::info!(
                transaction_id = g.id,
                status = %g.status,
                "no longer reported in two complete reads of its window: marked removed"
            );
        }
        Ok(PageOutcome {
            progress,
            event_types: outbox.iter().map(|e| e.event_type).collect(),
            anomalies,
            unparsed: Vec::new(),
        })
    })
    .await?;
    run.record(&outcome, &[], 0);
    Ok(())
}

fn parse_status(text: &str) -> Result<Status, store::Error> {
    text.parse().map_err(|e| store::Error::Query {
        op: "reading a stored status",
        source: sqlx::Error::Decode(Box::new(e)),
    })
}

fn facts(g: &Gone, status: Status) -> Facts<'_> {
    Facts {
        id: g.id,
        client_id: g.client_id,
        customer_id: g.customer_id,
        amount: g.amount,
        status,
        status_reason: g.status_reason.as_deref(),
        process_date: g.process_date,
        settlement_date: g.settlement_date,
        decline_date: g.decline_date,
        transaction_number: g.transaction_number.as_deref(),
        custom_identifier: g.custom_identifier.as_deref(),
    }
}

/// Money that moved, no longer reported: an operator looks (observed status "Removed").
fn removed_anomaly(g: &Gone, status: Status) -> Anomaly {
    Anomaly {
        kind: AnomalyKind::Removed,
        transaction_id: g.id,
        stored_status: status.as_str(),
        stored_status_reason: g.status_reason.clone(),
        stored_status_at: g.status_changed_at,
        stored_updated_at: g.latest_updated_at,
        observed_status: "Removed",
        observed_status_reason: None,
        observed_updated_at: None,
    }
}
