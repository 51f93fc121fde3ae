//! The daily settled totals chart: hand-written inline SVG, three panels (approved, declined,
//! chargebacks), Rotessa's figure and the transactions' figure side by side per date, and
//! mismatched dates marked with a band and a marker. Each bar carries its exact figure as a
//! tooltip; the tables below carry every figure for print.

use maud::{Markup, html};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::format;
use crate::store::reconciliation::Comparison;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 92.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 46.0;
const PANEL: f64 = 88.0;
const GAP: f64 = 40.0;
const AXIS: f64 = 26.0;

/// One panel's figures for a date: Rotessa's total and count, then ours.
struct Figures {
    rotessa: Decimal,
    rotessa_count: i64,
    ours: Decimal,
    ours_count: i64,
}

struct Panel {
    title: &'static str,
    figures: fn(&Comparison) -> Figures,
}

const PANELS: [Panel; 3] = [
    Panel {
        title: "Approved",
        figures: |c| Figures {
            rotessa: c.rotessa_total_approved,
            rotessa_count: c.rotessa_number_approved.into(),
            ours: c.computed_total_approved,
            ours_count: c.computed_number_approved,
        },
    },
    Panel {
        title: "Declined",
        figures: |c| Figures {
            rotessa: c.rotessa_total_declined,
            rotessa_count: c.rotessa_number_declined.into(),
            ours: c.computed_total_declined,
            ours_count: c.computed_number_declined,
        },
    },
    Panel {
        title: "Chargebacks",
        figures: |c| Figures {
            rotessa: c.rotessa_total_chargeback,
            rotessa_count: c.rotessa_number_chargeback.into(),
            ours: c.computed_total_chargeback,
            ours_count: c.computed_number_chargeback,
        },
    },
];

/// Whether a neighbour of date `i` is mismatched: its red label takes the place, so a regular
/// label there would overlap it.
fn near_mismatch(dates: &[&Comparison], i: usize) -> bool {
    [i.checked_sub(1), i.checked_add(1)]
        .into_iter()
        .flatten()
        .any(|j| dates.get(j).is_some_and(|c| !c.matched))
}

fn px(value: f64) -> String {
    format!("{value:.1}")
}

fn to_f64(amount: Decimal) -> f64 {
    amount.to_f64().unwrap_or(0.0).max(0.0)
}

/// The chart of `dates` (any order; drawn oldest to newest).
pub fn daily_totals(dates: &[&Comparison], label: &str) -> Markup {
    let mut dates: Vec<&Comparison> = dates.to_vec();
    dates.sort_by_key(|c| c.settlement_date);
    let n = dates.len().max(1);
    let plot = WIDTH - LEFT - RIGHT;
    let slot = plot / n as f64;
    let bar = (slot * 0.38).max(0.6);
    let bottom = TOP + 3.0 * PANEL + 2.0 * GAP;
    let height = bottom + AXIS;
    let step = n.div_ceil(12);
    html! {
        svg class="chart" viewBox={ "0 0 " (px(WIDTH)) " " (px(height)) }
            role="img" aria-label=(label) xmlns="http://www.w3.org/2000/svg" {
            title { (label) }
            // Legend.
            rect x=(px(LEFT)) y="4" width="12" height="10" class="rotessa" {}
            text x=(px(LEFT + 16.0)) y="13" { "Rotessa's settlement" }
            rect x=(px(LEFT + 170.0)) y="4" width="12" height="10" class="ours" {}
            text x=(px(LEFT + 186.0)) y="13" { "synced transactions" }
            rect x=(px(LEFT + 340.0)) y="4" width="12" height="10" class="band" {}
            text x=(px(LEFT + 356.0)) y="13" { "mismatched date" }
            // Mismatched dates: a band through every panel and a marker above.
            @for (i, c) in dates.iter().enumerate() {
                @if !c.matched {
                    @let x = LEFT + i as f64 * slot;
                    rect class="band" x=(px(x)) y=(px(TOP - 4.0)) width=(px(slot.max(1.0)))
                        height=(px(bottom - TOP + 4.0)) {
                        title { "Mismatch on " (format::date(c.settlement_date)) }
                    }
                    polygon class="marker"
                        points={ (px(x + slot / 2.0 - 4.0)) "," (px(TOP - 12.0)) " "
                                 (px(x + slot / 2.0 + 4.0)) "," (px(TOP - 12.0)) " "
                                 (px(x + slot / 2.0)) "," (px(TOP - 5.0)) } {}
                }
            }
            @for (p, panel) in PANELS.iter().enumerate() {
                @let top = TOP + p as f64 * (PANEL + GAP);
                @let base = top + PANEL;
                @let figures: Vec<Figures> = dates.iter().map(|c| (panel.figures)(c)).collect();
                @let max = figures.iter().map(|f| to_f64(f.rotessa).max(to_f64(f.ours)))
                    .fold(0.0_f64, f64::max);
                @let scale = if max > 0.0 { PANEL / max } else { 0.0 };
                text class="panel-title" x=(px(LEFT)) y=(px(top - 16.0)) { (panel.title) }
                @if max > 0.0 {
                    text class="axis" x=(px(LEFT - 6.0)) y=(px(top + 8.0)) text-anchor="end" {
                        (format::money(Decimal::from_f64_retain(max).unwrap_or_default().round_dp(2)))
                    }
                } @else {
                    text class="axis" x=(px(LEFT + 8.0)) y=(px(base - 8.0)) { "none in this period" }
                }
                text class="axis" x=(px(LEFT - 6.0)) y=(px(base)) text-anchor="end" { "$0" }
                line class="grid" x1=(px(LEFT)) x2=(px(WIDTH - RIGHT)) y1=(px(top)) y2=(px(top)) {}
                line class="baseline" x1=(px(LEFT)) x2=(px(WIDTH - RIGHT)) y1=(px(base)) y2=(px(base)) {}
                @for (i, (c, f)) in dates.iter().zip(&figures).enumerate() {
                    @let x = LEFT + i as f64 * slot;
                    @let h_r = to_f64(f.rotessa) * scale;
                    @let h_o = to_f64(f.ours) * scale;
                    rect class="rotessa" x=(px(x + slot * 0.1)) y=(px(base - h_r))
                        width=(px(bar)) height=(px(h_r)) {
                        title {
                            (format::date(c.settlement_date)) " · " (panel.title) " · Rotessa "
                            (format::money(f.rotessa)) " (" (f.rotessa_count) ")"
                        }
                    }
                    rect class="ours" x=(px(x + slot * 0.5)) y=(px(base - h_o))
                        width=(px(bar)) height=(px(h_o)) {
                        title {
                            (format::date(c.settlement_date)) " · " (panel.title) " · ours "
                            (format::money(f.ours)) " (" (f.ours_count) ")"
                        }
                    }
                }
            }
            @for (i, c) in dates.iter().enumerate() {
                @if !c.matched || (i % step == 0 && !(step > 1 && near_mismatch(&dates, i))) {
                    text class={ "axis" @if !c.matched { " mismatch-label" } }
                        x=(px(LEFT + (i as f64 + 0.5) * slot)) y=(px(bottom + 16.0))
                        text-anchor="middle" {
                        (format::short_date(c.settlement_date))
                    }
                }
            }
        }
    }
}
