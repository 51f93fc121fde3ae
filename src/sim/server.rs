//! [`SimServer`] runs the simulator in-process (for the CLI, the demo, tests and benchmarks):
//! it generates the data, binds, serves [`super::routes`] until shut down, and hands out a
//! [`SimHandle`] on the shared state (clock, faults, counters, scenarios).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::SimConfig;
use super::calendar::{Day, date_of, day_of};
use super::customers::{CustomerIndex, View};
use super::data::SimData;
use super::faults::{FaultCounts, FaultState};
use super::lifecycle::SimStatus;
use super::reports;
use super::scenarios::{ScenarioError, Scenarios, SimReport, SimRow};

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A setting is out of range (a usage error).
    #[error("invalid simulator settings: {0}")]
    Config(String),
    /// The address cannot be bound.
    #[error(
        "cannot listen on {addr}: {source} (is another process using it? try --listen 127.0.0.1:0)"
    )]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
    /// The generating task died.
    #[error("generating the simulated data failed: {0}")]
    Generate(String),
}

/// A query's matching rows, cached so that its pages do not rescan: client, start, end,
/// status filter, today and the [`Scenarios::version`] they were computed with (a scenario
/// change makes every older entry unreachable).
pub(super) type CacheKey = (Option<usize>, Day, Day, Option<SimStatus>, Day, u64);

/// State shared by every request.
pub struct Shared {
    pub(super) config: SimConfig,
    pub(super) data: SimData,
    auth: Vec<u8>,
    today: AtomicI32,
    pub(super) faults: Arc<FaultState>,
    pub(super) adjustments: Mutex<HashMap<(usize, Day), i64>>,
    cache: Mutex<VecDeque<(CacheKey, Arc<Vec<u32>>)>>,
    scenarios: RwLock<Arc<Scenarios>>,
    /// The transactions by customer, built by the first request that needs them.
    customers: OnceLock<CustomerIndex>,
}

/// A customer as it is after `/_sim/customer` (what that route answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCustomer {
    /// The customer id.
    pub id: i64,
    /// Its name now.
    pub name: String,
    /// Its email now.
    pub email: String,
    /// Its `updated_at`, exactly as the customer lists write it.
    pub updated_at: String,
}

impl Shared {
    /// The simulated today as a day number.
    pub(super) fn today_day(&self) -> Day {
        self.today.load(Ordering::Acquire)
    }

    /// Moves the clock forward by `days` (at most 100,000 at a time, so the day number cannot
    /// overflow); returns the new today.
    pub(super) fn advance(&self, days: u32) -> Day {
        let days = days.min(100_000) as i32;
        self.today.fetch_add(days, Ordering::AcqRel) + days
    }

    /// The scenarios in force: one snapshot per request, so all its rows agree.
    pub(super) fn scenarios(&self) -> Arc<Scenarios> {
        match self.scenarios.read() {
            Ok(s) => Arc::clone(&s),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Applies `change` to a copy of the scenarios, as of today, and puts the copy in force if
    /// it succeeds (changes are serialized; readers keep their snapshot meanwhile).
    pub(super) fn change_scenarios<T>(
        &self,
        change: impl FnOnce(&mut Scenarios, Day) -> Result<T, ScenarioError>,
    ) -> Result<T, ScenarioError> {
        let mut guard = match self.scenarios.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut next = Scenarios::clone(&guard);
        let out = change(&mut next, self.today_day())?;
        *guard = Arc::new(next);
        Ok(out)
    }

    /// The row index of transaction `id`.
    pub(super) fn tx_index(&self, id: i64) -> Result<usize, ScenarioError> {
        self.data
            .tx_index(id)
            .ok_or(ScenarioError::UnknownTransaction(id))
    }

    /// `/_sim/lag` and [`SimHandle::lag`].
    pub(super) fn lag(&self, id: i64, report: SimReport, days: u32) -> Result<(), ScenarioError> {
        let index = self.tx_index(id)?;
        if days > 3650 {
            return Err(ScenarioError::BadValue(format!(
                "days {days} must be 0..=3650 (0 clears the lag)"
            )));
        }
        self.change_scenarios(|s, _| {
            s.set_lag(index, report, days);
            Ok(())
        })
    }

    /// `/_sim/reverse` and [`SimHandle::reverse`]: the row as it is after the reversal.
    pub(super) fn reverse(&self, id: i64) -> Result<SimRow, ScenarioError> {
        let index = self.tx_index(id)?;
        let today = self.change_scenarios(|s, today| {
            s.reverse(&self.data, index, today)?;
            Ok(today)
        })?;
        Ok(SimRow::of(
            &self.data,
            &self.scenarios(),
            index,
            today,
            None,
        ))
    }

    /// `/_sim/resubmit` and [`SimHandle::resubmit`]: the row as it is after the resubmission.
    pub(super) fn resubmit(
        &self,
        id: i64,
        process_date: Option<NaiveDate>,
    ) -> Result<SimRow, ScenarioError> {
        let index = self.tx_index(id)?;
        let today = self.change_scenarios(|s, today| {
            s.resubmit(&self.data, index, today, process_date.map(day_of))?;
            Ok(today)
        })?;
        Ok(SimRow::of(
            &self.data,
            &self.scenarios(),
            index,
            today,
            None,
        ))
    }

    /// `/_sim/remove` and [`SimHandle::remove`]: the row as it was last reported, with its
    /// removal day.
    pub(super) fn remove(&self, id: i64) -> Result<SimRow, ScenarioError> {
        let index = self.tx_index(id)?;
        let today = self.change_scenarios(|s, today| {
            s.remove(&self.data, index, today)?;
            Ok(today)
        })?;
        Ok(SimRow::of(
            &self.data,
            &self.scenarios(),
            index,
            today,
            None,
        ))
    }

    /// `/_sim/restore` and [`SimHandle::restore`]: the row as it is reported again.
    pub(super) fn restore(&self, id: i64) -> Result<SimRow, ScenarioError> {
        let index = self.tx_index(id)?;
        let today = self.change_scenarios(|s, today| {
            s.restore(&self.data, index, today)?;
            Ok(today)
        })?;
        Ok(SimRow::of(
            &self.data,
            &self.scenarios(),
            index,
            today,
            None,
        ))
    }

    /// The transactions by customer (built on first use).
    pub(super) fn customer_index(&self) -> &CustomerIndex {
        self.customers
            .get_or_init(|| CustomerIndex::build(&self.data))
    }

    /// What the customer lists and the payout report are computed from, with `scenarios`.
    pub(super) fn customer_view<'a>(&'a self, scenarios: &'a Scenarios, today: Day) -> View<'a> {
        View {
            data: &self.data,
            index: self.customer_index(),
            scenarios,
            today,
            start: day_of(self.config.today),
        }
    }

    /// `/_sim/customer` and [`SimHandle::edit_customer`]: the customer as it is after the edit.
    pub(super) fn edit_customer(
        &self,
        id: i64,
        name: Option<String>,
        email: Option<String>,
    ) -> Result<SimCustomer, ScenarioError> {
        let customer = self
            .data
            .customer_index(id)
            .ok_or(ScenarioError::UnknownCustomer(id))?;
        if let Some(name) = &name
            && (name.trim().is_empty() || name.len() > 200 || name.chars().any(char::is_control))
        {
            return Err(ScenarioError::BadValue(format!(
                "name {name:?} must be 1 to 200 characters, without control characters"
            )));
        }
        if let Some(email) = &email {
            let valid = email.len() <= 200
                && !email.chars().any(|c| c.is_whitespace() || c.is_control())
                && email
                    .split_once('@')
                    .is_some_and(|(user, host)| !user.is_empty() && host.contains('.'));
            if !valid {
                return Err(ScenarioError::BadValue(format!(
                    "email {email:?} is not a valid email address"
                )));
            }
        }
        if name.is_none() && email.is_none() {
            return Err(ScenarioError::BadValue(
                "name or email is required (the new values of the customer)".into(),
            ));
        }
        let edit = self.change_scenarios(|s, today| {
            Ok(s.edit_customer(&self.data, customer, name, email, today))
        })?;
        let profile = super::customers::Profile::of(self.data.seed, customer);
        let mut updated = Vec::with_capacity(32);
        super::encode::push_timestamp(&mut updated, edit.day, i64::from(edit.secs));
        Ok(SimCustomer {
            id,
            name: edit.name.unwrap_or(profile.name),
            email: edit.email.unwrap_or(profile.email),
            updated_at: String::from_utf8_lossy(&updated)
                .trim_matches('"')
                .to_owned(),
        })
    }

    /// `/_sim/schedule_remove` and [`SimHandle::remove_schedule`]: the id of the schedule's
    /// customer. Only a listed schedule (one that produced transactions) can be removed.
    pub(super) fn remove_schedule(&self, id: i64) -> Result<i64, ScenarioError> {
        let (customer, slot) = self
            .data
            .schedule_slot(id)
            .ok_or(ScenarioError::UnknownSchedule(id))?;
        let listed = self
            .customer_index()
            .of(customer)
            .iter()
            .any(|&i| self.data.txs[i as usize].schedule_slot == slot);
        if !listed {
            return Err(ScenarioError::UnknownSchedule(id));
        }
        self.change_scenarios(|s, today| s.remove_schedule(id, today))?;
        Ok(self.data.customer_id(customer))
    }

    /// The exact `Authorization` header value API requests must send.
    pub(super) fn auth(&self) -> &[u8] {
        &self.auth
    }

    /// The rows of a query, computed once per simulated day and scenario version and reused by
    /// its pages.
    pub(super) fn cached(
        &self,
        key: CacheKey,
        compute: impl FnOnce() -> Vec<u32>,
    ) -> Arc<Vec<u32>> {
        if let Ok(cache) = self.cache.lock()
            && let Some((_, hit)) = cache.iter().find(|(k, _)| *k == key)
        {
            return Arc::clone(hit);
        }
        let rows = Arc::new(compute());
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= 8 {
                cache.pop_front();
            }
            cache.push_back((key, Arc::clone(&rows)));
        }
        rows
    }
}

/// A cheap, cloneable handle on a running simulator: its clock, faults and counters.
#[derive(Clone)]
pub struct SimHandle {
    shared: Arc<Shared>,
}

/// What the simulator has done so far (also served as `GET /_sim/state`).
#[derive(Debug, Clone, PartialEq)]
pub struct SimStats {
    /// The simulated today.
    pub today: NaiveDate,
    /// Number of clients.
    pub clients: usize,
    /// Number of customers.
    pub customers: usize,
    /// Number of transactions.
    pub transactions: usize,
    /// API requests received (admin requests are not counted).
    pub requests_served: u64,
    /// Faults injected, by kind.
    pub faults: FaultCounts,
    /// The current fault rate.
    pub fault_rate: f64,
    /// The current latency.
    pub latency_ms: u64,
}

impl SimHandle {
    /// The key API requests must present.
    pub fn api_key(&self) -> &str {
        &self.shared.config.api_key
    }

    /// The simulated today.
    pub fn today(&self) -> NaiveDate {
        date_of(self.shared.today_day())
    }

    /// Moves the simulated clock forward by `days`; returns the new today.
    pub fn advance(&self, days: u32) -> NaiveDate {
        date_of(self.shared.advance(days))
    }

    /// A clock function for `sync::Clock::Dynamic`, following this simulator's today.
    pub fn clock(&self) -> Arc<dyn Fn() -> NaiveDate + Send + Sync> {
        let handle = self.clone();
        Arc::new(move || handle.today())
    }

    /// Switches fault injection at run time.
    pub fn set_faults(&self, rate: f64, latency: Duration) {
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self.shared.faults.set(rate, ms);
    }

    /// Adds `cents` to a client's `total_approved` on a settlement date (a reconciliation
    /// mismatch on purpose); returns the cumulative adjustment, or why it cannot apply.
    pub fn adjust_settlement(
        &self,
        client_id: i64,
        date: NaiveDate,
        cents: i64,
    ) -> Result<i64, String> {
        let client = self
            .shared
            .data
            .client_index(client_id)
            .ok_or_else(|| format!("no client {client_id}"))?;
        let mut map = self
            .shared
            .adjustments
            .lock()
            .map_err(|_| "the adjustments lock is poisoned".to_owned())?;
        let total = map.entry((client, day_of(date))).or_insert(0);
        *total += cents;
        Ok(*total)
    }

    /// Makes `report` show transaction `id` as it was `days` days earlier (older status, older
    /// `updated_at`, and for the decline report membership too) until set back with `days` 0;
    /// the other report, the settlements and the state keep showing today's truth.
    pub fn lag(&self, id: i64, report: SimReport, days: u32) -> Result<(), String> {
        self.shared.lag(id, report, days).map_err(|e| e.to_string())
    }

    /// Reverses the chargeback of transaction `id` as of today: `Approved` again, with a newer
    /// `updated_at`; an error unless it is `Chargeback` today. Returns the row as it is now.
    pub fn reverse(&self, id: i64) -> Result<SimRow, String> {
        self.shared.reverse(id).map_err(|e| e.to_string())
    }

    /// Resubmits the declined transaction `id` as of today for `process_date` (default: 5
    /// business days after today): `Future` with a non-null, newer `updated_at`, then the
    /// lifecycle again from the new date, always approved. An error unless it is `Declined`
    /// today and the date is a business day after today. Returns the row as it is now.
    pub fn resubmit(&self, id: i64, process_date: Option<NaiveDate>) -> Result<SimRow, String> {
        self.shared
            .resubmit(id, process_date)
            .map_err(|e| e.to_string())
    }

    /// Rotessa stops reporting transaction `id` as of today (as when a schedule is deleted or
    /// edited, which removes its future transactions; any status can be removed, to produce an
    /// anomaly): from today no report shows it, and it never moves again. Settlements keep
    /// counting it where it had settled or been charged back before today. An error if it is
    /// removed already. Returns the row as it was last reported (yesterday), with `removed_on`.
    pub fn remove(&self, id: i64) -> Result<SimRow, String> {
        self.shared.remove(id).map_err(|e| e.to_string())
    }

    /// Reports the removed transaction `id` again as of today, exactly as a simulator without
    /// the removal reports it today (its lifecycle went on while it was hidden; settlements
    /// count it as if never removed). An error unless it is removed today. Returns the row as
    /// it is now.
    pub fn restore(&self, id: i64) -> Result<SimRow, String> {
        self.shared.restore(id).map_err(|e| e.to_string())
    }

    /// The ids of the transactions whose status today (the true view, overrides included) is
    /// `status` (`"Chargeback"`, ...; case-insensitive; unknown names match nothing), so tests
    /// can pick rows to lag, reverse, resubmit or remove. `"Removed"` lists the rows no report
    /// shows today, to restore; the other statuses leave them out.
    pub fn transaction_ids_with_status(&self, status: &str) -> Vec<i64> {
        let s = &self.shared;
        if status.trim().eq_ignore_ascii_case("removed") {
            return reports::removed_ids(&s.data, &s.scenarios(), s.today_day());
        }
        let Some(status) = SimStatus::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(status.trim()))
        else {
            return Vec::new();
        };
        reports::ids_with_status(&s.data, &s.scenarios(), status, s.today_day())
    }

    /// Edits customer `id` as of today (as `POST /_sim/customer`): `name` and `email`, when
    /// given, replace the current ones, and its `updated_at` becomes today. An error for an
    /// unknown customer, an invalid value, or neither value given. Returns the customer now.
    pub fn edit_customer(
        &self,
        id: i64,
        name: Option<&str>,
        email: Option<&str>,
    ) -> Result<SimCustomer, String> {
        self.shared
            .edit_customer(id, name.map(str::to_owned), email.map(str::to_owned))
            .map_err(|e| e.to_string())
    }

    /// Removes transaction schedule `id` from its customer's `transaction_schedules` as of
    /// today (as `POST /_sim/schedule_remove`; its transactions stay). An error unless it is
    /// listed. Returns the customer's id.
    pub fn remove_schedule(&self, id: i64) -> Result<i64, String> {
        self.shared.remove_schedule(id).map_err(|e| e.to_string())
    }

    /// The ids of the platform's clients.
    pub fn client_ids(&self) -> Vec<i64> {
        self.shared.data.client_ids.clone()
    }

    /// Counters and settings.
    pub fn stats(&self) -> SimStats {
        let s = &self.shared;
        SimStats {
            today: self.today(),
            clients: s.data.client_ids.len(),
            customers: s.data.customer_client.len(),
            transactions: s.data.txs.len(),
            requests_served: s.faults.requests(),
            faults: s.faults.counts(),
            fault_rate: s.faults.rate(),
            latency_ms: s.faults.latency_ms(),
        }
    }
}

/// A simulator serving on a local address until [`SimServer::shutdown`] or drop.
pub struct SimServer {
    handle: SimHandle,
    addr: SocketAddr,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
    generated_in: Duration,
}

impl SimServer {
    /// Generates the data (off the async threads), binds `listen` (port 0 picks a free one)
    /// and starts serving.
    pub async fn start(config: SimConfig, listen: SocketAddr) -> Result<Self, SimError> {
        config.validate().map_err(SimError::Config)?;
        let started = Instant::now();
        let shared = tokio::task::spawn_blocking(move || build(config))
            .await
            .map_err(|e| SimError::Generate(e.to_string()))?;
        let generated_in = started.elapsed();
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| SimError::Bind {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: listen,
            source,
        })?;
        let stop = CancellationToken::new();
        let app = super::routes::router(Arc::clone(&shared));
        let signal = stop.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(signal)
                .await
            {
                tracing::error!(error = %e, "simulator server stopped");
            }
        });
        Ok(Self {
            handle: SimHandle { shared },
            addr,
            stop,
            task: Some(task),
            generated_in,
        })
    }

    /// `http://<addr>`: the `rotessa.base_url` to sync from.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How long generating the data took.
    pub fn generated_in(&self) -> Duration {
        self.generated_in
    }

    /// A cloneable handle (clock, faults, counters).
    pub fn handle(&self) -> SimHandle {
        self.handle.clone()
    }

    /// The key API requests must present.
    pub fn api_key(&self) -> &str {
        self.handle.api_key()
    }

    /// The simulated today.
    pub fn today(&self) -> NaiveDate {
        self.handle.today()
    }

    /// Moves the simulated clock forward by `days`; returns the new today.
    pub fn advance(&self, days: u32) -> NaiveDate {
        self.handle.advance(days)
    }

    /// Switches fault injection at run time.
    pub fn set_faults(&self, rate: f64, latency: Duration) {
        self.handle.set_faults(rate, latency);
    }

    /// Counters and settings.
    pub fn stats(&self) -> SimStats {
        self.handle.stats()
    }

    /// Makes one report lag for one row; see [`SimHandle::lag`].
    pub fn lag(&self, id: i64, report: SimReport, days: u32) -> Result<(), String> {
        self.handle.lag(id, report, days)
    }

    /// Reverses a chargeback as of today; see [`SimHandle::reverse`].
    pub fn reverse(&self, id: i64) -> Result<SimRow, String> {
        self.handle.reverse(id)
    }

    /// Resubmits a decline as of today; see [`SimHandle::resubmit`].
    pub fn resubmit(&self, id: i64, process_date: Option<NaiveDate>) -> Result<SimRow, String> {
        self.handle.resubmit(id, process_date)
    }

    /// Stops reporting a transaction as of today; see [`SimHandle::remove`].
    pub fn remove(&self, id: i64) -> Result<SimRow, String> {
        self.handle.remove(id)
    }

    /// Reports a removed transaction again as of today; see [`SimHandle::restore`].
    pub fn restore(&self, id: i64) -> Result<SimRow, String> {
        self.handle.restore(id)
    }

    /// The ids of the transactions with `status` today; see
    /// [`SimHandle::transaction_ids_with_status`].
    pub fn transaction_ids_with_status(&self, status: &str) -> Vec<i64> {
        self.handle.transaction_ids_with_status(status)
    }

    /// Stops accepting, lets requests in flight finish, and waits for the server to end.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn build(config: SimConfig) -> Arc<Shared> {
    let data = SimData::generate(&config);
    let faults = Arc::new(FaultState::new(
        config.seed,
        config.fault_rate,
        config.latency_ms,
        config.retry_after_secs,
    ));
    let scenarios = RwLock::new(Arc::new(Scenarios::new(&config)));
    Arc::new(Shared {
        scenarios,
        auth: format!("Token token=\"{}\"", config.api_key).into_bytes(),
        today: AtomicI32::new(day_of(config.today)),
        config,
        data,
        faults,
        adjustments: Mutex::new(HashMap::new()),
        cache: Mutex::new(VecDeque::new()),
        customers: OnceLock::new(),
    })
}
