//! Running the real daemon (`rotessa-recon run`) as a child process: health, metrics, signals.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use rotessa_recon::sim::{SimConfig, SimServer};

/// A daemon process; killed when dropped.
pub struct Daemon {
    pub child: Child,
    /// The HTTP port, read from the log once the daemon has bound it (it binds port 0, so no
    /// other process can take the port between choosing and binding it).
    port: OnceLock<u16>,
    pub log: PathBuf,
}

/// Schedules that never fire while a test runs (midnight on January 1st): a test sets the
/// schedules it needs, so a wall-clock default (every 15 min, hourly) cannot add runs.
const QUIET: &str = "0 0 0 1 1 *";

impl Daemon {
    /// Starts `rotessa-recon run` against `rotessa` and `database`, with `extra` env on top of
    /// fast test settings (short lease, fast retries, only the transactions stream, schedules
    /// that do not fire).
    pub fn spawn(database: &str, rotessa: &str, extra: &[(&str, &str)]) -> Self {
        Self::spawn_with_args(&[], database, rotessa, extra)
    }

    /// [`Daemon::spawn`] with arguments after `run` (`--no-migrate`).
    pub fn spawn_with_args(
        args: &[&str],
        database: &str,
        rotessa: &str,
        extra: &[(&str, &str)],
    ) -> Self {
        static SPAWNED: AtomicUsize = AtomicUsize::new(0);
        let log = std::env::temp_dir().join(format!(
            "recon-daemon-{}-{}.log",
            std::process::id(),
            SPAWNED.fetch_add(1, Ordering::Relaxed)
        ));
        let file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rotessa-recon"));
        cmd.arg("run")
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", database)
            .env("RECON_ROTESSA__BASE_URL", rotessa)
            .env("RECON_ROTESSA__API_KEY", super::API_KEY)
            .env("RECON_ROTESSA__RETRY__INITIAL_BACKOFF_MS", "5")
            .env("RECON_ROTESSA__RETRY__MAX_BACKOFF_MS", "20")
            .env("RECON_HTTP__LISTEN", "127.0.0.1:0")
            .env("RECON_LEASE__TTL_SECS", "3")
            .env("RECON_SYNC__HEARTBEAT_SECS", "1")
            .env("RECON_SYNC__RUN_STALE_SECS", "4")
            .env("RECON_SYNC__TODAY", "2019-03-12")
            .env("RECON_SYNC__TRANSACTIONS__LOOKBACK_DAYS", "0")
            .env("RECON_SYNC__TRANSACTIONS__HORIZON_DAYS", "0")
            .env("RECON_SYNC__TRANSACTIONS__SCHEDULE", QUIET)
            .env("RECON_SYNC__CLIENTS__SCHEDULE", QUIET)
            .env("RECON_SYNC__DECLINES__SCHEDULE", QUIET)
            .env("RECON_SYNC__SETTLEMENTS__SCHEDULE", QUIET)
            .env("RECON_SYNC__CUSTOMERS__SCHEDULE", QUIET)
            .env("RECON_SYNC__PAYOUTS__SCHEDULE", QUIET)
            .env("RECON_OUTBOX__PRUNE_SCHEDULE", QUIET)
            .env("RECON_SYNC__CLIENTS__ENABLED", "false")
            .env("RECON_SYNC__DECLINES__ENABLED", "false")
            .env("RECON_SYNC__SETTLEMENTS__ENABLED", "false")
            .env("RECON_SYNC__CUSTOMERS__ENABLED", "false")
            .env("RECON_SYNC__PAYOUTS__ENABLED", "false")
            .env("RECON_LOG__LEVEL", "info")
            .env("RECON_LOG__FORMAT", "pretty")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start rotessa-recon run");
        Self {
            child,
            port: OnceLock::new(),
            log,
        }
    }

    /// The HTTP port, once the daemon has logged `serving /livez ... addr=127.0.0.1:PORT`.
    fn port(&self) -> Option<u16> {
        if let Some(port) = self.port.get() {
            return Some(*port);
        }
        let log = self.log();
        let line = log.lines().find(|l| l.contains("serving /livez"))?;
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("addr="))?;
        let port: u16 = addr.rsplit(':').next()?.parse().ok()?;
        Some(*self.port.get_or_init(|| port))
    }

    /// `http://127.0.0.1:PORT<path>`, once the daemon has bound its port.
    pub fn url(&self, path: &str) -> Option<String> {
        Some(format!("http://127.0.0.1:{}{path}", self.port()?))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`TERM`, `KILL`, `STOP`, `CONT`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// `/readyz`: status code and JSON body, or `None` if nothing answers.
    pub async fn readyz(&self) -> Option<(u16, serde_json::Value)> {
        let url = self.url("/readyz")?;
        let response = reqwest::get(url).await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.json().await.ok()?))
    }

    /// The role `/readyz` reports.
    pub async fn role(&self) -> Option<String> {
        let (_, body) = self.readyz().await?;
        body["role"].as_str().map(str::to_owned)
    }

    /// `/metrics` text.
    pub async fn metrics(&self) -> String {
        let Some(url) = self.url("/metrics") else {
            return String::new();
        };
        match reqwest::get(url).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// `/livez` answers.
    pub async fn live(&self) -> bool {
        let Some(url) = self.url("/livez") else {
            return false;
        };
        reqwest::get(url)
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    /// Waits for the process to exit, up to `limit`, without blocking the runtime (an
    /// in-process simulator may have to answer the daemon's last requests meanwhile).
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A simulator whose transactions all fall on the daemon's window in these tests (today,
/// 2019-03-12), each request answered after `latency_ms`.
pub async fn simulator(transactions: u32, latency_ms: u64) -> SimServer {
    let config = SimConfig {
        transactions,
        customers: 200,
        today: NaiveDate::from_ymd_opt(2019, 3, 12).expect("date"),
        history_days: 0,
        future_days: 0,
        api_key: super::API_KEY.to_owned(),
        latency_ms,
        retry_after_secs: 0,
        ..SimConfig::default()
    };
    SimServer::start(config, "127.0.0.1:0".parse().expect("address"))
        .await
        .expect("start the simulator")
}

/// Polls `condition` until it holds; panics with `what` after `limit`.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !condition().await {
        assert!(start.elapsed() < limit, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
