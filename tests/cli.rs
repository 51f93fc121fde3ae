//! The real binary: exit codes 0, 1 and 2 with messages that say what to fix, and secrets
//! that never reach logs, errors or `check` output.

mod common;

use common::*;
use sqlx::PgPool;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const DB_PASSWORD: &str = "db-pw-7e1d44";

fn base_env<'a>(server: &'a str, db: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("RECON_ROTESSA__BASE_URL", server),
        ("RECON_ROTESSA__API_KEY", API_KEY),
        ("RECON_ROTESSA__RETRY__INITIAL_BACKOFF_MS", "1"),
        ("RECON_ROTESSA__RETRY__MAX_BACKOFF_MS", "2"),
        ("DATABASE_URL", db),
    ]
}

const SYNC_2019: [&str; 7] = [
    "sync",
    "--stream",
    "transactions",
    "--from",
    "2019-01-01",
    "--to",
    "2019-12-31",
];

#[sqlx::test]
async fn sync_migrates_syncs_and_exits_0(pool: PgPool) {
    let server = MockServer::start().await;
    serve_report(&server, &rows(1..=10, "Approved")).await;
    let db = database_url(&pool);
    let uri = server.uri();
    let out = run_binary(&SYNC_2019, &base_env(&uri, &db));
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("transactions [all clients] run"), "{text}");
    assert!(text.contains("succeeded"), "{text}");
    assert_eq!(count(&pool, "rotessa.transactions").await, 10);
    // Twelve 31-day windows served the same rows: each transaction still has one event.
    assert_eq!(count(&pool, "rotessa.outbox").await, 10);
}

#[sqlx::test]
async fn a_refused_key_exits_1_and_says_what_to_fix(pool: PgPool) {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!(
            {"errors": [{"error_code": "unauthorized", "error_message": "Invalid API key"}]}
        )))
        .mount(&server)
        .await;
    let db = database_url(&pool);
    let uri = server.uri();
    let out = run_binary(&SYNC_2019, &base_env(&uri, &db));
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("HTTP 401: unauthorized: Invalid API key"),
        "{text}"
    );
    assert!(text.contains("check ROTESSA_API_KEY"), "{text}");
}

#[sqlx::test]
async fn usage_and_configuration_errors_exit_2(pool: PgPool) {
    let db = database_url(&pool);
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            SYNC_2019.to_vec(),
            vec![("DATABASE_URL", db.as_str())],
            "no Rotessa API key: set ROTESSA_API_KEY",
        ),
        (
            vec!["sync", "--from", "2019-12-31", "--to", "2019-01-01"],
            base_env("http://127.0.0.1:9", &db),
            "--from 2019-12-31 is after --to 2019-01-01",
        ),
        (
            vec!["sync", "--from", "2019-02-30"],
            base_env("http://127.0.0.1:9", &db),
            "invalid value '2019-02-30' for '--from <DATE>'",
        ),
        (
            vec!["sync", "--stream", "everything"],
            base_env("http://127.0.0.1:9", &db),
            "unknown stream \"everything\"",
        ),
        (
            vec!["sync"],
            [
                base_env("http://127.0.0.1:9", &db),
                vec![("RECON_ROTESSA__CONCURRENCY", "0")],
            ]
            .concat(),
            "rotessa.concurrency must be at least 1",
        ),
        (
            vec!["sync"],
            [
                base_env("http://127.0.0.1:9", &db),
                vec![("RECON_ROTESSA__BASE_URL", "api.rotessa.com")],
            ]
            .concat(),
            "rotessa.base_url \"api.rotessa.com\" is not an http(s) URL",
        ),
    ];
    for (args, env, expected) in cases {
        let out = run_binary(&args, &env);
        let text = output_text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {text}");
        assert!(
            text.contains(expected),
            "{args:?}: expected {expected:?} in {text}"
        );
    }
}

#[test]
fn an_unreachable_database_exits_1_without_its_password() {
    let url = format!("postgres://postgres:{DB_PASSWORD}@127.0.0.1:1/nowhere");
    let out = run_binary(
        &SYNC_2019,
        &[
            ("RECON_ROTESSA__BASE_URL", "http://127.0.0.1:9"),
            ("RECON_ROTESSA__API_KEY", API_KEY),
            ("DATABASE_URL", &url),
            ("RECON_DATABASE__ACQUIRE_TIMEOUT_SECS", "2"),
        ],
    );
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("cannot connect to PostgreSQL at 127.0.0.1:1/nowhere"),
        "{text}"
    );
    assert!(!text.contains(DB_PASSWORD), "{text}");
}

#[sqlx::test]
async fn secrets_reach_neither_debug_logs_nor_check_output(pool: PgPool) {
    let server = MockServer::start().await;
    serve_report(&server, &rows(1..=3, "Pending")).await;
    // Trust auth ignores the password, so the URL with one still connects.
    let db = database_url(&pool).replacen("postgres@", &format!("postgres:{DB_PASSWORD}@"), 1);
    assert!(db.contains(DB_PASSWORD));
    let uri = server.uri();
    let mut env = base_env(&uri, &db);
    env.push(("RUST_LOG", "trace"));

    let sync = run_binary(&SYNC_2019, &env);
    let check = run_binary(&["check"], &env);
    let json_env = [env.clone(), vec![("RECON_LOG__FORMAT", "json")]].concat();
    let json_sync = run_binary(&SYNC_2019, &json_env);
    for (name, out) in [
        ("sync", &sync),
        ("check", &check),
        ("json sync", &json_sync),
    ] {
        let text = output_text(out);
        assert_eq!(out.status.code(), Some(0), "{name}: {text}");
        assert!(
            text.contains("DEBUG") || text.contains("\"DEBUG\"") || name == "check",
            "{name} logged at debug: {text}"
        );
        assert!(!text.contains(API_KEY), "{name} leaked the API key");
        assert!(
            !text.contains(DB_PASSWORD),
            "{name} leaked the database password"
        );
    }
    let check_text = output_text(&check);
    assert!(
        check_text.contains("api_key = \"[redacted]\""),
        "{check_text}"
    );
    assert!(check_text.contains("postgres: ok"), "{check_text}");
    assert!(check_text.contains("rotessa: ok"), "{check_text}");

    // The error path too: a refused key is reported without echoing it.
    server.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let failed = run_binary(&SYNC_2019, &env);
    let text = output_text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{text}");
    assert!(
        !text.contains(API_KEY) && !text.contains(DB_PASSWORD),
        "{text}"
    );
}

#[sqlx::test]
async fn status_shows_a_run_whose_process_died_as_abandoned(pool: PgPool) {
    // A `sync` killed an hour ago, with no daemon and no later run to notice; and one alive.
    sqlx::query(
        "insert into rotessa.sync_runs (stream, status, started_at, heartbeat_at, host)
         values ('transactions', 'running', now() - interval '1 hour',
                 now() - interval '1 hour', 'gone:1'),
                ('declines', 'running', now(), now(), 'alive:2')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let db = database_url(&pool);
    let out = run_binary(&["status"], &[("DATABASE_URL", db.as_str())]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    let row = |stream: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(stream))
            .unwrap_or_else(|| panic!("no {stream} row in\n{stdout}"))
            .to_owned()
    };
    assert!(row("transactions").contains(" abandoned "), "{stdout}");
    assert!(row("declines").contains(" running "), "{stdout}");
    assert!(stdout.contains("no heartbeat since"), "{stdout}");
    // `status` only reads: recording it is the next run's or the leader's job.
    assert_eq!(
        scalar(
            &pool,
            "select count(*) from rotessa.sync_runs where status = 'running'"
        )
        .await,
        2
    );
}

/// `demo` names the customer of every status change it prints (its own database on the
/// server of `DATABASE_URL`).
#[test]
fn demo_prints_customer_names_next_to_status_changes() {
    let server = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let out = run_binary(&["demo"], &[("DATABASE_URL", &server)]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let section = text
        .split("Latest status changes, with the customer")
        .nth(1)
        .unwrap_or_else(|| panic!("no status changes with customers in:\n{text}"));
    let lines: Vec<&str> = section
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  transaction "))
        .collect();
    assert!(lines.len() >= 3, "{section}");
    for line in lines {
        let name = line
            .split_whitespace()
            .nth(2)
            .unwrap_or_else(|| panic!("{line}"));
        assert!(
            name != "customer" && name.starts_with(|c: char| c.is_alphabetic()),
            "a name, not an id: {line}"
        );
    }
}

/// `database.url_file` (a Kubernetes secret, a systemd credential): the URL is read from the
/// file; a missing file, or one beside `DATABASE_URL`, is a configuration error naming the file
/// and never showing the URL.
#[sqlx::test]
async fn the_database_url_comes_from_a_file(pool: PgPool) {
    let dir = common::tempdir::TempDir::new("url-file");
    let file = dir.path().join("database-url");
    let db = database_url(&pool).replacen("postgres@", &format!("postgres:{DB_PASSWORD}@"), 1);
    std::fs::write(&file, format!("{db}\n")).unwrap();
    let path = file.to_str().unwrap();

    let out = run_binary(&["migrate"], &[("RECON_DATABASE__URL_FILE", path)]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let out = run_binary(
        &["status", "--output", "json"],
        &[("RECON_DATABASE__URL_FILE", path)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert!(!output_text(&out).contains(DB_PASSWORD));

    let missing = dir.path().join("nowhere");
    let out = run_binary(
        &["status"],
        &[("RECON_DATABASE__URL_FILE", missing.to_str().unwrap())],
    );
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!(
            "cannot read database.url_file {}",
            missing.display()
        )),
        "{text}"
    );

    let out = run_binary(
        &["status"],
        &[("RECON_DATABASE__URL_FILE", path), ("DATABASE_URL", &db)],
    );
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("database.url_file are set: keep one"),
        "{text}"
    );
    assert!(!text.contains(DB_PASSWORD), "{text}");
}
