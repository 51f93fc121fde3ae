//! Paging through a report: pages 1, 2, ... until a short page, with guards against a server
//! that never advances. Pages are fetched ahead of the consumer, bounded so memory stays flat:
//! one page ahead at first, and once a window has shown itself to be large (several full
//! pages), up to `rotessa.prefetch_pages` requests at once, so that a few long windows still keep
//! every request slot (`rotessa.concurrency`, shared by all windows) busy.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::wire::ParsedRows;
use super::{Client, Error, KnownPages, ReportRequest, RowConverter};

/// Full pages a window must return before its later pages are requested in parallel: a small
/// window is never asked for pages past its end.
const SPECULATE_AFTER: u32 = 3;

/// One fetched page of a report.
#[derive(Debug)]
pub struct Page<T> {
    /// 1-based page number.
    pub number: u32,
    pub rows: ParsedRows<T>,
    /// When the page was received: the moment its statuses were observed.
    pub fetched_at: DateTime<Utc>,
    /// The page's `page` span (a child of the caller's span when the stream was made): its
    /// requests ran in it, and the caller applies the page in it, so the span lasts from the
    /// first request to the end of whatever the caller does with the page.
    pub span: tracing::Span,
}

/// The pages of one report request, in order. A background task fetches ahead; dropping the
/// stream stops it.
pub struct PageStream<T> {
    rx: mpsc::Receiver<Result<Page<T>, Error>>,
    task: JoinHandle<()>,
}

impl<T: Send + 'static> PageStream<T> {
    pub(super) fn spawn(
        client: Client,
        request: ReportRequest,
        convert: RowConverter<T>,
        known: KnownPages,
    ) -> Self {
        let (tx, rx) = mpsc::channel(1);
        let task = tokio::spawn(fetch_all(client, request, convert, known, tx).in_current_span());
        Self { rx, task }
    }

    /// The next page, an error (after which the stream ends), or `None` when done.
    pub async fn next(&mut self) -> Option<Result<Page<T>, Error>> {
        self.rx.recv().await
    }

    /// Waits for the fetching task to end, after `next` returned `None` or an error (it ends
    /// right after), so that it no longer holds the caller's span open.
    pub async fn finish(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl<T> Drop for PageStream<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Fetch<T> = JoinHandle<Result<(ParsedRows<T>, DateTime<Utc>), Error>>;

/// Aborts the fetches still running when dropped (at the end, or when the consumer is gone).
struct InFlight<T>(VecDeque<(u32, tracing::Span, Fetch<T>)>);

impl<T> Drop for InFlight<T> {
    fn drop(&mut self) {
        for (_, _, fetch) in &self.0 {
            fetch.abort();
        }
    }
}

async fn fetch_all<T: Send + 'static>(
    client: Client,
    request: ReportRequest,
    convert: RowConverter<T>,
    known: KnownPages,
    tx: mpsc::Sender<Result<Page<T>, Error>>,
) {
    let endpoint = endpoint_name(&request);
    let mut in_flight = InFlight(VecDeque::new());
    let mut next: u32 = 1;
    let mut full_pages: u32 = 0;
    let mut previous_ids: Vec<i64> = Vec::new();
    let mut previous_digest: Option<i64> = None;
    loop {
        let ahead = if full_pages >= SPECULATE_AFTER {
            client.prefetch_pages().max(1)
        } else {
            1
        };
        // Page `max_pages + 1` is still asked for: a window of exactly `max_pages` full pages
        // ends with it empty; only rows there mean the window has too many pages.
        while in_flight.0.len() < ahead && next <= client.max_pages().saturating_add(1) {
            let (client, request, convert) = (client.clone(), request.clone(), convert.clone());
            let number = next;
            let known_page = known.get(&number).copied();
            // Integers as i64: OpenTelemetry attributes have no unsigned type.
            let span = tracing::info_span!("page", page = i64::from(number));
            let fetch = tokio::spawn(
                async move {
                    let rows = client
                        .report_page(&request, number, &convert, known_page)
                        .await?;
                    Ok((rows, Utc::now()))
                }
                .instrument(span.clone()),
            );
            in_flight.0.push_back((number, span, fetch));
            next += 1;
        }
        let Some((number, span, fetch)) = in_flight.0.pop_front() else {
            let max = client.max_pages();
            let _ = tx.send(Err(Error::TooManyPages { endpoint, max })).await;
            return;
        };
        let fetched = match fetch.await {
            Ok(fetched) => fetched,
            Err(e) => Err(Error::Setup(format!("page fetch task failed: {e}"))),
        };
        let (rows, fetched_at) = match fetched {
            Ok(fetched) => fetched,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        // A server ignoring `page` repeats the previous page: the same body, or the same rows.
        let mut ids = rows.ids.clone();
        ids.sort_unstable();
        let same_body = rows.len > 0 && previous_digest == Some(rows.digest);
        if same_body || (!ids.is_empty() && ids == previous_ids) {
            let _ = tx
                .send(Err(Error::PageRepeated {
                    endpoint,
                    page: number,
                }))
                .await;
            return;
        }
        if number > client.max_pages() && rows.len > 0 {
            let max = client.max_pages();
            let _ = tx.send(Err(Error::TooManyPages { endpoint, max })).await;
            return;
        }
        previous_ids = ids;
        previous_digest = Some(rows.digest);
        let last = rows.len < client.page_size();
        let page = Page {
            number,
            rows,
            fetched_at,
            span,
        };
        if tx.send(Ok(page)).await.is_err() || last {
            return;
        }
        full_pages += 1;
    }
}

fn endpoint_name(request: &ReportRequest) -> &'static str {
    match request.kind {
        super::ReportKind::Transactions => "transaction_report",
        super::ReportKind::Declines => "transaction_decline_report",
    }
}
