//! Sync: streams, windows and status rules. Translates Rotessa's wire rows into domain rows
//! and drives the store, one transaction per page.

mod apply;
pub mod clients;
mod clock;
pub mod convert;
pub mod customers;
pub mod declines;
pub mod events;
pub mod payouts;
pub mod reconcile;
mod removals;
mod report;
mod run;
pub mod settlements;
pub mod transactions;
pub mod windows;

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{Days, NaiveDate};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use clock::Clock;
pub use run::{RunError, RunOutcome, RunReport};

use crate::config::{ApiVersion, ClientSelection, Settings, StreamSettings};
use crate::domain::Source;
use crate::rotessa::{Client, ReportKind, ReportRequest};
use crate::store::lease::Fence;
use crate::store::{self, Store};
use run::Run;

/// A sync stream (SPEC.md "Sync streams").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// `GET /v2/clients` into `rotessa.clients`.
    Clients,
    /// The transaction report by process date.
    Transactions,
    /// Each client's transaction decline report by decline date.
    Declines,
    /// Each client's settlements by settlement date.
    Settlements,
    /// Each client's customers with their nested transaction schedules.
    Customers,
    /// The platform's payout report.
    Payouts,
}

impl Stream {
    /// Every stream, in the order `--stream all` runs them: clients before the per-client ones;
    /// customers next, so the transactions a pass writes have their names; settlements before
    /// the transactions and declines, so that a pass reads each settlement's transaction side
    /// after it and reconciles every date it read; payouts last, after the transactions they
    /// refer to.
    pub const ALL: [Stream; 6] = [
        Stream::Clients,
        Stream::Customers,
        Stream::Settlements,
        Stream::Transactions,
        Stream::Declines,
        Stream::Payouts,
    ];

    /// The stream's name in tables, logs, metrics and the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Clients => clients::STREAM,
            Self::Transactions => transactions::STREAM,
            Self::Declines => declines::STREAM,
            Self::Settlements => settlements::STREAM,
            Self::Customers => customers::STREAM,
            Self::Payouts => payouts::STREAM,
        }
    }

    /// Whether the stream runs once per client (on a v2 account).
    pub fn is_per_client(self) -> bool {
        matches!(self, Self::Declines | Self::Settlements | Self::Customers)
    }

    /// Whether a v1 (single-merchant) account can run it: `transactions` and `customers`.
    pub fn works_on_v1(self) -> bool {
        matches!(self, Self::Transactions | Self::Customers)
    }

    /// Whether a pass of it can change a settlement date's reconciliation.
    fn feeds_reconciliation(self) -> bool {
        matches!(
            self,
            Self::Transactions | Self::Declines | Self::Settlements
        )
    }

    /// The stream's settings.
    pub fn settings(self, sync: &crate::config::SyncSettings) -> &crate::config::StreamSettings {
        match self {
            Self::Clients => &sync.clients,
            Self::Transactions => &sync.transactions,
            Self::Declines => &sync.declines,
            Self::Settlements => &sync.settlements,
            Self::Customers => &sync.customers,
            Self::Payouts => &sync.payouts,
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stream {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|stream| stream.as_str() == s)
            .ok_or_else(|| format!("unknown stream {s:?}"))
    }
}

/// How far a stream's default window reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// From its cursor (minus the overlap) to today.
    FromCursor,
    /// Over its whole look-back to today, whatever its cursor (settlements when a chargeback
    /// changes the settlement of its transaction's own date, weeks later).
    Lookback,
    /// Over a fixed look-back to this many days after today (the transaction report).
    Horizon(u32),
}

/// A run's window and what it records if it succeeds (`None`: nothing, the cursor stays).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    window: (NaiveDate, NaiveDate),
    on_success: Option<Advance>,
}

/// What a successful run records of itself in the stream's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advance {
    /// Everything up to this date was read: the cursor moves here if it is further.
    pub cursor: NaiveDate,
    /// The run read the whole window the next scheduled run would read: it counts as the
    /// stream's last success (the freshness gauge, `status`, the reconciliation's readiness).
    /// A backfill of a narrower range moves the cursor at most.
    pub whole_window: bool,
}

/// Why a syncer was told to stop between pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// SIGTERM or SIGINT: runs end as `cancelled`.
    Shutdown,
    /// The daemon's lease was taken over: runs end as `failed`.
    LeaseLost,
}

/// Limits of one pass, from the command line.
#[derive(Debug, Clone, Default)]
pub struct PassOptions {
    /// Only this client (per-client streams and the transactions stream).
    pub client: Option<i64>,
    /// Start of the window instead of the stream's own (a backfill).
    pub from: Option<NaiveDate>,
    /// End of the window instead of the stream's own.
    pub to: Option<NaiveDate>,
}

/// Runs streams against Rotessa and the store. Cheap to clone.
#[derive(Clone)]
pub struct Syncer {
    store: Store,
    client: Client,
    settings: Arc<Settings>,
    clock: Clock,
    cancel: CancellationToken,
    window_permits: Arc<Semaphore>,
    fence: Option<Fence>,
    stop_reason: Arc<OnceLock<StopReason>>,
}

impl Syncer {
    /// A syncer with the clock of `sync.today` and its own cancellation token.
    pub fn new(store: Store, client: Client, settings: Arc<Settings>) -> Self {
        // Windows in progress at once: enough to keep every request slot busy, few enough that a
        // years-long backfill holds only a bounded number of pages in memory.
        let permits = 2 * settings.rotessa.concurrency.max(1);
        Self {
            clock: Clock::from_settings(&settings.sync),
            store,
            client,
            settings,
            cancel: CancellationToken::new(),
            window_permits: Arc::new(Semaphore::new(permits)),
            fence: None,
            stop_reason: Arc::new(OnceLock::new()),
        }
    }

    /// Checks `fence` inside every page transaction: the daemon's writes stop the moment its
    /// lease is lost.
    pub fn with_fence(mut self, fence: Fence) -> Self {
        self.fence = Some(fence);
        self
    }

    /// Uses `clock` for "today".
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Stops between pages when `cancel` fires (graceful shutdown).
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self.stop_reason = Arc::new(OnceLock::new());
        self
    }

    /// Stops the runs of this syncer (and its clones) between pages, for `reason`.
    pub fn stop(&self, reason: StopReason) {
        let _ = self.stop_reason.set(reason);
        self.cancel.cancel();
    }

    /// Why the runs were stopped (a cancelled parent token means shutdown).
    fn stop_reason(&self) -> StopReason {
        self.stop_reason
            .get()
            .copied()
            .unwrap_or(StopReason::Shutdown)
    }

    /// Today's date by this syncer's clock.
    pub fn today(&self) -> NaiveDate {
        self.clock.today()
    }

    /// The store this syncer writes to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The settings this syncer runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Whether shutdown has begun.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Whether `stream` exists for this account (a v1 account has only transactions and
    /// customers).
    pub fn runs_on_this_account(&self, stream: Stream) -> bool {
        self.settings.rotessa.api_version == ApiVersion::V2 || stream.works_on_v1()
    }

    /// Runs one stream: one run per client scope, up to `rotessa.concurrency` at once. A
    /// per-client stream with `rotessa.clients = "all"` enumerates `rotessa.clients`, running the
    /// clients stream first when that table is empty (its report is included). After a pass of
    /// the transactions, declines or settlements, the settlement dates that are ready are
    /// reconciled ([`reconcile`]); a failure there is reported as a failed `reconciliation`
    /// run (the dates stay noted for the next pass).
    pub async fn run(&self, stream: Stream, opts: &PassOptions) -> Vec<RunReport> {
        if !self.runs_on_this_account(stream) {
            tracing::debug!(%stream, "skipped: a v1 account has only the transactions stream");
            return Vec::new();
        }
        match stream {
            Stream::Clients => return vec![clients::run(self).await],
            Stream::Payouts => return vec![payouts::run(self, opts).await],
            _ => {}
        }
        if !stream.feeds_reconciliation() {
            return self.run_scopes(stream, opts).await;
        }
        let model = self.settings.reconciliation.chargeback_on.as_str();
        match store::reconciliation::set_chargeback_on(self.store.pool(), model).await {
            Ok(true) => tracing::warn!(
                chargeback_on = model,
                "the chargeback model changed: every settlement date is reconciled again"
            ),
            Ok(false) => {}
            Err(e) => return vec![RunReport::not_started(stream.as_str(), 0, e)],
        }
        let mut reports = self.run_scopes(stream, opts).await;
        if !self.is_cancelled()
            && let Err(e) = reconcile::reconcile_pending(self).await
        {
            reports.push(RunReport::not_started(reconcile::STREAM, 0, e));
        }
        reports
    }

    async fn run_scopes(&self, stream: Stream, opts: &PassOptions) -> Vec<RunReport> {
        let mut reports = Vec::new();
        let scopes: Vec<Option<i64>> = match stream {
            Stream::Clients => return vec![clients::run(self).await],
            Stream::Payouts => return vec![payouts::run(self, opts).await],
            Stream::Transactions => transactions::scopes(self, opts),
            Stream::Customers if self.settings.rotessa.api_version == ApiVersion::V1 => {
                vec![None]
            }
            Stream::Declines | Stream::Settlements | Stream::Customers => {
                match self.client_ids(opts, &mut reports).await {
                    Ok(ids) => ids.into_iter().map(Some).collect(),
                    Err(e) => {
                        reports.push(RunReport::not_started(stream.as_str(), 0, e));
                        return reports;
                    }
                }
            }
        };
        let limit = Arc::new(Semaphore::new(self.settings.rotessa.concurrency.max(1)));
        let mut tasks = JoinSet::new();
        for (index, scope) in scopes.into_iter().enumerate() {
            let (syncer, opts, limit) = (self.clone(), opts.clone(), Arc::clone(&limit));
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await.ok();
                let client_id = scope.unwrap_or(0);
                let report = match stream {
                    Stream::Transactions => transactions::run_scope(&syncer, scope, &opts).await,
                    Stream::Declines => declines::run_scope(&syncer, client_id, &opts).await,
                    Stream::Settlements => settlements::run_scope(&syncer, client_id, &opts).await,
                    Stream::Customers => customers::run_scope(&syncer, scope).await,
                    Stream::Clients => clients::run(&syncer).await,
                    Stream::Payouts => payouts::run(&syncer, &opts).await,
                };
                (index, report)
            });
        }
        let mut scoped = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(done) => scoped.push(done),
                Err(e) => scoped.push((
                    usize::MAX,
                    RunReport::not_started(stream.as_str(), 0, format!("run task failed: {e}")),
                )),
            }
        }
        scoped.sort_by_key(|(index, _)| *index);
        reports.extend(scoped.into_iter().map(|(_, r)| r));
        reports
    }

    /// The clients a per-client stream covers: `--client`, the configured list, or every client
    /// in `rotessa.clients`.
    async fn client_ids(
        &self,
        opts: &PassOptions,
        reports: &mut Vec<RunReport>,
    ) -> Result<Vec<i64>, store::Error> {
        if let Some(id) = opts.client {
            return Ok(vec![id]);
        }
        if let ClientSelection::Ids(ids) = &self.settings.rotessa.clients {
            return Ok(ids.clone());
        }
        let known = store::clients::ids(self.store.pool()).await?;
        if !known.is_empty() {
            return Ok(known);
        }
        reports.push(clients::run(self).await);
        store::clients::ids(self.store.pool()).await
    }

    /// What a run of `stream` for `client_id` reads, and what its cursor may become.
    ///
    /// The default window starts where the stream's next run is due to start: for a stream
    /// that follows its cursor (declines, settlements) at (cursor - overlap_days); for the
    /// transactions stream at (today - lookback_days); on a stream's first run at
    /// `sync.backfill_from` or (today - lookback_days). It ends today (Rotessa's date, never
    /// later, for the decline report and settlements) or, with `horizon_days`, that many days
    /// after. `--from`/`--to` replace either end.
    ///
    /// The cursor always means "everything up to here was read": a successful run moves it to
    /// the window's end (never past today, never backward) only if its window started at or
    /// before where the next run would start, so a backfill of a later range cannot make the
    /// next run skip the dates in between.
    async fn plan(
        &self,
        stream: &'static str,
        client_id: i64,
        cfg: &StreamSettings,
        opts: &PassOptions,
        reach: Reach,
    ) -> Result<Plan, store::Error> {
        let today = self.today();
        let cursor = store::sync_state::cursor(self.store.pool(), stream, client_id).await?;
        let lookback = today - Days::new(cfg.lookback_days.into());
        let due = match (cursor, reach) {
            (Some(c), Reach::FromCursor) => c - Days::new(cfg.overlap_days.into()),
            (Some(_), Reach::Horizon(_) | Reach::Lookback) => lookback,
            (None, _) => self.settings.sync.backfill_from.unwrap_or(lookback),
        };
        let from = opts.from.unwrap_or(due);
        let default_to = match reach {
            Reach::FromCursor | Reach::Lookback => today,
            Reach::Horizon(days) => today + Days::new(days.into()),
        };
        let to = match reach {
            Reach::FromCursor | Reach::Lookback => opts.to.unwrap_or(today).min(today),
            Reach::Horizon(_) => opts.to.unwrap_or(default_to),
        };
        // A cursor ahead of today (a backfill into the future) never inverts the window.
        let from = from.min(to);
        let on_success = (from <= due).then(|| Advance {
            cursor: to.min(today),
            whole_window: to >= default_to,
        });
        if on_success.is_none() {
            tracing::info!(
                %from,
                next_run_starts = %due,
                "the window starts after where the next run starts: the cursor stays where it is"
            );
        }
        Ok(Plan {
            window: (from, to),
            on_success,
        })
    }

    async fn start_run(
        &self,
        stream: &'static str,
        client_id: i64,
        window: Option<(NaiveDate, NaiveDate)>,
    ) -> Result<Run, store::Error> {
        let s = &self.settings.sync;
        let run = Run::start(
            &self.store,
            stream,
            client_id,
            window,
            Duration::from_secs(s.heartbeat_secs),
            Duration::from_secs(s.run_stale_secs),
        )
        .await?;
        tracing::Span::current().record("run_id", run.id);
        match window {
            Some((from, to)) => tracing::info!(%from, %to, "run started"),
            None => tracing::info!("run started"),
        }
        Ok(run)
    }

    /// A whole run of a report over the plan's window, fetched `window_days` at a time: record
    /// it, sync every window, finish it, and on success advance the cursor as planned.
    async fn run_report_windows(
        &self,
        stream: &'static str,
        client: Option<i64>,
        kind: ReportKind,
        plan: Plan,
        window_days: u32,
    ) -> RunReport {
        let window = plan.window;
        let client_id = client.unwrap_or(0);
        let run = match self.start_run(stream, client_id, Some(window)).await {
            Ok(run) => Arc::new(run),
            Err(e) => return RunReport::not_started(stream, client_id, e),
        };
        let windows = windows::split(window.0, window.1, window_days);
        let requests = windows
            .iter()
            .map(|&(start_date, end_date)| ReportRequest {
                kind,
                client_id: client,
                start_date,
                end_date,
            })
            .collect();
        let source = match kind {
            ReportKind::Transactions => Source::TransactionReport,
            ReportKind::Declines => Source::DeclineReport,
        };
        let result = report::sync_windows(self, &run, requests, source).await;
        if result.is_ok() && self.settings.sync.page_cache {
            let pool = self.store.pool();
            if let Err(e) =
                store::page_digests::forget_other_windows(pool, stream, client_id, &windows).await
            {
                tracing::warn!(error = %e, "cannot forget old page digests");
            }
        }
        run.finish(&self.store, result, plan.on_success, self.stop_reason())
            .await
    }
}
