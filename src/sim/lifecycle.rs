//! A transaction's status as a pure function of the simulated today `T` (business days Mon-Fri):
//!
//! - `Future` while `T` < process date - 1 business day;
//! - `Pending` from then until its resolution date = process date + k business days (k 1..=4);
//! - then `Approved`, or `Declined` (about 5%, decline date = resolution date);
//! - about 1% of approved ones become `Chargeback` 20..=90 days after the process date (decline
//!   date = chargeback date).
//!
//! Settlement date = resolution date + 1 business day, on every row. Because the status is a
//! function of `T` alone and never moves backward as `T` grows (unless a chargeback is reversed
//! or a decline resubmitted on demand, below), any sequence of clock advances yields a valid
//! lifecycle.
//!
//! Two changes made on demand (see [`super::scenarios`]) are pure functions too, of `T` and the
//! day `D` they were made: [`observe_reversed`] (a chargeback reversed on `D`: `Approved` again)
//! and [`observe_resubmitted`] (a decline resubmitted on `D` for a new process date: `Future`,
//! then the lifecycle again, always approved). Each is stamped later in its day than any other
//! change (17:00-18:00), so `updated_at` keeps growing.

use super::calendar::{Day, add_business_days, on_or_after_business_day, sub_business_days};
use super::data::{REASONS, Tx};

/// The simulator's own status type (it shares no types with the client it tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SimStatus {
    /// Scheduled, not yet being processed.
    Future,
    /// Being processed.
    Pending,
    /// Succeeded.
    Approved,
    /// Failed when processed.
    Declined,
    /// Approved, then reversed.
    Chargeback,
}

impl SimStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [SimStatus; 5] = [
        Self::Future,
        Self::Pending,
        Self::Approved,
        Self::Declined,
        Self::Chargeback,
    ];

    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Future => "Future",
            Self::Pending => "Pending",
            Self::Approved => "Approved",
            Self::Declined => "Declined",
            Self::Chargeback => "Chargeback",
        }
    }
}

/// The dates a transaction's lifecycle is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeline {
    /// Becomes `Pending` on this day.
    pub pending_from: Day,
    /// Becomes `Approved` or `Declined` on this day.
    pub resolution: Day,
    /// Its settlement date.
    pub settlement: Day,
    /// Becomes `Chargeback` on this day, if ever.
    pub chargeback: Option<Day>,
}

/// The lifecycle dates of `tx`.
pub fn timeline(tx: &Tx) -> Timeline {
    let resolution = add_business_days(tx.process_day, u32::from(tx.resolve_bdays));
    Timeline {
        pending_from: sub_business_days(tx.process_day, 1),
        resolution,
        settlement: add_business_days(resolution, 1),
        chargeback: (tx.chargeback_days != 0)
            .then(|| on_or_after_business_day(tx.process_day + i32::from(tx.chargeback_days))),
    }
}

/// Which status change last happened, to place `updated_at` within its day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Future -> Pending.
    BecamePending,
    /// Pending -> Approved or Declined.
    Resolved,
    /// Approved -> Chargeback.
    ChargedBack,
    /// Chargeback -> Approved, on demand (`/_sim/reverse`).
    Reversed,
    /// Declined -> Future with a new process date, on demand (`/_sim/resubmit`).
    Resubmitted,
}

/// What the reports say about a transaction on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// The status on that day.
    pub status: SimStatus,
    /// The decline or chargeback reason.
    pub status_reason: Option<&'static str>,
    /// When it was declined or charged back.
    pub decline_day: Option<Day>,
    /// When it was approved (kept after a chargeback).
    pub earliest_approval_day: Option<Day>,
    /// Its settlement date (on every row).
    pub settlement_day: Day,
    /// Its process date: the generated one, or the new one of a resubmission.
    pub process_day: Day,
    /// The day and kind of the last status change; `None` while `Future` (unless resubmitted).
    pub last_change: Option<(Day, Change)>,
}

/// The status of `tx` when the simulated today is `today`.
pub fn observe(tx: &Tx, today: Day) -> Observed {
    let t = timeline(tx);
    let mut seen = Observed {
        status: SimStatus::Future,
        status_reason: None,
        decline_day: None,
        earliest_approval_day: None,
        settlement_day: t.settlement,
        process_day: tx.process_day,
        last_change: None,
    };
    if today < t.pending_from {
        return seen;
    }
    if today < t.resolution {
        seen.status = SimStatus::Pending;
        seen.last_change = Some((t.pending_from, Change::BecamePending));
        return seen;
    }
    if tx.decline_reason != 0 {
        seen.status = SimStatus::Declined;
        seen.status_reason = reason(tx.decline_reason - 1);
        seen.decline_day = Some(t.resolution);
        seen.last_change = Some((t.resolution, Change::Resolved));
        return seen;
    }
    seen.earliest_approval_day = Some(t.resolution);
    match t.chargeback {
        Some(day) if today >= day => {
            seen.status = SimStatus::Chargeback;
            seen.status_reason = reason(tx.chargeback_reason);
            seen.decline_day = Some(day);
            seen.last_change = Some((day, Change::ChargedBack));
        }
        _ => {
            seen.status = SimStatus::Approved;
            seen.last_change = Some((t.resolution, Change::Resolved));
        }
    }
    seen
}

/// The status of `tx` on `today` when its chargeback was reversed on `day` (a day on which it
/// was `Chargeback`): before `day` as [`observe`] says; from `day` on `Approved` again, with
/// no reason nor decline date, the same approval and settlement dates, and `updated_at` on
/// `day` ([`Change::Reversed`]).
pub fn observe_reversed(tx: &Tx, day: Day, today: Day) -> Observed {
    let mut seen = observe(tx, today);
    if today >= day {
        seen.status = SimStatus::Approved;
        seen.status_reason = None;
        seen.decline_day = None;
        seen.last_change = Some((day, Change::Reversed));
    }
    seen
}

/// The lifecycle dates of a transaction resubmitted on `day` for `process_day` (a business day
/// after `day`): `Pending` from one business day before `process_day` but not before the
/// business day after `day` (the resubmission is its day's last change), resolved `resolve_bdays` after
/// `process_day`, settled one business day later, never charged back.
pub fn resubmitted_timeline(tx: &Tx, day: Day, process_day: Day) -> Timeline {
    let resolution = add_business_days(process_day, u32::from(tx.resolve_bdays));
    Timeline {
        pending_from: sub_business_days(process_day, 1).max(on_or_after_business_day(day + 1)),
        resolution,
        settlement: add_business_days(resolution, 1),
        chargeback: None,
    }
}

/// The status of `tx` on `today` when it was resubmitted on `day` (a day on which it was
/// `Declined`) for `process_day`: before `day` as [`observe`] says; from `day` on `Future`
/// with the new process date and a non-null `updated_at` ([`Change::Resubmitted`]), then
/// `Pending` and `Approved` along [`resubmitted_timeline`].
pub fn observe_resubmitted(tx: &Tx, day: Day, process_day: Day, today: Day) -> Observed {
    if today < day {
        return observe(tx, today);
    }
    let t = resubmitted_timeline(tx, day, process_day);
    let mut seen = Observed {
        status: SimStatus::Future,
        status_reason: None,
        decline_day: None,
        earliest_approval_day: None,
        settlement_day: t.settlement,
        process_day,
        last_change: Some((day, Change::Resubmitted)),
    };
    if today >= t.resolution {
        seen.status = SimStatus::Approved;
        seen.earliest_approval_day = Some(t.resolution);
        seen.last_change = Some((t.resolution, Change::Resolved));
    } else if today >= t.pending_from {
        seen.status = SimStatus::Pending;
        seen.last_change = Some((t.pending_from, Change::BecamePending));
    }
    seen
}

/// The status of `tx` on `today`, without the rest.
pub fn status(tx: &Tx, today: Day) -> SimStatus {
    observe(tx, today).status
}

fn reason(index: u8) -> Option<&'static str> {
    REASONS.get(usize::from(index)).copied()
}

/// Seconds after local midnight at which a change of `kind` happened, varied per transaction by
/// `jitter` (any hash): pending changes early morning, resolutions mid-morning, chargebacks in
/// the afternoon, and the changes made on demand (reversals, resubmissions) between 17:00 and
/// 18:00, after any other change of their day.
pub fn change_time_secs(kind: Change, jitter: u64) -> u32 {
    let (base, spread) = match kind {
        Change::BecamePending => (6 * 3600, 2 * 3600),
        Change::Resolved => (9 * 3600, 3 * 3600),
        Change::ChargedBack => (13 * 3600, 3 * 3600),
        Change::Reversed | Change::Resubmitted => (17 * 3600, 3600),
    };
    base + (jitter % spread) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::calendar::day_of;

    fn tx(process: &str, k: u8, decline: u8, cb_days: u8) -> Tx {
        Tx {
            process_day: day_of(process.parse().unwrap()),
            amount_cents: 10_000,
            customer: 0,
            created_before_secs: 86_400 * 10,
            client: 0,
            schedule_slot: 0,
            resolve_bdays: k,
            decline_reason: decline,
            chargeback_days: cb_days,
            chargeback_reason: 1,
            flags: 0,
        }
    }

    fn on(t: &Tx, date: &str) -> Observed {
        observe(t, day_of(date.parse().unwrap()))
    }

    #[test]
    fn an_approved_transaction_walks_future_pending_approved() {
        // Wednesday 2026-11-25, resolved 2 business days later (Friday).
        let t = tx("2026-11-25", 2, 0, 0);
        assert_eq!(on(&t, "2026-11-23").status, SimStatus::Future);
        let pending = on(&t, "2026-11-24");
        assert_eq!(pending.status, SimStatus::Pending);
        assert_eq!(pending.earliest_approval_day, None);
        assert_eq!(on(&t, "2026-11-26").status, SimStatus::Pending);
        let approved = on(&t, "2026-11-27");
        assert_eq!(approved.status, SimStatus::Approved);
        assert_eq!(
            approved.earliest_approval_day,
            Some(day_of("2026-11-27".parse().unwrap()))
        );
        // Settlement: the next business day after resolution (Monday).
        assert_eq!(
            approved.settlement_day,
            day_of("2026-11-30".parse().unwrap())
        );
        assert_eq!(approved.status_reason, None);
    }

    #[test]
    fn declines_and_chargebacks_carry_reasons_and_dates() {
        let d = tx("2026-11-25", 1, 1, 0);
        let declined = on(&d, "2026-12-01");
        assert_eq!(declined.status, SimStatus::Declined);
        assert_eq!(declined.status_reason, Some("NSF"));
        assert_eq!(
            declined.decline_day,
            Some(day_of("2026-11-26".parse().unwrap()))
        );

        let c = tx("2026-11-25", 1, 0, 30);
        assert_eq!(on(&c, "2026-12-24").status, SimStatus::Approved);
        let charged = on(&c, "2026-12-28");
        assert_eq!(charged.status, SimStatus::Chargeback);
        assert_eq!(charged.status_reason, Some("Payment Stopped/Recalled"));
        // 2026-12-25 is a Friday.
        assert_eq!(
            charged.decline_day,
            Some(day_of("2026-12-25".parse().unwrap()))
        );
        assert!(charged.earliest_approval_day.is_some());
    }

    #[test]
    fn a_reversed_chargeback_is_approved_again_from_its_day() {
        let c = tx("2026-11-25", 1, 0, 30);
        let reversed_on = day_of("2026-12-29".parse().unwrap());
        assert_eq!(
            observe_reversed(&c, reversed_on, reversed_on - 1),
            observe(&c, reversed_on - 1)
        );
        let charged = observe(&c, reversed_on);
        let seen = observe_reversed(&c, reversed_on, reversed_on + 40);
        assert_eq!(seen.status, SimStatus::Approved);
        assert_eq!((seen.status_reason, seen.decline_day), (None, None));
        assert_eq!(seen.earliest_approval_day, charged.earliest_approval_day);
        assert_eq!(seen.settlement_day, charged.settlement_day);
        assert_eq!(seen.last_change, Some((reversed_on, Change::Reversed)));
        // Later in its day than the chargeback, even on the same day.
        assert!(
            change_time_secs(Change::Reversed, 0) > change_time_secs(Change::ChargedBack, u64::MAX)
        );
    }

    #[test]
    fn a_resubmitted_decline_walks_the_lifecycle_again_from_its_new_date() {
        let d = tx("2026-11-25", 2, 1, 0);
        let on_day = day_of("2026-12-01".parse().unwrap()); // Tuesday
        let new = day_of("2026-12-08".parse().unwrap()); // Tuesday
        let at = |day: &str| observe_resubmitted(&d, on_day, new, day_of(day.parse().unwrap()));
        assert_eq!(at("2026-11-30"), observe(&d, on_day - 1));
        let future = at("2026-12-01");
        assert_eq!(future.status, SimStatus::Future);
        assert_eq!(future.process_day, new);
        assert_eq!(future.last_change, Some((on_day, Change::Resubmitted)));
        assert_eq!((future.status_reason, future.decline_day), (None, None));
        assert_eq!(at("2026-12-04").status, SimStatus::Future);
        assert_eq!(at("2026-12-07").status, SimStatus::Pending);
        let approved = at("2026-12-10");
        assert_eq!(approved.status, SimStatus::Approved);
        assert_eq!(
            approved.earliest_approval_day,
            Some(day_of("2026-12-10".parse().unwrap()))
        );
        assert_eq!(
            approved.settlement_day,
            day_of("2026-12-11".parse().unwrap())
        );
        assert_eq!(at("2027-06-01").status, SimStatus::Approved);
        // Resubmitted on a Friday for the Monday: pending from the Monday, not the Friday.
        let friday = day_of("2026-12-04".parse().unwrap());
        let t = resubmitted_timeline(&d, friday, friday + 3);
        assert_eq!(t.pending_from, friday + 3);
    }

    #[test]
    fn statuses_never_move_backward_as_days_pass() {
        let rank = |s: SimStatus| match s {
            SimStatus::Future => 0,
            SimStatus::Pending => 1,
            SimStatus::Approved | SimStatus::Declined => 2,
            SimStatus::Chargeback => 3,
        };
        for (k, decline, cb) in [(1, 0, 0), (4, 3, 0), (2, 0, 20), (3, 0, 90)] {
            let t = tx("2026-11-02", k, decline, cb);
            let start = t.process_day - 10;
            let mut last = SimStatus::Future;
            for day in start..start + 150 {
                let now = status(&t, day);
                assert!(rank(now) >= rank(last), "{last:?} -> {now:?}");
                last = now;
            }
        }
    }
}
