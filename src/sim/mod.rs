//! A faithful local Rotessa (SPEC.md "The simulator"): the report, decline-report, settlement,
//! client, customer (v2 per client with nested schedules, and v1) and payout-report endpoints
//! with the real auth header, 1000-row pages, the documented error bodies and the quirks of
//! `shared/seeds/README.md`; deterministic data from a seed; a simulated clock that moves
//! transactions through their lifecycle; fault injection; optionally the documentation's own
//! sample objects first (`--documented-samples`).
//!
//! It serves `rotessa-recon sim`, the demo, the tests and the benchmarks, and lets users build
//! outbox consumers without a Rotessa account. It deliberately shares no code with
//! [`crate::rotessa`]: it writes its own JSON, so it checks the client's parser instead of
//! sharing its bugs.
//!
//! Files: [`rng`] (the PRNG), [`calendar`] (business days), [`data`] (generation),
//! [`lifecycle`] (status as a function of the simulated today), [`reports`] (which rows a query
//! returns), [`scenarios`] (lagging reports, reversed chargebacks, resubmitted declines and
//! rows Rotessa stops reporting, on top of the lifecycle, and the customer and schedule edits
//! made on demand), [`encode`] (hand-written JSON), [`customers`] (customers, their schedules
//! and the payout report, hand-written too), [`params`] (request parameters), [`routes`] (the
//! API), [`faults`], [`admin`] (`/_sim/*`) and [`server`] ([`SimServer`]).

// Every public item says why it exists.
#![warn(missing_docs)]

pub mod admin;
pub mod calendar;
pub mod customers;
pub mod data;
pub mod encode;
pub mod faults;
pub mod lifecycle;
pub mod params;
pub mod reports;
pub mod rng;
pub mod routes;
pub mod scenarios;
pub mod server;

use chrono::{NaiveDate, Utc};

pub use faults::FaultCounts;
pub use scenarios::{SimReport, SimRow};
pub use server::{SimCustomer, SimHandle, SimServer, SimStats};

/// The documented default API key of the simulator (`--api-key`).
pub const DEFAULT_API_KEY: &str = "sim-key";

/// The documented default listen address of `rotessa-recon sim`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8089";

/// Rows per report page, as Rotessa documents.
pub const PAGE_SIZE: usize = 1000;

/// Everything that shapes a simulator: the data (seed, sizes, dates) and its behaviour (key,
/// faults, latency, quirks). The same data fields give byte-identical answers.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Seeds every generated value.
    pub seed: u64,
    /// Platform clients (merchants), 1..=1000.
    pub clients: u32,
    /// Customers, spread over the clients.
    pub customers: u32,
    /// Financial transactions.
    pub transactions: u32,
    /// The simulated today at start; the clock moves only through `/_sim/advance`.
    pub today: NaiveDate,
    /// Process dates start this many days before `today`.
    pub history_days: u32,
    /// Process dates end this many days after `today`.
    pub future_days: u32,
    /// The key every API request must present as `Authorization: Token token="<key>"`.
    pub api_key: String,
    /// Probability of an injected fault per API request, 0..=1.
    pub fault_rate: f64,
    /// Sleep before each API answer, in milliseconds.
    pub latency_ms: u64,
    /// Probability per row of each documented quirk (unpadded dates, numeric account numbers).
    pub quirk_rate: f64,
    /// The `Retry-After` seconds on injected 429s.
    pub retry_after_secs: u64,
    /// Share of transactions, 0..=1, for which one of the two reports (the transaction report
    /// or the decline report, chosen per row) lags: it shows the row as it was
    /// `report_lag_days` earlier. Chosen by a hash of the seed and the row, so the data and the
    /// other answers stay the same; 0 changes nothing.
    pub report_lag_rate: f64,
    /// How many days a lagging report is behind (see `report_lag_rate`).
    pub report_lag_days: u32,
    /// Share of transactions, 0..=1, that Rotessa stops reporting while they are still
    /// `Future` (a deleted or edited schedule removes its future transactions), each on a day 3
    /// to 20 days before its process date. Chosen by a hash of the seed and the row, so the
    /// data and the other answers stay the same; 0 changes nothing.
    pub removal_rate: f64,
    /// On which settlement date a chargeback counts (Rotessa does not document it).
    pub chargeback_on: ChargebackOn,
    /// Serve the documentation's own sample objects, verbatim, first: the "Get all customers
    /// for a specific client" customer at the start of the first client's customer list, and
    /// the "Payout Report" payout at the start of every payout report (so a client's parser
    /// meets exactly what the documentation shows). Off by default.
    pub documented_samples: bool,
}

/// On which settlement date a chargeback counts, a setting because Rotessa does not document
/// it; the product's reconciliation can be tested against either model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ChargebackOn {
    /// On the day it happened (its `decline_date`); the charged-back transaction still counts
    /// as approved on its own settlement date, where the money moved first.
    #[default]
    DeclineDate,
    /// On the charged-back transaction's own `settlement_date`, instead of as approved there;
    /// nothing counts on the chargeback day. A past settlement changes when a chargeback
    /// happens later.
    SettlementDate,
}

impl ChargebackOn {
    /// Both models, the default first.
    pub const ALL: [ChargebackOn; 2] = [Self::DeclineDate, Self::SettlementDate];

    /// The spelling of `--chargeback-on` and `/_sim/state`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeclineDate => "decline_date",
            Self::SettlementDate => "settlement_date",
        }
    }
}

impl std::str::FromStr for ChargebackOn {
    type Err = String;

    /// Reads [`ChargebackOn::as_str`]'s spelling (case-insensitive, `-` for `_` accepted).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim().replace('-', "_");
        Self::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(&text))
            .ok_or_else(|| format!("{text:?} must be decline_date or settlement_date"))
    }
}

/// Today's date where Rotessa keeps its books (Central Time, `America/Winnipeg`): the
/// simulator's default today, so that a sync with its default `sync.time_zone` agrees with it.
pub fn rotessa_today() -> NaiveDate {
    Utc::now()
        .with_timezone(&chrono_tz::America::Winnipeg)
        .date_naive()
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            clients: 3,
            customers: 2000,
            transactions: 20_000,
            today: rotessa_today(),
            history_days: 120,
            future_days: 60,
            api_key: DEFAULT_API_KEY.to_owned(),
            fault_rate: 0.0,
            latency_ms: 0,
            quirk_rate: 0.2,
            retry_after_secs: 1,
            report_lag_rate: 0.0,
            report_lag_days: 2,
            removal_rate: 0.0,
            chargeback_on: ChargebackOn::DeclineDate,
            documented_samples: false,
        }
    }
}

impl SimConfig {
    /// Checks the values a command line or a test may get wrong; the message says what to fix.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if !(1..=1000).contains(&self.clients) {
            problems.push(format!("--clients {} must be 1..=1000", self.clients));
        }
        if self.customers < 1 {
            problems.push("--customers must be at least 1".to_owned());
        }
        if self.transactions > 50_000_000 {
            problems.push(format!(
                "--transactions {} is more than 50,000,000",
                self.transactions
            ));
        }
        for (name, rate) in [
            ("--fault-rate", self.fault_rate),
            ("--quirk-rate", self.quirk_rate),
            ("--report-lag-rate", self.report_lag_rate),
            ("--removal-rate", self.removal_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                problems.push(format!("{name} {rate} must be between 0 and 1"));
            }
        }
        if self.report_lag_days > 3650 {
            problems.push(format!(
                "--report-lag-days {} must be at most 3650",
                self.report_lag_days
            ));
        }
        if self.report_lag_rate > 0.0 && self.report_lag_days == 0 {
            problems.push(
                "--report-lag-days must be at least 1 when --report-lag-rate is above 0".to_owned(),
            );
        }
        if self.history_days + self.future_days > 3650 {
            problems.push("--history-days + --future-days must be at most 3650".to_owned());
        }
        if self.api_key.is_empty() || self.api_key.contains(['"', '\r', '\n']) {
            problems.push("--api-key must be non-empty, without quotes or newlines".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}
