//! The report page: server-side rendered with maud, every style inline, no scripts, and a
//! Content-Security-Policy that forbids the page any network request even if a later change
//! slipped one in. Prints on A4 or Letter: tables repeat their headers, rows never split, each
//! client starts a new page.

use std::collections::BTreeSet;

use maud::{DOCTYPE, Markup, PreEscaped, html};
use rust_decimal::Decimal;

use super::format::{self, money, signed_money};
use super::{ClientReport, DateReport, Report, chart};
use crate::store::discrepancies::Explaining;

/// The policy the page carries: nothing may be fetched; inline styles only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

const STYLE: &str = r#"
:root { --ink: #1d2433; --muted: #5b6475; --line: #d8dce3; --rotessa: #2f4f8f; --ours: #7fb3d5;
        --bad: #b42318; --bad-bg: #fde8e6; --good: #1a7f37; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); margin: 24px auto; max-width: 1280px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 4px; }
h3 { font-size: 15px; margin: 20px 0 6px; }
.meta, .note { color: var(--muted); margin: 0 0 12px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 16px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 6px; text-align: left; vertical-align: top; }
th { font-weight: 600; background: #f4f6f9; }
table.dates { font-size: 12px; }
table.dates th, table.dates td { padding: 3px 4px; }
.wide { overflow-x: auto; }
td.day { white-space: nowrap; }
th.group { text-align: center; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.mismatch > td { background: var(--bad-bg); }
tr.mismatch td.outcome { color: var(--bad); font-weight: 700; }
tr.matched td.outcome { color: var(--good); }
td.diff.nonzero { color: var(--bad); font-weight: 700; }
tr.explain > td { background: #fff8f7; padding: 4px 8px 12px 28px; }
tr.explain table { margin: 4px 0; font-size: 13px; }
.reason { display: inline-block; border: 1px solid var(--bad); color: var(--bad); border-radius: 3px;
          padding: 0 4px; margin: 0 4px 2px 0; font-size: 12px; }
.summary td.nonzero { color: var(--bad); font-weight: 700; }
.summary th.num { white-space: normal; }
svg.chart { width: 100%; height: auto; display: block; margin: 8px 0; font-size: 11px; }
svg.chart text { fill: var(--ink); }
svg.chart .axis { fill: var(--muted); font-size: 10px; }
svg.chart .mismatch-label { fill: var(--bad); font-weight: 700; }
svg.chart .panel-title { font-weight: 600; }
svg.chart .rotessa { fill: var(--rotessa); }
svg.chart .ours { fill: var(--ours); }
svg.chart .band { fill: var(--bad-bg); }
svg.chart .marker { fill: var(--bad); }
svg.chart .grid { stroke: var(--line); stroke-dasharray: 2 3; }
svg.chart .baseline { stroke: var(--muted); }
.history { margin: 6px 0 12px; }
.history h4 { margin: 8px 0 2px; font-size: 13px; }
a { color: var(--rotessa); }
@page { margin: 12mm; }
@media print {
  body { margin: 0; max-width: none; padding: 0; font-size: 9pt; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  section.client + section.client { break-before: page; }
  thead { display: table-header-group; }
  tr, .history, svg.chart { break-inside: avoid; }
  th, td, table.dates th, table.dates td { padding: 2px 3px; }
  .wide { overflow: visible; }
  table.dates { font-size: 6.5pt; table-layout: auto; }
  table.dates td.num, table.dates th.num, td.day { white-space: normal; }
  a { color: inherit; text-decoration: none; }
}
"#;

/// The whole page.
pub fn render(report: &Report) -> String {
    let title = format!("Settlement reconciliation {} to {}", report.from, report.to);
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy" content=(CONTENT_SECURITY_POLICY);
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="generator" content={ "rotessa-recon " (env!("CARGO_PKG_VERSION")) };
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { "Settlement reconciliation" }
                    p.meta {
                        "Settlement dates " (date_tag(report.from)) " to " (date_tag(report.to))
                        " · chargebacks counted on their "
                        (report.chargeback_on.replace('_', " "))
                        " · generated " (format::instant(report.generated_at))
                    }
                    (summary(report))
                }
                @for client in &report.clients {
                    (client_section(report, client))
                }
            }
        }
    };
    page.into_string()
}

fn date_tag(day: chrono::NaiveDate) -> Markup {
    html! { time datetime=(day) { (format::date(day)) } }
}

fn client_title(client: &ClientReport) -> String {
    match &client.name {
        Some(name) => format!("{name} (client {})", client.client_id),
        None => format!("Client {}", client.client_id),
    }
}

fn summary(report: &Report) -> Markup {
    html! {
        @if report.clients.is_empty() {
            p.note id="empty" {
                "No settlements are synced for these dates"
                @if let Some(client) = report.client { " and client " (client) }
                ": check the range, or run " code { "rotessa-recon sync --stream settlements" } "."
            }
        } @else {
            table.summary {
                thead {
                    tr {
                        th { "Client" }
                        th.num { "Dates" }
                        th.num { "Mismatched" }
                        th.num { "Approved, gross difference" }
                        th.num { "Declined, gross difference" }
                        th.num { "Chargeback, gross difference" }
                    }
                }
                tbody {
                    @for client in &report.clients {
                        // Gross: a +$100 and a -$100 date are $200 apart, not $0.
                        @let sum = |f: fn(&DateReport) -> Decimal| -> Decimal {
                            client.dates.iter().map(|d| f(d).abs()).sum()
                        };
                        tr {
                            td { a href={ "#client-" (client.client_id) } { (client_title(client)) } }
                            td.num { (client.dates.len()) }
                            td.num.nonzero[client.mismatched() > 0] { (client.mismatched()) }
                            (diff_cell(sum(|d| d.comparison.diff_total_approved)))
                            (diff_cell(sum(|d| d.comparison.diff_total_declined)))
                            (diff_cell(sum(|d| d.comparison.diff_total_chargeback)))
                        }
                    }
                }
            }
            p.note {
                "Differences are Rotessa's figure minus the synced transactions' figure; the "
                "gross difference adds up their sizes over every date. Mismatched dates come "
                "first; under each are the transactions that explain it."
            }
        }
    }
}

fn diff_cell(amount: Decimal) -> Markup {
    html! { td.num.diff.nonzero[!amount.is_zero()] { (money(amount)) } }
}

fn client_section(report: &Report, client: &ClientReport) -> Markup {
    let comparisons: Vec<_> = client.dates.iter().map(|d| &d.comparison).collect();
    let title = client_title(client);
    let listed: BTreeSet<i64> = client
        .dates
        .iter()
        .flat_map(|d| d.explaining.iter().map(|e| e.transaction_id))
        .collect();
    html! {
        section.client id={ "client-" (client.client_id) } {
            h2 { (title) }
            p.meta {
                (client.dates.len()) " settlement dates, " (client.mismatched()) " mismatched"
            }
            (chart::daily_totals(&comparisons, &format!("Daily settled totals, {title}")))
            div.wide { table.dates data-client=(client.client_id) {
                thead {
                    tr {
                        th rowspan="2" { "Settlement date" }
                        th rowspan="2" { "Outcome" }
                        th.group colspan="3" { "Approved" }
                        th.group colspan="3" { "Declined" }
                        th.group colspan="3" { "Chargebacks" }
                        th.num rowspan="2" { "Payout" }
                    }
                    tr {
                        @for _ in 0..3 {
                            th.num { "Rotessa" } th.num { "Ours" } th.num { "Difference" }
                        }
                    }
                }
                tbody {
                    @for date in &client.dates {
                        (date_rows(client.client_id, date))
                    }
                }
            } }
            @if !listed.is_empty() {
                h3 { "Status history of the transactions listed" }
                @for id in &listed {
                    (history(report, *id))
                }
            }
        }
    }
}

fn date_rows(client_id: i64, date: &DateReport) -> Markup {
    let c = &date.comparison;
    let figure = |total: Decimal, count: i64| {
        html! {
            td.num { (money(total)) " (" (count) ")" }
        }
    };
    let side = |rotessa: Decimal, rotessa_n: i32, ours: Decimal, ours_n: i64, diff: Decimal| {
        let count_diff = i64::from(rotessa_n) - ours_n;
        html! {
            (figure(rotessa, rotessa_n.into()))
            (figure(ours, ours_n))
            td.num.diff.nonzero[!diff.is_zero() || count_diff != 0] {
                (signed_money(diff))
                @if count_diff != 0 { " (" @if count_diff > 0 { "+" } (count_diff) ")" }
            }
        }
    };
    let anchor = format!("d-{client_id}-{}", c.settlement_date);
    html! {
        tr.date.mismatch[!c.matched].matched[c.matched] id=(anchor)
            data-date=(c.settlement_date) {
            td.day { (date_tag(c.settlement_date)) }
            td.outcome { @if c.matched { "matched" } @else { "mismatch" } }
            (side(c.rotessa_total_approved, c.rotessa_number_approved, c.computed_total_approved,
                  c.computed_number_approved, c.diff_total_approved))
            (side(c.rotessa_total_declined, c.rotessa_number_declined, c.computed_total_declined,
                  c.computed_number_declined, c.diff_total_declined))
            (side(c.rotessa_total_chargeback, c.rotessa_number_chargeback,
                  c.computed_total_chargeback, c.computed_number_chargeback,
                  c.diff_total_chargeback))
            td.num { (money(c.rotessa_total_payout)) }
        }
        @if !c.matched {
            tr.explain data-date=(c.settlement_date) {
                td colspan="12" { (explanation(date)) }
            }
        }
    }
}

fn explanation(date: &DateReport) -> Markup {
    html! {
        @if date.explaining.is_empty() {
            p.note {
                "No synced transaction of this date stands out: Rotessa's figure counts rows "
                "this database has not read (run " code { "rotessa-recon sync --stream transactions" }
                " over the date), or the difference is in Rotessa's figure itself."
            }
        } @else {
            table.explaining {
                thead {
                    tr {
                        th { "Transaction" }
                        th { "Customer" }
                        th.num { "Amount" }
                        th { "Status" }
                        th { "Process date" }
                        th { "Decline date" }
                        th { "Why it explains the difference" }
                    }
                }
                tbody {
                    @for e in &date.explaining {
                        tr.explaining data-transaction=(e.transaction_id) {
                            td { a href={ "#tx-" (e.transaction_id) } { (e.transaction_id) } }
                            td { @if let Some(id) = e.customer_id { (id) } }
                            td.num { (money(e.amount)) }
                            td {
                                (e.status)
                                @if let Some(reason) = &e.status_reason { " (" (reason) ")" }
                            }
                            td { (date_tag(e.process_date)) }
                            td { @if let Some(d) = e.decline_date { (date_tag(d)) } }
                            td { @for reason in &e.reasons { span.reason { (reason_text(e, reason)) } } }
                        }
                    }
                }
            }
            @if date.more {
                p.note {
                    "Only the first " (super::EXPLAINING_PER_DATE) " transactions that explain "
                    "this date are listed; query " code { "rotessa.transactions" }
                    " for the others."
                }
            }
        }
    }
}

/// A reason code of [`crate::store::discrepancies::REASONS`] in words.
fn reason_text(e: &Explaining, reason: &str) -> String {
    match reason {
        "removed" => match e.removed_at {
            Some(at) => format!("Rotessa stopped reporting it ({})", format::instant(at)),
            None => "Rotessa stopped reporting it".into(),
        },
        "chargeback" => "charged back".into(),
        "not_settled" => format!("still {}", e.status),
        "status_changed" => "left a settled status".into(),
        "changed_since_settlement" => "changed after Rotessa's figure was read".into(),
        "reports_disagree" => "the two reports disagree about its status".into(),
        other => other.replace('_', " "),
    }
}

fn history(report: &Report, id: i64) -> Markup {
    let transitions = report.histories.get(&id).map(Vec::as_slice).unwrap_or(&[]);
    html! {
        div.history id={ "tx-" (id) } {
            h4 { "Transaction " (id) }
            @if transitions.is_empty() {
                p.note { "No status history recorded." }
            } @else {
                table {
                    thead {
                        tr {
                            th { "Observed" } th { "Change" } th { "From" } th { "To" }
                            th { "Reason" }
                            th { "Decline date" } th { "Source" }
                        }
                    }
                    tbody {
                        @for t in transitions {
                            tr {
                                td { (format::instant(t.observed_at)) }
                                td { (t.change) }
                                td { (t.from_status.as_deref().unwrap_or("(first seen)")) }
                                td { (t.to_status) }
                                td { (t.status_reason.as_deref().unwrap_or("")) }
                                td { @if let Some(d) = t.decline_date { (date_tag(d)) } }
                                td { (t.source) }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use rust_decimal::Decimal;

    use super::*;
    use crate::store::discrepancies::REASONS;

    #[test]
    fn every_reason_has_words_of_its_own() {
        let e = Explaining {
            client_id: 1,
            settlement_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
            transaction_id: 2,
            customer_id: None,
            amount: Decimal::ONE,
            status: "Pending".into(),
            status_reason: None,
            process_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
            decline_date: None,
            removed_at: None,
            status_changed_at: Utc::now(),
            reasons: Vec::new(),
        };
        for reason in REASONS {
            let text = reason_text(&e, reason);
            assert_ne!(text, reason.replace('_', " "), "{reason} has no text");
        }
    }

    #[test]
    fn the_page_refers_to_nothing_outside_itself() {
        let report = Report {
            from: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            to: chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
            generated_at: Utc::now(),
            chargeback_on: "decline_date".into(),
            client: None,
            clients: Vec::new(),
            histories: Default::default(),
        };
        let page = render(&report);
        for forbidden in ["src=", "url(", "@import", "<script", "http://", "https://"] {
            assert!(!page.contains(forbidden), "{forbidden}");
        }
        assert!(page.contains(CONTENT_SECURITY_POLICY));
    }
}
