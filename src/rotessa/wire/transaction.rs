//! Report rows (transaction report, transaction decline report) and report pages.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::{RejectedRow, split_array};
use crate::rotessa::lenient::{Key, Scalar};

/// A row of the transaction report or the transaction decline report.
#[derive(Debug, Clone, PartialEq)]
pub struct WireTransaction {
    pub id: i64,
    pub client_id: Option<i64>,
    pub customer_id: Option<i64>,
    pub transaction_schedule_id: Option<i64>,
    pub amount: Decimal,
    pub status: String,
    pub status_reason: Option<String>,
    pub process_date: NaiveDate,
    pub settlement_date: Option<NaiveDate>,
    pub decline_date: Option<NaiveDate>,
    pub earliest_approval_date: Option<NaiveDate>,
    pub transaction_number: Option<String>,
    pub custom_identifier: Option<String>,
    /// The API's `transaction_custom_identifieer` (sic): the schedule's custom identifier.
    pub schedule_custom_identifier: Option<String>,
    pub comment: Option<String>,
    pub institution_number: Option<String>,
    pub transit_number: Option<String>,
    pub account_number: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// Every field without a typed home: unknown keys, and optional fields whose value could not
    /// be parsed, kept as sent.
    pub extra: Map<String, Value>,
    /// Names of the optional fields that were present but unparseable (their text is in `extra`).
    pub unparsed: Vec<&'static str>,
}

/// The rows of one report page: each parsed and converted, or rejected with its raw JSON.
#[derive(Debug)]
pub struct ParsedRows<T> {
    pub rows: Vec<T>,
    pub rejected: Vec<RejectedRow>,
    /// Ids of every row that parsed, in page order (the paging guard compares them).
    pub ids: Vec<i64>,
    /// Exact repeats of a row earlier in the page, dropped (they carry nothing new).
    pub duplicates: usize,
    /// How many rows the page held, good, bad or repeated (a short page ends paging).
    pub len: usize,
    /// xxh3 of the body as received: equal digests mean byte-identical pages.
    pub digest: i64,
    /// The body was byte-identical to the one the caller said it already applied, so it was not
    /// parsed: `rows`, `rejected` and `ids` are empty and `len` is the known row count.
    pub identical: bool,
}

impl<T> ParsedRows<T> {
    /// A page not parsed because its body is the one the caller already applied.
    pub fn identical(digest: i64, len: usize) -> Self {
        Self {
            rows: Vec::new(),
            rejected: Vec::new(),
            ids: Vec::new(),
            duplicates: 0,
            len,
            digest,
            identical: true,
        }
    }
}

/// The digest [`ParsedRows::digest`] holds for a body.
pub fn digest(body: &[u8]) -> i64 {
    xxhash_rust::xxh3::xxh3_64(body) as i64
}

/// Splits a report body into rows, parses each and passes it through `convert` (the caller's
/// validation). Fails only when the body as a whole is not a JSON array (cut off, an HTML error
/// page, an object): that is the transient case. A row that fails to parse or convert, or that
/// reuses an earlier row's id with different content, is rejected with its raw JSON.
pub fn parse_report_page<T>(
    body: &[u8],
    convert: impl Fn(WireTransaction) -> Result<T, String>,
) -> Result<ParsedRows<T>, String> {
    if let Some(page) = parse_clean_page(body, &convert) {
        return Ok(page);
    }
    parse_row_by_row(body, convert)
}

/// The usual case in one pass: every row parses and converts and no id repeats. `None` sends
/// the page to [`parse_row_by_row`], which keeps each bad row's raw text.
fn parse_clean_page<T>(
    body: &[u8],
    convert: &impl Fn(WireTransaction) -> Result<T, String>,
) -> Option<ParsedRows<T>> {
    // Validating UTF-8 once for the body is cheaper than serde_json doing it string by string.
    let text = std::str::from_utf8(body).ok()?;
    let wire: Vec<WireTransaction> = serde_json::from_str(text).ok()?;
    let len = wire.len();
    let ids: Vec<i64> = wire.iter().map(|r| r.id).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return None;
    }
    let mut rows = Vec::with_capacity(len);
    for row in wire {
        rows.push(convert(row).ok()?);
    }
    Some(ParsedRows {
        rows,
        rejected: Vec::new(),
        ids,
        duplicates: 0,
        len,
        digest: digest(body),
        identical: false,
    })
}

/// Row by row: splits the page into raw rows first, so a bad row is rejected with its raw JSON
/// and the others still land.
fn parse_row_by_row<T>(
    body: &[u8],
    convert: impl Fn(WireTransaction) -> Result<T, String>,
) -> Result<ParsedRows<T>, String> {
    let raw_rows = split_array(body)?;
    let mut parsed = ParsedRows {
        rows: Vec::with_capacity(raw_rows.len()),
        rejected: Vec::new(),
        ids: Vec::with_capacity(raw_rows.len()),
        duplicates: 0,
        len: raw_rows.len(),
        digest: digest(body),
        identical: false,
    };
    let mut seen: HashMap<i64, &str> = HashMap::with_capacity(raw_rows.len());
    for raw in raw_rows {
        let text = raw.get();
        let reject = |error: String| RejectedRow {
            raw: text.to_owned(),
            error,
        };
        let row = match serde_json::from_str::<WireTransaction>(text) {
            Ok(row) => row,
            Err(e) => {
                parsed.rejected.push(reject(e.to_string()));
                continue;
            }
        };
        match seen.get(&row.id) {
            Some(first) if *first == text => {
                parsed.duplicates += 1;
                continue;
            }
            Some(_) => {
                let error = format!(
                    "id {} appears earlier in the page with different content; the first is kept",
                    row.id
                );
                parsed.rejected.push(reject(error));
                continue;
            }
            None => {
                seen.insert(row.id, text);
            }
        }
        parsed.ids.push(row.id);
        match convert(row) {
            Ok(row) => parsed.rows.push(row),
            Err(error) => parsed.rejected.push(reject(error)),
        }
    }
    Ok(parsed)
}

impl<'de> Deserialize<'de> for WireTransaction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RowVisitor)
    }
}

struct RowVisitor;

/// Collects an optional field: `None` for null, the parsed value, or the raw value into `extra`.
struct Optional<'a> {
    extra: &'a mut Map<String, Value>,
    unparsed: &'a mut Vec<&'static str>,
}

impl Optional<'_> {
    fn take<'v, T>(
        &mut self,
        name: &'static str,
        value: Scalar<'v>,
        parse: impl Fn(&Scalar<'v>) -> Option<T>,
    ) -> Option<T> {
        if value.is_null() {
            return None;
        }
        match parse(&value) {
            Some(v) => Some(v),
            None => {
                self.extra.insert(name.to_owned(), value.into_value());
                self.unparsed.push(name);
                None
            }
        }
    }
}

fn required<'v, T, E: de::Error>(
    name: &str,
    value: Option<Scalar<'v>>,
    what: &str,
    parse: impl Fn(&Scalar<'v>) -> Option<T>,
) -> Result<T, E> {
    match value {
        None | Some(Scalar::Null) => Err(E::custom(format!("missing required field `{name}`"))),
        Some(v) => {
            parse(&v).ok_or_else(|| E::custom(format!("`{name}`: {} is not {what}", v.describe())))
        }
    }
}

impl<'de> Visitor<'de> for RowVisitor {
    type Value = WireTransaction;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a transaction row object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut extra = Map::new();
        let mut unparsed = Vec::new();
        let (mut id, mut amount, mut status, mut process_date) = (None, None, None, None);
        let mut row = WireTransaction {
            id: 0,
            client_id: None,
            customer_id: None,
            transaction_schedule_id: None,
            amount: Decimal::ZERO,
            status: String::new(),
            status_reason: None,
            process_date: NaiveDate::MIN,
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
            created_at: None,
            updated_at: None,
            extra: Map::new(),
            unparsed: Vec::new(),
        };
        let mut correctly_spelled_identifier = None;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let value: Scalar<'de> = map.next_value()?;
            let mut opt = Optional {
                extra: &mut extra,
                unparsed: &mut unparsed,
            };
            match key.as_ref() {
                "id" => id = Some(value),
                "amount" => amount = Some(value),
                "status" => status = Some(value),
                "process_date" => process_date = Some(value),
                "client_id" => row.client_id = opt.take("client_id", value, Scalar::to_i64),
                "customer_id" => row.customer_id = opt.take("customer_id", value, Scalar::to_i64),
                "transaction_schedule_id" => {
                    row.transaction_schedule_id =
                        opt.take("transaction_schedule_id", value, Scalar::to_i64)
                }
                "status_reason" => {
                    row.status_reason = opt.take("status_reason", value, Scalar::to_text)
                }
                "settlement_date" => {
                    row.settlement_date = opt.take("settlement_date", value, Scalar::to_date)
                }
                "decline_date" => {
                    row.decline_date = opt.take("decline_date", value, Scalar::to_date)
                }
                "earliest_approval_date" => {
                    row.earliest_approval_date =
                        opt.take("earliest_approval_date", value, Scalar::to_date)
                }
                "transaction_number" => {
                    row.transaction_number = opt.take("transaction_number", value, Scalar::to_text)
                }
                "custom_identifier" => {
                    row.custom_identifier = opt.take("custom_identifier", value, Scalar::to_text)
                }
                "transaction_custom_identifieer" => {
                    row.schedule_custom_identifier =
                        opt.take("transaction_custom_identifieer", value, Scalar::to_text)
                }
                "transaction_custom_identifier" => correctly_spelled_identifier = Some(value),
                "comment" => row.comment = opt.take("comment", value, Scalar::to_text),
                "institution_number" => {
                    row.institution_number = opt.take("institution_number", value, Scalar::to_text)
                }
                "transit_number" => {
                    row.transit_number = opt.take("transit_number", value, Scalar::to_text)
                }
                "account_number" => {
                    row.account_number = opt.take("account_number", value, Scalar::to_text)
                }
                "created_at" => {
                    row.created_at = opt.take("created_at", value, Scalar::to_timestamp)
                }
                "updated_at" => {
                    row.updated_at = opt.take("updated_at", value, Scalar::to_timestamp)
                }
                _ => {
                    extra.insert(key.into_owned(), value.into_value());
                }
            }
        }
        // Should Rotessa fix the spelling, the correct name fills the same column; when both
        // arrive, the second is kept in `extra`.
        if let Some(value) = correctly_spelled_identifier {
            if row.schedule_custom_identifier.is_none() {
                let mut opt = Optional {
                    extra: &mut extra,
                    unparsed: &mut unparsed,
                };
                row.schedule_custom_identifier =
                    opt.take("transaction_custom_identifier", value, Scalar::to_text);
            } else {
                extra.insert("transaction_custom_identifier".into(), value.into_value());
            }
        }
        row.id = required("id", id, "an integer id", Scalar::to_i64)?;
        row.amount = required("amount", amount, "a decimal amount", Scalar::to_decimal)?;
        row.status = required("status", status, "a status", |s| match s {
            Scalar::Str(s) => Some(s.clone().into_owned()),
            _ => None,
        })?;
        row.process_date = required(
            "process_date",
            process_date,
            "a date (YYYY-MM-DD)",
            Scalar::to_date,
        )?;
        row.extra = extra;
        row.unparsed = unparsed;
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC_ROWS: &str = r#"[
      {"account_number": 111111, "amount": "100.00", "client_id": 4321,
       "created_at": "2019-01-29T15:46:03.000-05:00", "comment": "May Fees",
       "custom_identifier": "MIKEY", "customer_id": 1, "decline_date": null,
       "earliest_approval_date": null, "id": 1233, "institution_number": null,
       "process_date": "2019-02-28", "settlement_date": "2019-03-7", "status": "Future",
       "status_reason": null, "transaction_custom_identifieer": "TS1234",
       "transaction_number": null, "transaction_schedule_id": 330374, "transit_number": null,
       "updated_at": null},
      {"account_number": 121212, "amount": "100.00", "client_id": 4325,
       "created_at": "2019-02-29T14:55:16.000-05:00", "comment": null,
       "custom_identifier": "MIKEY", "customer_id": 1, "decline_date": null,
       "earliest_approval_date": null, "id": 1234, "institution_number": null,
       "process_date": "2019-03-07", "settlement_date": "2019-03-14", "status": "Future",
       "status_reason": null, "transaction_custom_identifieer": null,
       "transaction_number": null, "transaction_schedule_id": 330374, "transit_number": null,
       "updated_at": null}
    ]"#;

    #[test]
    fn documented_rows_parse_with_their_quirks() {
        let page = parse_report_page(DOC_ROWS.as_bytes(), Ok).unwrap();
        assert!(page.rejected.is_empty());
        let [a, b] = &page.rows[..] else {
            panic!("two rows")
        };
        assert_eq!(a.id, 1233);
        assert_eq!(a.amount.to_string(), "100.00");
        assert_eq!(a.settlement_date, NaiveDate::from_ymd_opt(2019, 3, 7));
        assert_eq!(a.account_number.as_deref(), Some("111111"));
        assert_eq!(a.schedule_custom_identifier.as_deref(), Some("TS1234"));
        assert_eq!(a.updated_at, None);
        assert!(a.extra.is_empty() && a.unparsed.is_empty());
        // The impossible created_at is kept as text, not lost and not fatal.
        assert_eq!(b.created_at, None);
        assert_eq!(b.unparsed, vec!["created_at"]);
        assert_eq!(
            b.extra.get("created_at"),
            Some(&Value::from("2019-02-29T14:55:16.000-05:00"))
        );
    }

    #[test]
    fn bad_rows_are_rejected_one_by_one() {
        let body = br#"[
          {"amount": "1.00", "status": "Pending", "process_date": "2020-01-01"},
          {"id": 2, "amount": "abc", "status": "Pending", "process_date": "2020-01-01"},
          {"id": 3, "amount": "1.00", "status": "Pending", "process_date": "2020-13-01"},
          7,
          {"id": 5, "amount": "2.50", "status": "Approved", "process_date": "2020-1-2",
           "bank_name": "Scotiabank", "settlement_date": "soon"}
        ]"#;
        let page = parse_report_page(body, Ok).unwrap();
        assert_eq!(page.len, 5);
        assert_eq!(page.rows.len(), 1);
        let errors: Vec<&str> = page.rejected.iter().map(|r| r.error.as_str()).collect();
        assert!(
            errors[0].contains("missing required field `id`"),
            "{errors:?}"
        );
        assert!(errors[1].contains("`amount`: \"abc\""), "{errors:?}");
        assert!(errors[2].contains("process_date"), "{errors:?}");
        assert_eq!(page.rejected[3].raw, "7");
        let good = &page.rows[0];
        assert_eq!(
            good.extra.get("bank_name"),
            Some(&Value::from("Scotiabank"))
        );
        assert_eq!(
            good.extra.get("settlement_date"),
            Some(&Value::from("soon"))
        );
        assert_eq!(good.unparsed, vec!["settlement_date"]);
    }

    #[test]
    fn repeated_ids_in_a_page_keep_the_first_and_reject_conflicts() {
        let body = br#"[
          {"id": 1, "amount": "1.00", "status": "Pending", "process_date": "2020-01-01"},
          {"id": 1, "amount": "1.00", "status": "Pending", "process_date": "2020-01-01"},
          {"id": 1, "amount": "9.00", "status": "Pending", "process_date": "2020-01-01"}
        ]"#;
        let page = parse_report_page(body, Ok).unwrap();
        assert_eq!(
            (page.rows.len(), page.duplicates, page.rejected.len()),
            (1, 1, 1)
        );
        assert_eq!(page.rows[0].amount.to_string(), "1.00");
        assert!(page.rejected[0].error.contains("different content"));
    }

    #[test]
    fn conversion_failures_are_rejected_with_the_raw_row() {
        let body =
            br#"[{"id": 1, "amount": "1.00", "status": "Settled", "process_date": "2020-01-01"}]"#;
        let page = parse_report_page(body, |r: WireTransaction| {
            if r.status == "Settled" {
                Err("unknown status".to_owned())
            } else {
                Ok(r)
            }
        })
        .unwrap();
        assert!(page.rows.is_empty());
        assert_eq!(page.ids, vec![1]);
        assert!(page.rejected[0].raw.contains("Settled"));
    }

    #[test]
    fn bodies_that_are_not_arrays_fail_as_a_whole() {
        for body in [
            &b"<html>502</html>"[..],
            b"[{\"id\": 1",
            b"",
            b"{\"errors\": []}",
        ] {
            assert!(parse_report_page(body, Ok).is_err());
        }
        assert_eq!(parse_report_page(b"[]", Ok).unwrap().len, 0);
    }
}
