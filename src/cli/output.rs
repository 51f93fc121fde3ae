//! Machine-readable output shared by the commands: the `--output` / `--format` values, RFC 3339
//! times and CSV quoting. The commands build small view structs from what the store returns, so
//! the field names scripts rely on are written down here and in README.md ("Output for
//! scripts"), not derived from the store's types.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use clap::ValueEnum;
use serde::Serialize;

use super::Failure;

/// `--output` of `status` and `outbox stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// The tables for people (unchanged).
    #[default]
    Text,
    /// One JSON document on stdout.
    Json,
}

/// `--format` of `reconcile`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// The table for people (unchanged).
    #[default]
    Text,
    /// CSV with a header row, one row per client and settlement date.
    Csv,
    /// A JSON array of objects with the CSV's columns as keys.
    Json,
}

/// `2026-11-24T15:04:05Z`: RFC 3339 in UTC, whole seconds.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// [`rfc3339`] of an optional time.
pub fn rfc3339_opt(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(rfc3339)
}

/// `value` as pretty JSON with a trailing newline.
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String, Failure> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::Failed(anyhow::anyhow!("cannot encode the output as JSON: {e}")))?;
    text.push('\n');
    Ok(text)
}

/// One CSV field (RFC 4180): quoted when it holds a comma, a double quote, a carriage return or
/// a newline, with each double quote doubled; as it is otherwise.
pub fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

/// Appends one CSV record, fields quoted as needed, ending in CRLF as RFC 4180 says.
pub fn push_csv_record<S: AsRef<str>>(out: &mut String, fields: &[S]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}", csv_field(field.as_ref()));
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("plain 12.50"), "plain 12.50");
        assert_eq!(csv_field(""), "");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("cr\rhere"), "\"cr\rhere\"");
    }

    #[test]
    fn csv_records_join_fields_and_end_in_crlf() {
        let mut out = String::new();
        push_csv_record(&mut out, &["a", "b,c", "d\"e"]);
        push_csv_record(&mut out, &[String::from("1"), String::new()]);
        assert_eq!(out, "a,\"b,c\",\"d\"\"e\"\r\n1,\r\n");
    }

    #[test]
    fn times_are_rfc3339_utc_whole_seconds() {
        let t = DateTime::parse_from_rfc3339("2026-11-24T10:04:05.678-05:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(rfc3339(t), "2026-11-24T15:04:05Z");
        assert_eq!(rfc3339_opt(None), None);
    }
}
