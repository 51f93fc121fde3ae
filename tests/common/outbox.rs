//! Helpers for the outbox consumer tests: events written straight into `rotessa.outbox` (as a
//! page transaction would), waiting behind the visibility fence, and a spawned
//! `outbox tail --follow` whose output lines arrive on a channel.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rotessa_recon::outbox::{Consumer, Event, Position};
use rotessa_recon::store::outbox::{self, NewEvent};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use uuid::Uuid;

/// The generous upper bound for anything that should take milliseconds.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A `transaction.status_changed`-shaped event for transaction `key`.
pub fn event(key: i64) -> NewEvent {
    NewEvent {
        id: Uuid::now_v7(),
        aggregatetype: "transaction",
        aggregateid: key.to_string(),
        event_type: "transaction.status_changed",
        payload: json!({"event_version": 1, "transaction_id": key, "to_status": "Approved"})
            .to_string(),
    }
}

/// Appends one event inside the caller's transaction; returns its id and `seq`.
pub async fn insert_event(conn: &mut PgConnection, key: i64) -> (Uuid, i64) {
    let e = event(key);
    let id = e.id;
    outbox::append(conn, &[e]).await.expect("append event");
    let seq = sqlx::query_scalar("select seq from rotessa.outbox where id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await
        .expect("seq of the new event");
    (id, seq)
}

/// Commits one event per key, each in its own transaction with `NOTIFY rotessa_outbox`, like a
/// page; returns their ids in commit order.
pub async fn commit_events(pool: &PgPool, keys: impl IntoIterator<Item = i64>) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for key in keys {
        let mut tx = pool.begin().await.expect("begin");
        ids.push(insert_event(&mut tx, key).await.0);
        outbox::notify(&mut tx).await.expect("notify");
        tx.commit().await.expect("commit");
    }
    ids
}

/// Makes every event `days` days old.
pub async fn age_events(pool: &PgPool, days: i32) {
    sqlx::query("update rotessa.outbox set occurred_at = now() - make_interval(days => $1)")
        .bind(days)
        .execute(pool)
        .await
        .expect("age events");
}

/// Event ids in delivery order.
pub async fn outbox_ids(pool: &PgPool) -> Vec<Uuid> {
    sqlx::query_scalar("select id from rotessa.outbox order by txid, seq")
        .fetch_all(pool)
        .await
        .expect("outbox ids")
}

/// Polls `consumer` until at least `want` events are deliverable and returns them. The fence
/// is cluster-wide: a write transaction open anywhere on the server (another test's, another
/// database's) delays delivery, never reorders it; so this re-polls, paced by the server's
/// answers, within [`PATIENCE`]. In a quiet cluster the first poll already answers.
pub async fn poll_until(consumer: &Consumer, want: usize) -> Vec<Event> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let events = consumer.poll(1000).await.expect("poll");
        if events.len() >= want {
            return events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {want} events deliverable after {PATIENCE:?}",
            events.len()
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until at least `want` events are behind the visibility fence (deliverable to any
/// reader), re-asking the server as [`poll_until`] does.
pub async fn wait_deliverable(pool: &PgPool, want: usize) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let events = outbox::read_after(pool, Position::BEGINNING, 10_000)
            .await
            .expect("read");
        if events.len() >= want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {want} events deliverable after {PATIENCE:?}",
            events.len()
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The real binary running in the background, its output lines on channels; killed on drop.
pub struct Spawned {
    child: Child,
    pub stdout: UnboundedReceiver<String>,
    pub stderr: UnboundedReceiver<String>,
}

impl Spawned {
    /// Starts `rotessa-recon args` with exactly `env` (plus PATH).
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rotessa-recon"));
        cmd.args(args)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Ok(path) = std::env::var("PATH") {
            cmd.env("PATH", path);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn rotessa-recon");
        let stdout = lines(child.stdout.take().expect("piped stdout"));
        let stderr = lines(child.stderr.take().expect("piped stderr"));
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// The next stdout line, within [`PATIENCE`].
    pub async fn next_line(&mut self) -> String {
        tokio::time::timeout(PATIENCE, self.stdout.recv())
            .await
            .unwrap_or_else(|_| panic!("no output line within {PATIENCE:?}"))
            .expect("the process closed stdout")
    }

    /// Reads stderr until a line contains `text` (within [`PATIENCE`]); returns that line.
    pub async fn wait_stderr(&mut self, text: &str) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let line = tokio::time::timeout_at(deadline, self.stderr.recv())
                .await
                .unwrap_or_else(|_| panic!("{text:?} not on stderr within {PATIENCE:?}"))
                .unwrap_or_else(|| panic!("the process exited before printing {text:?}"));
            if line.contains(text) {
                return line;
            }
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(pipe: impl std::io::Read + Send + 'static) -> UnboundedReceiver<String> {
    let (tx, rx) = unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}
