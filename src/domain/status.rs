//! Transaction statuses and the rules for which observed changes may be applied.

use std::fmt;
use std::str::FromStr;

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

    /// Whether moving from `self` to `to` is progress in the lifecycle (SPEC.md "Status rules"):
    /// Future -> Pending -> Approved | Declined -> Chargeback, plus Approved <-> Declined and
    /// Declined -> Pending (a resubmission). Staying put is allowed (a reason may change).
    /// Anything else is a report that lags behind what was already seen.
    pub fn may_move_to(self, to: Status) -> bool {
        use Status::*;
        match (self, to) {
            (from, to) if from == to => true,
            (Future, _) => true,
            (Pending, Approved | Declined | Chargeback) => true,
            (Approved, Declined | Chargeback) => true,
            (Declined, Approved | Pending | Chargeback) => true,
            _ => false,
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

/// What applying an observation to the stored state means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing differs.
    Unchanged,
    /// Fields differ but status, reason and decline date do not: write, no event.
    FieldsOnly,
    /// A forward move, or a new reason or decline date: write, history, event.
    Forward,
    /// A move backward: refuse, record an anomaly.
    Backward,
}

impl Transition {
    /// Classifies `observed` against `stored`, given whether any stored field differs.
    pub fn classify(stored: &StatusChange, observed: &StatusChange, fields_differ: bool) -> Self {
        if !stored.status.may_move_to(observed.status) {
            Self::Backward
        } else if stored != observed {
            Self::Forward
        } else if fields_differ {
            Self::FieldsOnly
        } else {
            Self::Unchanged
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
            (Declined, Future),
        ];
        for (a, b) in backward {
            assert!(!a.may_move_to(b), "{a} -> {b} should be refused");
        }
        for s in ALL {
            assert!(s.may_move_to(s));
            assert_eq!(s.as_str().parse::<Status>().unwrap(), s);
        }
    }

    #[test]
    fn classify_separates_events_from_silent_updates() {
        let approved = StatusChange {
            status: Approved,
            status_reason: None,
            decline_date: None,
        };
        let reason = StatusChange {
            status_reason: Some("NSF".into()),
            ..approved.clone()
        };
        assert_eq!(
            Transition::classify(&approved, &approved, false),
            Transition::Unchanged
        );
        assert_eq!(
            Transition::classify(&approved, &approved, true),
            Transition::FieldsOnly
        );
        assert_eq!(
            Transition::classify(&approved, &reason, true),
            Transition::Forward
        );
        let pending = StatusChange {
            status: Pending,
            ..approved.clone()
        };
        assert_eq!(
            Transition::classify(&approved, &pending, true),
            Transition::Backward
        );
        assert_eq!(
            Transition::classify(&pending, &approved, true),
            Transition::Forward
        );
    }

    #[test]
    fn unknown_status_is_an_error() {
        assert!("Settled".parse::<Status>().is_err());
        assert!("approved".parse::<Status>().is_err());
    }
}
