//! Waking the consumer: `LISTEN rotessa_outbox` on a connection of its own, forwarded to a
//! [`Notify`]; re-established in the background when it drops.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::NOTIFY_CHANNEL;

/// How long a lost LISTEN connection waits before it tries again.
const RELISTEN_AFTER: Duration = Duration::from_secs(5);

/// LISTEN in a background task, stopped on drop. Without it (disabled, or not possible, as
/// behind PgBouncer in transaction pooling mode) the consumer polls on its interval only.
pub(crate) struct Listener {
    pub(crate) notify: Arc<Notify>,
    task: Option<JoinHandle<()>>,
}

impl Listener {
    /// A listener that never fires (polling only).
    pub(crate) fn disabled() -> Self {
        Self {
            notify: Arc::new(Notify::new()),
            task: None,
        }
    }

    /// Starts listening. LISTEN is in place when this returns (if it could be set up), so a poll
    /// made afterwards cannot miss the notification of a later commit.
    pub(crate) async fn start(pool: &PgPool) -> Self {
        let notify = Arc::new(Notify::new());
        let listener = match connect(pool).await {
            Ok(l) => Some(l),
            Err(_e) => {
                crate::log_warn!(error = %_e, "cannot LISTEN {NOTIFY_CHANNEL}; polling until it works");
                None
            }
        };
        let task = tokio::spawn(listen_loop(listener, pool.clone(), Arc::clone(&notify)));
        Self {
            notify,
            task: Some(task),
        }
    }
}

impl Drop for Listener {
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

async fn listen_loop(mut listener: Option<PgListener>, pool: PgPool, notify: Arc<Notify>) {
    loop {
        let Some(mut active) = listener.take() else {
            tokio::time::sleep(RELISTEN_AFTER).await;
            if let Ok(l) = connect(&pool).await {
                // Commits while LISTEN was down were not announced.
                notify.notify_one();
                listener = Some(l);
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
            Err(_e) => {
                crate::log_warn!(error = %_e, "LISTEN {NOTIFY_CHANNEL} failed; polling until it is back");
            }
        }
    }
}
