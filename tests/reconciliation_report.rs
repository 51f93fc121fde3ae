//! The reconciliation report page: `reconcile --html` writes one self-contained file that
//! headless Chromium shows with the mismatched date first, the transaction that explains it
//! and its status history, without a single network request; the daemon serves the same page
//! at `/reconciliation` only when configured, only with the bearer token, and only reads.

mod common;

use std::time::Duration;

use chrono::NaiveDate;
use common::chromium::Browser;
use common::daemon::{Daemon, wait_until};
use common::simulated::{sim_syncer, sync_all, sync_stream};
use common::tempdir::TempDir;
use common::*;
use rotessa_recon::sim::{SimConfig, SimServer};
use rotessa_recon::store::discrepancies;
use rotessa_recon::sync::Stream;
use sqlx::PgPool;

const TODAY: &str = "2026-11-24";
const FROM: &str = "2026-10-01";
const TOKEN: &str = "page-token-0b7d2f41c9e8";

async fn simulator() -> SimServer {
    SimServer::start(
        SimConfig {
            seed: 21,
            clients: 2,
            customers: 60,
            transactions: 900,
            today: TODAY.parse().unwrap(),
            history_days: 45,
            future_days: 20,
            api_key: API_KEY.to_owned(),
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

async fn mismatches(pool: &PgPool) -> Vec<(i64, NaiveDate)> {
    sqlx::query_as(
        "select client_id, settlement_date from rotessa.settlement_reconciliation
         where not matched order by 1, 2",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The mismatch the tests inject: a settled Approved transaction Rotessa stops reporting.
struct Injected {
    client: i64,
    date: NaiveDate,
    transaction: i64,
}

/// Syncs every stream from the simulator, then removes the latest settled Approved
/// transaction from Rotessa's reports. Its settlement still counts it (money moved), the
/// synced side marks it removed after two complete reads: one mismatched date.
async fn synced_with_a_mismatch(pool: &PgPool, sim: &SimServer) -> Injected {
    let syncer = sim_syncer(pool, sim, &[]);
    sync_all(&syncer).await;
    assert_eq!(
        mismatches(pool).await,
        vec![],
        "the simulator's data reconciles"
    );
    let (transaction, client, date): (i64, i64, NaiveDate) = sqlx::query_as(
        "select t.id, t.client_id, t.settlement_date from rotessa.transactions t
         join rotessa.settlements s using (client_id, settlement_date)
         where t.status = 'Approved' and t.settlement_date < $1
         order by t.settlement_date desc, t.id limit 1",
    )
    .bind(sim.today())
    .fetch_one(pool)
    .await
    .unwrap();
    sim.handle().remove(transaction).unwrap();
    sync_stream(&syncer, Stream::Transactions).await;
    sync_stream(&syncer, Stream::Transactions).await;
    assert_eq!(mismatches(pool).await, vec![(client, date)]);
    Injected {
        client,
        date,
        transaction,
    }
}

/// What the test reads from the rendered page: the first client section's first date row
/// and the explanation row under it (their rendered text), where the transaction's link
/// leads, and what the page fetched according to the browser itself.
const READ_PAGE: &str = r#"(() => {
    const section = document.querySelector('section.client');
    const rows = [...section.querySelectorAll('table.dates > tbody > tr')];
    const first = rows[0], explain = rows[1];
    const link = explain.querySelector('tr.explaining a');
    const target = link && document.querySelector(link.getAttribute('href'));
    return {
        client: section.id,
        firstDate: first.dataset.date,
        firstOutcome: first.querySelector('td.outcome').innerText,
        firstShown: first.getBoundingClientRect().height > 0,
        explainClass: explain.className,
        explaining: [...explain.querySelectorAll('tr.explaining')].map(r => r.dataset.transaction),
        explainText: explain.innerText,
        linkTarget: target ? target.id : null,
        historyText: target ? target.innerText : '',
        chartBands: section.querySelectorAll('svg.chart rect.band > title').length,
        resources: performance.getEntriesByType('resource').length,
    };
})()"#;

#[sqlx::test]
async fn the_report_shows_the_mismatched_date_first_with_its_explanation_and_fetches_nothing(
    pool: PgPool,
) {
    let sim = simulator().await;
    let injected = synced_with_a_mismatch(&pool, &sim).await;
    let dir = TempDir::new("recon-report");
    let file = dir.path().join("reconciliation.html");
    let out = run_binary(
        &[
            "reconcile",
            "--html",
            file.to_str().unwrap(),
            "--from",
            FROM,
            "--to",
            TODAY,
        ],
        &[("DATABASE_URL", &database_url(&pool))],
    );
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(
        output_text(&out).contains("1 mismatched"),
        "{}",
        output_text(&out)
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the page is readable by its owner only");

    let mut browser = Browser::start(1280, 1600).await;
    let url = format!("file://{}", file.display());
    browser.open(&url).await;
    let page = browser.eval(READ_PAGE).await;

    assert_eq!(page["client"], format!("client-{}", injected.client));
    assert_eq!(page["firstDate"], injected.date.to_string(), "{page:#}");
    assert_eq!(page["firstOutcome"], "mismatch");
    assert_eq!(page["firstShown"], true);
    assert_eq!(page["explainClass"], "explain");
    assert_eq!(
        page["explaining"],
        serde_json::json!([injected.transaction.to_string()]),
        "{page:#}"
    );
    let explained = page["explainText"].as_str().unwrap();
    assert!(
        explained.contains("Rotessa stopped reporting it") && explained.contains("Approved"),
        "{explained}"
    );
    assert_eq!(page["linkTarget"], format!("tx-{}", injected.transaction));
    assert!(
        page["historyText"]
            .as_str()
            .unwrap()
            .contains("(first seen)"),
        "{page:#}"
    );
    assert_eq!(
        page["chartBands"], 1,
        "one mismatched date marked in the chart"
    );

    // The browser's own record: the document itself, and nothing else.
    assert_eq!(page["resources"], 0, "the page loaded no resource");
    assert_eq!(
        browser.requests,
        vec![url.clone()],
        "requests: {:?}",
        browser.requests
    );

    let shot = dir.path().join("reconciliation.png");
    browser.screenshot(&shot).await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
    // `RECON_REPORT_SCREENSHOT=docs/images/reconciliation-report.png` refreshes README's picture.
    if let Ok(to) = std::env::var("RECON_REPORT_SCREENSHOT") {
        std::fs::copy(&shot, &to).unwrap();
    }

    // On paper: laid out for A4 and Letter, nothing sticks out past the printable width.
    for (paper, width_mm, (width_in, height_in)) in
        [("A4", 210.0, (8.27, 11.69)), ("Letter", 215.9, (8.5, 11.0))]
    {
        browser.emulate_print(width_mm).await;
        let overflow = browser
            .eval(
                "(() => { const w = document.documentElement.clientWidth;                  return [...document.querySelectorAll('table, svg, h1, h2, p')]                  .filter(e => e.getBoundingClientRect().right > w + 1)                  .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right) + ' > ' + w); })()",
            )
            .await;
        assert_eq!(
            overflow,
            serde_json::json!([]),
            "{paper}: wider than the page"
        );
        let pdf = browser.print_pdf(width_in, height_in).await;
        assert!(pdf.starts_with(b"%PDF"), "{paper}");
        std::fs::write(dir.path().join(format!("reconciliation-{paper}.pdf")), pdf).unwrap();
    }
}

#[sqlx::test]
async fn the_report_reads_in_a_transaction_that_cannot_write(pool: PgPool) {
    let mut tx = discrepancies::read_only(&pool).await.unwrap();
    let write = sqlx::query("insert into rotessa.clients (id, raw) values (1, '{}')")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(
        write.to_string().contains("read-only transaction"),
        "{write}"
    );
}

/// The data tables the page reads, as one digest (not `sync_runs` or `leases`, which the
/// daemon's own start-up maintenance may touch meanwhile).
async fn digest(pool: &PgPool) -> String {
    let mut all = String::new();
    for table in [
        "transactions",
        "transaction_status_history",
        "settlements",
        "reconciliation_state",
        "reconciliation_pending",
        "outbox",
        "status_anomalies",
        "clients",
    ] {
        let sql = format!(
            "select coalesce(md5(string_agg(t::text, '|' order by t::text)), '') \
             from rotessa.{table} t"
        );
        let part: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(pool)
            .await
            .unwrap();
        all.push_str(&part);
    }
    all
}

async fn get(url: &str, authorization: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

async fn started(daemon: &Daemon) {
    wait_until("the daemon serves HTTP", Duration::from_secs(60), || {
        daemon.live()
    })
    .await;
}

#[sqlx::test]
async fn the_daemon_serves_the_page_only_when_enabled_only_with_the_token_and_only_reads(
    pool: PgPool,
) {
    let sim = simulator().await;
    let injected = synced_with_a_mismatch(&pool, &sim).await;
    let dir = TempDir::new("recon-page");
    let token_file = dir.path().join("page-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let database = database_url(&pool);
    let page_on = [
        ("RECON_HTTP__RECONCILIATION_PAGE", "true"),
        ("RECON_HTTP__TOKEN_FILE", token_file.to_str().unwrap()),
        ("RECON_SYNC__TODAY", TODAY),
    ];
    let daemon = Daemon::spawn(&database, &sim.base_url(), &page_on);
    started(&daemon).await;
    let base = daemon.url("").unwrap();
    let page = format!("{base}/reconciliation?from={FROM}&to={TODAY}");
    let before = digest(&pool).await;

    let (status, body) = get(&page, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("data-date=\"{}\"", injected.date)));
    assert!(body.contains(&format!("id=\"tx-{}\"", injected.transaction)));
    // The default range (today - settlements look-back .. today) holds the date too.
    let (status, body) = get(
        &format!("{base}/reconciliation"),
        Some(&format!("bearer {TOKEN}")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("data-date=\"{}\"", injected.date)));

    let wrong = format!("Bearer {TOKEN}x");
    let prefix = format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]);
    let basic = format!("Basic {TOKEN}");
    for (authorization, what) in [
        (None, "no token"),
        (Some(wrong.as_str()), "a wrong token"),
        (Some(prefix.as_str()), "a prefix of the token"),
        (Some(basic.as_str()), "the token under another scheme"),
        (Some("Bearer "), "an empty token"),
    ] {
        let (status, body) = get(&page, authorization).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert!(!body.contains("data-date"), "{what}");
    }
    let (status, _) = get(
        &format!("{page}&client=abc"),
        Some(&format!("Bearer {TOKEN}")),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = get(
        &format!("{base}/reconciliation?from=2020-01-01&to={TODAY}"),
        Some(&format!("Bearer {TOKEN}")),
    )
    .await;
    assert_eq!(status, 400, "more than 400 days");
    let (status, _) = get(
        &format!("{base}/reconciliation?from={TODAY}&to={FROM}"),
        Some(&format!("Bearer {TOKEN}")),
    )
    .await;
    assert_eq!(status, 400, "from after to");
    for path in ["/livez", "/readyz", "/metrics"] {
        let (status, _) = get(&format!("{base}{path}"), None).await;
        assert_ne!(status, 401, "{path} needs no token");
    }
    assert_eq!(digest(&pool).await, before, "the page wrote nothing");
    assert!(!daemon.log().contains(TOKEN), "the token reached the log");
    assert!(
        daemon
            .metrics()
            .await
            .contains("rotessa_http_unauthorized_total{path=\"/reconciliation\"} 5"),
        "{}",
        daemon.metrics().await
    );
    drop(daemon);

    // Off (the default): no such page, token or not.
    let daemon = Daemon::spawn(
        &database,
        &sim.base_url(),
        &[
            ("RECON_HTTP__TOKEN_FILE", token_file.to_str().unwrap()),
            ("RECON_SYNC__TODAY", TODAY),
        ],
    );
    started(&daemon).await;
    let base = daemon.url("").unwrap();
    let (status, _) = get(
        &format!("{base}/reconciliation"),
        Some(&format!("Bearer {TOKEN}")),
    )
    .await;
    assert_eq!(status, 404);
}

#[test]
fn the_page_refuses_to_start_without_a_usable_token() {
    let dir = TempDir::new("recon-page-config");
    let short = dir.path().join("short");
    std::fs::write(&short, "letmein\n").unwrap();
    for (extra, expected) in [
        (None, "http.reconciliation_page needs http.token_file"),
        (Some(short.to_str().unwrap()), "at least 16 characters"),
        (
            Some("/nonexistent/page-token"),
            "cannot read http.token_file",
        ),
    ] {
        let mut env = vec![
            (
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/postgres",
            ),
            ("ROTESSA_API_KEY", API_KEY),
            ("RECON_HTTP__RECONCILIATION_PAGE", "true"),
        ];
        if let Some(path) = extra {
            env.push(("RECON_HTTP__TOKEN_FILE", path));
        }
        let out = run_binary(&["run"], &env);
        let text = output_text(&out);
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(text.contains(expected), "{text}");
        assert!(!text.contains("letmein"), "{text}");
    }
}

/// The request record above would see a fetch: a page that loads a stylesheet from the
/// network (refused here: nothing listens) shows up in it.
#[tokio::test]
async fn the_browser_records_a_request_the_page_makes() {
    let dir = TempDir::new("recon-fetching-page");
    let file = dir.path().join("fetching.html");
    std::fs::write(
        &file,
        r#"<!doctype html><html><head><link rel="stylesheet" href="http://127.0.0.1:9/x.css"></head><body>x</body></html>"#,
    )
    .unwrap();
    let mut browser = Browser::start(800, 600).await;
    let url = format!("file://{}", file.display());
    browser.open(&url).await;
    assert_eq!(
        browser.requests,
        vec![url, "http://127.0.0.1:9/x.css".to_owned()]
    );
}

/// The reasons, one crafted row each, on one mismatched date (client 1, 2026-11-20, whose
/// settlement figure was last changed a day ago): which rows explain it, and why.
#[sqlx::test]
async fn each_reason_picks_the_rows_it_describes(pool: PgPool) {
    const SETUP: &str = r#"
        insert into rotessa.settlements (client_id, settlement_date, number_approved,
            number_declined, number_chargeback, number_payout, total_approved, total_declined,
            total_chargeback, total_payout, changed_at)
        values (1, '2026-11-20', 99, 0, 0, 0, 9999, 0, 0, 0, now() - interval '1 day');
        insert into rotessa.transactions (id, client_id, amount, status, process_date,
            settlement_date, decline_date, fingerprint, first_seen_at, changed_at, removed_at)
        values
            (1, 1, 10, 'Approved',   '2026-11-17', '2026-11-20', null, 0, now() - interval '2 days', now() - interval '2 days', now()),
            (2, 1, 20, 'Chargeback', '2026-11-17', '2026-11-20', '2026-12-01', 0, now() - interval '2 days', now() - interval '2 days', null),
            (3, 1, 30, 'Pending',    '2026-11-17', '2026-11-20', null, 0, now() - interval '2 days', now() - interval '2 days', null),
            (4, 1, 40, 'Declined',   '2026-11-17', '2026-11-20', '2026-11-19', 0, now() - interval '3 days', now() - interval '3 days', null),
            (5, 1, 50, 'Approved',   '2026-11-17', '2026-11-20', null, 0, now() - interval '2 days', now(), null),
            (6, 1, 60, 'Approved',   '2026-11-17', '2026-11-20', null, 0, now() - interval '2 days', now() - interval '2 days', null),
            (7, 1, 70, 'Chargeback', '2026-11-05', '2026-11-10', '2026-11-20', 0, now() - interval '2 days', now() - interval '2 days', null),
            (8, 1, 80, 'Approved',   '2026-11-17', '2026-11-20', null, 0, now() - interval '2 days', now() - interval '2 days', null),
            (9, 2, 90, 'Pending',    '2026-11-17', '2026-11-20', null, 0, now() - interval '2 days', now() - interval '2 days', null);
        insert into rotessa.transaction_status_history (transaction_id, from_status, to_status,
            observed_at, source)
        values (4, null, 'Approved', now() - interval '3 days', 'transaction_report'),
               (4, 'Approved', 'Declined', now() - interval '3 days', 'transaction_decline_report'),
               (6, null, 'Approved', now() - interval '2 days', 'transaction_report');
        insert into rotessa.status_anomalies (kind, transaction_id, stored_status,
            observed_status, source)
        values ('stale', 8, 'Approved', 'Pending', 'transaction_report');
    "#;
    sqlx::raw_sql(SETUP).execute(&pool).await.unwrap();
    let date: NaiveDate = "2026-11-20".parse().unwrap();
    let explained = |model: &'static str| {
        let pool = pool.clone();
        async move {
            let mut conn = pool.acquire().await.unwrap();
            discrepancies::explaining(&mut conn, &[(1, date)], model, 50)
                .await
                .unwrap()
                .into_iter()
                .map(|e| (e.transaction_id, e.reasons))
                .collect::<Vec<_>>()
        }
    };
    let s = |v: &[&str]| v.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        explained("decline_date").await,
        vec![
            (1, s(&["removed"])),
            (8, s(&["reports_disagree"])),
            (7, s(&["chargeback"])),
            (5, s(&["changed_since_settlement"])),
            (4, s(&["status_changed"])),
            (3, s(&["not_settled"])),
            (2, s(&["chargeback"])),
        ],
        "removed first, then by amount; row 6 (unchanged, first seen before the figure) and \
         client 2's row explain nothing"
    );
    // Under settlement_date, a chargeback counts on its own settlement date only: row 7 (charged
    // back on the 20th, settled on the 10th) is not this date's.
    let by_settlement: Vec<i64> = explained("settlement_date")
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(by_settlement, vec![1, 8, 5, 4, 3, 2]);
}
