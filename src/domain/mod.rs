//! Domain types: what the product stores and reasons about, independent of the API's wire format
//! and of SQL. `sync` translates wire rows into these; `store` persists them.

mod customer;
mod settlement;
mod status;
mod transaction;

pub use customer::{
    Contact, Customer, FORECAST_PREFIX, PRIVATE_FIELDS, Payout, Schedule, mask, payout_key,
};
pub use settlement::{PlatformClient, Settlement, SettlementTotals};
pub use status::{AnomalyKind, Observed, Order, Status, StatusChange, Stored, Transition};
pub use transaction::{Source, Transaction};
