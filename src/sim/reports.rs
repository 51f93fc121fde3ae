//! Which rows a query returns, in id order, and the settlement totals: pure functions of the
//! data, the scenarios in force, the query and the simulated today. Paging is a slice of the
//! result, so a query's pages are consistent with each other.
//!
//! Each report uses its own view of a row ([`Scenarios::observe`] with its [`SimReport`]), so
//! a lagging row is filtered and placed as the lagging report shows it; settlements and status
//! counts use the true view. Resubmitted rows ([`Scenarios::moved`]) are left out of walks by
//! the generated process date and added back by the process date their view shows. Removed
//! rows ([`Scenarios::removed_since`]) are left out of every report and of the status counts;
//! settlements count them as they were the day before their removal ([`Scenarios::settling`]).

use std::collections::{BTreeMap, HashMap};
use std::ops::{Range, RangeInclusive};

use super::calendar::Day;
use super::data::{SimData, Tx};
use super::lifecycle::SimStatus;
use super::scenarios::{Scenarios, SimReport};
use super::{ChargebackOn, PAGE_SIZE};

/// Per approved transaction, the platform's fee in a settlement's `total_payout`, in cents. The
/// documentation's example settlements (2 approved: 4.52; 1 approved: 2.26) fit 2.26 each.
pub const PAYOUT_FEE_CENTS: i64 = 226;

/// The indices `[lo, hi)` of the transactions whose process date is in `[start, end]`.
pub fn process_range(txs: &[Tx], start: Day, end: Day) -> Range<usize> {
    let lo = txs.partition_point(|t| t.process_day < start);
    let hi = txs.partition_point(|t| t.process_day <= end).max(lo);
    lo..hi
}

/// The part of an ascending index list that falls in `range`.
pub fn sublist(list: &[u32], range: Range<usize>) -> &[u32] {
    let lo = list.partition_point(|&i| (i as usize) < range.start);
    let hi = list.partition_point(|&i| (i as usize) < range.end).max(lo);
    &list[lo..hi]
}

/// The positions of page `page` (1-based) in a result of `len` rows: 1000 a page, the last
/// one short, and empty past the end.
pub fn page_bounds(len: usize, page: usize) -> Range<usize> {
    let start = page.saturating_sub(1).saturating_mul(PAGE_SIZE).min(len);
    start..start.saturating_add(PAGE_SIZE).min(len)
}

/// The transactions of `candidates` whose status on `today`, as the transaction report shows
/// them, is `status`.
pub fn with_status(
    data: &SimData,
    scenarios: &Scenarios,
    candidates: impl Iterator<Item = usize>,
    status: SimStatus,
    today: Day,
) -> Vec<u32> {
    let view = Some(SimReport::TransactionReport);
    candidates
        .filter(|&i| scenarios.observe(data, i, today, view).status == status)
        .map(|i| i as u32)
        .collect()
}

/// The rows of the transaction report (of one client, or all) whose process date, as that
/// report shows it, is in `[start, end]`, in id order: the generated process-date range
/// without the resubmitted rows, plus the resubmitted rows whose shown process date falls in
/// it, without the rows removed in that report's view. Only needed when [`Scenarios::moved`]
/// is not empty or rows are removed ([`Scenarios::removes`]); otherwise the range itself is it.
pub fn report_members(
    data: &SimData,
    scenarios: &Scenarios,
    client: Option<usize>,
    start: Day,
    end: Day,
    today: Day,
) -> Vec<u32> {
    let range = process_range(&data.txs, start, end);
    let moved = scenarios.moved();
    let view = Some(SimReport::TransactionReport);
    let reported = |i: usize| scenarios.is_reported(data, i, today, view);
    let stays =
        |i: &u32| (moved.is_empty() || moved.binary_search(i).is_err()) && reported(*i as usize);
    let mut rows: Vec<u32> = match client {
        None => range.map(|i| i as u32).filter(stays).collect(),
        Some(c) => data
            .by_client
            .get(c)
            .map(|list| sublist(list, range).iter().copied().filter(stays).collect())
            .unwrap_or_default(),
    };
    let joining: Vec<u32> = moved
        .iter()
        .copied()
        .filter(|&i| {
            let tx = &data.txs[i as usize];
            let day = scenarios.observe(data, i as usize, today, view).process_day;
            client.is_none_or(|c| usize::from(tx.client) == c)
                && day >= start
                && day <= end
                && reported(i as usize)
        })
        .collect();
    if joining.len() <= 64 {
        // A few rows: put each in its place (a move of the tail beats sorting a million rows).
        for i in joining {
            let at = rows.partition_point(|&r| r < i);
            rows.insert(at, i);
        }
    } else {
        rows.extend(joining);
        rows.sort_unstable();
    }
    rows
}

/// The decline report of a client: its transactions that are `Declined` or `Chargeback` on
/// `today` as the decline report shows them (a lagging row as it was then; a removed row not
/// at all), with a decline date in `[start, end]` and not after `today`, in id order.
pub fn declines(
    data: &SimData,
    scenarios: &Scenarios,
    client: usize,
    start: Day,
    end: Day,
    today: Day,
) -> Vec<u32> {
    let end = end.min(today);
    let view = Some(SimReport::DeclineReport);
    // Overrides only ever take a failure away, so the rows that ever fail as generated are
    // still every candidate.
    data.failures_by_client
        .get(client)
        .map(|list| {
            list.iter()
                .copied()
                .filter(|&i| {
                    let seen = scenarios.observe(data, i as usize, today, view);
                    matches!(seen.status, SimStatus::Declined | SimStatus::Chargeback)
                        && seen.decline_day.is_some_and(|d| d >= start && d <= end)
                        && scenarios.is_reported(data, i as usize, today, view)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The ids of the transactions whose status today, in the true view, is `status` (removed
/// rows have none).
pub fn ids_with_status(
    data: &SimData,
    scenarios: &Scenarios,
    status: SimStatus,
    today: Day,
) -> Vec<i64> {
    (0..data.txs.len())
        .filter(|&i| {
            scenarios.observe(data, i, today, None).status == status
                && scenarios.is_reported(data, i, today, None)
        })
        .map(|i| data.tx_id(i))
        .collect()
}

/// The ids of the transactions removed today (no report shows them), to pick rows to restore.
pub fn removed_ids(data: &SimData, scenarios: &Scenarios, today: Day) -> Vec<i64> {
    if !scenarios.removes() {
        return Vec::new();
    }
    (0..data.txs.len())
        .filter(|&i| !scenarios.is_reported(data, i, today, None))
        .map(|i| data.tx_id(i))
        .collect()
}

/// One settlement date of a client: what moved on that day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settlement {
    /// The settlement date.
    pub day: Day,
    /// Transactions settled that day that were approved (with [`ChargebackOn::DeclineDate`], a
    /// later chargeback does not undo it).
    pub number_approved: i64,
    /// Transactions due to settle that day that were declined.
    pub number_declined: i64,
    /// Transactions charged back that day (by their decline date), or, with
    /// [`ChargebackOn::SettlementDate`], charged-back transactions whose settlement date it is.
    pub number_chargeback: i64,
    /// Transactions paid out (the approved ones).
    pub number_payout: i64,
    /// Cents approved, plus any `/_sim/settlement_adjust`.
    pub total_approved: i64,
    /// Cents declined.
    pub total_declined: i64,
    /// Cents charged back.
    pub total_chargeback: i64,
    /// The platform's fee in cents ([`PAYOUT_FEE_CENTS`] per approved transaction).
    pub total_payout: i64,
}

/// The settlements of a client for settlement dates in `dates`, never after `today`,
/// one per date on which something moved, from the true view of the rows. With
/// [`ChargebackOn::DeclineDate`] a settlement records what happened on its day and does not
/// change afterwards: approved and declined transactions count on their settlement date (an
/// approved one still counts as approved there after a chargeback), a chargeback counts on the
/// day it happened. With [`ChargebackOn::SettlementDate`] a charged-back transaction counts as
/// a chargeback on its settlement date instead of as approved, so that settlement changes when
/// the chargeback happens. Changes made on demand are the exception: a reversed chargeback no
/// longer counts as one, a resubmitted decline no longer counts on its old settlement date but
/// as approved on its new one once resolved, a removed row counts as it was the day before its
/// removal and only on days before it, and a restored row counts as if never removed.
/// `adjustments` (cents per client index and date, from `/_sim/settlement_adjust`) are added
/// to `total_approved`.
pub fn settlements(
    data: &SimData,
    scenarios: &Scenarios,
    client: usize,
    dates: RangeInclusive<Day>,
    today: Day,
    chargeback_on: ChargebackOn,
    adjustments: &HashMap<(usize, Day), i64>,
) -> Vec<Settlement> {
    let (start, end) = (*dates.start(), (*dates.end()).min(today));
    if end < start {
        return Vec::new();
    }
    let Some(list) = data.by_client.get(client) else {
        return Vec::new();
    };
    // A settlement date is at most 5 business days (7 calendar days) after the process date;
    // resubmitted rows are walked apart, by their new process date.
    let range = process_range(&data.txs, start - 14, end);
    let moved = scenarios.moved();
    let walked = sublist(list, range)
        .iter()
        .copied()
        .filter(|i| moved.is_empty() || moved.binary_search(i).is_err());
    let moved_here = moved
        .iter()
        .copied()
        .filter(|&i| usize::from(data.txs[i as usize].client) == client);
    let mut settled: BTreeMap<Day, Settlement> = BTreeMap::new();
    for i in walked.chain(moved_here) {
        let tx = &data.txs[i as usize];
        let (seen, last) = scenarios.settling(data, i as usize, today);
        if seen.settlement_day < start || seen.settlement_day > end.min(last) {
            continue;
        }
        let cents = i64::from(tx.amount_cents);
        let s = settled.entry(seen.settlement_day).or_insert(Settlement {
            day: seen.settlement_day,
            ..Settlement::default()
        });
        match seen.status {
            SimStatus::Chargeback if chargeback_on == ChargebackOn::SettlementDate => {
                s.number_chargeback += 1;
                s.total_chargeback += cents;
            }
            SimStatus::Approved | SimStatus::Chargeback => {
                s.number_approved += 1;
                s.total_approved += cents;
            }
            SimStatus::Declined => {
                s.number_declined += 1;
                s.total_declined += cents;
            }
            // Settlement follows resolution, so by a settlement date on or before today every
            // transaction has resolved; these arms only keep the match total.
            SimStatus::Future | SimStatus::Pending => {}
        }
    }
    let by_decline_date = match chargeback_on {
        ChargebackOn::DeclineDate => data
            .failures_by_client
            .get(client)
            .map_or(&[][..], Vec::as_slice),
        ChargebackOn::SettlementDate => &[][..],
    };
    for &i in by_decline_date {
        let tx = &data.txs[i as usize];
        let (seen, last) = scenarios.settling(data, i as usize, today);
        let Some(day) = seen
            .decline_day
            .filter(|d| *d >= start && *d <= end.min(last))
        else {
            continue;
        };
        if seen.status == SimStatus::Chargeback {
            let s = settled.entry(day).or_insert(Settlement {
                day,
                ..Settlement::default()
            });
            s.number_chargeback += 1;
            s.total_chargeback += i64::from(tx.amount_cents);
        }
    }
    settled
        .into_values()
        .map(|mut s| {
            s.number_payout = s.number_approved;
            s.total_payout = s.number_approved * PAYOUT_FEE_CENTS;
            s.total_approved += adjustments.get(&(client, s.day)).copied().unwrap_or(0);
            s
        })
        .collect()
}

/// How many transactions have each status on `today`, in the true view (for `/_sim/state`);
/// removed rows have none and are counted apart ([`Scenarios::counts`]).
pub fn status_counts(data: &SimData, scenarios: &Scenarios, today: Day) -> [(SimStatus, u64); 5] {
    let mut counts = SimStatus::ALL.map(|s| (s, 0u64));
    for i in 0..data.txs.len() {
        if !scenarios.is_reported(data, i, today, None) {
            continue;
        }
        let status = scenarios.observe(data, i, today, None).status;
        if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == status) {
            slot.1 += 1;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_thousand_rows_with_a_short_last_one() {
        assert_eq!(page_bounds(2500, 1), 0..1000);
        assert_eq!(page_bounds(2500, 3), 2000..2500);
        assert_eq!(page_bounds(2500, 4), 2500..2500);
        assert_eq!(page_bounds(2000, 3), 2000..2000);
        assert_eq!(page_bounds(0, usize::MAX), 0..0);
    }

    #[test]
    fn sublists_follow_index_ranges() {
        let list = [1, 4, 5, 9, 12];
        assert_eq!(sublist(&list, 4..10), &[4, 5, 9]);
        assert_eq!(sublist(&list, 13..20), &[] as &[u32]);
    }
}
