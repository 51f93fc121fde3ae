#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

/// `tracing::warn!` with the `tracing` feature, nothing without it.
macro_rules! log_warn {
    ($($t:tt)*) => {
        #[cfg(feature = "tracing")]
        {
            tracing::warn!($($t)*);
        }
    };
}

/// `tracing::debug!` with the `tracing` feature, nothing without it.
macro_rules! log_debug {
    ($($t:tt)*) => {
        #[cfg(feature = "tracing")]
        {
            tracing::debug!($($t)*);
        }
    };
}

pub(crate) use {log_debug, log_warn};

mod consumer;
mod error;
mod event;
pub mod payload;
pub mod sql;
mod wake;

pub use consumer::{Consumer, Handler, Options, RetryPolicy, Stats};
pub use error::Error;
pub use event::{DecodeError, Event, Position, RawEvent};
pub use payload::{
    CustomerChanged, CustomerFields, EVENT_VERSION, Payload, PayoutChanged, PayoutFields,
    ReconciliationChanged, ReconciliationFigures, SettlementChanged, SettlementTotals, Source,
    Status, TransactionEvent,
};
pub use sql::StartFrom;

/// The channel rotessa-recon notifies (`NOTIFY rotessa_outbox`, empty payload) when a
/// transaction that wrote events commits. A hint only: several coalesce, and none is sent for
/// what was committed while a listener was disconnected, so consumers poll on a timer as well.
pub const NOTIFY_CHANNEL: &str = "rotessa_outbox";
