//! Request parameters as Rotessa reads them: from the query string (what working clients send)
//! or from a JSON body (what the documentation's curl examples send, even on GET). A body value
//! wins over a query value of the same name.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::calendar::parse_date;
use super::lifecycle::SimStatus;

/// An API error as documented: an HTTP status and one `{"error_code","error_message"}` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// `error_code`.
    pub code: &'static str,
    /// `error_message`.
    pub message: String,
}

impl ApiError {
    /// A 400: the request lacks something it needs.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: 400,
            code,
            message: message.into(),
        }
    }

    /// A 422: the request's values cannot be used.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: 422,
            code,
            message: message.into(),
        }
    }

    /// A 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: 404,
            code: "not_found",
            message: message.into(),
        }
    }
}

/// The parameters of one request, by name.
#[derive(Debug, Clone, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Reads the query string, then the JSON body (an object; numbers become their text).
    pub fn parse(query: Option<&str>, body: &[u8]) -> Result<Self, ApiError> {
        let mut map = HashMap::new();
        if let Some(query) = query.filter(|q| !q.is_empty())
            && let Ok(mut url) = reqwest::Url::parse("http://sim.invalid/")
        {
            url.set_query(Some(query));
            for (k, v) in url.query_pairs() {
                map.insert(k.into_owned(), v.into_owned());
            }
        }
        if body.iter().any(|b| !b.is_ascii_whitespace()) {
            let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body)
                .map_err(|e| {
                ApiError::bad_request(
                    "invalid_json",
                    format!("The request body is not a JSON object: {e}"),
                )
            })?;
            for (k, v) in object {
                let text = match v {
                    serde_json::Value::Null => continue,
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                map.insert(k, text);
            }
        }
        Ok(Self(map))
    }

    /// A raw parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A date parameter: missing is 400 when required, unparseable is 422.
    pub fn date(&self, name: &'static str, required: bool) -> Result<Option<NaiveDate>, ApiError> {
        match self.get(name) {
            None if required => Err(ApiError::bad_request(
                "missing_parameter",
                format!("{name} is required (YYYY-MM-DD)"),
            )),
            None => Ok(None),
            Some(text) => parse_date(text).map(Some).ok_or_else(|| {
                ApiError::unprocessable(
                    "invalid_date",
                    format!("{name} {text:?} is not a valid date (YYYY-MM-DD)"),
                )
            }),
        }
    }

    /// `page`, 1-based, default 1.
    pub fn page(&self) -> Result<usize, ApiError> {
        match self.get("page") {
            None => Ok(1),
            Some(text) => match text.trim().parse::<usize>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(ApiError::unprocessable(
                    "invalid_page",
                    format!("page {text:?} must be a whole number from 1"),
                )),
            },
        }
    }

    /// The status filter (`status`, or v1's `filter`): `None` for `All`.
    pub fn status_filter(&self, names: &[&str]) -> Result<Option<SimStatus>, ApiError> {
        let Some(text) = names.iter().find_map(|n| self.get(n)) else {
            return Ok(None);
        };
        let t = text.trim();
        if t.eq_ignore_ascii_case("all") {
            return Ok(None);
        }
        [
            SimStatus::Pending,
            SimStatus::Approved,
            SimStatus::Declined,
            SimStatus::Chargeback,
        ]
        .into_iter()
        .find(|s| s.as_str().eq_ignore_ascii_case(t))
        .map(Some)
        .ok_or_else(|| {
            ApiError::unprocessable(
                "invalid_status",
                format!(
                    "status {text:?} must be one of All, Pending, Approved, Declined, Chargeback"
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_body_both_count_and_the_body_wins() {
        let p = Params::parse(
            Some("start_date=2019-03-07&page=2&status=Approved"),
            br#"{"page": 3, "end_date": "2019-04-01", "status": null}"#,
        )
        .unwrap();
        assert_eq!(p.page().unwrap(), 3);
        assert_eq!(
            p.date("start_date", true).unwrap(),
            NaiveDate::from_ymd_opt(2019, 3, 7)
        );
        assert_eq!(
            p.date("end_date", false).unwrap(),
            NaiveDate::from_ymd_opt(2019, 4, 1)
        );
        assert_eq!(
            p.status_filter(&["status"]).unwrap(),
            Some(SimStatus::Approved)
        );
    }

    #[test]
    fn bad_values_are_400_or_422() {
        let p = Params::parse(Some("start_date=soon&page=0&filter=Lost"), b"").unwrap();
        assert_eq!(p.date("start_date", true).unwrap_err().status, 422);
        assert_eq!(p.date("end_date", true).unwrap_err().status, 400);
        assert_eq!(p.page().unwrap_err().status, 422);
        assert_eq!(
            p.status_filter(&["status", "filter"]).unwrap_err().status,
            422
        );
        assert_eq!(Params::parse(None, b"[1,2]").unwrap_err().status, 400);
    }
}
