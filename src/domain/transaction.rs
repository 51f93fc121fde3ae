//! A financial transaction as stored in `rotessa.transactions`.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use xxhash_rust::xxh3::xxh3_64;

use super::{Status, StatusChange};

/// Which Rotessa report an observation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    TransactionReport,
    DeclineReport,
}

impl Source {
    /// The report as event payloads name it (the `rotessa-outbox` crate's type).
    pub fn to_event(self) -> rotessa_outbox::Source {
        match self {
            Self::TransactionReport => rotessa_outbox::Source::TransactionReport,
            Self::DeclineReport => rotessa_outbox::Source::DeclineReport,
        }
    }

    /// The name written to history rows and event payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TransactionReport => "transaction_report",
            Self::DeclineReport => "transaction_decline_report",
        }
    }

    /// The report named `name` in history rows, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::TransactionReport, Self::DeclineReport]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// One transaction as the API reported it, validated: the columns of `rotessa.transactions`.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    pub id: i64,
    pub client_id: Option<i64>,
    pub customer_id: Option<i64>,
    pub transaction_schedule_id: Option<i64>,
    /// Always at scale 2, so equal amounts compare and hash equal.
    pub amount: Decimal,
    pub status: Status,
    pub status_reason: Option<String>,
    pub process_date: NaiveDate,
    pub settlement_date: Option<NaiveDate>,
    pub decline_date: Option<NaiveDate>,
    pub earliest_approval_date: Option<NaiveDate>,
    pub transaction_number: Option<String>,
    pub custom_identifier: Option<String>,
    pub schedule_custom_identifier: Option<String>,
    pub comment: Option<String>,
    pub institution_number: Option<String>,
    pub transit_number: Option<String>,
    pub account_number: Option<String>,
    pub api_created_at: Option<DateTime<Utc>>,
    pub api_updated_at: Option<DateTime<Utc>>,
    /// What the API sent that has no column, as a JSON object; `None` when there is nothing.
    pub extra: Option<serde_json::Value>,
    /// Optional fields that were sent but could not be parsed (NULL in their column, their text
    /// in `extra`). Not stored: it says what to warn about when the row is written.
    pub unparsed: Vec<&'static str>,
}

impl Transaction {
    /// The status-bearing fields, which decide whether an event is due.
    pub fn status_change(&self) -> StatusChange {
        StatusChange {
            status: self.status,
            status_reason: self.status_reason.clone(),
            decline_date: self.decline_date,
        }
    }

    /// A 64-bit hash of every stored field. Stored beside the row, it lets a re-sync find the
    /// unchanged rows with one read and no lock. Changing this function makes every row look
    /// changed once (rewritten without events); keep it stable.
    pub fn fingerprint(&self) -> i64 {
        // Every field is written with a presence tag and, for text, its length, so that no two
        // different rows produce the same bytes; numbers and dates go in as integers. One hash
        // over one buffer is much cheaper than a streaming hash fed field by field.
        let mut buf = Vec::with_capacity(320);
        let int = |buf: &mut Vec<u8>, v: Option<i64>| match v {
            Some(v) => {
                buf.push(1);
                buf.extend_from_slice(&v.to_le_bytes());
            }
            None => buf.push(0),
        };
        let day = |d: Option<NaiveDate>| d.map(|d| i64::from(d.num_days_from_ce()));
        let micros = |t: Option<DateTime<Utc>>| t.map(|t| t.timestamp_micros());
        int(&mut buf, Some(self.id));
        int(&mut buf, self.client_id);
        int(&mut buf, self.customer_id);
        int(&mut buf, self.transaction_schedule_id);
        int(&mut buf, Some(self.amount.mantissa() as i64));
        int(&mut buf, Some(i64::from(self.amount.scale())));
        int(&mut buf, Some(self.status as i64));
        int(&mut buf, day(Some(self.process_date)));
        int(&mut buf, day(self.settlement_date));
        int(&mut buf, day(self.decline_date));
        int(&mut buf, day(self.earliest_approval_date));
        int(&mut buf, micros(self.api_created_at));
        int(&mut buf, micros(self.api_updated_at));
        let text = |buf: &mut Vec<u8>, t: Option<&[u8]>| match t {
            Some(t) => {
                buf.push(1);
                buf.extend_from_slice(&(t.len() as u64).to_le_bytes());
                buf.extend_from_slice(t);
            }
            None => buf.push(0),
        };
        for t in [
            &self.status_reason,
            &self.transaction_number,
            &self.custom_identifier,
            &self.schedule_custom_identifier,
            &self.comment,
            &self.institution_number,
            &self.transit_number,
            &self.account_number,
        ] {
            text(&mut buf, t.as_deref().map(str::as_bytes));
        }
        let extra = self.extra.as_ref().map(|v| v.to_string());
        text(&mut buf, extra.as_deref().map(str::as_bytes));
        xxh3_64(&buf) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Transaction {
        Transaction {
            id: 1,
            client_id: Some(2),
            customer_id: None,
            transaction_schedule_id: None,
            amount: Decimal::new(10000, 2),
            status: Status::Pending,
            status_reason: None,
            process_date: NaiveDate::from_ymd_opt(2026, 1, 2).unwrap(),
            settlement_date: None,
            decline_date: None,
            earliest_approval_date: None,
            transaction_number: None,
            custom_identifier: None,
            schedule_custom_identifier: None,
            comment: None,
            institution_number: None,
            transit_number: None,
            account_number: None,
            api_created_at: None,
            api_updated_at: None,
            extra: None,
            unparsed: Vec::new(),
        }
    }

    #[test]
    fn fingerprint_sees_every_field_and_tells_null_from_empty() {
        let a = sample();
        assert_eq!(a.fingerprint(), sample().fingerprint());
        let mut b = sample();
        b.comment = Some(String::new());
        assert_ne!(a.fingerprint(), b.fingerprint());
        let mut c = sample();
        c.status = Status::Approved;
        assert_ne!(a.fingerprint(), c.fingerprint());
        let mut d = sample();
        d.extra = Some(serde_json::json!({"bank_name": "x"}));
        assert_ne!(a.fingerprint(), d.fingerprint());
        // Values that move between adjacent text fields must not collide.
        let mut e = sample();
        e.transit_number = Some("12".into());
        let mut f = sample();
        f.institution_number = Some("12".into());
        assert_ne!(e.fingerprint(), f.fingerprint());
    }
}
