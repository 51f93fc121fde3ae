//! Rows of `GET /v2/clients`: the platform's clients.

use serde_json::{Map, Value};

use crate::rotessa::lenient::Scalar;

/// A client of the platform; the whole payload is kept, minus its API keys.
#[derive(Debug, Clone, PartialEq)]
pub struct WireClient {
    pub id: i64,
    pub business_name: Option<String>,
    pub operating_as: Option<String>,
    pub status: Option<String>,
    /// The object as sent, without `api_keys` (other accounts' secrets are never stored).
    pub raw: Value,
}

impl WireClient {
    /// Parses one client object; only `id` is required.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut map: Map<String, Value> =
            serde_json::from_str(raw).map_err(|e| format!("not a client object: {e}"))?;
        map.remove("api_keys");
        let id = map
            .get("id")
            .map(Scalar::from)
            .and_then(|s| s.to_i64())
            .ok_or("missing or non-integer `id`")?;
        let text = |name: &str| map.get(name).and_then(|v| Scalar::from(v).to_text());
        Ok(Self {
            id,
            business_name: text("business_name"),
            operating_as: text("operating_as"),
            status: text("status"),
            raw: Value::Object(map),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_are_never_kept() {
        let c = WireClient::parse(
            r#"{"id": 1234, "business_name": "test api", "operating_as": "op", "status": "Pending",
                "api_keys": [{"key": "other-accounts-secret"}], "owners": []}"#,
        )
        .unwrap();
        assert_eq!(c.id, 1234);
        assert_eq!(c.status.as_deref(), Some("Pending"));
        assert!(!c.raw.to_string().contains("other-accounts-secret"));
        assert!(c.raw.get("owners").is_some());
        assert!(WireClient::parse(r#"{"business_name": "x"}"#).is_err());
    }
}
