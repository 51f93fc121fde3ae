//! Rotessa's settlement totals, and the platform's clients.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::Value;

/// The four counts and four totals Rotessa reports per client and settlement date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementTotals {
    pub number_approved: i32,
    pub number_declined: i32,
    pub number_chargeback: i32,
    pub number_payout: i32,
    /// Totals are at scale 2.
    pub total_approved: Decimal,
    pub total_declined: Decimal,
    pub total_chargeback: Decimal,
    pub total_payout: Decimal,
}

impl SettlementTotals {
    /// The totals as an event payload fragment (amounts as decimal strings).
    pub fn to_event(&self) -> rotessa_outbox::SettlementTotals {
        rotessa_outbox::SettlementTotals {
            number_approved: self.number_approved.into(),
            number_declined: self.number_declined.into(),
            number_chargeback: self.number_chargeback.into(),
            number_payout: self.number_payout.into(),
            total_approved: self.total_approved,
            total_declined: self.total_declined,
            total_chargeback: self.total_chargeback,
            total_payout: self.total_payout,
        }
    }
}

/// One row of `rotessa.settlements`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settlement {
    pub client_id: i64,
    pub settlement_date: NaiveDate,
    pub totals: SettlementTotals,
    /// Fields without a column, or `None`.
    pub extra: Option<Value>,
}

/// One row of `rotessa.clients`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformClient {
    pub id: i64,
    pub business_name: Option<String>,
    pub operating_as: Option<String>,
    pub status: Option<String>,
    /// The payload as sent, API keys removed.
    pub raw: Value,
}
