//! Situations in which Rotessa's two reports disagree, produced on demand so that tests and
//! outbox consumers can reproduce them: reports that lag for a share of rows
//! (`--report-lag-rate`, `--report-lag-days`), one row lagging in one report (`/_sim/lag`), a
//! chargeback reversed (`/_sim/reverse`), a decline resubmitted (`/_sim/resubmit`), and rows
//! Rotessa stops reporting, for a share of rows (`--removal-rate`) or one row (`/_sim/remove`,
//! `/_sim/restore`). It also keeps the edits made to customers and schedules on demand
//! (`/_sim/customer`, `/_sim/schedule_remove`; see [`super::customers`]), so that one version
//! covers every admin change.
//!
//! [`Scenarios`] is an immutable snapshot: the server keeps it behind a lock as an `Arc`, takes
//! it once per request, and replaces it (with a new [`Scenarios::version`]) on each change.
//! [`Scenarios::observe`] applies the lag and the overrides on top of the pure
//! [`lifecycle::observe`](super::lifecycle::observe); with no lag and no override it is that
//! function, behind one well-predicted branch, so the hot path stays as fast as before.
//!
//! Views: each report asks for its own view ([`SimReport`]); the settlements, `/_sim/state` and
//! [`super::SimHandle::transaction_ids_with_status`] ask for the true one (`None`). A lagging
//! view shows a row as it was `lag` days earlier, overrides included only if they were made on
//! or before that day.
//!
//! Removals: a removed row is absent from a view from the day of its removal until the day of
//! its restore ([`Scenarios::removed_since`]); it is filtered out of the reports' members,
//! never rewritten, so [`Scenarios::observe`] does not look at removals and a reported row is
//! observed as before. The true view of a removed row (for settlements, [`Scenarios::settling`])
//! is frozen as it was the day before its removal. Reports check for removals only when some
//! exist ([`Scenarios::removes`]).

use std::collections::HashMap;

use chrono::NaiveDate;

use super::SimConfig;
use super::calendar::{Day, add_business_days, date_of, is_business_day, sub_business_days};
use super::data::{SimData, Tx, salt};
use super::encode::push_updated_at;
use super::lifecycle::{Observed, SimStatus, observe, observe_resubmitted, observe_reversed};
use super::rng::hash2;

/// The two reports that can disagree about a row, to say which one lags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimReport {
    /// The transaction report, in every flavor (v2 all clients, v2 per client, v1).
    TransactionReport,
    /// The per-client decline report.
    DeclineReport,
}

impl SimReport {
    /// Both reports, in the order of [`ScenarioCounts::lagging_rows`].
    pub const ALL: [SimReport; 2] = [Self::TransactionReport, Self::DeclineReport];

    /// The name used by `/_sim/lag?report=` and `/_sim/state`: the endpoint's last segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TransactionReport => "transaction_report",
            Self::DeclineReport => "transaction_decline_report",
        }
    }

    /// Reads [`SimReport::as_str`]'s spelling (case-insensitive).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(text.trim()))
    }

    fn slot(self) -> usize {
        match self {
            Self::TransactionReport => 0,
            Self::DeclineReport => 1,
        }
    }
}

/// A change made to one row on demand, from its day on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Override {
    /// The chargeback was reversed on `day`: `Approved` again from then.
    Reversed {
        /// The day of the reversal.
        day: Day,
    },
    /// The decline was resubmitted on `day` for `process_day`: `Future` from then, and the
    /// lifecycle again (always approved).
    Resubmitted {
        /// The day of the resubmission.
        day: Day,
        /// The new process date.
        process_day: Day,
    },
}

/// Why a scenario change was refused; the message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScenarioError {
    /// No transaction has this id (HTTP 404).
    UnknownTransaction(i64),
    /// The request cannot apply to the row as it is today (HTTP 422, `invalid_transition`).
    Invalid(String),
    /// A value of the request cannot be used (HTTP 422, `invalid_parameter`).
    BadValue(String),
    /// No customer has this id (HTTP 404).
    UnknownCustomer(i64),
    /// No listed transaction schedule has this id (HTTP 404).
    UnknownSchedule(i64),
}

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownTransaction(id) => write!(
                f,
                "Transaction {id} could not be found (ids come from the transaction report)."
            ),
            Self::UnknownCustomer(id) => write!(
                f,
                "Customer {id} could not be found (ids come from GET /v2/clients/<id>/customers)."
            ),
            Self::UnknownSchedule(id) => write!(
                f,
                "Transaction schedule {id} could not be found (ids come from the customers' \
                 transaction_schedules, or the reports' transaction_schedule_id)."
            ),
            Self::Invalid(message) | Self::BadValue(message) => f.write_str(message),
        }
    }
}

/// How many rows lag and how many were changed on demand (for `/_sim/state`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScenarioCounts {
    /// Rows that lag, per report in [`SimReport::ALL`] order (by the rate or by `/_sim/lag`).
    pub lagging_rows: [u64; 2],
    /// Row-and-report lag settings made through `/_sim/lag`.
    pub lag_settings: usize,
    /// Chargebacks reversed.
    pub reversed: usize,
    /// Declines resubmitted.
    pub resubmitted: usize,
    /// Rows removed today through `/_sim/remove`.
    pub removed_on_demand: u64,
    /// Rows removed today by `--removal-rate` (its removal day is today or earlier).
    pub removed_by_rate: u64,
    /// Rows reported again today after a removal (`/_sim/restore`).
    pub restored: u64,
    /// Customers edited through `/_sim/customer`.
    pub customers_edited: usize,
    /// Transaction schedules removed through `/_sim/schedule_remove`.
    pub schedules_removed: usize,
}

/// A customer as edited through `/_sim/customer`: the values that replace the generated ones,
/// and when the last edit happened (its `updated_at`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerEdit {
    /// The new name, if one was set.
    pub name: Option<String>,
    /// The new email, if one was set.
    pub email: Option<String>,
    /// The simulated day of the last edit.
    pub day: Day,
    /// Seconds after that day's midnight (-05:00) of the last edit.
    pub secs: u32,
}

/// One transaction as the true view shows it today: what `/_sim/reverse` and `/_sim/resubmit`
/// answer, so a caller sees the state and the `updated_at` its change produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRow {
    /// The transaction id.
    pub id: i64,
    /// Its status, as the API spells it.
    pub status: &'static str,
    /// Its decline or chargeback reason.
    pub status_reason: Option<&'static str>,
    /// Its process date (a resubmission's new one).
    pub process_date: NaiveDate,
    /// Its settlement date.
    pub settlement_date: NaiveDate,
    /// Its decline or chargeback date.
    pub decline_date: Option<NaiveDate>,
    /// When it was approved.
    pub earliest_approval_date: Option<NaiveDate>,
    /// `updated_at` exactly as the reports write it (`2026-11-23T17:12:09.000-05:00`).
    pub updated_at: Option<String>,
    /// The day Rotessa stopped reporting it, while it is removed; the other fields are then the
    /// row as it was last reported, the day before.
    pub removed_on: Option<NaiveDate>,
}

impl SimRow {
    /// Row `index` as `view` shows it on `today`; a row removed in that view as it was last
    /// reported, with its removal day.
    pub fn of(
        data: &SimData,
        scenarios: &Scenarios,
        index: usize,
        today: Day,
        view: Option<SimReport>,
    ) -> Self {
        let at = scenarios.view_day(index, today, view);
        let removed = scenarios.removed_since(data, index, at);
        let seen = scenarios.observe(data, index, removed.map_or(at, |day| day - 1), None);
        let updated_at = seen.last_change.map(|change| {
            let mut buf = Vec::with_capacity(32);
            push_updated_at(&mut buf, data, index, Some(change));
            String::from_utf8_lossy(&buf).trim_matches('"').to_owned()
        });
        Self {
            id: data.tx_id(index),
            status: seen.status.as_str(),
            status_reason: seen.status_reason,
            process_date: date_of(seen.process_day),
            settlement_date: date_of(seen.settlement_day),
            decline_date: seen.decline_day.map(date_of),
            earliest_approval_date: seen.earliest_approval_day.map(date_of),
            updated_at,
            removed_on: removed.map(date_of),
        }
    }
}

/// The lag settings and the per-row overrides in force: an immutable snapshot.
#[derive(Debug, Clone)]
pub struct Scenarios {
    version: u64,
    seed: u64,
    lag_rate: f64,
    lag_days: u32,
    /// A row lags by the rate when `hash >> 11` is below this (a rate of 53-bit precision).
    lag_threshold: u64,
    /// Per row index: the `/_sim/lag` days per report slot; `None` leaves the rate's choice.
    lags: HashMap<u32, [Option<u32>; 2]>,
    overrides: HashMap<u32, Override>,
    /// The indices of resubmitted rows (their process date moved), ascending.
    moved: Vec<u32>,
    removal_rate: f64,
    /// A row is removed by the rate when its hash `>> 11` is below this.
    removal_threshold: u64,
    /// Per row index changed through `/_sim/remove` or `/_sim/restore`: the days it was removed
    /// and restored, `[removed, restored)` ascending, `Day::MAX` while still removed. A row
    /// here is out of the rate's hands (an empty list: never removed).
    removals: HashMap<u32, Vec<(Day, Day)>>,
    /// No lag and no override: every view is [`observe`].
    plain: bool,
    /// Some row may be removed: reports must filter their members.
    removing: bool,
    /// Per customer index: its edits (`/_sim/customer`).
    customer_edits: HashMap<u32, CustomerEdit>,
    /// Removed transaction schedules (`/_sim/schedule_remove`): id -> the day of the removal.
    removed_schedules: HashMap<i64, Day>,
}

impl Scenarios {
    /// The scenarios of a fresh simulator: the configured lag and removal rates, no override.
    pub fn new(config: &SimConfig) -> Self {
        let rate = config.report_lag_rate.clamp(0.0, 1.0);
        let removal_rate = config.removal_rate.clamp(0.0, 1.0);
        let mut s = Self {
            version: 0,
            seed: config.seed,
            lag_rate: rate,
            lag_days: config.report_lag_days,
            lag_threshold: (rate * (1u64 << 53) as f64) as u64,
            lags: HashMap::new(),
            overrides: HashMap::new(),
            moved: Vec::new(),
            removal_rate,
            removal_threshold: (removal_rate * (1u64 << 53) as f64) as u64,
            removals: HashMap::new(),
            plain: true,
            removing: false,
            customer_edits: HashMap::new(),
            removed_schedules: HashMap::new(),
        };
        s.refresh();
        s
    }

    fn refresh(&mut self) {
        self.plain = (self.lag_threshold == 0 || self.lag_days == 0)
            && self.lags.is_empty()
            && self.overrides.is_empty();
        self.removing = self.removal_threshold > 0 || !self.removals.is_empty();
    }

    /// Grows with every change, so that caches keyed by it never serve a stale answer.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// No lag and no override: every report shows the truth.
    pub fn is_plain(&self) -> bool {
        self.plain
    }

    /// Whether some row may be removed (by the rate or on demand): only then must a report
    /// filter its members with [`Scenarios::removed_since`].
    pub fn removes(&self) -> bool {
        self.removing
    }

    /// The configured share of rows removed while `Future`.
    pub fn removal_rate(&self) -> f64 {
        self.removal_rate
    }

    /// The configured share of rows that lag in one of the reports.
    pub fn lag_rate(&self) -> f64 {
        self.lag_rate
    }

    /// How many days the rows chosen by the rate lag.
    pub fn lag_days_setting(&self) -> u32 {
        self.lag_days
    }

    /// Which report lags for row `index` by the rate, if any: a salted hash of the seed and
    /// the index (no draw from the generator, so the data stays the same).
    pub fn rate_lag(&self, index: usize) -> Option<SimReport> {
        if self.lag_threshold == 0 || self.lag_days == 0 {
            return None;
        }
        let h = hash2(self.seed ^ salt::REPORT_LAG, index as u64);
        ((h >> 11) < self.lag_threshold).then_some(if h & 1 == 0 {
            SimReport::TransactionReport
        } else {
            SimReport::DeclineReport
        })
    }

    /// How many days `report` lags for row `index` (0: it shows the truth).
    pub fn lag_days(&self, index: usize, report: SimReport) -> u32 {
        if !self.lags.is_empty()
            && let Some(days) = u32::try_from(index)
                .ok()
                .and_then(|i| self.lags.get(&i))
                .and_then(|set| set[report.slot()])
        {
            return days;
        }
        if self.rate_lag(index) == Some(report) {
            self.lag_days
        } else {
            0
        }
    }

    /// The override of row `index`, if any.
    pub fn override_of(&self, index: usize) -> Option<Override> {
        if self.overrides.is_empty() {
            return None;
        }
        u32::try_from(index)
            .ok()
            .and_then(|i| self.overrides.get(&i))
            .copied()
    }

    /// The resubmitted rows (their process date moved), ascending: the rows that walks by the
    /// generated process date must leave out and add back where they now belong.
    pub fn moved(&self) -> &[u32] {
        &self.moved
    }

    /// Whether row `index` was resubmitted (its process date moved).
    pub fn is_moved(&self, index: usize) -> bool {
        !self.moved.is_empty()
            && u32::try_from(index).is_ok_and(|i| self.moved.binary_search(&i).is_ok())
    }

    /// Row `index` as `view` shows it on `today`: the truth (`None`), or a report's view,
    /// `lag_days` earlier for a lagging row. Overrides apply from their day on. Removals do not
    /// change a row, only whether a view shows it ([`Scenarios::is_reported`]).
    #[inline]
    pub fn observe(
        &self,
        data: &SimData,
        index: usize,
        today: Day,
        view: Option<SimReport>,
    ) -> Observed {
        let tx = &data.txs[index];
        if self.plain {
            return observe(tx, today);
        }
        self.observe_at(tx, index, self.view_day(index, today, view))
    }

    /// The day `view` shows row `index` as, on `today`: `today`, or `lag` days earlier.
    pub fn view_day(&self, index: usize, today: Day, view: Option<SimReport>) -> Day {
        match view {
            Some(report) if !self.plain => today - self.lag_days(index, report).min(100_000) as Day,
            _ => today,
        }
    }

    /// The day on which the rate removes row `index`, if it does: a salted hash of the seed and
    /// the index picks the row (its high bits, like the lag) and, from its low bits, a day 3 to
    /// 20 days before the generated process date, moved earlier if needed so that the row is
    /// still `Future` on it. No draw from the generator, so the data stays the same.
    pub fn rate_removal(&self, data: &SimData, index: usize) -> Option<Day> {
        if self.removal_threshold == 0 {
            return None;
        }
        let h = hash2(self.seed ^ salt::REMOVAL, index as u64);
        if (h >> 11) >= self.removal_threshold {
            return None;
        }
        let tx = data.txs.get(index)?;
        let before = 3 + (((h & 0x7ff) * 18) >> 11) as Day;
        // The day before it becomes Pending (`lifecycle::timeline`'s `pending_from` - 1).
        let last_future = sub_business_days(tx.process_day, 1) - 1;
        Some((tx.process_day - before).min(last_future))
    }

    /// The day row `index` was removed, if it is removed on day `at` (no report shows it
    /// then): by `/_sim/remove` and not yet restored on `at`, or by the rate on or before `at`
    /// (unless the row was changed on demand).
    #[inline]
    pub fn removed_since(&self, data: &SimData, index: usize, at: Day) -> Option<Day> {
        if !self.removing {
            return None;
        }
        if !self.removals.is_empty()
            && let Some(history) = u32::try_from(index)
                .ok()
                .and_then(|i| self.removals.get(&i))
        {
            return history
                .iter()
                .find(|(removed, restored)| *removed <= at && at < *restored)
                .map(|(removed, _)| *removed);
        }
        self.rate_removal(data, index).filter(|day| *day <= at)
    }

    /// Whether `view` shows row `index` on `today` (it is not removed on the day the view shows).
    #[inline]
    pub fn is_reported(
        &self,
        data: &SimData,
        index: usize,
        today: Day,
        view: Option<SimReport>,
    ) -> bool {
        !self.removing
            || self
                .removed_since(data, index, self.view_day(index, today, view))
                .is_none()
    }

    /// What the settlements count for row `index` on `today`, and the last day they count it
    /// on: the true view and `today`; for a removed row, the true view of the day before its
    /// removal and that day (a removed row never moves again: it counts where it had settled or
    /// been charged back before, and nowhere after).
    pub fn settling(&self, data: &SimData, index: usize, today: Day) -> (Observed, Day) {
        let last = self
            .removed_since(data, index, today)
            .map_or(today, |removed| removed - 1);
        (self.observe(data, index, last, None), last)
    }

    fn observe_at(&self, tx: &Tx, index: usize, at: Day) -> Observed {
        match self.override_of(index) {
            None => observe(tx, at),
            Some(Override::Reversed { day }) => observe_reversed(tx, day, at),
            Some(Override::Resubmitted { day, process_day }) => {
                observe_resubmitted(tx, day, process_day, at)
            }
        }
    }

    /// Makes `report` show row `index` as it was `days` earlier (0: as it is), whatever the rate
    /// chose for it.
    pub fn set_lag(&mut self, index: usize, report: SimReport, days: u32) {
        let Ok(i) = u32::try_from(index) else {
            return;
        };
        // A 0 where the rate would not lag anyway is no setting at all.
        let setting = (days > 0 || self.rate_lag(index) == Some(report)).then_some(days);
        let entry = self.lags.entry(i).or_insert([None; 2]);
        entry[report.slot()] = setting;
        if entry.iter().all(Option::is_none) {
            self.lags.remove(&i);
        }
        self.changed();
    }

    /// Reverses the chargeback of row `index` as of `today`; refused unless the row is
    /// `Chargeback` today.
    pub fn reverse(
        &mut self,
        data: &SimData,
        index: usize,
        today: Day,
    ) -> Result<(), ScenarioError> {
        self.refuse_removed(data, index, today, "reversed")?;
        let seen = self.observe(data, index, today, None);
        if seen.status != SimStatus::Chargeback {
            return Err(ScenarioError::Invalid(format!(
                "Transaction {} is {} on {}; only a Chargeback can be reversed \
                 (pick one with GET /_sim/transactions?status=Chargeback)",
                data.tx_id(index),
                seen.status.as_str(),
                date_of(today)
            )));
        }
        self.set_override(index, Override::Reversed { day: today });
        Ok(())
    }

    /// Resubmits the declined row `index` as of `today` for `process_day` (default: 5 business
    /// days after today); refused unless the row is `Declined` today and the new process date
    /// is a business day after today.
    pub fn resubmit(
        &mut self,
        data: &SimData,
        index: usize,
        today: Day,
        process_day: Option<Day>,
    ) -> Result<Day, ScenarioError> {
        self.refuse_removed(data, index, today, "resubmitted")?;
        let seen = self.observe(data, index, today, None);
        if seen.status != SimStatus::Declined {
            return Err(ScenarioError::Invalid(format!(
                "Transaction {} is {} on {}; only a Declined transaction can be resubmitted \
                 (pick one with GET /_sim/transactions?status=Declined)",
                data.tx_id(index),
                seen.status.as_str(),
                date_of(today)
            )));
        }
        let process_day = process_day.unwrap_or_else(|| add_business_days(today, 5));
        if process_day <= today || !is_business_day(process_day) {
            return Err(ScenarioError::BadValue(format!(
                "process_date {} must be a business day (Monday to Friday) after today ({}), e.g. {}",
                date_of(process_day),
                date_of(today),
                date_of(add_business_days(today, 5))
            )));
        }
        self.set_override(
            index,
            Override::Resubmitted {
                day: today,
                process_day,
            },
        );
        Ok(process_day)
    }

    fn refuse_removed(
        &self,
        data: &SimData,
        index: usize,
        today: Day,
        what: &str,
    ) -> Result<(), ScenarioError> {
        match self.removed_since(data, index, today) {
            None => Ok(()),
            Some(day) => Err(ScenarioError::Invalid(format!(
                "Transaction {} was removed on {}: no report shows it, so it cannot be {what} \
                 (restore it first with POST /_sim/restore)",
                data.tx_id(index),
                date_of(day)
            ))),
        }
    }

    /// Removes row `index` as of `today`: from today no report shows it and it never moves
    /// again (see [`Scenarios::settling`]). Refused when it is removed already.
    pub fn remove(
        &mut self,
        data: &SimData,
        index: usize,
        today: Day,
    ) -> Result<(), ScenarioError> {
        if let Some(day) = self.removed_since(data, index, today) {
            return Err(ScenarioError::Invalid(format!(
                "Transaction {} was removed on {} already (restore it with POST /_sim/restore)",
                data.tx_id(index),
                date_of(day)
            )));
        }
        let Ok(i) = u32::try_from(index) else {
            return Ok(());
        };
        // Not removed today, so a removal by the rate, if any, is still to come: the row
        // leaves the rate's hands.
        let history = self.removals.entry(i).or_default();
        match history.last_mut() {
            // Restored today and removed again: one removal, as if never restored.
            Some(last) if last.1 == today => last.1 = Day::MAX,
            _ => history.push((today, Day::MAX)),
        }
        self.changed();
        Ok(())
    }

    /// Restores the removed row `index` as of `today`: from today the reports show it again as
    /// its lifecycle gives it, exactly as if it had never been removed. Refused unless it is
    /// removed today. A removal and a restore on the same day leave no trace (except that a row
    /// the rate would remove later is no longer removed by it).
    pub fn restore(
        &mut self,
        data: &SimData,
        index: usize,
        today: Day,
    ) -> Result<(), ScenarioError> {
        let Some(removed) = self.removed_since(data, index, today) else {
            return Err(ScenarioError::Invalid(format!(
                "Transaction {} is not removed on {}; only a removed transaction can be restored \
                 (pick one with GET /_sim/transactions?status=Removed)",
                data.tx_id(index),
                date_of(today)
            )));
        };
        let Ok(i) = u32::try_from(index) else {
            return Ok(());
        };
        let rate = self.rate_removal(data, index);
        let mut history = self
            .removals
            .remove(&i)
            .unwrap_or_else(|| vec![(removed, Day::MAX)]);
        if let Some(last) = history.last_mut() {
            if last.0 == today {
                history.pop();
            } else {
                last.1 = today;
            }
        }
        if !history.is_empty() || rate.is_some() {
            self.removals.insert(i, history);
        }
        self.changed();
        Ok(())
    }

    fn set_override(&mut self, index: usize, change: Override) {
        let Ok(i) = u32::try_from(index) else {
            return;
        };
        self.overrides.insert(i, change);
        let at = self.moved.binary_search(&i);
        match (change, at) {
            (Override::Resubmitted { .. }, Err(pos)) => self.moved.insert(pos, i),
            (Override::Reversed { .. }, Ok(pos)) => {
                self.moved.remove(pos);
            }
            _ => {}
        }
        self.changed();
    }

    /// The edits of customer `customer` (an index), if it was edited.
    pub fn customer_edit(&self, customer: u32) -> Option<&CustomerEdit> {
        if self.customer_edits.is_empty() {
            return None;
        }
        self.customer_edits.get(&customer)
    }

    /// Whether transaction schedule `id` was removed (it is no longer listed).
    pub fn schedule_removed(&self, id: i64) -> bool {
        !self.removed_schedules.is_empty() && self.removed_schedules.contains_key(&id)
    }

    /// Edits customer `customer` (an index) as of `today`: `name` and `email`, when given,
    /// replace the current ones, and its `updated_at` becomes today, at a time of day after
    /// noon that depends on the customer and grows by a second with each further edit of the
    /// day. Returns the edit in force.
    pub fn edit_customer(
        &mut self,
        data: &SimData,
        customer: u32,
        name: Option<String>,
        email: Option<String>,
        today: Day,
    ) -> CustomerEdit {
        let id = data.customer_id(customer);
        let base =
            12 * 3600 + (hash2(self.seed ^ salt::TIME, (id as u64) | (1 << 62)) % 3600) as u32;
        let previous = self.customer_edits.get(&customer);
        let secs = match previous {
            Some(p) if p.day == today => (p.secs + 1).max(base).min(86_399),
            _ => base,
        };
        let edit = CustomerEdit {
            name: name.or_else(|| previous.and_then(|p| p.name.clone())),
            email: email.or_else(|| previous.and_then(|p| p.email.clone())),
            day: today,
            secs,
        };
        self.customer_edits.insert(customer, edit.clone());
        self.changed();
        edit
    }

    /// Removes transaction schedule `id` from its customer's list as of `today` (its
    /// transactions stay); refused when it was removed already.
    pub fn remove_schedule(&mut self, id: i64, today: Day) -> Result<(), ScenarioError> {
        if let Some(day) = self.removed_schedules.get(&id) {
            return Err(ScenarioError::Invalid(format!(
                "Transaction schedule {id} was removed on {} already",
                date_of(*day)
            )));
        }
        self.removed_schedules.insert(id, today);
        self.changed();
        Ok(())
    }

    fn changed(&mut self) {
        self.version += 1;
        self.refresh();
    }

    /// Counts for `/_sim/state` on `today` (a scan of every row when a rate is above 0).
    pub fn counts(&self, data: &SimData, today: Day) -> ScenarioCounts {
        let rows = data.txs.len();
        let mut counts = ScenarioCounts {
            customers_edited: self.customer_edits.len(),
            schedules_removed: self.removed_schedules.len(),
            lag_settings: self
                .lags
                .values()
                .map(|set| set.iter().flatten().count())
                .sum(),
            ..ScenarioCounts::default()
        };
        for change in self.overrides.values() {
            match change {
                Override::Reversed { .. } => counts.reversed += 1,
                Override::Resubmitted { .. } => counts.resubmitted += 1,
            }
        }
        if self.lag_threshold > 0 && self.lag_days > 0 {
            for index in 0..rows {
                for report in SimReport::ALL {
                    if self.lag_days(index, report) > 0 {
                        counts.lagging_rows[report.slot()] += 1;
                    }
                }
            }
        } else {
            for set in self.lags.values() {
                for (slot, days) in set.iter().enumerate() {
                    if days.is_some_and(|d| d > 0) {
                        counts.lagging_rows[slot] += 1;
                    }
                }
            }
        }
        for (&i, history) in &self.removals {
            if self.removed_since(data, i as usize, today).is_some() {
                counts.removed_on_demand += 1;
            } else if history.iter().any(|(removed, _)| *removed <= today) {
                counts.restored += 1;
            }
        }
        if self.removal_threshold > 0 {
            counts.removed_by_rate = (0..rows)
                .filter(|&i| {
                    u32::try_from(i).is_ok_and(|i| !self.removals.contains_key(&i))
                        && self.rate_removal(data, i).is_some_and(|day| day <= today)
                })
                .count() as u64;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::calendar::day_of;
    use chrono::NaiveDate;

    fn config(rate: f64) -> SimConfig {
        SimConfig {
            transactions: 4000,
            today: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
            report_lag_rate: rate,
            ..SimConfig::default()
        }
    }

    #[test]
    fn a_rate_of_zero_is_plain_and_views_are_the_lifecycle() {
        let c = config(0.0);
        let data = SimData::generate(&c);
        let s = Scenarios::new(&c);
        assert!(s.is_plain() && !s.removes());
        let today = day_of(c.today);
        for i in 0..data.txs.len() {
            assert_eq!(
                s.observe(&data, i, today, Some(SimReport::TransactionReport)),
                observe(&data.txs[i], today)
            );
        }
        assert_eq!(s.counts(&data, today), ScenarioCounts::default());
    }

    #[test]
    fn the_rate_picks_a_share_of_rows_and_one_report_each() {
        let c = config(0.3);
        let data = SimData::generate(&c);
        let today = day_of(c.today);
        let s = Scenarios::new(&c);
        assert!(!s.is_plain());
        let counts = s.counts(&data, today);
        // About 600 each (0.3 * 4000 / 2), standard deviation about 23.
        for n in counts.lagging_rows {
            assert!((480..720).contains(&n), "{counts:?}");
        }
        for i in 0..4000 {
            let lags = SimReport::ALL.map(|r| s.lag_days(i, r));
            assert!(
                lags.iter().filter(|d| **d > 0).count() <= 1,
                "one report only"
            );
        }
        let all = Scenarios::new(&config(1.0))
            .counts(&data, today)
            .lagging_rows;
        assert_eq!(all[0] + all[1], 4000);
    }

    #[test]
    fn lag_settings_override_the_rate_and_clear_with_zero() {
        let mut s = Scenarios::new(&config(0.0));
        s.set_lag(7, SimReport::DeclineReport, 3);
        assert_eq!(s.lag_days(7, SimReport::DeclineReport), 3);
        assert_eq!(s.lag_days(7, SimReport::TransactionReport), 0);
        assert!(!s.is_plain());
        s.set_lag(7, SimReport::DeclineReport, 0);
        assert!(s.is_plain());
        assert_eq!(s.version(), 2);

        let mut r = Scenarios::new(&config(1.0));
        let report = r.rate_lag(7).unwrap();
        r.set_lag(7, report, 0);
        assert_eq!(r.lag_days(7, report), 0, "an explicit 0 beats the rate");
    }

    #[test]
    fn reversals_and_resubmissions_need_the_right_status() {
        let c = config(0.0);
        let data = SimData::generate(&c);
        let today = day_of(c.today);
        let mut s = Scenarios::new(&c);
        let status = |s: &Scenarios, i: usize| s.observe(&data, i, today, None).status;
        let charged = (0..data.txs.len())
            .find(|&i| status(&s, i) == SimStatus::Chargeback)
            .unwrap();
        let declined = (0..data.txs.len())
            .find(|&i| status(&s, i) == SimStatus::Declined)
            .unwrap();
        assert!(s.resubmit(&data, charged, today, None).is_err());
        assert!(s.reverse(&data, declined, today).is_err());
        s.reverse(&data, charged, today).unwrap();
        assert_eq!(status(&s, charged), SimStatus::Approved);
        assert!(
            s.reverse(&data, charged, today).is_err(),
            "no longer Chargeback"
        );
        // A Saturday, and today itself, are not valid new process dates.
        for bad in [today, today + 5] {
            assert!(s.resubmit(&data, declined, today, Some(bad)).is_err());
        }
        let new = s.resubmit(&data, declined, today, None).unwrap();
        assert_eq!(new, add_business_days(today, 5));
        assert_eq!(s.moved(), &[declined as u32]);
        let seen = s.observe(&data, declined, today, None);
        assert_eq!((seen.status, seen.process_day), (SimStatus::Future, new));
        let counts = s.counts(&data, today);
        assert_eq!((counts.reversed, counts.resubmitted), (1, 1));
        // A lagging view from before the change still shows the old state.
        s.set_lag(declined, SimReport::TransactionReport, 1);
        let old = s.observe(&data, declined, today, Some(SimReport::TransactionReport));
        assert_eq!(old, observe(&data.txs[declined], today - 1));
        assert_eq!(old.process_day, data.txs[declined].process_day);
    }

    #[test]
    fn the_removal_rate_removes_future_rows_3_to_20_days_ahead() {
        let c = SimConfig {
            removal_rate: 0.25,
            ..config(0.0)
        };
        let data = SimData::generate(&c);
        let s = Scenarios::new(&c);
        assert!(
            s.removes() && s.is_plain(),
            "a removal changes no view of a reported row"
        );
        let mut chosen = 0;
        for (i, tx) in data.txs.iter().enumerate() {
            let Some(day) = s.rate_removal(&data, i) else {
                assert_eq!(s.removed_since(&data, i, Day::MAX - 1), None);
                continue;
            };
            chosen += 1;
            assert!(day <= tx.process_day - 3 && day >= tx.process_day - 20);
            assert_eq!(observe(tx, day).status, SimStatus::Future);
            assert_eq!(s.removed_since(&data, i, day - 1), None);
            assert_eq!(s.removed_since(&data, i, day), Some(day));
            assert_eq!(s.removed_since(&data, i, day + 400), Some(day));
            // It never settles: frozen as the Future row of the day before.
            let (seen, last) = s.settling(&data, i, day + 400);
            assert_eq!((seen.status, last), (SimStatus::Future, day - 1));
        }
        // About 1000 (0.25 * 4000), standard deviation about 27.
        assert!((880..1120).contains(&chosen), "{chosen}");
        let today = day_of(c.today);
        let counts = s.counts(&data, today);
        let expected = (0..data.txs.len())
            .filter(|&i| s.rate_removal(&data, i).is_some_and(|d| d <= today))
            .count() as u64;
        assert_eq!(counts.removed_by_rate, expected);
        assert!(expected > 0 && expected < chosen);
        // The same seed picks the same rows; the lag's salt picks others.
        let again = Scenarios::new(&c);
        assert!((0..4000).all(|i| again.rate_removal(&data, i) == s.rate_removal(&data, i)));
    }

    #[test]
    fn removals_and_restores_on_demand() {
        let c = config(0.0);
        let data = SimData::generate(&c);
        let today = day_of(c.today);
        let mut s = Scenarios::new(&c);
        let status = |s: &Scenarios, i: usize| s.observe(&data, i, today, None).status;
        let charged = (0..data.txs.len())
            .find(|&i| {
                status(&s, i) == SimStatus::Chargeback
                    && observe(&data.txs[i], today - 1).status == SimStatus::Chargeback
            })
            .unwrap();
        s.remove(&data, charged, today).unwrap();
        assert!(s.removes() && s.is_plain());
        assert_eq!(s.removed_since(&data, charged, today), Some(today));
        assert_eq!(s.removed_since(&data, charged, today - 1), None);
        assert!(!s.is_reported(&data, charged, today, None));
        assert!(matches!(
            s.remove(&data, charged, today),
            Err(ScenarioError::Invalid(_))
        ));
        assert!(s.reverse(&data, charged, today).is_err(), "not reported");
        // A lagging view from before the removal still shows it.
        s.set_lag(charged, SimReport::DeclineReport, 1);
        assert!(s.is_reported(&data, charged, today, Some(SimReport::DeclineReport)));
        assert!(!s.is_reported(&data, charged, today + 1, Some(SimReport::DeclineReport)));
        s.set_lag(charged, SimReport::DeclineReport, 0);
        // Frozen as of the day before, whatever today is.
        let (seen, last) = s.settling(&data, charged, today + 30);
        assert_eq!(seen, observe(&data.txs[charged], today - 1));
        assert_eq!(last, today - 1);
        let counts = s.counts(&data, today + 30);
        assert_eq!((counts.removed_on_demand, counts.restored), (1, 0));
        let row = SimRow::of(&data, &s, charged, today + 30, None);
        assert_eq!(row.status, "Chargeback");
        assert_eq!(row.removed_on, Some(c.today));

        // Restored three days later: the lifecycle, as if never removed; the days between
        // stay removed for a lagging view.
        assert!(s.restore(&data, charged, today + 2).is_ok());
        assert!(s.restore(&data, charged, today + 3).is_err(), "not removed");
        assert_eq!(s.removed_since(&data, charged, today + 1), Some(today));
        assert_eq!(s.removed_since(&data, charged, today + 2), None);
        let (seen, last) = s.settling(&data, charged, today + 30);
        assert_eq!(
            (seen, last),
            (observe(&data.txs[charged], today + 30), today + 30)
        );
        let counts = s.counts(&data, today + 2);
        assert_eq!((counts.removed_on_demand, counts.restored), (0, 1));
        // Removed again on the restore day: one removal from the first day on.
        s.remove(&data, charged, today + 2).unwrap();
        assert_eq!(s.removed_since(&data, charged, today + 1), Some(today));
        assert_eq!(s.removed_since(&data, charged, today + 9), Some(today));

        // Removed and restored the same day: no trace.
        let future = (0..data.txs.len())
            .find(|&i| status(&s, i) == SimStatus::Future)
            .unwrap();
        let mut t = Scenarios::new(&c);
        t.remove(&data, future, today).unwrap();
        t.restore(&data, future, today).unwrap();
        assert!(!t.removes());
        assert_eq!(t.counts(&data, today), ScenarioCounts::default());

        // A row the rate removed can be restored, and is out of the rate's hands from then on.
        let rated = SimConfig {
            removal_rate: 1.0,
            ..config(0.0)
        };
        let mut r = Scenarios::new(&rated);
        let gone = (0..data.txs.len())
            .find(|&i| r.rate_removal(&data, i).is_some_and(|d| d < today))
            .unwrap();
        let day = r.rate_removal(&data, gone).unwrap();
        r.restore(&data, gone, today).unwrap();
        assert_eq!(r.removed_since(&data, gone, today), None);
        assert_eq!(r.removed_since(&data, gone, day), Some(day));
        assert_eq!(r.counts(&data, today).restored, 1);
    }
}
