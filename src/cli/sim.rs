//! `sim`: a local stand-in for the Rotessa API (SPEC.md "The simulator"), until Ctrl-C or
//! SIGTERM. Needs no configuration file and no database.

use std::net::SocketAddr;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::Args;

use super::Failure;
use crate::sim::{
    ChargebackOn, DEFAULT_API_KEY, DEFAULT_LISTEN, SimConfig, SimServer, server::SimError,
};

/// Arguments of `sim` (defaults as in `SimConfig::default()`).
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = DEFAULT_LISTEN, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Seed of the generated data: the same seed and sizes give byte-identical answers.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Platform clients (merchants).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub clients: u32,
    /// Customers, spread over the clients.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    pub customers: u32,
    /// Financial transactions (1,000,000 generate in well under a second).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(0..=50_000_000))]
    pub transactions: u32,
    /// The simulated today at start (YYYY-MM-DD; default: today's date in Central Time, where
    /// Rotessa keeps its books). Move it with
    /// `POST /_sim/advance?days=N`.
    #[arg(long, value_name = "DATE")]
    pub today: Option<NaiveDate>,
    /// Process dates start this many days before today.
    #[arg(long, default_value_t = 120)]
    pub history_days: u32,
    /// Process dates end this many days after today.
    #[arg(long, default_value_t = 60)]
    pub future_days: u32,
    /// The API key requests must send as `Authorization: Token token="<key>"`.
    #[arg(long, default_value = DEFAULT_API_KEY)]
    pub api_key: String,
    /// Probability of an injected fault per API request (500, 503, 429, cut-off body, reset).
    #[arg(long, default_value_t = 0.0)]
    pub fault_rate: f64,
    /// Delay before every API answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Probability per row of each quirk: unpadded dates, numeric account numbers.
    #[arg(long, default_value_t = 0.2)]
    pub quirk_rate: f64,
    /// `Retry-After` seconds on injected 429s.
    #[arg(long, default_value_t = 1)]
    pub retry_after_secs: u64,
    /// Share of transactions (0..=1) for which one of the two reports, the transaction report
    /// or the decline report, shows the row as it was --report-lag-days earlier.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub report_lag_rate: f64,
    /// How many days a lagging report is behind.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub report_lag_days: u32,
    /// Share of transactions (0..=1) that Rotessa stops reporting while still Future, 3 to 20
    /// days before their process date (a deleted or edited schedule removes its future
    /// transactions).
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub removal_rate: f64,
    /// On which settlement a chargeback counts: decline_date (the day it happened) or
    /// settlement_date (the charged-back transaction's own settlement date, instead of as
    /// approved there).
    #[arg(long, default_value = "decline_date", value_name = "MODEL", value_parser = chargeback_on)]
    pub chargeback_on: ChargebackOn,
    /// Serve the documentation's sample objects verbatim first: its customer at the start of the
    /// first client's customer list, its (Future) payout at the start of every payout report.
    #[arg(long)]
    pub documented_samples: bool,
}

fn chargeback_on(text: &str) -> Result<ChargebackOn, String> {
    text.parse()
}

impl SimArgs {
    /// The simulator configuration these arguments describe.
    pub fn config(&self) -> SimConfig {
        SimConfig {
            seed: self.seed,
            clients: self.clients,
            customers: self.customers,
            transactions: self.transactions,
            today: self.today.unwrap_or_else(crate::sim::rotessa_today),
            history_days: self.history_days,
            future_days: self.future_days,
            api_key: self.api_key.clone(),
            fault_rate: self.fault_rate,
            latency_ms: self.latency_ms,
            quirk_rate: self.quirk_rate,
            retry_after_secs: self.retry_after_secs,
            report_lag_rate: self.report_lag_rate,
            report_lag_days: self.report_lag_days,
            removal_rate: self.removal_rate,
            chargeback_on: self.chargeback_on,
            documented_samples: self.documented_samples,
        }
    }
}

/// Serves until Ctrl-C or SIGTERM.
pub async fn run(args: SimArgs) -> Result<ExitCode, Failure> {
    let config = args.config();
    let server = SimServer::start(config.clone(), args.listen)
        .await
        .map_err(|e| match e {
            SimError::Config(_) => Failure::Usage(e.to_string()),
            other => Failure::Failed(other.into()),
        })?;
    let url = server.base_url();
    let key = server.api_key().to_owned();
    let ids: Vec<String> = server
        .handle()
        .client_ids()
        .iter()
        .map(i64::to_string)
        .collect();
    let today = server.today();
    println!("rotessa-recon sim: a local Rotessa API on {url}");
    println!(
        "  data:    seed {}, {} clients ({}), {} customers, {} transactions, generated in {} ms",
        config.seed,
        config.clients,
        ids.join(", "),
        config.customers,
        config.transactions,
        server.generated_in().as_millis()
    );
    println!("  today:   {today} (simulated; move it with POST {url}/_sim/advance?days=N)");
    println!("  api key: {key}  (header: Authorization: Token token=\"{key}\")");
    println!(
        "  faults:  rate {}, latency {} ms, Retry-After {} s (switch: POST {url}/_sim/faults?rate=0.2&latency_ms=50)",
        config.fault_rate, config.latency_ms, config.retry_after_secs
    );
    if config.report_lag_rate > 0.0 {
        println!(
            "  lag:     {} of the rows lag {} days in one report (counts: GET {url}/_sim/state)",
            config.report_lag_rate, config.report_lag_days
        );
    }
    if config.removal_rate > 0.0 {
        println!(
            "  removal: {} of the rows stop being reported while Future (counts: GET {url}/_sim/state)",
            config.removal_rate
        );
    }
    let counted_on = match config.chargeback_on {
        ChargebackOn::DeclineDate => "decline date",
        ChargebackOn::SettlementDate => "own settlement date",
    };
    println!("  settlements: a chargeback counts on its {counted_on} (--chargeback-on)");
    println!(
        "  reports that disagree: POST {url}/_sim/lag, /_sim/reverse, /_sim/resubmit, /_sim/remove, /_sim/restore (docs/simulator.md)"
    );
    println!(
        "  customers: GET {url}/v2/clients/<id>/customers, /v1/customers; payouts: GET {url}/v2/payout_report?start_date=...; edits: POST {url}/_sim/customer, /_sim/schedule_remove"
    );
    if config.documented_samples {
        println!(
            "  documented samples: the docs' customer starts client {}'s list, the docs' payout every payout report",
            ids.first().map_or("?", String::as_str)
        );
    }
    println!();
    println!("Try:");
    println!(
        "  curl -H 'Authorization: Token token=\"{key}\"' '{url}/v2/transaction_report?start_date={today}&page=1'"
    );
    println!("  curl {url}/_sim/state");
    println!("Sync from it (keep sync.today equal to the simulator's today after advancing):");
    println!(
        "  RECON_ROTESSA__BASE_URL={url} ROTESSA_API_KEY={key} RECON_SYNC__TODAY={today} rotessa-recon sync"
    );
    println!("Stop with Ctrl-C.");
    shutdown_signal().await;
    server.shutdown().await;
    println!("simulator stopped");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
