//! Lenient scalar parsing for the quirks real Rotessa responses carry (shared/seeds/README.md):
//! dates without zero padding, numbers where strings are documented and the reverse, decimal
//! amounts as strings, impossible timestamps.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// One JSON value as sent, borrowed where the input allows, so a field can be tried as several
/// types and kept verbatim when none fits.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'de> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(Cow<'de, str>),
    /// An array or object.
    Complex(Value),
}

impl Scalar<'_> {
    /// The value as JSON, for `extra`.
    pub fn into_value(self) -> Value {
        match self {
            Self::Null => Value::Null,
            Self::Bool(b) => Value::Bool(b),
            Self::I64(n) => Value::from(n),
            Self::U64(n) => Value::from(n),
            Self::F64(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
            Self::Str(s) => Value::String(s.into_owned()),
            Self::Complex(v) => v,
        }
    }

    /// Whether the value is JSON `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// An integer id: a JSON integer, or a string of digits.
    pub fn to_i64(&self) -> Option<i64> {
        match self {
            Self::I64(n) => Some(*n),
            Self::U64(n) => i64::try_from(*n).ok(),
            Self::Str(s) => {
                let t = s.trim();
                (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| t.parse().ok())
                    .flatten()
            }
            _ => None,
        }
    }

    /// A decimal amount: a string such as "100.00", or a JSON number.
    pub fn to_decimal(&self) -> Option<Decimal> {
        match self {
            Self::Str(s) => {
                let t = s.trim();
                Decimal::from_str(t)
                    .or_else(|_| Decimal::from_scientific(t))
                    .ok()
            }
            Self::I64(n) => Some(Decimal::from(*n)),
            Self::U64(n) => Some(Decimal::from(*n)),
            // Rust prints the shortest text that round-trips, so 100.1 stays 100.1.
            Self::F64(f) if f.is_finite() => Decimal::from_str(&f.to_string()).ok(),
            _ => None,
        }
    }

    /// A calendar date, `YYYY-MM-DD` with or without zero padding (`2019-03-7`).
    pub fn to_date(&self) -> Option<NaiveDate> {
        match self {
            Self::Str(s) => parse_date(s),
            _ => None,
        }
    }

    /// An instant with an offset (`2019-01-29T15:46:03.000-05:00`), converted to UTC.
    pub fn to_timestamp(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Str(s) => DateTime::parse_from_rfc3339(s.trim())
                .ok()
                .map(|t| t.with_timezone(&Utc)),
            _ => None,
        }
    }

    /// Text as sent; numbers become their decimal text (`account_number: 111111`).
    pub fn to_text(&self) -> Option<String> {
        match self {
            Self::Str(s) => Some(s.clone().into_owned()),
            Self::I64(n) => Some(n.to_string()),
            Self::U64(n) => Some(n.to_string()),
            Self::F64(f) if f.is_finite() => Some(f.to_string()),
            _ => None,
        }
    }

    /// A short rendering for error messages.
    pub fn describe(&self) -> String {
        let text = match self {
            Self::Str(s) => format!("{:?}", s.as_ref()),
            other => other.clone().into_value().to_string(),
        };
        if text.chars().count() > 60 {
            format!("{}…", text.chars().take(60).collect::<String>())
        } else {
            text
        }
    }
}

impl<'a> From<&'a Value> for Scalar<'a> {
    fn from(v: &'a Value) -> Self {
        match v {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(*b),
            Value::Number(n) => n
                .as_i64()
                .map(Self::I64)
                .or_else(|| n.as_u64().map(Self::U64))
                .or_else(|| n.as_f64().map(Self::F64))
                .unwrap_or(Self::Null),
            Value::String(s) => Self::Str(Cow::Borrowed(s)),
            other => Self::Complex(other.clone()),
        }
    }
}

/// Parses `Y-M-D` with optional zero padding; rejects impossible dates such as 2019-02-29.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let mut parts = text.trim().splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    let ok = |p: &str, max: usize| {
        !p.is_empty() && p.len() <= max && p.bytes().all(|b| b.is_ascii_digit())
    };
    if !(y.len() == 4 && ok(y, 4) && ok(m, 2) && ok(d, 2)) {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Scalar::deserialize(d)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::I64(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::U64(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::F64(v))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Scalar::Complex)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(de::value::MapAccessDeserializer::new(map)).map(Scalar::Complex)
    }
}

/// An object key, borrowed when it has no escapes.
pub struct Key<'de>(pub Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Scalar::deserialize(d)? {
            Scalar::Str(s) => Ok(Key(s)),
            other => Err(de::Error::custom(format!(
                "object key must be a string, got {}",
                other.describe()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Scalar<'_> {
        Scalar::Str(Cow::Borrowed(text))
    }

    #[test]
    fn dates_accept_missing_padding_and_refuse_impossible_days() {
        assert_eq!(
            s("2019-03-7").to_date(),
            NaiveDate::from_ymd_opt(2019, 3, 7)
        );
        assert_eq!(
            s("2019-3-07").to_date(),
            NaiveDate::from_ymd_opt(2019, 3, 7)
        );
        assert_eq!(
            s("2019-03-07").to_date(),
            NaiveDate::from_ymd_opt(2019, 3, 7)
        );
        for bad in [
            "2019-02-29",
            "2019-13-01",
            "2019-03",
            "19-03-07",
            "2019-03-07x",
            "",
        ] {
            assert_eq!(s(bad).to_date(), None, "{bad}");
        }
        assert_eq!(Scalar::I64(20190307).to_date(), None);
    }

    #[test]
    fn timestamps_convert_to_utc_and_refuse_impossible_instants() {
        let t = s("2019-01-29T15:46:03.000-05:00").to_timestamp().unwrap();
        assert_eq!(t.to_rfc3339(), "2019-01-29T20:46:03+00:00");
        assert_eq!(s("2019-02-29T14:55:16.000-05:00").to_timestamp(), None);
    }

    #[test]
    fn amounts_come_from_strings_or_numbers() {
        assert_eq!(s("100.00").to_decimal(), Some(Decimal::new(10000, 2)));
        assert_eq!(Scalar::F64(100.1).to_decimal(), Some(Decimal::new(1001, 1)));
        assert_eq!(Scalar::I64(7).to_decimal(), Some(Decimal::from(7)));
        assert_eq!(s("abc").to_decimal(), None);
        assert_eq!(Scalar::Bool(true).to_decimal(), None);
    }

    #[test]
    fn ids_and_text_are_lenient_about_numbers_and_strings() {
        assert_eq!(s("1234").to_i64(), Some(1234));
        assert_eq!(s("12a").to_i64(), None);
        assert_eq!(s("").to_i64(), None);
        assert_eq!(Scalar::F64(1.5).to_i64(), None);
        assert_eq!(Scalar::U64(u64::MAX).to_i64(), None);
        assert_eq!(Scalar::I64(111111).to_text().as_deref(), Some("111111"));
        assert_eq!(s("****32").to_text().as_deref(), Some("****32"));
    }
}
