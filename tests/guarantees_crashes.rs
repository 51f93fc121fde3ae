//! SPEC.md "Performance and reliability": SIGKILL at random points followed by restart leaves
//! the tables and outbox exactly equal to a clean run, every event exactly once and matching its
//! schema (`schemas/`).
//!
//! The real binary (`rotessa-recon sync --stream all`: clients, customers, settlements,
//! transactions, declines, the reconciliation and payouts, 3 clients) syncs from an in-process
//! simulator with latency into real PostgreSQL (`#[sqlx::test]`). It is SIGKILLed at seeded
//! random points and restarted, then run twice more uninterrupted, in three phases: a first day
//! (the backfill: inserts), then after the simulator's clock moved 12 and 20 more days
//! (transitions: updates). Most kill points are a seeded number of events that must have
//! committed first, polled in the database, plus a random delay of a few milliseconds, so kills
//! land between and inside page transactions after some pages committed; some land during
//! start-up or while committed pages are read again. After each phase the end state must be
//! the clean run's: the same binary, uninterrupted, against a second simulator with the same
//! seed, in the same database before truncation. At the end every killed run is `abandoned`.
//! The simulator's reports disagree for a share of rows (one shows the row days late), and a
//! restarted `sync` reads the transaction report again after the decline report: the lagging
//! views are stale, never a flap. Figures print with `--nocapture`.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use common::daemon::wait_until;
use common::guarantees::{
    EndState, SplitMix64, assert_same, duplicate_events, end_state, flaps, stale_anomalies,
    truncate_rotessa,
};
use common::schemas::assert_outbox_matches_schemas;
use common::{database_url, output_text, run_binary, scalar};
use rotessa_recon::sim::{SimConfig, SimServer};
use sqlx::PgPool;

const SEED: u64 = 20_261_124;
/// About 27,000 of them fall in the transactions window: 30 report pages in 6 windows.
const TRANSACTIONS: u32 = 30_000;
const LATENCY_MS: u64 = 50;
/// Share of rows one of the two reports shows late, and by how many days.
const LAG_RATE: f64 = 0.5;
const LAG_DAYS: u32 = 4;
/// Share of rows Rotessa stops reporting while they are Future (a deleted schedule).
const REMOVAL_RATE: f64 = 0.02;
/// Days the clock moves before each phase: the backfill, then 12 and 20 days of transitions.
const PHASES: [u32; 3] = [0, 12, 20];
const KILLS_PER_PHASE: u32 = 5;
/// Seeds the kill points.
const KILL_SEED: u64 = 0x6b11_1ed5;
/// Waiting for a kill point or a run gives up after this (a hang, not a measurement).
const LIMIT: Duration = Duration::from_secs(120);

async fn simulator(latency_ms: u64) -> SimServer {
    SimServer::start(
        SimConfig {
            seed: SEED,
            transactions: TRANSACTIONS,
            today: NaiveDate::from_ymd_opt(2026, 11, 23).expect("date"),
            latency_ms,
            report_lag_rate: LAG_RATE,
            report_lag_days: LAG_DAYS,
            removal_rate: REMOVAL_RATE,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().expect("address"),
    )
    .await
    .expect("simulator")
}

/// Every stream: clients, customers, settlements, transactions (most of the pages), declines
/// with the reconciliation, and payouts, for 3 clients.
const ARGS: [&str; 3] = ["sync", "--stream", "all"];

/// The binary's environment: the simulator's today, fast retries, a short heartbeat.
fn environment(pool: &PgPool, sim: &SimServer) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", database_url(pool)),
        ("RECON_ROTESSA__BASE_URL", sim.base_url()),
        ("RECON_ROTESSA__API_KEY", sim.api_key().to_owned()),
        ("RECON_SYNC__TODAY", sim.today().to_string()),
        ("RECON_ROTESSA__RETRY__INITIAL_BACKOFF_MS", "1".to_owned()),
        ("RECON_ROTESSA__RETRY__MAX_BACKOFF_MS", "5".to_owned()),
        ("RECON_ROTESSA__RETRY__JITTER", "false".to_owned()),
        ("RECON_ROTESSA__REQUEST_TIMEOUT_SECS", "10".to_owned()),
        ("RECON_SYNC__HEARTBEAT_SECS", "1".to_owned()),
        ("RECON_SYNC__RUN_STALE_SECS", "3".to_owned()),
        ("RECON_LOG__LEVEL", "warn".to_owned()),
    ]
}

/// Runs `sync` to the end (off the runtime's thread, which serves the simulator); it must
/// succeed.
async fn sync_to_the_end(env: &[(&'static str, String)]) {
    let env = env.to_vec();
    let out = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        run_binary(&ARGS, &env)
    })
    .await
    .expect("sync");
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
}

/// A `sync` running in the background; killed and reaped when dropped (a failing test leaves
/// no process behind).
struct Running(Child);

impl Running {
    /// Its exit status, if it has exited.
    fn exited(&mut self) -> Option<ExitStatus> {
        self.0.try_wait().expect("try_wait")
    }

    /// SIGKILL (unless it has exited already); its exit status.
    fn kill(&mut self) -> ExitStatus {
        if self.exited().is_none() {
            self.0.kill().expect("SIGKILL");
        }
        self.0.wait().expect("wait")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `sync` in the background, its output in `log`.
fn spawn_sync(env: &[(&'static str, String)], log: &PathBuf) -> Running {
    let file = std::fs::File::create(log).expect("log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rotessa-recon"));
    cmd.args(ARGS)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("log file"))
        .stderr(file);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Running(cmd.spawn().expect("start rotessa-recon sync"))
}

/// Whether a transaction of the sync has written something and not committed yet (mostly a
/// page transaction in flight), sampled just before a kill.
async fn write_transaction_open(pool: &PgPool) -> bool {
    scalar(
        pool,
        "select count(*) from pg_stat_activity
         where application_name = 'rotessa-recon' and datname = current_database()
           and backend_xid is not null",
    )
    .await
        > 0
}

async fn events(pool: &PgPool) -> i64 {
    scalar(pool, "select count(*) from rotessa.outbox").await
}

/// Where a kill is aimed (then a random delay of milliseconds).
#[derive(Debug, Clone, Copy)]
enum Aim {
    /// At once: start-up, migrations, the clients run, the first fetches.
    StartUp,
    /// Once this many events have committed.
    Events(i64),
    /// Once a run of this stream has started.
    Stream(&'static str),
}

impl Aim {
    async fn reached(self, pool: &PgPool, runs_before: i64) -> bool {
        match self {
            Self::StartUp => true,
            Self::Events(n) => events(pool).await >= n,
            Self::Stream(stream) => sqlx::query_scalar::<_, bool>(
                "select exists (select from rotessa.sync_runs where id > $1 and stream = $2)",
            )
            .bind(runs_before)
            .bind(stream)
            .fetch_one(pool)
            .await
            .expect("runs"),
        }
    }
}

impl std::fmt::Display for Aim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::StartUp => f.write_str("at start"),
            Self::Events(n) => write!(f, "at {n} events"),
            Self::Stream(s) => write!(f, "once {s} started"),
        }
    }
}

/// One kill: where it was aimed and where it landed.
#[derive(Debug)]
struct Kill {
    phase: usize,
    /// Events committed when the process started, and the kill point chosen.
    events_before: i64,
    aim: Aim,
    delay_ms: u64,
    /// Whether the process was still running when SIGKILL reached it.
    landed: bool,
    /// Whether a transaction of the process had written and not yet committed just before.
    writing: bool,
    /// The streams of its runs left `running` (none: killed during start-up).
    interrupted: Vec<String>,
    /// Events committed when it died, and pages the runs it interrupted had committed.
    events_after: i64,
    run_pages: i64,
}

#[sqlx::test]
async fn sigkill_at_random_points_then_restart_ends_as_the_clean_run(pool: PgPool) {
    // The clean run: two uninterrupted `sync`s per phase (a row Rotessa stopped reporting is
    // marked removed at its second complete read, whatever the number of reads before).
    let clean_sim = simulator(0).await;
    let mut clean: Vec<(EndState, i64)> = Vec::new();
    let mut clean_secs = Vec::new();
    for days in PHASES {
        clean_sim.advance(days);
        let started = Instant::now();
        sync_to_the_end(&environment(&pool, &clean_sim)).await;
        sync_to_the_end(&environment(&pool, &clean_sim)).await;
        clean_secs.push(started.elapsed().as_secs_f64());
        let state = end_state(&pool).await;
        assert_eq!(duplicate_events(&pool).await, (0, 0));
        assert_eq!(flaps(&pool).await, Vec::<String>::new(), "no flap");
        assert_outbox_matches_schemas(&pool).await;
        let n = events(&pool).await;
        assert_eq!(n as usize, state.rows("outbox").len());
        clean.push((state, n));
    }
    let first = &clean[0].0;
    assert!(first.rows("transactions").len() > 20_000);
    for phase in 1..PHASES.len() {
        let transitions = clean[phase].1 - clean[phase - 1].1;
        assert!(
            transitions > 1000,
            "phase {phase}: the clock step produced transitions: {transitions} events"
        );
    }
    for (state, _) in &clean {
        assert!(state.rows("status_anomalies").is_empty());
        assert!(state.rows("rejected_records").is_empty());
    }
    let clean_pages = scalar(
        &pool,
        "select max(pages)::bigint from rotessa.sync_runs where status = 'succeeded'",
    )
    .await;
    truncate_rotessa(&pool).await;

    // The same, killed again and again.
    let sim = simulator(LATENCY_MS).await;
    let mut rng = SplitMix64::new(KILL_SEED);
    let mut kills: Vec<Kill> = Vec::new();
    let logs = std::env::temp_dir().join(format!("recon-crashes-{}", std::process::id()));
    std::fs::create_dir_all(&logs).expect("log directory");
    let started = Instant::now();
    for (phase, days) in PHASES.into_iter().enumerate() {
        sim.advance(days);
        let env = environment(&pool, &sim);
        let target = clean[phase].1;
        let mut landed = 0;
        for attempt in 0..KILLS_PER_PHASE + 3 {
            if landed == KILLS_PER_PHASE {
                break;
            }
            let events_before = events(&pool).await;
            let remaining = target - events_before;
            assert!(remaining >= 0, "more events than the clean run: {kills:#?}");
            // First after a seeded share of what is left has committed, plus a few ms (inside
            // the next page's fetch or transaction), the third one possibly during start-up
            // instead; then once the declines runs (the customers runs in the second phase),
            // and once the settlements runs (the payouts run in the third), have started.
            let (aim, delay_ms) = match attempt {
                3 if phase == 1 => (Aim::Stream("customers"), rng.below(60)),
                4 if phase == 2 => (Aim::Stream("payouts"), rng.below(60)),
                3 => (Aim::Stream("declines"), rng.below(60)),
                4 => (Aim::Stream("settlements"), rng.below(60)),
                2 if rng.below(2) == 0 => (Aim::StartUp, rng.below(250)),
                _ if remaining == 0 => (Aim::StartUp, rng.below(250)),
                _ => {
                    let share = rng.below((remaining as u64).div_ceil(3)) as i64;
                    (Aim::Events(events_before + 1 + share), rng.below(40))
                }
            };
            let runs_before =
                scalar(&pool, "select coalesce(max(id), 0) from rotessa.sync_runs").await;
            let log = logs.join(format!("kill-{}.log", kills.len()));
            let mut child = spawn_sync(&env, &log);
            let spawned = Instant::now();
            let mut exited = None;
            while !aim.reached(&pool, runs_before).await {
                if let Some(status) = child.exited() {
                    exited = Some(status);
                    break;
                }
                assert!(
                    spawned.elapsed() < LIMIT,
                    "no kill point in {LIMIT:?}: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let mut writing = false;
            if exited.is_none() {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                if child.exited().is_none() {
                    writing = write_transaction_open(&pool).await;
                }
                exited = Some(child.kill());
            }
            let status = exited.expect("an exit status");
            // The dead process's server sessions finish what they were already sent (a run's
            // insert, a commit) before they notice; read the outcome only once they are gone.
            wait_until("the killed process's sessions end", LIMIT, || async {
                scalar(
                    &pool,
                    "select count(*) from pg_stat_activity
                     where application_name = 'rotessa-recon' and datname = current_database()",
                )
                .await
                    == 0
            })
            .await;
            let landed_now = status.signal() == Some(9);
            if landed_now {
                landed += 1;
            }
            let (interrupted, run_pages) = sqlx::query_as::<_, (Vec<String>, i64)>(
                "select coalesce(array_agg(stream order by id) filter (where status = 'running'),
                                 '{}'),
                        coalesce(sum(pages) filter (where status = 'running'), 0)::bigint
                 from rotessa.sync_runs where id > $1",
            )
            .bind(runs_before)
            .fetch_one(&pool)
            .await
            .expect("pages");
            kills.push(Kill {
                phase,
                events_before,
                aim,
                delay_ms,
                landed: landed_now,
                writing,
                interrupted,
                events_after: events(&pool).await,
                run_pages,
            });
        }
        // Then twice more to the end, and the result is the clean run's.
        sync_to_the_end(&env).await;
        sync_to_the_end(&env).await;
        let state = end_state(&pool).await;
        assert_same(
            &format!("after the kills of phase {phase}"),
            &state,
            &clean[phase].0,
        );
        assert_eq!(
            duplicate_events(&pool).await,
            (0, 0),
            "every event exactly once"
        );
        assert_eq!(flaps(&pool).await, Vec::<String>::new(), "no flap");
        assert_outbox_matches_schemas(&pool).await;
        assert_eq!(events(&pool).await, target);
    }
    // The killed runs' rows: once their heartbeat is older than `sync.run_stale_secs`, the next
    // run marks them abandoned, so none shows as running; that run changes nothing else.
    wait_until("the killed runs' heartbeats are stale", LIMIT, || async {
        scalar(
            &pool,
            "select count(*) from rotessa.sync_runs
             where status = 'running' and heartbeat_at > now() - interval '4 seconds'",
        )
        .await
            == 0
    })
    .await;
    sync_to_the_end(&environment(&pool, &sim)).await;
    let last = &clean[PHASES.len() - 1];
    assert_same("after one more run", &end_state(&pool).await, &last.0);
    // Every event, of every phase, matches its schema (schemas/<type>.v<event_version>.json).
    let by_type = assert_outbox_matches_schemas(&pool).await;
    let runs: Vec<(String, i64)> = sqlx::query_as(
        "select status, count(*) from rotessa.sync_runs group by status order by status",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let interrupted: usize = kills.iter().map(|k| k.interrupted.len()).sum();
    assert!(
        runs.iter()
            .all(|(status, _)| status == "abandoned" || status == "succeeded"),
        "every run either succeeded or was killed: {runs:?}"
    );
    assert_eq!(
        runs.iter()
            .find(|(s, _)| s == "abandoned")
            .map_or(0, |r| r.1),
        interrupted as i64,
        "every killed run, and only those, is abandoned"
    );
    // A restarted sync read the transaction report again after the decline report, and found
    // lagging views stale.
    let stale = stale_anomalies(&pool).await;
    assert!(stale > 0, "lagging reports were seen stale");
    let crash_secs = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&logs);

    let landed: Vec<&Kill> = kills.iter().filter(|k| k.landed).collect();
    let after_pages = landed.iter().filter(|k| k.run_pages > 0).count();
    let by_stream = |stream: &str| {
        landed
            .iter()
            .filter(|k| k.interrupted.iter().any(|s| s == stream))
            .count()
    };
    let while_writing = landed.iter().filter(|k| k.writing).count();
    let mid_phase = landed
        .iter()
        .filter(|k| k.events_after > k.events_before && k.events_after < clean[k.phase].1)
        .count();
    println!(
        "guarantees_crashes: seed {SEED}, {TRANSACTIONS} simulator transactions ({} in the \
         window, {clean_pages} report pages a run), {LATENCY_MS} ms latency, phases {PHASES:?} days, \
         {:.0}% of rows lagging {LAG_DAYS} days in one report ({stale} stale anomalies after \
         the restarts, 0 flaps)",
        first.rows("transactions").len(),
        LAG_RATE * 100.0
    );
    println!("  events matching their schema, by type: {by_type:?}");
    println!(
        "  clean runs: {} s; events after each: {:?}",
        clean_secs
            .iter()
            .map(|s| format!("{s:.1}"))
            .collect::<Vec<_>>()
            .join(" s, "),
        clean.iter().map(|(_, n)| *n).collect::<Vec<_>>()
    );
    for (i, k) in kills.iter().enumerate() {
        println!(
            "  kill {i:2} phase {}: events {}, kill {} + {} ms; {}{}; {} events \
             committed; interrupted {:?} after {} pages",
            k.phase + 1,
            k.events_before,
            k.aim,
            k.delay_ms,
            if k.landed {
                "SIGKILL landed"
            } else {
                "exited before the kill"
            },
            if k.writing {
                " inside a write transaction"
            } else {
                ""
            },
            k.events_after,
            k.interrupted,
            k.run_pages
        );
    }
    println!(
        "  kills survived: {} (of {} attempts); runs interrupted: transactions {}, declines {}, \
         settlements {}, clients {}, customers {}, payouts {}; {after_pages} after the interrupted run had committed \
         pages, {while_writing} inside an uncommitted write transaction, {mid_phase} after \
         part of the phase's events committed and before the rest; end state identical to \
         the clean run after each phase: rows lost 0, duplicate events 0 ({} events); \
         {crash_secs:.1} s",
        landed.len(),
        kills.len(),
        by_stream("transactions"),
        by_stream("declines"),
        by_stream("settlements"),
        by_stream("clients"),
        by_stream("customers"),
        by_stream("payouts"),
        clean[PHASES.len() - 1].1
    );
    assert!(
        landed.len() >= 10,
        "only {} kills landed: {kills:#?}",
        landed.len()
    );
    assert!(
        mid_phase >= 1,
        "no kill landed between commits of a phase: {kills:#?}"
    );
}
