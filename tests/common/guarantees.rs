//! Shared by the guarantee suites (`guarantees_faults.rs`, `guarantees_crashes.rs`): a seeded
//! PRNG, the end state a sync leaves in the database (minus our own bookkeeping), and comparing
//! two end states with a readable message when they differ.

use sqlx::PgPool;

/// SplitMix64: a tiny seeded PRNG, written here so that a seed always means the same choices
/// whatever the dependencies do.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// Each table the sync writes, as the canonical text of its rows without the columns that are
/// our own bookkeeping (first seen, changed, observed and removed times, of which only whether a
/// row is removed counts; identity ids; run ids; event ids, `seq`, `txid`, `occurred_at`, the
/// payload's `observed_at`), sorted: a multiset per table.
const TABLES: [(&str, &str); 12] = [
    (
        "transactions",
        "select (to_jsonb(t) - 'first_seen_at' - 'changed_at' - 'status_changed_at' - 'removed_at'
                 || jsonb_build_object('removed', t.removed_at is not null))::text
         from rotessa.transactions t",
    ),
    (
        "transaction_status_history",
        "select jsonb_build_array(transaction_id, from_status, to_status, status_reason,
                                  decline_date, source, change)::text
         from rotessa.transaction_status_history",
    ),
    (
        "outbox",
        "select jsonb_build_array(aggregatetype, aggregateid, type, payload - 'observed_at')::text
         from rotessa.outbox",
    ),
    (
        "settlements",
        "select (to_jsonb(s) - 'first_seen_at' - 'changed_at')::text from rotessa.settlements s",
    ),
    (
        "clients",
        "select (to_jsonb(c) - 'seen_at')::text from rotessa.clients c",
    ),
    (
        "customers",
        "select (to_jsonb(c) - 'first_seen_at' - 'changed_at' - 'removed_at'
                 || jsonb_build_object('removed', c.removed_at is not null))::text
         from rotessa.customers c",
    ),
    (
        "transaction_schedules",
        "select (to_jsonb(s) - 'first_seen_at' - 'changed_at' - 'removed_at'
                 || jsonb_build_object('removed', s.removed_at is not null))::text
         from rotessa.transaction_schedules s",
    ),
    (
        "payouts",
        "select (to_jsonb(p) - 'first_seen_at' - 'changed_at' - 'removed_at'
                 || jsonb_build_object('removed', p.removed_at is not null))::text
         from rotessa.payouts p",
    ),
    (
        "reconciliation_state",
        "select (to_jsonb(r) - 'changed_at')::text from rotessa.reconciliation_state r",
    ),
    (
        "sync_state",
        "select jsonb_build_array(stream, client_id, cursor_date)::text from rotessa.sync_state",
    ),
    // Stale anomalies record a report seen lagging behind the stored row, which depends on the
    // order the reports were read in: a run re-done after a crash or a failure reads a lagging
    // report again after the other one. They are counted by `stale_anomalies`, not compared.
    (
        "status_anomalies",
        "select jsonb_build_array(kind, transaction_id, stored_status, stored_status_reason,
                                  observed_status, observed_status_reason, source)::text
         from rotessa.status_anomalies where kind <> 'stale'",
    ),
    (
        "rejected_records",
        "select jsonb_build_array(stream, client_id, page, raw, error)::text
         from rotessa.rejected_records",
    ),
];

/// What a sync left in the database (see [`TABLES`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndState {
    pub tables: Vec<(&'static str, Vec<String>)>,
}

impl EndState {
    /// The rows of one table.
    pub fn rows(&self, table: &str) -> &[String] {
        self.tables
            .iter()
            .find(|(name, _)| *name == table)
            .map(|(_, rows)| rows.as_slice())
            .unwrap_or_else(|| panic!("no table {table} in the end state"))
    }

    /// `table rows, ...` for the test output.
    pub fn summary(&self) -> String {
        self.tables
            .iter()
            .map(|(name, rows)| format!("{name} {}", rows.len()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Reads the end state.
pub async fn end_state(pool: &PgPool) -> EndState {
    let mut tables = Vec::new();
    for (name, sql) in TABLES {
        let mut rows: Vec<String> = sqlx::query_scalar(sql)
            .fetch_all(pool)
            .await
            .unwrap_or_else(|e| panic!("reading {name}: {e}"));
        rows.sort_unstable();
        tables.push((name, rows));
    }
    EndState { tables }
}

/// Rows in `a` and not in `b`, as multisets (both sorted).
fn missing_from(a: &[String], b: &[String]) -> Vec<String> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() {
        if j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < b.len() && b[j] < a[i] {
            j += 1;
        } else {
            out.push(a[i].clone());
            i += 1;
        }
    }
    out
}

/// Asserts that every table holds the same rows; the message counts the differences per table
/// and shows a few.
pub fn assert_same(what: &str, actual: &EndState, expected: &EndState) {
    let mut problems = Vec::new();
    for ((name, got), (_, want)) in actual.tables.iter().zip(&expected.tables) {
        if got == want {
            continue;
        }
        let lost = missing_from(want, got);
        let extra = missing_from(got, want);
        problems.push(format!(
            "{name}: {} rows, expected {}; {} missing, {} unexpected\n  missing e.g. {:?}\n  unexpected e.g. {:?}",
            got.len(),
            want.len(),
            lost.len(),
            extra.len(),
            &lost[..lost.len().min(3)],
            &extra[..extra.len().min(3)],
        ));
    }
    assert!(
        problems.is_empty(),
        "{what}: the end state differs from the clean run's\n{}",
        problems.join("\n")
    );
}

/// Events that occur more than once (same aggregate, type and payload, `observed_at` aside),
/// and status transitions emitted more than once (same transaction, from and to status).
pub async fn duplicate_events(pool: &PgPool) -> (i64, i64) {
    let events: i64 = sqlx::query_scalar(
        "select coalesce(sum(n - 1), 0)::bigint from (
           select count(*) as n from rotessa.outbox
           group by aggregatetype, aggregateid, type, payload - 'observed_at') e",
    )
    .fetch_one(pool)
    .await
    .expect("duplicate events");
    let transitions: i64 = sqlx::query_scalar(
        "select coalesce(sum(n - 1), 0)::bigint from (
           select count(*) as n from rotessa.outbox
           where aggregatetype = 'transaction'
           group by aggregateid, payload->>'from_status', payload->>'to_status',
                    payload->>'status_reason', payload->>'decline_date') t",
    )
    .fetch_one(pool)
    .await
    .expect("duplicate transitions");
    (events, transitions)
}

/// Events that flap a transaction: one that moves it back in the lifecycle (`reversal`), or one
/// that returns it to the status it had before its previous event (A -> B, then B -> A).
pub async fn flaps(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "select aggregateid || ': ' || coalesce(prev_from, 'new') || ' -> ' || from_status
                || ' -> ' || to_status
         from (select aggregateid, payload->>'from_status' as from_status,
                      payload->>'to_status' as to_status, (payload->>'reversal')::bool as reversal,
                      lag(payload->>'from_status')
                          over (partition by aggregateid order by txid, seq) as prev_from
               from rotessa.outbox where type = 'transaction.status_changed') e
         where reversal or to_status = prev_from
         order by 1",
    )
    .fetch_all(pool)
    .await
    .expect("flapping events")
}

/// How many `stale` anomalies were recorded (reports seen lagging behind each other).
pub async fn stale_anomalies(pool: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from rotessa.status_anomalies where kind = 'stale'")
        .fetch_one(pool)
        .await
        .expect("stale anomalies")
}

/// Empties every table of the `rotessa` schema but the record of applied migrations (which
/// lives there too, sqlx.toml): the migrations stay applied, and a binary that migrates at start
/// finds nothing to do.
pub async fn truncate_rotessa(pool: &PgPool) {
    sqlx::query(
        "do $$ declare t text; begin
           for t in select format('%I.%I', schemaname, tablename) from pg_tables
                    where schemaname = 'rotessa' and tablename <> '_sqlx_migrations' loop
             execute 'truncate ' || t || ' restart identity cascade';
           end loop;
         end $$",
    )
    .execute(pool)
    .await
    .expect("truncate the rotessa schema");
}
