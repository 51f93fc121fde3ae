//! Configuration: `config/default.toml` (compiled in), an optional `--config` file, the
//! `DATABASE_URL` / `ROTESSA_API_KEY` aliases, then `RECON_<SECTION>__<KEY>` variables, each
//! layer over the ones before it (see [`Settings::load_from`]). The API key and the database URL
//! may instead come from files (`rotessa.api_key_file`, `database.url_file`: Kubernetes secrets,
//! systemd credentials).
//!
//! Secrets are held in `secrecy`'s [`SecretString`] (zeroed when dropped) inside [`Secret`],
//! [`DatabaseUrl`] and [`BrokerUrl`], whose `Debug`, `Display` and `Serialize` redact them, so
//! that printing, logging or `check` never shows them; `expose()` is the one way to read them.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveDate;
use chrono_tz::Tz;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The documented defaults; the file in the repository is the reference for every key.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

const REDACTED: &str = "[redacted]";

/// Rotessa's time zone unless `sync.time_zone` says otherwise: Central Time, where Rotessa (based
/// in Manitoba) runs its banking day.
pub const DEFAULT_TIME_ZONE: Tz = Tz::America__Winnipeg;

/// Why the configuration cannot be used; the message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A layer could not be read or does not fit the settings (a missing `--config` file, a
    /// value of the wrong type, an unknown key).
    #[error("cannot read configuration: {0}")]
    Load(#[from] config::ConfigError),
    /// `rotessa.api_key_file` could not be read (the message names the file, never its content).
    #[error("cannot read rotessa.api_key_file {path}: {source}")]
    ApiKeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `database.url_file` could not be read (the message names the file, never its content).
    #[error("cannot read database.url_file {path}: {source}")]
    DatabaseUrlFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `http.token_file` could not be read.
    #[error("cannot read http.token_file {path}: {source}")]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A command that talks to Rotessa has no key.
    #[error(
        "no Rotessa API key: set ROTESSA_API_KEY (or RECON_ROTESSA__API_KEY), or rotessa.api_key_file"
    )]
    MissingApiKey,
    /// The effective configuration could not be rendered as TOML (`check`).
    #[error("cannot print the configuration as TOML: {0}")]
    Render(#[from] toml::ser::Error),
    /// Values that are there but wrong, each with what to fix.
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

/// Every setting of the program, after layering and validation.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub rotessa: RotessaSettings,
    pub database: DatabaseSettings,
    pub sync: SyncSettings,
    pub lease: LeaseSettings,
    pub http: HttpSettings,
    pub log: LogSettings,
    pub outbox: OutboxSettings,
    pub reconciliation: ReconciliationSettings,
    pub relay: RelaySettings,
}

/// The relay from the outbox to NATS JetStream or RabbitMQ (README "The relay"): run by the
/// daemon when `enabled`, or on its own by `outbox relay`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RelaySettings {
    /// Run the relay inside `rotessa-recon run`.
    pub enabled: bool,
    /// `nats://HOST:PORT` or `amqp://USER:PASS@HOST:PORT/VHOST` (its password redacted
    /// wherever shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<BrokerUrl>,
    /// The registered outbox consumer the relay reads as.
    pub consumer: String,
    /// Events per outbox poll and broker batch.
    pub batch: u32,
    /// JetStream: the stream, created when missing.
    pub nats_stream: String,
    /// JetStream subjects are `<subject_prefix>.<event type>`.
    pub subject_prefix: String,
    /// JetStream's duplicate window for a stream the relay creates.
    pub nats_duplicate_window_secs: u64,
    /// RabbitMQ: the durable topic exchange (routing key = the event type).
    pub amqp_exchange: String,
    /// A failed batch is published again after this, doubling up to `max_backoff_ms`.
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

/// A broker URL whose password is redacted whenever it is shown (`Debug`, `Serialize`).
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct BrokerUrl(SecretString);

impl BrokerUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self(SecretString::from(url.into()))
    }

    /// The URL with its password, for connecting.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl ExposeSecret<str> for BrokerUrl {
    fn expose_secret(&self) -> &str {
        self.expose()
    }
}

impl PartialEq for BrokerUrl {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for BrokerUrl {}

/// `scheme://user:[redacted]@host/path` for a URL with a password, `scheme://[redacted]@host`
/// for one with a token alone (NATS token auth); other URLs as they are. The credentials run
/// to the last `@`, so a password holding `/` or `@` is redacted whole.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:{REDACTED}@{host}"),
            None => format!("{scheme}://{REDACTED}@{host}"),
        },
        None => url.to_owned(),
    }
}

impl fmt::Debug for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(self.expose()))
    }
}

impl Serialize for BrokerUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&redact_url(self.expose()))
    }
}

/// How to reach Rotessa and how hard to try.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RotessaSettings {
    pub base_url: String,
    pub api_version: ApiVersion,
    #[serde(default)]
    pub api_key: Option<Secret>,
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    pub clients: ClientSelection,
    pub concurrency: usize,
    pub page_size: usize,
    pub max_pages: u32,
    pub prefetch_pages: usize,
    pub request_timeout_secs: u64,
    pub connect_timeout_secs: u64,
    pub retry: RetrySettings,
}

/// The retry policy for transient API failures (SPEC.md "Retry policy").
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySettings {
    pub max_retries: usize,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    pub jitter: bool,
    pub max_retry_after_secs: u64,
}

/// Which Rotessa API the account speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiVersion {
    /// The platform API: clients, per-client reports, settlements.
    V2,
    /// A single-merchant account: the transaction report only.
    V1,
}

/// Which clients the per-client streams cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientSelection {
    /// Every client the platform lists (`GET /v2/clients`).
    All,
    /// Only these client ids.
    Ids(Vec<i64>),
}

/// Where the database is.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// The PostgreSQL URL (also `DATABASE_URL`); its password is redacted wherever shown.
    pub url: DatabaseUrl,
    /// A file holding the URL instead (a Kubernetes secret, a systemd credential): read when the
    /// settings load, a trailing newline dropped. Set it or `url` (or `DATABASE_URL`), not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_file: Option<PathBuf>,
    pub max_connections: u32,
    pub acquire_timeout_secs: u64,
    pub page_retries: u32,
    pub lock_timeout_secs: u64,
    pub idle_in_transaction_timeout_secs: u64,
    /// A PEM file of the CA(s) that signed the server's certificate, for `sslmode=verify-ca` or
    /// `verify-full` against a private CA (the URL's `sslrootcert` does the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// Windows, schedules and cursors of the six streams.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSettings {
    /// Rotessa's time zone, an IANA name: "today" is the date there.
    pub time_zone: String,
    #[serde(default)]
    pub today: Option<NaiveDate>,
    #[serde(default)]
    pub backfill_from: Option<NaiveDate>,
    pub page_cache: bool,
    pub run_stale_secs: u64,
    pub heartbeat_secs: u64,
    /// Finished runs older than this many days are pruned (each stream and client keeps its
    /// latest run and latest failure).
    pub runs_retention_days: u32,
    pub transactions: StreamSettings,
    pub declines: StreamSettings,
    pub settlements: StreamSettings,
    pub clients: StreamSettings,
    pub customers: StreamSettings,
    pub payouts: StreamSettings,
}

impl SyncSettings {
    /// Rotessa's time zone (`sync.time_zone`, checked when the settings load).
    pub fn time_zone(&self) -> Tz {
        self.time_zone.parse().unwrap_or(DEFAULT_TIME_ZONE)
    }
}

/// One stream's schedule and window; keys a stream does not use keep their defaults.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSettings {
    pub schedule: String,
    pub enabled: bool,
    #[serde(default)]
    pub lookback_days: u32,
    #[serde(default)]
    pub horizon_days: u32,
    #[serde(default = "default_window_days")]
    pub window_days: u32,
    #[serde(default)]
    pub overlap_days: u32,
    /// Customers only: keep phone numbers and addresses (`sync.customers.store_contact`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_contact: Option<bool>,
}

fn default_window_days() -> u32 {
    31
}

/// Reading and retaining the outbox (docs/outbox-consumers.md): how consumers in this crate
/// wait for events, and what the daemon's periodic prune deletes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxSettings {
    /// Events are kept at least this many days, and until every registered consumer acked them.
    pub retention_days: u32,
    /// Events deleted per statement by a prune.
    pub prune_batch: u32,
    /// With no registered consumer, prune old events anyway (CDC-only deployments).
    pub prune_without_consumers: bool,
    /// When the daemon prunes (six-field cron, UTC).
    pub prune_schedule: String,
    /// Wake consumers with `LISTEN rotessa_outbox`; off behind PgBouncer transaction pooling.
    pub listen: bool,
    /// Consumers poll at least this often, whatever LISTEN says.
    pub poll_interval_ms: u64,
    /// Events fetched per poll.
    pub poll_batch: u32,
}

impl OutboxSettings {
    /// The fallback polling interval.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }
}

/// How the reconciliation reads Rotessa's settlements: Rotessa does not document on which
/// settlement date a chargeback counts, so the model is a setting.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReconciliationSettings {
    pub chargeback_on: ChargebackOn,
}

/// On which settlement date a chargeback counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargebackOn {
    /// On the day it happened (its `decline_date`); the transaction still counts as approved on
    /// its own settlement date (that day's money moved).
    DeclineDate,
    /// On the transaction's own settlement date, instead of counting there as approved.
    SettlementDate,
}

impl ChargebackOn {
    /// The setting's spelling, as `rotessa.reconciliation_settings` stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeclineDate => "decline_date",
            Self::SettlementDate => "settlement_date",
        }
    }
}

/// The daemon's single-writer lease.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseSettings {
    pub ttl_secs: u64,
}

/// The health and metrics listener of `run`, and the reconciliation page it may serve.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub listen: String,
    /// Serve the reconciliation report at `/reconciliation`: an account's finances, so off
    /// unless set, and then only to requests bearing the token of `token_file`.
    pub reconciliation_page: bool,
    /// The file holding the bearer token `/reconciliation` requires (read at start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// The token read from `token_file` by `run` ([`HttpSettings::read_page_token`]); never
    /// printed.
    #[serde(skip)]
    pub token: Option<Secret>,
}

/// The shortest token `http.token_file` may hold: a guessable token would open the page.
pub const MIN_TOKEN_LEN: usize = 16;

/// Log output, and traces (docs/deployment.md "Traces").
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `pretty` or `json` lines on stderr.
    pub format: LogFormat,
    /// An EnvFilter directive for log lines and spans (`RUST_LOG` wins): traces need `info`
    /// (the default) or finer for the daemon's spans.
    pub level: String,
    /// The OTLP/HTTP (protobuf) endpoint of a collector, e.g. `http://127.0.0.1:4318`; spans are
    /// posted to `<endpoint>/v1/traces`. Empty: no traces (the default).
    pub otlp_endpoint: String,
    /// `service.name` of the exported spans, and `service` on every JSON log line.
    pub service_name: String,
}

impl LogSettings {
    /// Settings for a command that runs without the user's configuration (`sim`): pretty
    /// lines at `info`, no traces.
    pub fn plain() -> Self {
        Self {
            format: LogFormat::Pretty,
            level: "info".to_owned(),
            otlp_endpoint: String::new(),
            service_name: DEFAULT_SERVICE_NAME.to_owned(),
        }
    }

    /// The URL spans are posted to, or `None` when traces are off: `otlp_endpoint` with
    /// `/v1/traces` appended unless it already ends so.
    pub fn otlp_traces_url(&self) -> Option<String> {
        let base = self.otlp_endpoint.trim().trim_end_matches('/');
        if base.is_empty() {
            None
        } else if base.ends_with("/v1/traces") {
            Some(base.to_owned())
        } else {
            Some(format!("{base}/v1/traces"))
        }
    }

    /// What is wrong with the trace settings, each as a message naming the key.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(url) = self.otlp_traces_url() {
            match reqwest::Url::parse(&url) {
                Ok(u) if u.scheme() != "http" && u.scheme() != "https" => problems.push(format!(
                    "log.otlp_endpoint {:?} is not an http(s) URL (e.g. http://127.0.0.1:4318)",
                    self.otlp_endpoint
                )),
                Ok(u) if !u.username().is_empty() || u.password().is_some() => problems.push(
                    "log.otlp_endpoint must not hold credentials (they would be printed by \
                     `check`): pass them as headers in OTEL_EXPORTER_OTLP_HEADERS"
                        .into(),
                ),
                Ok(_) => {}
                Err(e) => problems.push(format!(
                    "log.otlp_endpoint {:?} is not a URL ({e}; e.g. http://127.0.0.1:4318)",
                    self.otlp_endpoint
                )),
            }
        }
        if self.service_name.trim().is_empty() {
            problems.push("log.service_name is empty (e.g. \"rotessa-recon\")".into());
        }
        problems
    }
}

/// `log.service_name` unless configured otherwise.
pub const DEFAULT_SERVICE_NAME: &str = "rotessa-recon";

/// `pretty` for people, `json` for collectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

impl Settings {
    /// Loads the layered configuration from the process environment.
    pub fn load(config_file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::load_from(config_file, &env)
    }

    /// Loads the layered configuration with `env` standing in for the process environment.
    ///
    /// Each layer wins over the ones before it: the defaults (`config/default.toml`), the
    /// `--config` file, the `DATABASE_URL` / `ROTESSA_API_KEY` aliases (empty ones ignored), then
    /// `RECON_<SECTION>__<KEY>` variables. Then `rotessa.api_key_file` and `database.url_file`
    /// are read, each refused beside a value set directly in any layer.
    pub fn load_from(
        config_file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let alias = |name: &str| env.get(name).filter(|v| !v.is_empty()).cloned();
        let aliases = config::Config::builder()
            .set_override_option("database.url", alias("DATABASE_URL"))?
            .set_override_option("rotessa.api_key", alias("ROTESSA_API_KEY"))?
            .build()?;
        let recon_env: config::Map<String, String> = env
            .iter()
            .filter(|(k, _)| k.starts_with("RECON_"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // What the operator set, over no defaults: tells a URL set directly from the default.
        let mut user = config::Config::builder();
        if let Some(path) = config_file {
            user = user.add_source(config::File::from(path).required(true));
        }
        let user = user
            .add_source(aliases)
            .add_source(
                config::Environment::with_prefix("RECON")
                    .prefix_separator("_")
                    .separator("__")
                    .source(Some(recon_env)),
            )
            .build()?;
        let url_set = user.get::<String>("database.url").is_ok();
        let mut settings: Settings = config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULT_TOML,
                config::FileFormat::Toml,
            ))
            .add_source(user)
            .build()?
            .try_deserialize()?;
        settings.resolve_api_key()?;
        settings.resolve_database_url(url_set)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Reads `database.url_file` into `database.url`; `url_set` says whether a layer other than
    /// the defaults set `database.url` (then both are set: an error, as for the API key).
    fn resolve_database_url(&mut self, url_set: bool) -> Result<(), ConfigError> {
        let Some(path) = self.database.url_file.clone() else {
            return Ok(());
        };
        if url_set {
            return Err(ConfigError::Invalid(vec![
                "both database.url (or DATABASE_URL, RECON_DATABASE__URL) and database.url_file \
                 are set: keep one"
                    .into(),
            ]));
        }
        let text =
            std::fs::read_to_string(&path).map_err(|source| ConfigError::DatabaseUrlFile {
                path: path.clone(),
                source,
            })?;
        let url = text.trim_end_matches(['\r', '\n']);
        if url.trim().is_empty() {
            return Err(ConfigError::Invalid(vec![format!(
                "database.url_file {} is empty",
                path.display()
            )]));
        }
        self.database.url = DatabaseUrl::new(url);
        Ok(())
    }

    /// Reads `rotessa.api_key_file` into `rotessa.api_key`.
    fn resolve_api_key(&mut self) -> Result<(), ConfigError> {
        let Some(path) = self.rotessa.api_key_file.clone() else {
            return Ok(());
        };
        if self.rotessa.api_key.is_some() {
            return Err(ConfigError::Invalid(vec![
                "both rotessa.api_key and rotessa.api_key_file are set: keep one".into(),
            ]));
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|source| ConfigError::ApiKeyFile { path, source })?;
        self.rotessa.api_key = Some(Secret::new(text.trim_end_matches(['\r', '\n'])));
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let r = &self.rotessa;
        match reqwest::Url::parse(&r.base_url) {
            Ok(url) if url.scheme() == "https" || url.scheme() == "http" => {}
            _ => problems.push(format!(
                "rotessa.base_url {:?} is not an http(s) URL (e.g. https://api.rotessa.com)",
                r.base_url
            )),
        }
        if r.api_key.as_ref().is_some_and(|k| k.expose().is_empty()) {
            problems.push("rotessa.api_key is empty".into());
        }
        for (name, value) in [
            ("rotessa.concurrency", r.concurrency as u64),
            ("rotessa.page_size", r.page_size as u64),
            ("rotessa.max_pages", u64::from(r.max_pages)),
            ("rotessa.prefetch_pages", r.prefetch_pages as u64),
            ("rotessa.request_timeout_secs", r.request_timeout_secs),
            ("rotessa.connect_timeout_secs", r.connect_timeout_secs),
            (
                "database.max_connections",
                u64::from(self.database.max_connections),
            ),
            ("lease.ttl_secs", self.lease.ttl_secs),
            ("sync.heartbeat_secs", self.sync.heartbeat_secs),
            ("sync.run_stale_secs", self.sync.run_stale_secs),
            (
                "sync.runs_retention_days",
                u64::from(self.sync.runs_retention_days),
            ),
            ("outbox.prune_batch", u64::from(self.outbox.prune_batch)),
            ("outbox.poll_interval_ms", self.outbox.poll_interval_ms),
            ("outbox.poll_batch", u64::from(self.outbox.poll_batch)),
        ] {
            if value == 0 {
                problems.push(format!("{name} must be at least 1"));
            }
        }
        if self.sync.run_stale_secs <= 2 * self.sync.heartbeat_secs {
            problems.push(format!(
                "sync.run_stale_secs ({}) must be more than twice sync.heartbeat_secs ({}), or live runs would be marked abandoned",
                self.sync.run_stale_secs, self.sync.heartbeat_secs
            ));
        }
        if let Err(e) = self.sync.time_zone.parse::<Tz>() {
            problems.push(format!(
                "sync.time_zone {:?} is not an IANA time zone name ({e}; e.g. \"America/Winnipeg\")",
                self.sync.time_zone
            ));
        }
        match self.database.url.connect_options() {
            Err(e) => problems.push(match &self.database.url_file {
                // The error may quote the URL: name the file only.
                Some(path) => format!(
                    "database.url_file {} does not hold a PostgreSQL URL (postgres://...)",
                    path.display()
                ),
                None => format!("database.url is not a PostgreSQL URL: {e}"),
            }),
            Ok(options) => {
                if let Some(ca) = &self.database.ca_file {
                    use sqlx::postgres::PgSslMode;
                    if !matches!(
                        options.get_ssl_mode(),
                        PgSslMode::VerifyCa | PgSslMode::VerifyFull
                    ) {
                        problems.push(
                            "database.ca_file is only used with sslmode=verify-full (or verify-ca) \
                             in database.url: add it, or the CA would be silently ignored"
                                .into(),
                        );
                    }
                    if !ca.is_file() {
                        problems.push(format!(
                            "database.ca_file {} is not a readable file",
                            ca.display()
                        ));
                    }
                }
            }
        }
        for (name, stream) in self.sync.streams() {
            if stream.window_days == 0 {
                problems.push(format!("sync.{name}.window_days must be at least 1"));
            }
            if let Err(e) = crate::cron::validate(&stream.schedule) {
                problems.push(format!(
                    "sync.{name}.schedule {:?}: {e} (six fields, seconds first, e.g. \"0 */15 * * * *\")",
                    stream.schedule
                ));
            }
            if name != "customers" && stream.store_contact.is_some() {
                problems.push(format!(
                    "sync.{name}.store_contact: only the customers stream stores contact details"
                ));
            }
        }
        if self.relay.batch == 0 || self.relay.batch > i32::MAX as u32 {
            problems.push("relay.batch must be between 1 and 2147483647".into());
        }
        if self.relay.enabled && self.relay.to.is_none() {
            problems.push(
                "relay.enabled needs relay.to (nats://HOST:PORT or amqp://USER:PASS@HOST:PORT/VHOST)"
                    .into(),
            );
        }
        if self.relay.consumer.is_empty() {
            problems.push("relay.consumer is empty".into());
        }
        if let Err(e) = crate::cron::validate(&self.outbox.prune_schedule) {
            problems.push(format!(
                "outbox.prune_schedule {:?}: {e} (six fields, seconds first, e.g. \"0 30 * * * *\")",
                self.outbox.prune_schedule
            ));
        }
        for (name, value) in [
            ("outbox.prune_batch", self.outbox.prune_batch),
            ("outbox.poll_batch", self.outbox.poll_batch),
        ] {
            if value > i32::MAX as u32 {
                problems.push(format!("{name} must be at most {}", i32::MAX));
            }
        }
        if self.http.listen.parse::<SocketAddr>().is_err() {
            problems.push(format!(
                "http.listen {:?} is not an address such as 127.0.0.1:9090",
                self.http.listen
            ));
        }
        if self.http.reconciliation_page && self.http.token_file.is_none() {
            problems.push(
                "http.reconciliation_page needs http.token_file (a file holding the bearer token \
                 the page requires)"
                    .into(),
            );
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            problems.push(format!("log.level {:?}: {e}", self.log.level));
        }
        problems.extend(self.log.problems());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// The API key, for commands that talk to Rotessa.
    pub fn api_key(&self) -> Result<&Secret, ConfigError> {
        self.rotessa
            .api_key
            .as_ref()
            .ok_or(ConfigError::MissingApiKey)
    }

    /// The effective configuration as TOML, secrets redacted (`check`): the settings'
    /// `Serialize` writes `[redacted]` for every secret, and the `toml` crate does the rest.
    pub fn to_redacted_toml(&self) -> Result<String, ConfigError> {
        Ok(toml::to_string_pretty(self)?)
    }
}

impl SyncSettings {
    /// The streams by name, in the order the daemon runs them.
    pub fn streams(&self) -> [(&'static str, &StreamSettings); 6] {
        [
            ("clients", &self.clients),
            ("customers", &self.customers),
            ("transactions", &self.transactions),
            ("declines", &self.declines),
            ("settlements", &self.settlements),
            ("payouts", &self.payouts),
        ]
    }
}

impl HttpSettings {
    /// Reads `http.token_file` when the reconciliation page is on (only `run` does: the file may
    /// be a credential only the service can read). The token must be at least
    /// [`MIN_TOKEN_LEN`] characters without spaces (a trailing newline is dropped).
    pub fn read_page_token(&self) -> Result<Option<Secret>, ConfigError> {
        let Some(path) = self.token_file.clone().filter(|_| self.reconciliation_page) else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::TokenFile {
            path: path.clone(),
            source,
        })?;
        let token = text.trim_end_matches(['\r', '\n']);
        if token.chars().count() < MIN_TOKEN_LEN || token.chars().any(char::is_whitespace) {
            return Err(ConfigError::Invalid(vec![format!(
                "http.token_file {}: the token must be at least {MIN_TOKEN_LEN} characters without \
                 spaces (e.g. `openssl rand -hex 32 > {}`)",
                path.display(),
                path.display()
            )]));
        }
        Ok(Some(Secret::new(token)))
    }
}

impl RotessaSettings {
    /// Request timeout as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// Connect timeout as a duration.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }
}

/// A value that must never be printed: `Debug`, `Display` and `Serialize` show `[redacted]`.
/// A [`SecretString`] underneath, zeroed when dropped.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl ExposeSecret<str> for Secret {
    fn expose_secret(&self) -> &str {
        self.expose()
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

/// A PostgreSQL URL whose password is redacted whenever it is shown (`Debug`, `Display`,
/// `Serialize`); a [`SecretString`] underneath, zeroed when dropped.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(SecretString);

impl DatabaseUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self(SecretString::from(url.into()))
    }

    /// The URL with its password, for connecting.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The password, if the URL carries one (so callers can scrub it from error text).
    pub fn password(&self) -> Option<String> {
        let url = reqwest::Url::parse(self.expose()).ok()?;
        let from_userinfo = url.password().map(|p| p.to_owned());
        from_userinfo.or_else(|| {
            url.query_pairs()
                .find(|(k, _)| k == "password")
                .map(|(_, v)| v.into_owned())
        })
    }

    /// Connection options parsed from the URL.
    pub fn connect_options(&self) -> Result<sqlx::postgres::PgConnectOptions, sqlx::Error> {
        self.expose().parse()
    }

    /// The URL with any password replaced by `[redacted]`.
    pub fn redacted(&self) -> String {
        let Ok(mut url) = reqwest::Url::parse(self.expose()) else {
            return REDACTED.to_owned();
        };
        if url.password().is_some() {
            let _ = url.set_password(Some(REDACTED));
        }
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" {
                    REDACTED.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        if pairs.iter().any(|(k, _)| k == "password") {
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        url.to_string().replace("%5Bredacted%5D", REDACTED)
    }
}

impl ExposeSecret<str> for DatabaseUrl {
    fn expose_secret(&self) -> &str {
        self.expose()
    }
}

impl PartialEq for DatabaseUrl {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for DatabaseUrl {}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for ClientSelection {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            One(i64),
            List(Vec<i64>),
        }
        match Raw::deserialize(d)? {
            Raw::One(id) => Ok(Self::Ids(vec![id])),
            Raw::List(ids) if ids.is_empty() => Err(serde::de::Error::custom(
                "rotessa.clients is an empty list; use \"all\" or client ids",
            )),
            Raw::List(ids) => Ok(Self::Ids(ids)),
            Raw::Text(text) if text.trim().eq_ignore_ascii_case("all") => Ok(Self::All),
            Raw::Text(text) => text
                .split(',')
                .map(|part| part.trim().parse::<i64>())
                .collect::<Result<Vec<_>, _>>()
                .map(Self::Ids)
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "rotessa.clients {text:?}: expected \"all\" or client ids such as \"1234,5678\""
                    ))
                }),
        }
    }
}

impl Serialize for ClientSelection {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::All => s.serialize_str("all"),
            Self::Ids(ids) => ids.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load_and_are_documented_values() {
        let s = Settings::load_from(None, &env(&[])).unwrap();
        assert_eq!(s.rotessa.api_version, ApiVersion::V2);
        assert_eq!(s.rotessa.clients, ClientSelection::All);
        assert_eq!(s.sync.transactions.lookback_days, 100);
        assert_eq!(s.sync.transactions.horizon_days, 60);
        assert_eq!(s.rotessa.retry.max_retries, 4);
        assert!(s.rotessa.api_key.is_none());
        for (name, stream) in s.sync.streams() {
            assert!(crate::cron::validate(&stream.schedule).is_ok(), "{name}");
        }
        assert_eq!(s.sync.customers.store_contact, Some(false));
        assert_eq!(s.sync.payouts.horizon_days, 60);
        let err = Settings::load_from(
            None,
            &env(&[("RECON_SYNC__PAYOUTS__STORE_CONTACT", "true")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("sync.payouts.store_contact"), "{err}");
        let s = Settings::load_from(
            None,
            &env(&[("RECON_SYNC__CUSTOMERS__STORE_CONTACT", "true")]),
        )
        .unwrap();
        assert_eq!(s.sync.customers.store_contact, Some(true));
        assert_eq!(s.outbox.retention_days, 30);
        assert!(!s.outbox.prune_without_consumers);
        assert!(s.outbox.listen);
    }

    #[test]
    fn trace_settings_are_validated() {
        let s = Settings::load_from(None, &env(&[])).unwrap();
        assert_eq!(s.log.otlp_traces_url(), None);
        assert_eq!(s.log.service_name, DEFAULT_SERVICE_NAME);
        let s = Settings::load_from(
            None,
            &env(&[("RECON_LOG__OTLP_ENDPOINT", "http://collector:4318/")]),
        )
        .unwrap();
        assert_eq!(
            s.log.otlp_traces_url().as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        let err = Settings::load_from(
            None,
            &env(&[
                ("RECON_LOG__OTLP_ENDPOINT", "collector:4318"),
                ("RECON_LOG__SERVICE_NAME", " "),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("log.otlp_endpoint"), "{err}");
        assert!(err.contains("log.service_name is empty"), "{err}");
        let err = Settings::load_from(
            None,
            &env(&[("RECON_LOG__OTLP_ENDPOINT", "https://user:pw@collector:4318")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("OTEL_EXPORTER_OTLP_HEADERS"), "{err}");
        assert!(!err.contains("pw@"), "{err}");
    }

    #[test]
    fn outbox_settings_are_validated() {
        let err = Settings::load_from(
            None,
            &env(&[
                ("RECON_OUTBOX__PRUNE_BATCH", "0"),
                ("RECON_OUTBOX__POLL_INTERVAL_MS", "0"),
                ("RECON_OUTBOX__PRUNE_SCHEDULE", "hourly"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("outbox.prune_batch must be at least 1"),
            "{err}"
        );
        assert!(
            err.contains("outbox.poll_interval_ms must be at least 1"),
            "{err}"
        );
        assert!(err.contains("outbox.prune_schedule"), "{err}");
    }

    #[test]
    fn env_layers_win_and_aliases_apply() {
        let s = Settings::load_from(
            None,
            &env(&[
                ("DATABASE_URL", "postgres://u:pw@db:5432/x"),
                ("ROTESSA_API_KEY", "k-alias"),
                ("RECON_ROTESSA__BASE_URL", "http://127.0.0.1:1"),
                ("RECON_SYNC__TRANSACTIONS__LOOKBACK_DAYS", "7"),
                ("RECON_ROTESSA__CLIENTS", "12,34"),
                ("RECON_SYNC__TODAY", "2026-01-05"),
            ]),
        )
        .unwrap();
        assert_eq!(s.database.url.expose(), "postgres://u:pw@db:5432/x");
        assert_eq!(s.rotessa.api_key.as_ref().unwrap().expose(), "k-alias");
        assert_eq!(s.rotessa.base_url, "http://127.0.0.1:1");
        assert_eq!(s.sync.transactions.lookback_days, 7);
        assert_eq!(s.rotessa.clients, ClientSelection::Ids(vec![12, 34]));
        assert_eq!(s.sync.today, NaiveDate::from_ymd_opt(2026, 1, 5));

        let s = Settings::load_from(
            None,
            &env(&[
                ("ROTESSA_API_KEY", "k-alias"),
                ("RECON_ROTESSA__API_KEY", "k-recon"),
            ]),
        )
        .unwrap();
        assert_eq!(s.rotessa.api_key.unwrap().expose(), "k-recon");
    }

    #[test]
    fn api_key_file_is_read_and_trimmed() {
        let dir = std::env::temp_dir().join(format!("recon-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key");
        std::fs::write(&path, "from-file\n").unwrap();
        let s = Settings::load_from(
            None,
            &env(&[("RECON_ROTESSA__API_KEY_FILE", path.to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(s.api_key().unwrap().expose(), "from-file");
    }

    #[test]
    fn secrets_are_redacted_in_debug_and_toml() {
        let s = Settings::load_from(
            None,
            &env(&[
                ("ROTESSA_API_KEY", "sekret-key-123"),
                (
                    "DATABASE_URL",
                    "postgres://me:hunter2@db/x?password=hunter2",
                ),
            ]),
        )
        .unwrap();
        let toml = s.to_redacted_toml().unwrap();
        for text in [format!("{s:?}"), toml.clone()] {
            assert!(!text.contains("sekret-key-123"), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("[redacted]"), "{text}");
        }
        // The print is TOML that reads back, secrets redacted in place.
        let table: toml::Table = toml.parse().unwrap();
        assert_eq!(table["rotessa"]["api_key"].as_str(), Some("[redacted]"));
        assert_eq!(
            table["database"]["url"].as_str(),
            Some("postgres://me:[redacted]@db/x?password=[redacted]")
        );
        assert_eq!(
            table["sync"]["transactions"]["lookback_days"].as_integer(),
            Some(100)
        );
        assert!(
            !table["database"]
                .as_table()
                .unwrap()
                .contains_key("url_file")
        );
    }

    /// A scratch directory of this test process.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("recon-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn precedence_is_defaults_file_aliases_then_recon_variables() {
        let dir = scratch("precedence");
        let file = dir.join("config.toml");
        std::fs::write(
            &file,
            "[rotessa]\napi_key = \"k-file\"\n[database]\nurl = \"postgres://file@db/f\"\n\
             max_connections = 3\n",
        )
        .unwrap();
        let load = |pairs: &[(&str, &str)]| Settings::load_from(Some(&file), &env(pairs)).unwrap();

        let s = load(&[]);
        assert_eq!(s.rotessa.api_key.as_ref().unwrap().expose(), "k-file");
        assert_eq!(s.database.url.expose(), "postgres://file@db/f");
        assert_eq!(s.database.max_connections, 3);
        assert_eq!(s.database.acquire_timeout_secs, 30, "the default stays");

        let s = load(&[
            ("ROTESSA_API_KEY", "k-alias"),
            ("DATABASE_URL", "postgres://alias@db/a"),
        ]);
        assert_eq!(s.rotessa.api_key.as_ref().unwrap().expose(), "k-alias");
        assert_eq!(s.database.url.expose(), "postgres://alias@db/a");

        let s = load(&[
            ("ROTESSA_API_KEY", "k-alias"),
            ("DATABASE_URL", "postgres://alias@db/a"),
            ("RECON_ROTESSA__API_KEY", "k-recon"),
            ("RECON_DATABASE__URL", "postgres://recon@db/r"),
        ]);
        assert_eq!(s.rotessa.api_key.as_ref().unwrap().expose(), "k-recon");
        assert_eq!(s.database.url.expose(), "postgres://recon@db/r");

        // An empty alias is ignored, not an empty value.
        let s = load(&[("ROTESSA_API_KEY", ""), ("DATABASE_URL", "")]);
        assert_eq!(s.rotessa.api_key.as_ref().unwrap().expose(), "k-file");
        assert_eq!(s.database.url.expose(), "postgres://file@db/f");
    }

    #[test]
    fn database_url_file_is_read_trimmed_and_redacted() {
        let dir = scratch("url-file");
        let path = dir.join("database-url");
        std::fs::write(&path, "postgres://svc:pw-from-file@db:5432/x\n").unwrap();
        let s = Settings::load_from(
            None,
            &env(&[("RECON_DATABASE__URL_FILE", path.to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(
            s.database.url.expose(),
            "postgres://svc:pw-from-file@db:5432/x"
        );
        let toml = s.to_redacted_toml().unwrap();
        for text in [format!("{s:?}"), toml.clone()] {
            assert!(!text.contains("pw-from-file"), "{text}");
        }
        assert!(toml.contains("url_file = "), "{toml}");
    }

    #[test]
    fn database_url_file_problems_name_the_file_never_its_content() {
        let dir = scratch("url-file-bad");
        let missing = dir.join("missing");
        let err = Settings::load_from(
            None,
            &env(&[("RECON_DATABASE__URL_FILE", missing.to_str().unwrap())]),
        )
        .unwrap_err();
        assert!(
            matches!(err, ConfigError::DatabaseUrlFile { .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("cannot read database.url_file"), "{text}");
        assert!(text.contains(missing.to_str().unwrap()), "{text}");

        let bad = dir.join("bad");
        std::fs::write(&bad, "host=db password=pw-in-bad-file\n").unwrap();
        let text = Settings::load_from(
            None,
            &env(&[("RECON_DATABASE__URL_FILE", bad.to_str().unwrap())]),
        )
        .unwrap_err()
        .to_string();
        assert!(text.contains("does not hold a PostgreSQL URL"), "{text}");
        assert!(!text.contains("pw-in-bad-file"), "{text}");

        let empty = dir.join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let text = Settings::load_from(
            None,
            &env(&[("RECON_DATABASE__URL_FILE", empty.to_str().unwrap())]),
        )
        .unwrap_err()
        .to_string();
        assert!(text.contains("is empty"), "{text}");

        // Beside a URL set directly, in any layer: refused, whichever would win.
        std::fs::write(&bad, "postgres://svc:pw@db/x\n").unwrap();
        for direct in ["DATABASE_URL", "RECON_DATABASE__URL"] {
            let text = Settings::load_from(
                None,
                &env(&[
                    ("RECON_DATABASE__URL_FILE", bad.to_str().unwrap()),
                    (direct, "postgres://other@db/y"),
                ]),
            )
            .unwrap_err()
            .to_string();
            assert!(text.contains("keep one"), "{direct}: {text}");
        }
    }

    #[test]
    fn invalid_values_say_what_to_fix() {
        let err = Settings::load_from(
            None,
            &env(&[
                ("RECON_ROTESSA__BASE_URL", "not a url"),
                ("RECON_ROTESSA__CONCURRENCY", "0"),
                ("RECON_SYNC__CLIENTS__SCHEDULE", "every minute"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("rotessa.base_url"), "{err}");
        assert!(
            err.contains("rotessa.concurrency must be at least 1"),
            "{err}"
        );
        assert!(err.contains("sync.clients.schedule"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = Settings::load_from(None, &env(&[("RECON_ROTESSA__BASEURL", "x")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("baseurl"), "{err}");
    }
}
