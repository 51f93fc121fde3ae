//! Reading the fields of one JSON object leniently: each typed field is taken out of the map,
//! and an optional field whose value cannot be parsed is left in it, as sent, so what remains
//! is the row's `extra`.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::rotessa::lenient::Scalar;

/// An object being taken apart field by field.
pub struct Fields {
    map: Map<String, Value>,
    /// Names of optional fields present but unparseable (left in the map).
    pub unparsed: Vec<String>,
}

impl Fields {
    /// Parses `raw` as an object, or says what it is instead, without quoting it: these rows
    /// hold personal data.
    pub fn parse(raw: &str, what: &str) -> Result<Self, String> {
        let map: Map<String, Value> = serde_json::from_str(raw).map_err(|e| {
            let kind = match e.classify() {
                serde_json::error::Category::Data => "JSON, but not an object of fields",
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                    "not valid JSON"
                }
                serde_json::error::Category::Io => "unreadable",
            };
            format!(
                "not a {what} object: {kind} (line {}, column {})",
                e.line(),
                e.column()
            )
        })?;
        Ok(Self::from_map(map))
    }

    /// Reads an object already parsed.
    pub fn from_map(map: Map<String, Value>) -> Self {
        Self {
            map,
            unparsed: Vec::new(),
        }
    }

    /// Removes a field whatever its value (nested objects the caller reads itself).
    pub fn take_value(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name)
    }

    /// A required field: missing, `null` or unparseable is an error.
    pub fn required<T>(
        &mut self,
        name: &str,
        what: &str,
        parse: impl Fn(&Scalar<'_>) -> Option<T>,
    ) -> Result<T, String> {
        let value = self
            .map
            .remove(name)
            .filter(|v| !v.is_null())
            .ok_or_else(|| format!("missing required field `{name}`"))?;
        let scalar = Scalar::from(&value);
        parse(&scalar).ok_or_else(|| format!("`{name}`: {} is not {what}", scalar.describe()))
    }

    /// An optional field: `None` when missing or `null`; an unparseable value stays in the map.
    pub fn optional<T>(
        &mut self,
        name: &str,
        parse: impl Fn(&Scalar<'_>) -> Option<T>,
    ) -> Option<T> {
        let value = self.map.remove(name)?;
        if value.is_null() {
            return None;
        }
        match parse(&Scalar::from(&value)) {
            Some(v) => Some(v),
            None => {
                self.unparsed.push(name.to_owned());
                self.map.insert(name.to_owned(), value);
                None
            }
        }
    }

    /// Optional text; numbers become their decimal text.
    pub fn text(&mut self, name: &str) -> Option<String> {
        self.optional(name, |s| s.to_text())
    }

    /// An optional integer (a JSON integer or a string of digits).
    pub fn int(&mut self, name: &str) -> Option<i64> {
        self.optional(name, |s| s.to_i64())
    }

    /// An optional boolean (`true`/`false`, or those words as strings).
    pub fn boolean(&mut self, name: &str) -> Option<bool> {
        self.optional(name, |s| match s {
            Scalar::Bool(b) => Some(*b),
            Scalar::Str(t) => match t.trim() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            _ => None,
        })
    }

    /// An optional decimal amount.
    pub fn decimal(&mut self, name: &str) -> Option<Decimal> {
        self.optional(name, |s| s.to_decimal())
    }

    /// An optional date (zero padding optional).
    pub fn date(&mut self, name: &str) -> Option<NaiveDate> {
        self.optional(name, |s| s.to_date())
    }

    /// An optional instant with an offset, in UTC.
    pub fn timestamp(&mut self, name: &str) -> Option<DateTime<Utc>> {
        self.optional(name, |s| s.to_timestamp())
    }

    /// What is left: the row's `extra`.
    pub fn into_rest(self) -> Map<String, Value> {
        self.map
    }
}
