//! What can go wrong talking to the outbox.

/// An error of the consumer or of one of the SQL calls it makes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A statement failed; `op` says which.
    #[error("{op}: {source}")]
    Query {
        /// What was being done (`polling the outbox`, `acking events`, ...).
        op: &'static str,
        /// What sqlx said.
        #[source]
        source: sqlx::Error,
    },
    /// The consumer was never registered (`rotessa.outbox_register`), or was unregistered.
    /// Register it once (see [`crate::Consumer::register`]); registering is not automatic, since
    /// a registered consumer holds events back from retention until it acks them.
    #[error(
        "outbox consumer {0:?} is not registered: register it once (`select rotessa.outbox_register('{0}')`, `rotessa-recon outbox register {0}` or Consumer::register)"
    )]
    UnknownConsumer(String),
    /// The consumer belongs to another database role (SQLSTATE 42501): each role polls and acks
    /// only the consumers it registered.
    #[error("outbox consumer {name:?} belongs to another role: {source}")]
    NotOwner {
        /// The consumer.
        name: String,
        /// What PostgreSQL said.
        #[source]
        source: sqlx::Error,
    },
    /// The database lacks a function the consumer needs (SQLSTATE 42883): run rotessa-recon's
    /// migrations (`rotessa-recon migrate`) with a version that has it.
    #[error("{op}: the database lacks {function} (apply rotessa-recon's migrations): {source}")]
    MissingFunction {
        /// What was being done.
        op: &'static str,
        /// The SQL function.
        function: &'static str,
        /// What PostgreSQL said.
        #[source]
        source: sqlx::Error,
    },
}

impl Error {
    /// Whether trying again later may succeed: a lost connection, a server restarting or out of
    /// connections, a pool timeout, a serialization failure or deadlock. The consumer loop waits
    /// a polling interval and retries these; it returns the others.
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
                    "40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03" | "57P05"
                ) || code.starts_with("08")
                    || code.starts_with("53")
            }),
            _ => false,
        }
    }

    /// Classifies a sqlx error of a consumer function call for `name`.
    pub(crate) fn consumer(
        source: sqlx::Error,
        name: &str,
        op: &'static str,
        function: &'static str,
    ) -> Self {
        let code = match &source {
            sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
            _ => None,
        };
        match code.as_deref() {
            Some("42704") => Self::UnknownConsumer(name.to_owned()),
            Some("42501") => Self::NotOwner {
                name: name.to_owned(),
                source,
            },
            Some("42883") => Self::MissingFunction {
                op,
                function,
                source,
            },
            _ => Self::Query { op, source },
        }
    }
}
