//! `reconcile`: the settlement reconciliation as a table, mismatches first; with `--html FILE`,
//! as the self-contained report page (`crate::report`).

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{Days, NaiveDate};
use clap::Args;
use rust_decimal::Decimal;

use super::Failure;
use crate::config::Settings;
use crate::report;
use crate::store::Store;
use crate::store::reconciliation::{self, Comparison};
use crate::sync::Clock;

/// Arguments of `reconcile`.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// First settlement date (default: today - sync.settlements.lookback_days).
    #[arg(long, value_name = "DATE")]
    pub from: Option<NaiveDate>,
    /// Last settlement date (default: today).
    #[arg(long, value_name = "DATE")]
    pub to: Option<NaiveDate>,
    /// Only this client.
    #[arg(long, value_name = "ID")]
    pub client: Option<i64>,
    /// Write the report as one self-contained HTML page (chart, mismatches with the
    /// transactions that explain them, status histories) instead of printing the table.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// Prints the comparison of Rotessa's settlements with the synced transactions.
pub async fn run(settings: &Settings, args: ReconcileArgs) -> Result<ExitCode, Failure> {
    let today = Clock::from_settings(&settings.sync).today();
    let lookback = Days::new(settings.sync.settlements.lookback_days.into());
    let from = args.from.unwrap_or(today - lookback);
    let to = args.to.unwrap_or(today);
    if from > to {
        return Err(Failure::Usage(format!("--from {from} is after --to {to}")));
    }
    let store = Store::connect(&settings.database).await?;
    if let Some(path) = &args.html {
        let report = report::gather(store.pool(), args.client, from, to).await?;
        write_private(path, &report::html::render(&report)).map_err(|e| {
            Failure::Failed(anyhow::anyhow!(
                "cannot write --html {}: {e}",
                path.display()
            ))
        })?;
        let dates: usize = report.clients.iter().map(|c| c.dates.len()).sum();
        let mismatched: usize = report.clients.iter().map(|c| c.mismatched()).sum();
        println!(
            "wrote {}: {dates} dates {from} .. {to}, {mismatched} mismatched",
            path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let rows = reconciliation::report(store.pool(), args.client, from, to).await?;
    let in_force = reconciliation::chargeback_on(store.pool()).await?;
    print!("{}", render(&rows, from, to, usize::MAX, &in_force));
    let configured = settings.reconciliation.chargeback_on.as_str();
    if configured != in_force {
        println!(
            "note: reconciliation.chargeback_on is {configured} in this configuration; the next \
             sync applies it and reconciles every date again"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `text` to `path`, readable by its owner only on Unix (the page holds an account's
/// finances): a new file is created with mode 0600, an existing one keeps its mode.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

/// The table `reconcile` prints: a count line with the chargeback model in force, then up to
/// `max_rows` rows.
pub fn render(
    rows: &[Comparison],
    from: NaiveDate,
    to: NaiveDate,
    max_rows: usize,
    chargeback_on: &str,
) -> String {
    let mismatched = rows.iter().filter(|r| !r.matched).count();
    let mut out = format!(
        "settlement reconciliation {from} .. {to}: {} dates, {mismatched} mismatched \
         (chargebacks counted on their {})\n",
        rows.len(),
        chargeback_on.replace('_', " ")
    );
    if rows.is_empty() {
        out.push_str("(no settlements synced in this range: run `rotessa-recon sync --stream settlements`)\n");
        return out;
    }
    out.push_str(&format!(
        "{:<10} {:<10} {:<8} {:>40} {:>40} {:>40}\n",
        "client",
        "date",
        "outcome",
        "approved rotessa / ours / diff",
        "declined rotessa / ours / diff",
        "chargeback rotessa / ours / diff"
    ));
    for r in rows.iter().take(max_rows) {
        let side = |n_r: i32, t_r: Decimal, n_c: i64, t_c: Decimal, d: Decimal| {
            format!("{t_r:.2} ({n_r}) / {t_c:.2} ({n_c}) / {d:.2}")
        };
        out.push_str(&format!(
            "{:<10} {:<10} {:<8} {:>40} {:>40} {:>40}\n",
            r.client_id,
            r.settlement_date,
            if r.matched { "matched" } else { "MISMATCH" },
            side(
                r.rotessa_number_approved,
                r.rotessa_total_approved,
                r.computed_number_approved,
                r.computed_total_approved,
                r.diff_total_approved
            ),
            side(
                r.rotessa_number_declined,
                r.rotessa_total_declined,
                r.computed_number_declined,
                r.computed_total_declined,
                r.diff_total_declined
            ),
            side(
                r.rotessa_number_chargeback,
                r.rotessa_total_chargeback,
                r.computed_number_chargeback,
                r.computed_total_chargeback,
                r.diff_total_chargeback
            ),
        ));
    }
    if rows.len() > max_rows {
        out.push_str(&format!(
            "… {} more: rotessa-recon reconcile --from {from} --to {to}\n",
            rows.len() - max_rows
        ));
    }
    out
}
