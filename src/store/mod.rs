//! PostgreSQL: one module per table, SQL next to the function that runs it. Knows nothing of
//! HTTP. Page writes take a connection inside the page's transaction, so that rows, history,
//! outbox events, rejected rows and run progress commit together.

pub mod anomalies;
pub mod clients;
pub mod copy;
pub mod customers;
pub mod discrepancies;
mod error;
pub mod grants;
pub mod history;
pub mod lease;
pub mod migrations;
pub mod outbox;
pub mod outbox_consumers;
pub mod outbox_parked;
pub mod outbox_retention;
pub mod page_digests;
pub mod payouts;
pub mod reconciliation;
pub mod rejected;
pub mod removals;
pub mod run_retention;
pub mod runs;
pub mod settlements;
pub mod sync_state;
pub mod transactions;

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

pub use error::{Error, ResultExt};

use crate::config::DatabaseSettings;

/// The schema migrations, compiled in (their record's table is pinned in `sqlx.toml`).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The database handle: a connection pool.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
    /// `lock_timeout` and `idle_in_transaction_session_timeout` (milliseconds, as text) for
    /// every write transaction.
    timeouts: (String, String),
}

fn timeouts(settings: &DatabaseSettings) -> (String, String) {
    (
        (settings.lock_timeout_secs * 1000).to_string(),
        (settings.idle_in_transaction_timeout_secs * 1000).to_string(),
    )
}

/// The pool's settings and the server's connection options, from `database.*`.
fn pool_options(settings: &DatabaseSettings) -> Result<(PgPoolOptions, PgConnectOptions), Error> {
    let options = settings
        .url
        .connect_options()
        .map_err(|source| Error::Connect {
            target: describe_target(settings),
            detail: source.to_string(),
        })?
        .application_name("rotessa-recon");
    let options = match &settings.ca_file {
        Some(ca) => options.ssl_root_cert(ca),
        None => options,
    };
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(settings.acquire_timeout_secs));
    Ok((pool, options))
}

impl Store {
    /// Connects a pool and checks that the server answers.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, Error> {
        let (pool_options, options) = pool_options(settings)?;
        let pool = pool_options
            .connect_with(options)
            .await
            .map_err(|source| Error::Connect {
                target: describe_target(settings),
                detail: scrub(&crate::error_chain(&source), settings),
            })?;
        Ok(Self {
            pool,
            timeouts: timeouts(settings),
        })
    }

    /// A pool that connects on first use, for the daemon: it starts (and answers `/livez`) while
    /// the database is still unreachable.
    pub fn connect_lazy(settings: &DatabaseSettings) -> Result<Self, Error> {
        let (pool_options, options) = pool_options(settings)?;
        Ok(Self {
            pool: pool_options.connect_lazy_with(options),
            timeouts: timeouts(settings),
        })
    }

    /// Wraps an existing pool (tests), with the default transaction timeouts.
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            pool,
            timeouts: ("15000".into(), "60000".into()),
        }
    }

    /// The pool, for queries outside a page transaction.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies pending migrations ([`migrations::migrate`]).
    pub async fn migrate(&self) -> Result<(), Error> {
        migrations::migrate(&self.pool).await
    }

    /// How many of the compiled-in migrations are not applied yet ([`migrations::pending`]).
    pub async fn pending_migrations(&self) -> Result<usize, Error> {
        migrations::pending(&self.pool).await
    }

    /// Starts a write transaction (one per page) that waits at most `lock_timeout` for a row
    /// lock and is ended by the server if left idle (a writer paused or cut off mid-page never
    /// holds the others up for long).
    pub async fn begin(&self) -> Result<Transaction<'static, Postgres>, Error> {
        const SQL: &str = r#"
            select set_config('lock_timeout', $1, true),
                   set_config('idle_in_transaction_session_timeout', $2, true)
        "#;
        let mut tx = self.pool.begin().await.op("starting a transaction")?;
        sqlx::query(SQL)
            .bind(&self.timeouts.0)
            .bind(&self.timeouts.1)
            .execute(&mut *tx)
            .await
            .op("setting the transaction's timeouts")?;
        Ok(tx)
    }
}

/// Commits a page's transaction; when the writer holds a lease, only after the fencing check
/// ([`lease::check`]), so a writer that lost its lease commits nothing.
pub async fn commit(
    mut tx: Transaction<'static, Postgres>,
    fence: Option<&lease::Fence>,
) -> Result<(), Error> {
    if let Some(fence) = fence {
        lease::check(&mut tx, fence).await?;
    }
    tx.commit().await.op("committing")
}

/// `host:port/database` of the configured server, for messages (never the password).
fn describe_target(settings: &DatabaseSettings) -> String {
    match reqwest::Url::parse(settings.url.expose()) {
        Ok(url) => format!(
            "{}:{}{}",
            url.host_str().unwrap_or("localhost"),
            url.port().unwrap_or(5432),
            url.path()
        ),
        Err(_) => settings.url.redacted(),
    }
}

/// Removes the password from error text, should a driver ever echo it.
fn scrub(text: &str, settings: &DatabaseSettings) -> String {
    match settings.url.password() {
        Some(pw) if !pw.is_empty() => text.replace(&pw, "[redacted]"),
        _ => text.to_owned(),
    }
}
