//! Database errors with the operation that failed, classified for page retries.

/// A failed database operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot connect to PostgreSQL at {target}: {detail} (is the server running? check DATABASE_URL / database.url)"
    )]
    Connect { target: String, detail: String },
    #[error("applying migrations: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("{op}: {source}")]
    Query {
        op: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// A polling consumer that was never registered (`rotessa.outbox_register`).
    #[error(
        "outbox consumer {0:?} is not registered: register it once with `rotessa-recon outbox register {0}` (or `select rotessa.outbox_register('{0}')`)"
    )]
    UnknownConsumer(String),
    /// A request the database state cannot serve; the message says what to do.
    #[error("{0}")]
    Invalid(String),
    /// The daemon's lease is no longer ours: the page must not commit (fencing).
    #[error("the scheduler lease was lost to another instance; this page was rolled back")]
    LeaseLost,
}

impl Error {
    /// Whether retrying the whole page transaction may succeed: a lost connection, a deadlock,
    /// a serialization failure, a lock not granted within `lock_timeout`, a session ended by an
    /// idle timeout (a paused writer: its retry meets the fencing check), a server shutting
    /// down, restarting or out of connections, or a unique violation (another writer inserted a
    /// row this page meant to `COPY`; the retry skips it).
    pub fn is_transient(&self) -> bool {
        let Self::Query { source, .. } = self else {
            return false;
        };
        match source {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                matches!(
                    code.as_ref(),
                    "23505"
                        | "25P03"
                        | "40001"
                        | "40P01"
                        | "55P03"
                        | "57P01"
                        | "57P02"
                        | "57P03"
                        | "57P05"
                ) || code.starts_with("08")
                    || code.starts_with("53")
            }),
            _ => false,
        }
    }
}

/// Attaches the operation's name to a sqlx error.
pub trait ResultExt<T> {
    /// Names the operation that failed, so the error says what was being done.
    fn op(self, op: &'static str) -> Result<T, Error>;
}

impl<T> ResultExt<T> for Result<T, sqlx::Error> {
    fn op(self, op: &'static str) -> Result<T, Error> {
        self.map_err(|source| Error::Query { op, source })
    }
}
