//! Waking consumers: `LISTEN rotessa_outbox` (every page that writes events notifies at
//! commit) with a polling fallback, for PgBouncer in transaction pooling mode (where LISTEN
//! does not work), lost connections, and a visibility fence held by a long transaction.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::store::outbox::NOTIFY_CHANNEL;

/// How long a lost LISTEN connection waits before it tries again.
const RELISTEN_AFTER: Duration = Duration::from_secs(5);

/// Why [`Waker::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A notification arrived (or the LISTEN connection came back, so one may have been lost).
    Notified,
    /// The polling interval elapsed.
    Timer,
}

/// Waits until there may be new events: a notification on `rotessa_outbox`, or the polling
/// interval, whichever comes first. LISTEN runs on a connection of its own, in a background
/// task that reconnects by itself; the task stops when the waker is dropped.
#[derive(Debug)]
pub struct Waker {
    notify: Arc<Notify>,
    interval: Duration,
    listening: bool,
    task: Option<JoinHandle<()>>,
}

impl Waker {
    /// Starts waking on LISTEN (when `listen`) and every `interval`. LISTEN is in place when
    /// this returns, so a poll made afterwards cannot miss the notification of a later commit.
    /// If LISTEN cannot be set up, the waker polls and keeps trying to listen.
    pub async fn start(pool: &PgPool, listen: bool, interval: Duration) -> Self {
        let notify = Arc::new(Notify::new());
        if !listen {
            return Self {
                notify,
                interval,
                listening: false,
                task: None,
            };
        }
        let listener = match connect(pool).await {
            Ok(listener) => Some(listener),
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "cannot LISTEN {NOTIFY_CHANNEL}; polling every {interval:?} until it works"
                );
                None
            }
        };
        let listening = listener.is_some();
        let task = tokio::spawn(listen_loop(listener, pool.clone(), Arc::clone(&notify)));
        Self {
            notify,
            interval,
            listening,
            task: Some(task),
        }
    }

    /// A waker that only polls (tests, and `outbox.listen = false`).
    pub fn polling(interval: Duration) -> Self {
        Self {
            notify: Arc::new(Notify::new()),
            interval,
            listening: false,
            task: None,
        }
    }

    /// Whether LISTEN was set up when the waker started.
    pub fn is_listening(&self) -> bool {
        self.listening
    }

    /// The fallback polling interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Returns at the next notification (one that arrived since the last call counts) or after
    /// the polling interval.
    pub async fn wait(&self) -> Wake {
        tokio::select! {
            () = self.notify.notified() => Wake::Notified,
            () = tokio::time::sleep(self.interval) => Wake::Timer,
        }
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(NOTIFY_CHANNEL).await?;
    Ok(listener)
}

/// Forwards notifications to `notify`, re-establishing LISTEN whenever it is lost.
async fn listen_loop(mut listener: Option<PgListener>, pool: PgPool, notify: Arc<Notify>) {
    let mut failing = listener.is_none();
    loop {
        let Some(mut active) = listener.take() else {
            tokio::time::sleep(RELISTEN_AFTER).await;
            match connect(&pool).await {
                Ok(l) => {
                    if failing {
                        tracing::info!("LISTEN {NOTIFY_CHANNEL} is back");
                    }
                    failing = false;
                    // Commits while LISTEN was down were not announced.
                    notify.notify_one();
                    listener = Some(l);
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "cannot LISTEN {NOTIFY_CHANNEL}; polling only");
                    }
                    failing = true;
                }
            }
            continue;
        };
        match active.try_recv().await {
            // A notification; or `None`: the connection was lost and re-established, and
            // notifications sent meanwhile are gone, so poll in case.
            Ok(_) => {
                notify.notify_one();
                listener = Some(active);
            }
            Err(sqlx::Error::PoolClosed) => return,
            Err(e) => {
                tracing::warn!(error = %e, "LISTEN {NOTIFY_CHANNEL} failed; polling until it is back");
                failing = true;
            }
        }
    }
}
