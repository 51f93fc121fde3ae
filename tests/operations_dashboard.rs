//! The operations dashboard against a real scrape: a daemon syncs every stream from a faulty
//! simulator with the relay and the reconciliation page on, then every metric a panel of
//! `deploy/grafana/rotessa-recon.json` queries must be in its `/metrics`, `deploy/check.sh`
//! must accept the dashboard against that scrape, and promtool must find HELP text for every
//! family.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::daemon::{Daemon, wait_until};
use common::tempdir::TempDir;
use common::*;
use rotessa_recon::sim::{SimConfig, SimServer};
use serde_json::Value;
use sqlx::PgPool;

const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/grafana/rotessa-recon.json"
);

/// Every `expr` of every panel (rows hold panels of their own).
fn exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", Value::String(expr)) => out.push(expr.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

/// The metric names an expression uses.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, _) in expr.match_indices("rotessa_") {
        let before = expr[..i].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let name: String = expr[i..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        names.insert(name);
    }
    names
}

/// The families a scrape exports: `# TYPE` lines and sample names (histograms' `_bucket`,
/// `_sum` and `_count` samples count as their family).
fn families(scrape: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in scrape.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some(name) = rest.split_whitespace().next() {
                out.insert(name.to_owned());
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let name: String = line
                .chars()
                .take_while(|c| *c != '{' && *c != ' ')
                .collect();
            out.insert(name);
        }
    }
    out
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::now_v7().simple().to_string()[20..]
    )
}

#[sqlx::test]
async fn every_dashboard_query_names_a_metric_a_real_scrape_exports(pool: PgPool) {
    sqlx::query("select rotessa.outbox_register('dashboard-test')")
        .execute(&pool)
        .await
        .unwrap();
    let sim = SimServer::start(
        SimConfig {
            transactions: 400,
            customers: 50,
            today: "2019-03-12".parse().unwrap(),
            history_days: 0,
            future_days: 0,
            api_key: API_KEY.to_owned(),
            fault_rate: 0.2,
            retry_after_secs: 0,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let dir = TempDir::new("recon-dashboard");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "dashboard-test-token-1f2e3d").unwrap();
    let (stream, prefix) = (unique("DASHTEST"), unique("dashtest"));
    let daemon = Daemon::spawn(
        &database_url(&pool),
        &sim.base_url(),
        &[
            ("RECON_SYNC__CLIENTS__ENABLED", "true"),
            ("RECON_SYNC__CUSTOMERS__ENABLED", "true"),
            ("RECON_SYNC__SETTLEMENTS__ENABLED", "true"),
            ("RECON_SYNC__DECLINES__ENABLED", "true"),
            ("RECON_SYNC__PAYOUTS__ENABLED", "true"),
            ("RECON_RELAY__ENABLED", "true"),
            ("RECON_RELAY__TO", "nats://127.0.0.1:4222"),
            ("RECON_RELAY__NATS_STREAM", stream.as_str()),
            ("RECON_RELAY__SUBJECT_PREFIX", prefix.as_str()),
            ("RECON_HTTP__RECONCILIATION_PAGE", "true"),
            ("RECON_HTTP__TOKEN_FILE", token_file.to_str().unwrap()),
        ],
    );
    // Every stream has succeeded once and the relay has caught up.
    wait_until(
        "every stream succeeded and the relay caught up",
        Duration::from_secs(240),
        || async {
            let streams: i64 = sqlx::query_scalar(
                "select count(distinct stream) from rotessa.sync_runs where status = 'succeeded'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            let scrape = daemon.metrics().await;
            streams == 6
                && scrape.contains("rotessa_relay_lag_events 0")
                && scrape
                    .contains("rotessa_outbox_consumer_backlog_events{consumer=\"dashboard-test\"}")
                && scrape.contains("rotessa_reconciliation_open_mismatches ")
        },
    )
    .await;
    let scrape = daemon.metrics().await;
    let exported = families(&scrape);
    // What operators need most, beside what the dashboard queries.
    for family in [
        "rotessa_build_info",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "rotessa_api_request_duration_seconds",
        "rotessa_outbox_events_held_by_fence",
        "rotessa_outbox_oldest_held_age_seconds",
        "rotessa_reconciliation_open_mismatches",
        "rotessa_reconciliation_oldest_open_mismatch_age_seconds",
        "rotessa_outbox_consumer_oldest_unacked_age_seconds",
    ] {
        assert!(
            exported.contains(family),
            "{family} is not exported:\n{scrape}"
        );
    }
    assert!(
        scrape.contains(&format!(
            "rotessa_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{scrape}"
    );
    // The series the key alert watches exist before any 401.
    assert!(
        scrape.contains(r#"rotessa_api_requests_total{endpoint="clients",status="401"} 0"#),
        "{scrape}"
    );

    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(DASHBOARD).unwrap())
        .expect("the dashboard is JSON");
    let mut all = Vec::new();
    exprs(&dashboard, &mut all);
    assert!(all.len() >= 10, "only {} queries", all.len());
    let mut missing = BTreeSet::new();
    for expr in &all {
        for name in metric_names(expr) {
            let histogram_part = ["_bucket", "_sum", "_count"]
                .iter()
                .any(|s| name.ends_with(s) && exported.contains(&name));
            if !exported.contains(&name) && !histogram_part {
                missing.insert(name);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics this scrape lacks: {missing:?}\n{scrape}"
    );

    // deploy/check.sh, given the same scrape, agrees.
    let scrape_file = dir.path().join("metrics.txt");
    std::fs::write(&scrape_file, &scrape).unwrap();
    let check = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/check.sh"))
        .env("CHECK_METRICS_SCRAPE", &scrape_file)
        .output()
        .expect("run deploy/check.sh");
    let text = output_text(&check);
    assert!(check.status.success(), "{text}");
    assert!(text.contains("real /metrics scrape"), "{text}");

    // promtool finds HELP text for every family (`promtool check metrics` reads stdin).
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is needed: apt-get install -y prometheus (.ci/run does)");
    {
        use std::io::Write;
        promtool
            .stdin
            .take()
            .unwrap()
            .write_all(scrape.as_bytes())
            .unwrap();
    }
    let linted = promtool.wait_with_output().unwrap();
    let lint = output_text(&linted);
    assert!(linted.status.success(), "promtool check metrics: {lint}");
    assert!(!lint.contains("no help text"), "{lint}");
}
