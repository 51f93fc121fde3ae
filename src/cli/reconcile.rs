//! `reconcile`: the settlement reconciliation as a table, mismatches first; with `--format csv`
//! or `--format json` as data for scripts ([`ComparisonRow`]); with `--html FILE`, as the
//! self-contained report page (`crate::report`).

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{Days, NaiveDate};
use clap::Args;
use rust_decimal::Decimal;
use serde::Serialize;

use super::Failure;
use super::output::{self, ReportFormat};
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
    /// `text` (the table), `csv` (a header row, then one row per client and date) or `json`
    /// (an array of objects); columns in README.md "Output for scripts". Not with --html.
    #[arg(
        long,
        value_enum,
        default_value_t = ReportFormat::Text,
        value_name = "FORMAT",
        conflicts_with = "html"
    )]
    pub format: ReportFormat,
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
    let configured = settings.reconciliation.chargeback_on.as_str();
    let note = (configured != in_force).then(|| {
        format!(
            "note: reconciliation.chargeback_on is {configured} in this configuration; the next \
             sync applies it and reconciles every date again"
        )
    });
    let table = || rows.iter().map(ComparisonRow::from).collect::<Vec<_>>();
    let text = match args.format {
        ReportFormat::Text => render(&rows, from, to, usize::MAX, &in_force),
        ReportFormat::Csv => render_csv(&table()),
        ReportFormat::Json => output::to_json(&table())?,
    };
    print!("{text}");
    if let Some(note) = note {
        // Beside data for scripts, on stderr: stdout must still parse.
        if args.format == ReportFormat::Text {
            println!("{note}");
        } else {
            eprintln!("{note}");
        }
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

/// One row of `reconcile --format csv|json`: the text table's columns, money as decimal strings
/// with two places (no currency symbol), the date ISO 8601. The field names are the CSV header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComparisonRow {
    /// The Rotessa client.
    pub client_id: i64,
    /// The settlement date, `YYYY-MM-DD`.
    pub settlement_date: String,
    /// `matched` or `mismatch`.
    pub outcome: String,
    /// Rotessa's approved total.
    pub approved_rotessa_total: String,
    /// Rotessa's approved count.
    pub approved_rotessa_count: i64,
    /// The synced transactions' approved total.
    pub approved_ours_total: String,
    /// The synced transactions' approved count.
    pub approved_ours_count: i64,
    /// Rotessa's total minus ours (the text's `diff`), approved.
    pub approved_diff_total: String,
    /// Rotessa's declined total.
    pub declined_rotessa_total: String,
    /// Rotessa's declined count.
    pub declined_rotessa_count: i64,
    /// The synced transactions' declined total.
    pub declined_ours_total: String,
    /// The synced transactions' declined count.
    pub declined_ours_count: i64,
    /// Rotessa's total minus ours, declined.
    pub declined_diff_total: String,
    /// Rotessa's chargeback total.
    pub chargeback_rotessa_total: String,
    /// Rotessa's chargeback count.
    pub chargeback_rotessa_count: i64,
    /// The synced transactions' chargeback total.
    pub chargeback_ours_total: String,
    /// The synced transactions' chargeback count.
    pub chargeback_ours_count: i64,
    /// Rotessa's total minus ours, chargebacks.
    pub chargeback_diff_total: String,
}

/// The CSV header, in the order of [`ComparisonRow`]'s fields.
pub const CSV_HEADER: [&str; 18] = [
    "client_id",
    "settlement_date",
    "outcome",
    "approved_rotessa_total",
    "approved_rotessa_count",
    "approved_ours_total",
    "approved_ours_count",
    "approved_diff_total",
    "declined_rotessa_total",
    "declined_rotessa_count",
    "declined_ours_total",
    "declined_ours_count",
    "declined_diff_total",
    "chargeback_rotessa_total",
    "chargeback_rotessa_count",
    "chargeback_ours_total",
    "chargeback_ours_count",
    "chargeback_diff_total",
];

/// Money as the text table shows it, without a symbol: `1234.50`, `-3.00`.
fn money(d: Decimal) -> String {
    format!("{d:.2}")
}

impl From<&Comparison> for ComparisonRow {
    fn from(r: &Comparison) -> Self {
        Self {
            client_id: r.client_id,
            settlement_date: r.settlement_date.to_string(),
            outcome: if r.matched { "matched" } else { "mismatch" }.to_owned(),
            approved_rotessa_total: money(r.rotessa_total_approved),
            approved_rotessa_count: r.rotessa_number_approved.into(),
            approved_ours_total: money(r.computed_total_approved),
            approved_ours_count: r.computed_number_approved,
            approved_diff_total: money(r.diff_total_approved),
            declined_rotessa_total: money(r.rotessa_total_declined),
            declined_rotessa_count: r.rotessa_number_declined.into(),
            declined_ours_total: money(r.computed_total_declined),
            declined_ours_count: r.computed_number_declined,
            declined_diff_total: money(r.diff_total_declined),
            chargeback_rotessa_total: money(r.rotessa_total_chargeback),
            chargeback_rotessa_count: r.rotessa_number_chargeback.into(),
            chargeback_ours_total: money(r.computed_total_chargeback),
            chargeback_ours_count: r.computed_number_chargeback,
            chargeback_diff_total: money(r.diff_total_chargeback),
        }
    }
}

impl ComparisonRow {
    /// The fields as CSV text, in [`CSV_HEADER`] order.
    fn csv_fields(&self) -> [String; 18] {
        [
            self.client_id.to_string(),
            self.settlement_date.clone(),
            self.outcome.clone(),
            self.approved_rotessa_total.clone(),
            self.approved_rotessa_count.to_string(),
            self.approved_ours_total.clone(),
            self.approved_ours_count.to_string(),
            self.approved_diff_total.clone(),
            self.declined_rotessa_total.clone(),
            self.declined_rotessa_count.to_string(),
            self.declined_ours_total.clone(),
            self.declined_ours_count.to_string(),
            self.declined_diff_total.clone(),
            self.chargeback_rotessa_total.clone(),
            self.chargeback_rotessa_count.to_string(),
            self.chargeback_ours_total.clone(),
            self.chargeback_ours_count.to_string(),
            self.chargeback_diff_total.clone(),
        ]
    }
}

/// `reconcile --format csv`: the header, then one record per row (an empty range gives the
/// header alone).
pub fn render_csv(rows: &[ComparisonRow]) -> String {
    let mut out = String::new();
    output::push_csv_record(&mut out, &CSV_HEADER);
    for row in rows {
        output::push_csv_record(&mut out, &row.csv_fields());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comparison() -> Comparison {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        Comparison {
            client_id: 7,
            settlement_date: "2026-11-06".parse().unwrap(),
            rotessa_number_approved: 2,
            computed_number_approved: 1,
            rotessa_total_approved: d("1250.5"),
            computed_total_approved: d("1000.50"),
            diff_total_approved: d("-250"),
            rotessa_number_declined: 0,
            computed_number_declined: 0,
            rotessa_total_declined: d("0"),
            computed_total_declined: d("0"),
            diff_total_declined: d("0"),
            rotessa_number_chargeback: 1,
            computed_number_chargeback: 1,
            rotessa_total_chargeback: d("25.00"),
            computed_total_chargeback: d("25.00"),
            diff_total_chargeback: d("0.00"),
            rotessa_total_payout: d("1225.5"),
            matched: false,
        }
    }

    #[test]
    fn the_header_names_the_serialized_fields_in_order() {
        let row = ComparisonRow::from(&comparison());
        let json = serde_json::to_value(&row).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut header = CSV_HEADER.to_vec();
        let mut sorted = keys.clone();
        header.sort_unstable();
        sorted.sort_unstable();
        assert_eq!(sorted, header);
        assert_eq!(json["approved_rotessa_total"], "1250.50");
        assert_eq!(json["approved_diff_total"], "-250.00");
        assert_eq!(json["approved_rotessa_count"], 2);
        assert_eq!(json["settlement_date"], "2026-11-06");
        assert_eq!(json["outcome"], "mismatch");
    }

    #[test]
    fn csv_has_a_header_and_one_record_per_row() {
        let row = ComparisonRow::from(&comparison());
        let text = render_csv(&[row.clone(), row]);
        let lines: Vec<&str> = text.split_terminator("\r\n").collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], CSV_HEADER.join(","));
        assert_eq!(
            lines[1],
            "7,2026-11-06,mismatch,1250.50,2,1000.50,1,-250.00,0.00,0,0.00,0,0.00,25.00,1,25.00,1,0.00"
        );
        assert_eq!(render_csv(&[]), format!("{}\r\n", CSV_HEADER.join(",")));
    }
}
