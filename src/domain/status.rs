//! Transaction statuses and the rules for which observed changes may be applied.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use super::Source;

/// A Rotessa financial transaction status. The discriminants feed row fingerprints: keep them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Future = 0,
    Pending = 1,
    Approved = 2,
    Declined = 3,
    Chargeback = 4,
}

impl Status {
    /// The status as event payloads carry it (the `rotessa-outbox` crate's type).
    pub fn to_event(self) -> rotessa_outbox::Status {
        match self {
            Self::Future => rotessa_outbox::Status::Future,
            Self::Pending => rotessa_outbox::Status::Pending,
            Self::Approved => rotessa_outbox::Status::Approved,
            Self::Declined => rotessa_outbox::Status::Declined,
            Self::Chargeback => rotessa_outbox::Status::Chargeback,
        }
    }

    /// The API's (and the database's) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Future => "Future",
            Self::Pending => "Pending",
            Self::Approved => "Approved",
            Self::Declined => "Declined",
            Self::Chargeback => "Chargeback",
        }
    }

    /// Whether the lifecycle applies a move from `self` to `to` when Rotessa's clock cannot
    /// order the two (SPEC.md "Status rules"): Future -> Pending -> Approved | Declined ->
    /// Chargeback, plus Approved <-> Declined, and Declined -> Pending or Future (a
    /// resubmission). Staying put is allowed (a reason may change). Anything else is backward.
    pub fn may_move_to(self, to: Status) -> bool {
        use Status::*;
        match (self, to) {
            (from, to) if from == to => true,
            (Future, _) => true,
            (Pending, Approved | Declined | Chargeback) => true,
            (Approved, Declined | Chargeback) => true,
            (Declined, Approved | Pending | Future | Chargeback) => true,
            _ => false,
        }
    }

    /// How far along the lifecycle the status is: Future 0, Pending 1, Approved and Declined 2,
    /// Chargeback 3. A move to a lower rank is a reversal.
    pub fn rank(self) -> u8 {
        match self {
            Self::Future => 0,
            Self::Pending => 1,
            Self::Approved | Self::Declined => 2,
            Self::Chargeback => 3,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not one of the five statuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {0:?} (expected Future, Pending, Approved, Declined or Chargeback)")]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "Future" => Ok(Self::Future),
            "Pending" => Ok(Self::Pending),
            "Approved" => Ok(Self::Approved),
            "Declined" => Ok(Self::Declined),
            "Chargeback" => Ok(Self::Chargeback),
            other => Err(UnknownStatus(other.to_owned())),
        }
    }
}

/// The status-bearing part of a transaction: what a `transaction.status_changed` event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub status: Status,
    pub status_reason: Option<String>,
    pub decline_date: Option<chrono::NaiveDate>,
}

/// How an observation's `updated_at` compares with the newest one stored for its row. Rotessa's
/// own clock orders what its reports say about a row, whichever report said it and whenever it
/// was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Older than what is stored: a report lagging behind.
    Older,
    /// Newer: Rotessa's current truth.
    Newer,
    /// Equal, or one side has no `updated_at` (Future rows have none): the lifecycle decides.
    Undecided,
}

impl Order {
    /// Compares an observation's `updated_at` with the newest one stored for the row.
    pub fn of(observed: Option<DateTime<Utc>>, latest_stored: Option<DateTime<Utc>>) -> Self {
        match (observed, latest_stored) {
            (Some(o), Some(s)) if o < s => Self::Older,
            (Some(o), Some(s)) if o > s => Self::Newer,
            _ => Self::Undecided,
        }
    }
}

/// What is stored of a row, as the status rules need it.
#[derive(Debug, Clone, Copy)]
pub struct Stored<'a> {
    pub change: &'a StatusChange,
    /// The newest `updated_at` Rotessa reported for the row.
    pub latest_updated_at: Option<DateTime<Utc>>,
    /// The state the row was in before its current one, and the report that said so, if the
    /// row ever changed.
    pub previous: Option<(&'a StatusChange, Source)>,
}

/// One report's view of a row.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub change: &'a StatusChange,
    pub updated_at: Option<DateTime<Utc>>,
    pub source: Source,
}

/// What applying an observation to the stored state means (SPEC.md "Status rules").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing differs.
    Unchanged,
    /// Fields differ but status, reason and decline date do not: write, no event.
    FieldsOnly,
    /// The status, reason or decline date changed: write, history, event. A `reversal` moves
    /// back in the lifecycle (a chargeback reversed, a decline resubmitted) and is also
    /// recorded as an anomaly for review.
    StatusChanged { reversal: bool },
    /// Not newer than what is stored: nothing is written or emitted.
    Stale,
    /// A move against the lifecycle with no newer `updated_at` to justify it: refused.
    Backward,
}

impl Transition {
    /// Classifies `observed` against `stored`, given whether any stored field differs:
    ///
    /// - an older `updated_at` is stale;
    /// - a newer one is applied, even against the lifecycle (then it is a reversal);
    /// - otherwise (equal, or either side without one) the lifecycle decides: a move it allows
    ///   is applied unless the report that showed the state the row just left shows it again
    ///   (it lags behind the other report; applying it would flap the row), which is stale; a
    ///   move it forbids is backward; and a change of other fields only is written when it
    ///   comes from the transaction report, which owns them, and cannot be older (it has an
    ///   `updated_at`, or the stored row has none, or is Future); else it is stale.
    pub fn classify(stored: Stored<'_>, observed: Observed<'_>, fields_differ: bool) -> Self {
        let same_status = stored.change == observed.change;
        let reversal = observed.change.status.rank() < stored.change.status.rank();
        match Order::of(observed.updated_at, stored.latest_updated_at) {
            Order::Older => Self::Stale,
            Order::Newer if !same_status => Self::StatusChanged { reversal },
            Order::Newer if fields_differ => Self::FieldsOnly,
            Order::Newer => Self::Unchanged,
            Order::Undecided if same_status => {
                // A Future row carries no `updated_at` of its own (a resubmitted one keeps the
                // stamp of its decline): nothing orders its edits but the report that owns it.
                let owns_fields = observed.source == Source::TransactionReport
                    && (observed.updated_at.is_some()
                        || stored.latest_updated_at.is_none()
                        || stored.change.status == Status::Future);
                match (fields_differ, owns_fields) {
                    (false, _) => Self::Unchanged,
                    (true, true) => Self::FieldsOnly,
                    (true, false) => Self::Stale,
                }
            }
            Order::Undecided if !stored.change.status.may_move_to(observed.change.status) => {
                Self::Backward
            }
            Order::Undecided if stored.previous == Some((observed.change, observed.source)) => {
                Self::Stale
            }
            Order::Undecided => Self::StatusChanged { reversal },
        }
    }
}

/// Why an observation was recorded in `rotessa.status_anomalies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnomalyKind {
    /// A report lagging behind what is stored, with another status: not applied.
    Stale,
    /// A move against the lifecycle without a newer `updated_at`: not applied.
    Backward,
    /// A move back in the lifecycle that was applied: for review.
    Reversal,
    /// An Approved or Chargeback row Rotessa stopped reporting: money that moved, for review.
    Removed,
}

impl AnomalyKind {
    /// The `kind` column's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stale => "stale",
            Self::Backward => "backward",
            Self::Reversal => "reversal",
            Self::Removed => "removed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    const ALL: [Status; 5] = [Future, Pending, Approved, Declined, Chargeback];

    #[test]
    fn forward_and_backward_moves_follow_the_spec() {
        let forward = [
            (Future, Pending),
            (Pending, Approved),
            (Pending, Declined),
            (Approved, Chargeback),
            (Declined, Chargeback),
            (Approved, Declined),
            (Declined, Approved),
            (Declined, Pending),
            (Declined, Future),
            (Future, Approved),
        ];
        for (a, b) in forward {
            assert!(a.may_move_to(b), "{a} -> {b} should be applied");
        }
        let backward = [
            (Chargeback, Approved),
            (Approved, Pending),
            (Pending, Future),
            (Approved, Future),
            (Chargeback, Declined),
            (Chargeback, Pending),
        ];
        for (a, b) in backward {
            assert!(!a.may_move_to(b), "{a} -> {b} should be refused");
        }
        for s in ALL {
            assert!(s.may_move_to(s));
            assert_eq!(s.as_str().parse::<Status>().unwrap(), s);
        }
    }

    fn change(status: Status) -> StatusChange {
        StatusChange {
            status,
            status_reason: None,
            decline_date: None,
        }
    }

    fn at(hour: u32) -> Option<DateTime<Utc>> {
        use chrono::TimeZone;
        Utc.with_ymd_and_hms(2026, 12, 1, hour, 0, 0).single()
    }

    /// Classifies `observed` (stamped `observed_at`, from the transaction report) against a row
    /// stored as `stored` at `stored_at`, which the transaction report showed as `previous`
    /// before.
    fn classify(
        stored: &StatusChange,
        stored_at: Option<DateTime<Utc>>,
        previous: Option<&StatusChange>,
        observed: &StatusChange,
        observed_at: Option<DateTime<Utc>>,
    ) -> Transition {
        Transition::classify(
            Stored {
                change: stored,
                latest_updated_at: stored_at,
                previous: previous.map(|p| (p, Source::TransactionReport)),
            },
            Observed {
                change: observed,
                updated_at: observed_at,
                source: Source::TransactionReport,
            },
            true,
        )
    }

    #[test]
    fn classify_separates_events_from_silent_updates() {
        let approved = change(Approved);
        let reason = StatusChange {
            status_reason: Some("NSF".into()),
            ..approved.clone()
        };
        let same = |fields_differ| {
            Transition::classify(
                Stored {
                    change: &approved,
                    latest_updated_at: at(9),
                    previous: None,
                },
                Observed {
                    change: &approved,
                    updated_at: at(9),
                    source: Source::TransactionReport,
                },
                fields_differ,
            )
        };
        assert_eq!(same(false), Transition::Unchanged);
        assert_eq!(same(true), Transition::FieldsOnly);
        assert_eq!(
            classify(&approved, at(9), None, &reason, at(9)),
            Transition::StatusChanged { reversal: false }
        );
        let pending = change(Pending);
        assert_eq!(
            classify(&approved, at(9), None, &pending, at(9)),
            Transition::Backward
        );
        assert_eq!(
            classify(&pending, at(9), None, &approved, at(9)),
            Transition::StatusChanged { reversal: false }
        );
    }

    #[test]
    fn rotessas_clock_decides_before_the_lifecycle() {
        let (approved, declined) = (change(Approved), change(Declined));
        let (chargeback, future) = (change(Chargeback), change(Future));
        // Older: stale, whatever the lifecycle says.
        for observed in [&declined, &chargeback, &approved] {
            assert_eq!(
                classify(&approved, at(10), None, observed, at(9)),
                Transition::Stale
            );
        }
        // Newer: applied, a move back in the lifecycle as a reversal.
        assert_eq!(
            classify(&chargeback, at(9), None, &approved, at(10)),
            Transition::StatusChanged { reversal: true }
        );
        assert_eq!(
            classify(&declined, at(9), None, &future, at(10)),
            Transition::StatusChanged { reversal: true }
        );
        assert_eq!(
            classify(&approved, at(9), None, &declined, at(10)),
            Transition::StatusChanged { reversal: false }
        );
        // Without a clock on either side: the lifecycle, resubmissions included.
        assert_eq!(
            classify(&declined, None, None, &future, None),
            Transition::StatusChanged { reversal: true }
        );
        assert_eq!(
            classify(&chargeback, None, None, &approved, None),
            Transition::Backward
        );
    }

    #[test]
    fn a_row_never_flaps_between_two_reports_that_cannot_be_ordered() {
        let (approved, declined) = (change(Approved), change(Declined));
        // Declined arrived without updated_at over Approved at 9:00; the report still showing
        // Approved at 9:00 would take the row back: it is stale, not a transition.
        assert_eq!(
            classify(&declined, at(9), Some(&approved), &approved, at(9)),
            Transition::Stale
        );
        assert_eq!(
            classify(&declined, None, Some(&approved), &approved, None),
            Transition::Stale
        );
        // A newer Approved is Rotessa's truth again.
        assert_eq!(
            classify(&declined, at(9), Some(&approved), &approved, at(10)),
            Transition::StatusChanged { reversal: false }
        );
        // The other report moving back is not a lag of the first: it converges.
        let from_declines = Transition::classify(
            Stored {
                change: &declined,
                latest_updated_at: at(9),
                previous: Some((&approved, Source::DeclineReport)),
            },
            Observed {
                change: &approved,
                updated_at: at(9),
                source: Source::TransactionReport,
            },
            true,
        );
        assert_eq!(from_declines, Transition::StatusChanged { reversal: false });
        // A new decline of a resubmitted transaction is not a return: its date differs.
        let again = StatusChange {
            decline_date: chrono::NaiveDate::from_ymd_opt(2026, 12, 2),
            ..declined.clone()
        };
        assert_eq!(
            classify(&change(Pending), None, Some(&declined), &again, None),
            Transition::StatusChanged { reversal: false }
        );
    }

    #[test]
    fn other_fields_change_only_through_the_transaction_report_or_a_newer_clock() {
        let declined = change(Declined);
        let fields_only = |stored_at, observed_at, source| {
            Transition::classify(
                Stored {
                    change: &declined,
                    latest_updated_at: stored_at,
                    previous: None,
                },
                Observed {
                    change: &declined,
                    updated_at: observed_at,
                    source,
                },
                true,
            )
        };
        use Source::*;
        assert_eq!(
            fields_only(at(9), at(9), TransactionReport),
            Transition::FieldsOnly
        );
        assert_eq!(
            fields_only(None, None, TransactionReport),
            Transition::FieldsOnly
        );
        assert_eq!(
            fields_only(at(9), None, TransactionReport),
            Transition::Stale
        );
        assert_eq!(fields_only(at(9), at(9), DeclineReport), Transition::Stale);
        // A resubmitted decline, Future again, keeps its decline's stamp; the transaction
        // report's edits of it (a new process date) are written, not frozen.
        let future = change(Future);
        let resubmitted = |source| {
            Transition::classify(
                Stored {
                    change: &future,
                    latest_updated_at: at(9),
                    previous: Some((&declined, TransactionReport)),
                },
                Observed {
                    change: &future,
                    updated_at: None,
                    source,
                },
                true,
            )
        };
        assert_eq!(resubmitted(TransactionReport), Transition::FieldsOnly);
        assert_eq!(resubmitted(DeclineReport), Transition::Stale);
        assert_eq!(
            fields_only(at(9), at(10), DeclineReport),
            Transition::FieldsOnly
        );
    }

    #[test]
    fn unknown_status_is_an_error() {
        assert!("Settled".parse::<Status>().is_err());
        assert!("approved".parse::<Status>().is_err());
    }
}
