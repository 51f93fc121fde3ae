//! The outbox consumer examples (`examples/python/consumer.py`, `examples/typescript/consumer.ts`)
//! run as real child processes against a database synced from the simulator: each prints every
//! event id of `rotessa.outbox` exactly once, a second run of the same consumer prints nothing
//! (its acks held), and in follow mode each is woken by `NOTIFY rotessa_outbox` and exits 0 on
//! SIGTERM.
//!
//! Nothing is skipped: a missing python3 with psycopg 3, or a missing Node.js (18 or later),
//! fails with what to install. The TypeScript example is installed (`npm ci`) and compiled
//! (`tsc`) here when `examples/typescript/dist/` is missing or older than its sources.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant, SystemTime};

use chrono::NaiveDate;
use common::outbox::{PATIENCE, commit_events};
use common::simulated::{sim_syncer, sync_all};
use common::*;
use rotessa_recon::sim::{SimConfig, SimServer};
use sqlx::PgPool;
use uuid::Uuid;

/// How long one example may take to consume the whole outbox.
const RUN_LIMIT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy)]
enum Example {
    Python,
    TypeScript,
}

impl Example {
    fn name(self) -> &'static str {
        match self {
            Self::Python => "python",
            Self::TypeScript => "typescript",
        }
    }

    /// The command that runs the example, its interpreter and build checked first.
    fn command(self, db: &str, consumer: &str, args: &[&str]) -> Command {
        let mut cmd = match self {
            Self::Python => {
                let mut cmd = Command::new(python());
                cmd.arg(examples_dir().join("python/consumer.py"));
                cmd
            }
            Self::TypeScript => {
                let mut cmd = Command::new("node");
                cmd.arg(typescript_build());
                cmd
            }
        };
        cmd.args(args)
            .env("DATABASE_URL", db)
            .env("CONSUMER", consumer)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// A python3 that can `import psycopg` (psycopg 3): `$PYTHON`, else `python3` on the PATH,
/// else Debian's `/usr/bin/python3` (where `apt-get install python3-psycopg` puts it, which a
/// pyenv or virtualenv `python3` first on the PATH does not see).
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let candidates: Vec<PathBuf> = match std::env::var_os("PYTHON") {
            Some(p) => vec![p.into()],
            None => vec!["python3".into(), "/usr/bin/python3".into()],
        };
        let mut tried = Vec::new();
        for candidate in candidates {
            let found = Command::new(&candidate)
                .args(["-c", "import psycopg; print(psycopg.__version__)"])
                .output();
            match found {
                Ok(out) if out.status.success() => {
                    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                    assert!(
                        version.starts_with('3'),
                        "{} has psycopg {version}, the example needs psycopg 3",
                        candidate.display()
                    );
                    return candidate;
                }
                Ok(out) => tried.push(format!(
                    "{}: {}",
                    candidate.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                )),
                Err(e) => tried.push(format!("{}: {e}", candidate.display())),
            }
        }
        panic!(
            "the Python consumer example needs python3 with psycopg 3: install it with \
             `apt-get install python3-psycopg` (Debian, for /usr/bin/python3) or \
             `python3 -m pip install psycopg`, or set PYTHON to an interpreter that has it \
             (bash .ci/run installs it). Tried:\n{}",
            tried.join("\n")
        )
    })
}

/// `examples/typescript/dist/consumer.js`, after `npm ci` (when `node_modules` is missing or
/// older than `package-lock.json`) and `tsc` (when `dist` is missing or older than the sources).
fn typescript_build() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let install = "install Node.js 18 or later with npm (`apt-get install nodejs npm` on \
                       Debian; bash .ci/run installs them)";
        let version = Command::new("node")
            .arg("--version")
            .output()
            .unwrap_or_else(|e| {
                panic!("the TypeScript consumer example needs node ({e}): {install}")
            });
        let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
        let major: u32 = version
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        assert!(major >= 18, "node {version:?} is too old: {install}");

        let dir = examples_dir().join("typescript");
        let modified = |p: &str| -> Option<SystemTime> {
            std::fs::metadata(dir.join(p))
                .and_then(|m| m.modified())
                .ok()
        };
        let newest = |paths: &[&str]| paths.iter().filter_map(|p| modified(p)).max();
        let stale = |built: &str, sources: &[&str]| match (modified(built), newest(sources)) {
            (Some(built), Some(source)) => built < source,
            _ => true,
        };
        if stale(
            "node_modules/.package-lock.json",
            &["package-lock.json", "package.json"],
        ) {
            build_step(&dir, "npm", &["ci", "--no-audit", "--no-fund"], install);
        }
        if stale(
            "dist/consumer.js",
            &["consumer.ts", "tsconfig.json", "package-lock.json"],
        ) {
            build_step(
                &dir,
                "node",
                &["node_modules/typescript/bin/tsc", "-p", "."],
                install,
            );
        }
        let js = dir.join("dist/consumer.js");
        assert!(js.is_file(), "tsc did not write {}", js.display());
        js
    })
}

fn build_step(dir: &Path, program: &str, args: &[&str], install: &str) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}): {install}"));
    assert!(
        out.status.success(),
        "`{program} {}` in {} failed ({}):\n{}\n{}",
        args.join(" "),
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a finished example printed.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` to its end (killed and failed after [`RUN_LIMIT`]), off the async runtime.
async fn run_to_end(mut cmd: Command) -> Finished {
    tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().expect("spawn the example");
        let stdout = read_all(child.stdout.take().expect("piped stdout"));
        let stderr = read_all(child.stderr.take().expect("piped stderr"));
        let deadline = Instant::now() + RUN_LIMIT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for the example") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{cmd:?} did not finish within {RUN_LIMIT:?}; stderr:\n{}",
                    stderr.join().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Finished {
            status,
            stdout: stdout.join().expect("stdout reader"),
            stderr: stderr.join().expect("stderr reader"),
        }
    })
    .await
    .expect("the example runner")
}

fn read_all(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    })
}

/// A database synced from the simulator, then synced again after the clock moved, so that the
/// outbox holds several hundred events of several types.
async fn synced(pool: &PgPool) -> BTreeSet<Uuid> {
    let sim = SimServer::start(
        SimConfig {
            seed: 18,
            clients: 2,
            customers: 60,
            transactions: 400,
            today: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
            history_days: 45,
            future_days: 30,
            api_key: API_KEY.to_owned(),
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let syncer = sim_syncer(pool, &sim, &[]);
    sync_all(&syncer).await;
    sim.advance(6);
    sync_all(&syncer).await;
    sim.shutdown().await;

    let by_type: BTreeMap<String, i64> =
        sqlx::query_as("select type, count(*) from rotessa.outbox group by type")
            .fetch_all(pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    let total: i64 = by_type.values().sum();
    assert!(total >= 300, "only {total} events: {by_type:?}");
    assert!(by_type.len() >= 5, "too few event types: {by_type:?}");
    println!("outbox: {total} events {by_type:?}");
    outbox_ids(pool).await
}

async fn outbox_ids(pool: &PgPool) -> BTreeSet<Uuid> {
    sqlx::query_scalar("select id from rotessa.outbox")
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// The event ids a run printed, failing on a line that is not one or on a repeated id.
fn printed_ids(example: Example, run: &Finished) -> BTreeSet<Uuid> {
    let mut ids = BTreeSet::new();
    for line in run.stdout.lines() {
        let id: Uuid = line.parse().unwrap_or_else(|e| {
            panic!(
                "{}: stdout line {line:?} is not an event id ({e})",
                example.name()
            )
        });
        assert!(
            ids.insert(id),
            "{}: event {id} printed twice",
            example.name()
        );
    }
    ids
}

fn assert_succeeded(example: Example, what: &str, run: &Finished) {
    assert!(
        run.status.success(),
        "{} {what}: {}; stderr:\n{}",
        example.name(),
        run.status,
        run.stderr
    );
}

async fn consumes_every_event_once(example: Example, pool: PgPool) {
    let expected = synced(&pool).await;
    let db = database_url(&pool);
    let consumer = format!("example-{}-{}", example.name(), Uuid::now_v7());

    let first = run_to_end(example.command(&db, &consumer, &["--until-caught-up"])).await;
    assert_succeeded(example, "first run", &first);
    let printed = printed_ids(example, &first);
    let missing: Vec<_> = expected.difference(&printed).take(5).collect();
    let extra: Vec<_> = printed.difference(&expected).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{}: printed {} ids for {} events; missing (first 5) {missing:?}, not in the outbox {extra:?}; stderr:\n{}",
        example.name(),
        printed.len(),
        expected.len(),
        first.stderr
    );

    // The demo side effect: one row per event for this consumer, written with the acks.
    let processed: BTreeSet<Uuid> =
        sqlx::query_scalar("select event_id from outbox_example_processed where consumer = $1")
            .bind(&consumer)
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    assert_eq!(processed, expected, "{}: processed rows", example.name());
    let backlog: i64 =
        sqlx::query_scalar("select backlog from rotessa.outbox_consumer_lag where name = $1")
            .bind(&consumer)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        backlog,
        0,
        "{}: the acks moved the position to the end",
        example.name()
    );

    // The same consumer again: its acks held, so there is nothing to print.
    let second = run_to_end(example.command(&db, &consumer, &["--until-caught-up"])).await;
    assert_succeeded(example, "second run", &second);
    assert_eq!(
        second.stdout,
        "",
        "{}: the second run printed events again; stderr:\n{}",
        example.name(),
        second.stderr
    );
    assert!(
        second.stderr.contains("resumes"),
        "{}: the second run did not find its registration:\n{}",
        example.name(),
        second.stderr
    );
}

#[sqlx::test]
async fn the_python_example_prints_every_event_once_and_its_acks_hold(pool: PgPool) {
    consumes_every_event_once(Example::Python, pool).await;
}

#[sqlx::test]
async fn the_typescript_example_prints_every_event_once_and_its_acks_hold(pool: PgPool) {
    consumes_every_event_once(Example::TypeScript, pool).await;
}

/// A following example: its output lines on channels; killed on drop if still running.
struct Following {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

impl Following {
    fn start(mut cmd: Command) -> Self {
        let mut child = cmd.spawn().expect("spawn the example");
        let stdout = lines(child.stdout.take().expect("piped stdout"));
        let stderr = lines(child.stderr.take().expect("piped stderr"));
        Self {
            child,
            stdout,
            stderr,
        }
    }

    fn wait_stderr(&self, text: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(text) => return,
                Ok(_) => {}
                Err(e) => panic!("{text:?} not on stderr within {PATIENCE:?}: {e}"),
            }
        }
    }

    fn next_line(&self) -> String {
        self.stdout
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|e| panic!("no output line within {PATIENCE:?}: {e}"))
    }

    fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "no exit within {PATIENCE:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
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

async fn follows_notify_and_stops_on_sigterm(example: Example, pool: PgPool) {
    let db = database_url(&pool);
    let consumer = format!("example-{}-follow", example.name());
    // A poll interval of ten minutes: only NOTIFY can wake it within the test's patience.
    let cmd = example.command(&db, &consumer, &["--poll-interval", "600"]);
    let follower = tokio::task::spawn_blocking(move || {
        let f = Following::start(cmd);
        f.wait_stderr("listening on rotessa_outbox");
        f
    })
    .await
    .unwrap();
    // Registered before listening: every event committed from here on is delivered.
    let mut follower = follower;
    for key in 1..=3 {
        let id = commit_events(&pool, [key]).await[0];
        let (line, f) = tokio::task::spawn_blocking(move || (follower.next_line(), follower))
            .await
            .unwrap();
        follower = f;
        assert_eq!(line, id.to_string(), "{}", example.name());
    }
    let status = tokio::task::spawn_blocking(move || follower.terminate())
        .await
        .unwrap();
    assert!(
        status.success(),
        "{}: SIGTERM gave {status}",
        example.name()
    );
}

#[sqlx::test]
async fn the_python_example_follows_notify_and_exits_0_on_sigterm(pool: PgPool) {
    follows_notify_and_stops_on_sigterm(Example::Python, pool).await;
}

#[sqlx::test]
async fn the_typescript_example_follows_notify_and_exits_0_on_sigterm(pool: PgPool) {
    follows_notify_and_stops_on_sigterm(Example::TypeScript, pool).await;
}
