//! A mock Rotessa platform: clients, the transaction report, per-client decline reports,
//! settlements and customer lists, and the payout report, all served from data a test can
//! change between syncs.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// What the mock serves. Reports filter their rows by the requested date range (process date,
/// decline date, settlement date) and page them by 1000, like Rotessa.
#[derive(Debug, Clone, Default)]
pub struct Platform {
    pub clients: Vec<i64>,
    /// The account-wide transaction report (one page).
    pub transactions: Vec<Value>,
    /// Per client: decline report rows (one page).
    pub declines: BTreeMap<i64, Vec<Value>>,
    /// Per client: settlement rows.
    pub settlements: BTreeMap<i64, Vec<Value>>,
    /// Per client: an error status and code for its decline report.
    pub decline_errors: BTreeMap<i64, (u16, &'static str, &'static str)>,
    /// Per client: its customer list (empty when missing).
    pub customers: BTreeMap<i64, Vec<Value>>,
    /// The payout report: every row, whatever the dates asked for (a payout has no date).
    pub payouts: Vec<Value>,
}

impl Platform {
    /// Replaces everything the server serves with this data.
    pub async fn mount(&self, server: &MockServer) {
        server.reset().await;
        let clients: Vec<Value> = self.clients.iter().map(|id| client(*id)).collect();
        Mock::given(method("GET"))
            .and(path("/v2/clients"))
            .respond_with(ResponseTemplate::new(200).set_body_json(clients))
            .mount(server)
            .await;
        serve(
            server,
            "GET",
            "/v2/transaction_report",
            &self.transactions,
            "process_date",
        )
        .await;
        for id in &self.clients {
            let decline_path = format!("/v2/clients/{id}/transaction_decline_report");
            match self.decline_errors.get(id) {
                Some((status, code, message)) => {
                    Mock::given(method("GET"))
                        .and(path(decline_path))
                        .respond_with(ResponseTemplate::new(*status).set_body_json(json!(
                            {"errors": [{"error_code": code, "error_message": message}]}
                        )))
                        .mount(server)
                        .await;
                }
                None => {
                    let rows = self.declines.get(id).cloned().unwrap_or_default();
                    serve(server, "GET", &decline_path, &rows, "decline_date").await;
                }
            }
            let rows = self.settlements.get(id).cloned().unwrap_or_default();
            let at = format!("/v2/clients/{id}/settlements/show_by_settlement_date");
            serve(server, "POST", &at, &rows, "settlement_date").await;
            let customers = self.customers.get(id).cloned().unwrap_or_default();
            Mock::given(method("GET"))
                .and(path(format!("/v2/clients/{id}/customers")))
                .respond_with(ResponseTemplate::new(200).set_body_json(customers))
                .mount(server)
                .await;
        }
        Mock::given(method("GET"))
            .and(path("/v2/payout_report"))
            .respond_with(ResponseTemplate::new(200).set_body_json(self.payouts.clone()))
            .mount(server)
            .await;
    }
}

async fn serve(server: &MockServer, verb: &str, at: &str, rows: &[Value], field: &'static str) {
    Mock::given(method(verb))
        .and(path(at.to_owned()))
        .respond_with(Filtered {
            rows: rows.to_vec(),
            field,
        })
        .mount(server)
        .await;
}

/// Answers with the rows whose `field` lies in the request's `start_date..=end_date`, page `page`.
struct Filtered {
    rows: Vec<Value>,
    field: &'static str,
}

impl Respond for Filtered {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut params: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
        if let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&req.body) {
            for (k, v) in body {
                params.insert(k, v.as_str().map_or(v.to_string(), str::to_owned));
            }
        }
        let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        let start = params
            .get("start_date")
            .and_then(|s| date(s))
            .unwrap_or(NaiveDate::MIN);
        let end = params
            .get("end_date")
            .and_then(|s| date(s))
            .unwrap_or(NaiveDate::MAX);
        let page: usize = params.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        let matching: Vec<&Value> = self
            .rows
            .iter()
            .filter(|r| {
                r[self.field]
                    .as_str()
                    .and_then(date)
                    .is_some_and(|d| start <= d && d <= end)
            })
            .collect();
        let chunk: Vec<&Value> = matching
            .chunks(1000)
            .nth(page.saturating_sub(1))
            .map(<[&Value]>::to_vec)
            .unwrap_or_default();
        ResponseTemplate::new(200).set_body_json(chunk)
    }
}

/// A client object as `GET /v2/clients` documents it, with an API key that must not be stored.
pub fn client(id: i64) -> Value {
    json!({
        "id": id,
        "business_name": format!("Condo Corp {id}"),
        "operating_as": format!("Purple Sky {id}"),
        "status": "Approved",
        "country_code": "CA",
        "api_keys": [{"key": format!("client-secret-{id}")}],
        "owners": [],
    })
}

/// A transaction row of client `client_id`.
pub fn txn(id: i64, client_id: i64, status: &str, amount: &str, settlement: &str) -> Value {
    txn_on(id, client_id, status, amount, "2026-09-01", settlement)
}

/// A transaction row with its process date.
pub fn txn_on(
    id: i64,
    client_id: i64,
    status: &str,
    amount: &str,
    process_date: &str,
    settlement: &str,
) -> Value {
    json!({
        "account_number": "****32", "amount": amount, "client_id": client_id,
        "created_at": "2026-09-01T10:00:00.000-05:00", "comment": null,
        "custom_identifier": null, "customer_id": 10, "decline_date": null,
        "earliest_approval_date": null, "id": id, "institution_number": "*23",
        "process_date": process_date, "settlement_date": settlement, "status": status,
        "status_reason": null, "transaction_custom_identifieer": null,
        "transaction_number": format!("INV{id}"), "transaction_schedule_id": 5,
        "transit_number": "***45", "updated_at": "2026-09-02T10:00:00.000-05:00"
    })
}

/// `row` as the decline report sends it: Declined or Chargeback with a reason and date, and no
/// client_id field.
pub fn as_decline(row: &Value, status: &str, reason: &str, decline_date: &str) -> Value {
    let mut r = row.clone();
    r["status"] = json!(status);
    r["status_reason"] = json!(reason);
    r["decline_date"] = json!(decline_date);
    r.as_object_mut().map(|o| o.remove("client_id"));
    r
}

/// The same transaction as the transaction report would send it after that decline.
pub fn declined_in_report(row: &Value, status: &str, reason: &str, decline_date: &str) -> Value {
    let mut r = row.clone();
    r["status"] = json!(status);
    r["status_reason"] = json!(reason);
    r["decline_date"] = json!(decline_date);
    r
}

/// A settlement row.
pub fn settlement(
    date: &str,
    approved: (i64, &str),
    declined: (i64, &str),
    chargeback: (i64, &str),
) -> Value {
    json!({
        "number_approved": approved.0, "total_approved": approved.1,
        "number_declined": declined.0, "total_declined": declined.1,
        "number_chargeback": chargeback.0, "total_chargeback": chargeback.1,
        "number_payout": approved.0, "total_payout": "0.50",
        "settlement_date": date,
    })
}
