//! The API routes: auth, parameters, the report, decline-report, settlement and client
//! endpoints, the customer lists (`/v2/clients/{id}/customers`, `/v1/customers`) and the payout
//! report (`/v2/payout_report`; see [`super::customers`]), paging, and the documented error
//! bodies. Faults wrap all of them (see [`super::faults`]); the admin routes live in
//! [`super::admin`].

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use axum::routing::{get, post};

use super::admin;
use super::calendar::{Day, day_of};
use super::customers;
use super::encode::{self, Flavor};
use super::faults::inject;
use super::params::{ApiError, Params};
use super::reports::{self, page_bounds};
use super::server::Shared;

/// The whole application: API routes behind faults and auth, admin routes under `/_sim/`.
pub fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/v2/clients", get(clients))
        .route("/v2/transaction_report", get(v2_report))
        .route("/v2/clients/{id}/transaction_report", get(client_report))
        .route(
            "/v2/clients/{id}/transaction_decline_report",
            get(decline_report),
        )
        .route(
            "/v2/clients/{id}/settlements/show_by_settlement_date",
            post(settlements),
        )
        .route("/v2/clients/{id}/customers", get(client_customers))
        .route("/v2/payout_report", get(payout_report))
        .route("/v1/transaction_report", get(v1_report))
        .route("/v1/customers", get(v1_customers))
        .fallback(not_found)
        .layer(from_fn_with_state(Arc::clone(&shared), require_auth))
        .layer(from_fn_with_state(Arc::clone(&shared.faults), inject))
        .with_state(Arc::clone(&shared));
    Router::new()
        .nest("/_sim", admin::router(Arc::clone(&shared)))
        .merge(api)
}

/// A JSON response with `status` and an already encoded body.
pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// The documented error body with the error's status.
pub fn error_response(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    json_response(status, encode::error(e.code, &e.message))
}

fn respond(result: Result<Vec<u8>, ApiError>) -> Response {
    match result {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(e) => error_response(&e),
    }
}

/// Every API request must carry exactly `Authorization: Token token="<key>"`.
async fn require_auth(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get(AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == shared.auth());
    if ok {
        next.run(req).await
    } else {
        error_response(&ApiError {
            status: 401,
            code: "unauthorized",
            message: "Your API key is not valid or is missing. Send Authorization: Token token=\"<api key>\"".into(),
        })
    }
}

async fn not_found() -> Response {
    error_response(&ApiError::not_found(
        "The specified resource could not be found.",
    ))
}

fn client_of(shared: &Shared, id: &str) -> Result<usize, ApiError> {
    id.parse::<i64>()
        .ok()
        .and_then(|id| shared.data.client_index(id))
        .ok_or_else(|| ApiError::not_found(format!("Client {id} could not be found.")))
}

async fn clients(State(shared): State<Arc<Shared>>) -> Response {
    json_response(StatusCode::OK, encode::clients(&shared.data))
}

async fn v2_report(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    respond(
        Params::parse(query.as_deref(), &body)
            .and_then(|p| transaction_report(&shared, None, &p, Flavor::V2Report)),
    )
}

async fn v1_report(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    respond(
        Params::parse(query.as_deref(), &body)
            .and_then(|p| transaction_report(&shared, None, &p, Flavor::V1Report)),
    )
}

async fn client_report(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    respond(client_of(&shared, &id).and_then(|client| {
        let p = Params::parse(query.as_deref(), &body)?;
        transaction_report(&shared, Some(client), &p, Flavor::V2Report)
    }))
}

/// The members of the transaction report without a status filter, in id order: the rows whose
/// process date, as that report shows it today, is in `[start, end]` (removed rows left out),
/// shared with the payout report.
fn report_rows(
    shared: &Shared,
    scen: &super::scenarios::Scenarios,
    start: Day,
    end: Day,
    today: Day,
) -> Arc<Vec<u32>> {
    let data = &shared.data;
    shared.cached((None, start, end, None, today, scen.version()), || {
        if !scen.moved().is_empty() || scen.removes() {
            reports::report_members(data, scen, None, start, end, today)
        } else {
            reports::process_range(&data.txs, start, end)
                .map(|i| i as u32)
                .collect()
        }
    })
}

/// `GET /v2/clients/{id}/customers`: every customer of that client, with its nested
/// transactions and schedules (no paging).
async fn client_customers(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    respond(client_of(&shared, &id).map(|client| {
        let scen = shared.scenarios();
        let view = shared.customer_view(&scen, shared.today_day());
        customers::client_customers(&view, client, shared.config.documented_samples)
    }))
}

/// `GET /v1/customers`: every customer of the (single-merchant) account, in the v1 shape.
async fn v1_customers(State(shared): State<Arc<Shared>>) -> Response {
    let scen = shared.scenarios();
    let view = shared.customer_view(&scen, shared.today_day());
    json_response(StatusCode::OK, customers::v1_customers(&view))
}

/// `GET /v2/payout_report?start_date=...&end_date=...` (or a JSON body): one payout per
/// transaction whose process date, as the transaction report shows it today, is in the window
/// (removed rows left out), in id order, no paging.
async fn payout_report(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    respond(Params::parse(query.as_deref(), &body).and_then(|p| {
        let start = p.date("start_date", true)?.map_or(Day::MIN, day_of);
        let end = p.date("end_date", false)?.map_or(Day::MAX, day_of);
        let (scen, today) = (shared.scenarios(), shared.today_day());
        let rows = report_rows(&shared, &scen, start, end, today);
        let view = shared.customer_view(&scen, today);
        Ok(customers::payouts(
            &view,
            &rows,
            shared.config.documented_samples,
        ))
    }))
}

/// The transaction report: rows with a process date in `[start_date, end_date]`, optionally
/// of one status, page `page` of 1000, each as this report's view shows it (lag, overrides,
/// removed rows left out).
fn transaction_report(
    shared: &Shared,
    client: Option<usize>,
    p: &Params,
    flavor: Flavor,
) -> Result<Vec<u8>, ApiError> {
    let status_names: &[&str] = if flavor == Flavor::V1Report {
        &["status", "filter"]
    } else {
        &["status"]
    };
    let start = p.date("start_date", true)?.map_or(Day::MIN, day_of);
    let end = p.date("end_date", false)?.map_or(Day::MAX, day_of);
    let status = p.status_filter(status_names)?;
    let page = p.page()?;
    let today = shared.today_day();
    let data = &shared.data;
    let scen = shared.scenarios();
    let scen = &*scen;
    if !scen.moved().is_empty() || scen.removes() {
        // Resubmitted rows left their generated process date, removed rows are left out: the
        // members are computed (once per day and scenario version) instead of being a slice of
        // the id order.
        let rows = shared.cached((client, start, end, status, today, scen.version()), || {
            let members = reports::report_members(data, scen, client, start, end, today);
            match status {
                None => members,
                Some(status) => reports::with_status(
                    data,
                    scen,
                    members.iter().map(|&i| i as usize),
                    status,
                    today,
                ),
            }
        });
        let b = page_bounds(rows.len(), page);
        return Ok(encode::page(
            data,
            scen,
            rows[b].iter().map(|&i| i as usize),
            today,
            flavor,
        ));
    }
    let range = reports::process_range(&data.txs, start, end);
    let body = match (status, client) {
        (None, None) => {
            let b = page_bounds(range.len(), page);
            encode::page(
                data,
                scen,
                range.start + b.start..range.start + b.end,
                today,
                flavor,
            )
        }
        (None, Some(c)) => {
            let rows = reports::sublist(&data.by_client[c], range);
            let b = page_bounds(rows.len(), page);
            encode::page(
                data,
                scen,
                rows[b].iter().map(|&i| i as usize),
                today,
                flavor,
            )
        }
        (Some(status), _) => {
            let key = (client, start, end, Some(status), today, scen.version());
            let rows = shared.cached(key, || match client {
                None => reports::with_status(data, scen, range.clone(), status, today),
                Some(c) => reports::with_status(
                    data,
                    scen,
                    reports::sublist(&data.by_client[c], range.clone())
                        .iter()
                        .map(|&i| i as usize),
                    status,
                    today,
                ),
            });
            let b = page_bounds(rows.len(), page);
            encode::page(
                data,
                scen,
                rows[b].iter().map(|&i| i as usize),
                today,
                flavor,
            )
        }
    };
    Ok(body)
}

async fn decline_report(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    respond(client_of(&shared, &id).and_then(|client| {
        let p = Params::parse(query.as_deref(), &body)?;
        let today = shared.today_day();
        let start = p.date("start_date", true)?.map_or(Day::MIN, day_of);
        let end = p.date("end_date", false)?.map_or(today, day_of);
        let page = p.page()?;
        let scen = shared.scenarios();
        let rows = reports::declines(&shared.data, &scen, client, start, end, today);
        let b = page_bounds(rows.len(), page);
        Ok(encode::page(
            &shared.data,
            &scen,
            rows[b].iter().map(|&i| i as usize),
            today,
            Flavor::DeclineReport,
        ))
    }))
}

async fn settlements(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    respond(client_of(&shared, &id).and_then(|client| {
        let p = Params::parse(query.as_deref(), &body)?;
        let today = shared.today_day();
        let start = p.date("start_date", true)?.map_or(Day::MIN, day_of);
        let end = p.date("end_date", false)?.map_or(today, day_of);
        let adjustments = shared
            .adjustments
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default();
        let scen = shared.scenarios();
        let rows = reports::settlements(
            &shared.data,
            &scen,
            client,
            start..=end,
            today,
            shared.config.chargeback_on,
            &adjustments,
        );
        Ok(encode::settlements(&rows))
    }))
}
