//! The single-writer lease and its fencing check, at the store level.

mod common;

use std::time::Duration;

use common::*;
use rotessa_recon::store::lease::{self, SCHEDULER};
use rotessa_recon::sync::RunOutcome;
use sqlx::PgPool;
use wiremock::MockServer;

const TTL: Duration = Duration::from_secs(30);

async fn expire(pool: &PgPool) {
    sqlx::query("update rotessa.leases set expires_at = clock_timestamp() - interval '1 second'")
        .execute(pool)
        .await
        .unwrap();
}

#[sqlx::test]
async fn one_holder_at_a_time_and_takeover_only_after_expiry(pool: PgPool) {
    let a = lease::try_acquire(&pool, SCHEDULER, "a", TTL)
        .await
        .unwrap()
        .unwrap();
    assert!(
        lease::try_acquire(&pool, SCHEDULER, "b", TTL)
            .await
            .unwrap()
            .is_none()
    );
    // Re-acquiring our own lease keeps it ours.
    let again = lease::try_acquire(&pool, SCHEDULER, "a", TTL)
        .await
        .unwrap()
        .unwrap();
    assert!(again.token > a.token);
    expire(&pool).await;
    let b = lease::try_acquire(&pool, SCHEDULER, "b", TTL)
        .await
        .unwrap()
        .unwrap();
    assert!(
        b.token > again.token,
        "every takeover gets a new fencing token"
    );
    assert!(
        !lease::renew(&pool, &again).await.unwrap(),
        "the old holder cannot renew"
    );
    assert!(lease::renew(&pool, &b).await.unwrap());
    lease::release(&pool, &b).await.unwrap();
    assert!(
        lease::try_acquire(&pool, SCHEDULER, "c", TTL)
            .await
            .unwrap()
            .is_some()
    );
}

#[sqlx::test]
async fn a_writer_that_lost_its_lease_commits_no_page(pool: PgPool) {
    let server = MockServer::start().await;
    serve_report(&server, &rows(1..=10, "Pending")).await;
    let old = lease::try_acquire(&pool, SCHEDULER, "old", TTL)
        .await
        .unwrap()
        .unwrap();
    expire(&pool).await;
    lease::try_acquire(&pool, SCHEDULER, "new", TTL)
        .await
        .unwrap()
        .unwrap();

    let syncer = syncer(&pool, settings(&server.uri(), &[])).with_fence(old);
    let reports = sync_window(&syncer, "2019-03-01", "2019-03-12").await;
    let RunOutcome::Failed(error) = &reports[0].outcome else {
        panic!("{reports:?}")
    };
    assert!(error.contains("lease was lost"), "{error}");
    assert_eq!(count(&pool, "rotessa.transactions").await, 0);
    assert_eq!(count(&pool, "rotessa.outbox").await, 0);
}

#[sqlx::test]
async fn a_takeover_waits_for_a_busy_page_that_passed_the_check(pool: PgPool) {
    let short = Duration::from_secs(1);
    let holder = lease::try_acquire(&pool, SCHEDULER, "old", short)
        .await
        .unwrap()
        .unwrap();
    // A page that passed its fencing check and is still working (not idle: the server's idle
    // timeout set by the check is lifted to stand for that).
    let mut page = pool.begin().await.unwrap();
    lease::check(&mut page, &holder).await.unwrap();
    sqlx::query("set local idle_in_transaction_session_timeout = 0")
        .execute(&mut *page)
        .await
        .unwrap();
    // The lease expires on the server's clock while the page holds it.
    sqlx::query("select pg_sleep(1.3)")
        .execute(&pool)
        .await
        .unwrap();
    assert!(
        lease::try_acquire(&pool, SCHEDULER, "new", TTL)
            .await
            .unwrap()
            .is_none(),
        "the takeover must wait for the page in flight"
    );
    page.commit().await.unwrap();
    assert!(
        lease::try_acquire(&pool, SCHEDULER, "new", TTL)
            .await
            .unwrap()
            .is_some()
    );
}

#[sqlx::test]
async fn a_page_paused_after_the_check_is_ended_and_cannot_commit(pool: PgPool) {
    let short = Duration::from_secs(1);
    let holder = lease::try_acquire(&pool, SCHEDULER, "old", short)
        .await
        .unwrap()
        .unwrap();
    let mut page = pool.begin().await.unwrap();
    sqlx::query(
        "insert into rotessa.outbox (id, aggregatetype, aggregateid, type, payload)
                 values (gen_random_uuid(), 'transaction', '1', 'test', '{}')",
    )
    .execute(&mut *page)
    .await
    .unwrap();
    lease::check(&mut page, &holder).await.unwrap();
    // The writer is paused (SIGSTOP) here. The server ends its idle session after the TTL,
    // which frees the lease for a standby...
    sqlx::query("select pg_sleep(2.5)")
        .execute(&pool)
        .await
        .unwrap();
    assert!(
        lease::try_acquire(&pool, SCHEDULER, "new", TTL)
            .await
            .unwrap()
            .is_some()
    );
    // ...and when the writer resumes, its commit fails: nothing of the page is kept.
    assert!(page.commit().await.is_err());
    assert_eq!(count(&pool, "rotessa.outbox").await, 0);
}
