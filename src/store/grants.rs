//! The grants of `rotessa-recon grant`: exactly the rights each kind of role needs, as SQL
//! built from the catalog (so that tables of later migrations are covered by re-running it).
//!
//! - the **writer** (the daemon, `run --no-migrate`, `sync --no-migrate`): DML on the tables it
//!   writes (not the consumers' own tables, `outbox_consumers` and `outbox_parked`), the consumer
//!   functions (the relay and `outbox tail --consumer` are consumers too)
//!   and retention, reading the migrations table; no DDL; default privileges give it DML on the
//!   tables of later migrations;
//! - a **reader** (accountants, BI tools): SELECT on an allow-list of columns of the accounting
//!   tables and views, leaving out raw payloads, bank numbers and contact details the accounting
//!   queries do not use; no outbox, no internal state; no writes;
//! - a **consumer**: SELECT on the outbox, and the consumer functions (parking included), which
//!   only act on the consumers that role registered (migrations
//!   `20261205000001_consumer_owners.sql`, `20261206000001_outbox_parked.sql`).
//!
//! Every role named starts from `revoke all` on everything of the schema, so running it again
//! leaves exactly the rights of that run. The schema owner, superusers and roles the owner
//! belongs to are refused: they hold every right already, and the revokes would take the owner's.

use std::collections::BTreeMap;

use sqlx::PgPool;

use super::{Error, ResultExt};

/// The tables the writer never touches directly: consumers and their parked events change only
/// through the functions, which check who owns the consumer.
const CONSUMER_TABLES: [&str; 2] = ["outbox_consumers", "outbox_parked"];

/// The functions of the consumer contract (docs/outbox-consumers.md), parking included.
const CONSUMER_FUNCTIONS: [&str; 10] = [
    "rotessa.outbox_read(xid8, bigint, integer)",
    "rotessa.outbox_register(text, text)",
    "rotessa.outbox_unregister(text)",
    "rotessa.outbox_poll(text, integer)",
    "rotessa.outbox_ack(text, xid8, bigint)",
    "rotessa.outbox_park(text, uuid, text)",
    "rotessa.outbox_unpark(text, uuid)",
    "rotessa.outbox_replay_poll(text, integer)",
    "rotessa.outbox_replay_done(text, uuid)",
    "rotessa.outbox_parked_list(text)",
];

/// Retention, which only the writer runs.
const PRUNE_FUNCTION: &str = "rotessa.outbox_prune(interval, integer, boolean)";

/// What readers may read: each table or view and the columns granted, an allow-list, so that a
/// column a later migration adds (or a table it creates) is not readable until it is listed here.
/// Left out: `extra` (fields as sent), `clients.raw` and `rejected_records.raw` (payloads as
/// sent), bank numbers, the customers' phones and address, internal fingerprints and counters.
const READER_COLUMNS: [(&str, &[&str]); 13] = [
    (
        "transactions",
        &[
            "id",
            "client_id",
            "customer_id",
            "transaction_schedule_id",
            "amount",
            "status",
            "status_reason",
            "process_date",
            "settlement_date",
            "decline_date",
            "earliest_approval_date",
            "transaction_number",
            "custom_identifier",
            "schedule_custom_identifier",
            "comment",
            "api_created_at",
            "api_updated_at",
            "first_seen_at",
            "changed_at",
            "status_changed_at",
            "removed_at",
        ],
    ),
    (
        "transaction_status_history",
        &[
            "id",
            "transaction_id",
            "from_status",
            "to_status",
            "status_reason",
            "decline_date",
            "observed_at",
            "source",
            "sync_run_id",
            "change",
        ],
    ),
    (
        "settlements",
        &[
            "client_id",
            "settlement_date",
            "number_approved",
            "number_declined",
            "number_chargeback",
            "number_payout",
            "total_approved",
            "total_declined",
            "total_chargeback",
            "total_payout",
            "first_seen_at",
            "changed_at",
        ],
    ),
    (
        "settlement_reconciliation",
        &[
            "client_id",
            "settlement_date",
            "rotessa_number_approved",
            "computed_number_approved",
            "rotessa_total_approved",
            "computed_total_approved",
            "diff_total_approved",
            "rotessa_number_declined",
            "computed_number_declined",
            "rotessa_total_declined",
            "computed_total_declined",
            "diff_total_declined",
            "rotessa_number_chargeback",
            "computed_number_chargeback",
            "rotessa_total_chargeback",
            "computed_total_chargeback",
            "diff_total_chargeback",
            "rotessa_total_payout",
            "matched",
        ],
    ),
    (
        "reconciliation_state",
        &[
            "client_id",
            "settlement_date",
            "matched",
            "changed_at",
            "difference",
        ],
    ),
    (
        "status_anomalies",
        &[
            "id",
            "kind",
            "transaction_id",
            "stored_status",
            "stored_status_reason",
            "stored_status_at",
            "stored_updated_at",
            "observed_status",
            "observed_status_reason",
            "observed_updated_at",
            "source",
            "sync_run_id",
            "first_seen_at",
            "last_seen_at",
            "times_seen",
        ],
    ),
    (
        "rejected_records",
        &[
            "id",
            "stream",
            "client_id",
            "sync_run_id",
            "page",
            "error",
            "first_seen_at",
            "last_seen_at",
            "times_seen",
        ],
    ),
    (
        "clients",
        &["id", "business_name", "operating_as", "status", "seen_at"],
    ),
    (
        "customers",
        &[
            "id",
            "client_id",
            "custom_identifier",
            "identifier",
            "name",
            "email",
            "customer_type",
            "active",
            "authorization_type",
            "bank_account_type",
            "api_created_at",
            "api_updated_at",
            "first_seen_at",
            "changed_at",
            "removed_at",
        ],
    ),
    (
        "transaction_schedules",
        &[
            "id",
            "customer_id",
            "client_id",
            "amount",
            "frequency",
            "installments",
            "process_date",
            "next_process_date",
            "active",
            "comment",
            "api_created_at",
            "api_updated_at",
            "first_seen_at",
            "changed_at",
            "removed_at",
        ],
    ),
    (
        "payouts",
        &[
            "payout_key",
            "payout_id",
            "financial_transaction_id",
            "customer_id",
            "amount",
            "transaction_amount",
            "status",
            "process_date",
            "settlement_date",
            "api_updated_at",
            "first_seen_at",
            "changed_at",
            "removed_at",
        ],
    ),
    (
        "sync_state",
        &[
            "stream",
            "client_id",
            "cursor_date",
            "last_success_at",
            "last_run_id",
            "last_success_started_at",
        ],
    ),
    (
        "sync_runs",
        &[
            "id",
            "stream",
            "client_id",
            "status",
            "started_at",
            "finished_at",
            "heartbeat_at",
            "window_from",
            "window_to",
            "pages",
            "rows_seen",
            "rows_inserted",
            "rows_updated",
            "rows_unchanged",
            "rows_rejected",
            "rows_stale",
            "anomalies",
            "events_emitted",
            "error",
        ],
    ),
];

/// The roles to grant to.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub writer: Option<String>,
    pub readers: Vec<String>,
    pub consumers: Vec<String>,
}

impl Plan {
    fn roles(&self) -> impl Iterator<Item = &String> {
        self.writer
            .iter()
            .chain(&self.readers)
            .chain(&self.consumers)
    }
}

/// What the statements are built from, read from the catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// The owner of schema `rotessa` (whoever ran `migrate`): default privileges are its.
    pub owner: String,
    /// Tables and views of the schema, with their columns in order.
    pub relations: BTreeMap<String, Vec<String>>,
    /// Which of them are views (read-only).
    pub views: Vec<String>,
    /// The migrations table sqlx keeps ([`super::migrations::TABLE`]): the writer may read it
    /// (readiness), nobody but the owner may change it.
    pub migrations_table: Option<String>,
}

/// Reads the catalog; a role of `plan` that does not exist is an error naming it.
pub async fn catalog(pool: &PgPool, plan: &Plan) -> Result<Catalog, Error> {
    const OWNER: &str = r#"
        select pg_get_userbyid(nspowner) from pg_namespace where nspname = 'rotessa'
    "#;
    const RELATIONS: &str = r#"
        select c.relname::text, a.attname::text
        from pg_class c
        join pg_namespace n on n.oid = c.relnamespace
        join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
        where n.nspname = 'rotessa' and c.relkind in ('r', 'p', 'v', 'm')
          and c.relname <> '_sqlx_migrations'
        order by c.relname, a.attnum
    "#;
    const VIEWS: &str = r#"
        select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'rotessa' and c.relkind in ('v', 'm')
    "#;
    const MISSING_ROLES: &str = r#"
        select r from unnest($1::text[]) as r
        where not exists (select from pg_roles where rolname = r)
    "#;
    // Granting to these would revoke the schema owner's own rights (every role named starts
    // from `revoke all`), or mean nothing (a superuser bypasses every check).
    const TOO_POWERFUL: &str = r#"
        with recursive owner_in(oid) as (
            select oid from pg_roles where rolname = $2
            union
            select m.roleid from pg_auth_members m join owner_in o on m.member = o.oid
        )
        select r.rolname::text from pg_roles r
        where r.rolname = any($1)
          and (r.rolsuper or r.oid in (select oid from owner_in))
    "#;
    let owner: Option<String> = sqlx::query_scalar(OWNER)
        .fetch_optional(pool)
        .await
        .op("reading the owner of schema rotessa")?;
    let Some(owner) = owner else {
        return Err(Error::Invalid(
            "schema rotessa does not exist: run `rotessa-recon migrate` first".into(),
        ));
    };
    let roles: Vec<String> = plan.roles().cloned().collect();
    let missing: Vec<String> = sqlx::query_scalar(MISSING_ROLES)
        .bind(&roles)
        .fetch_all(pool)
        .await
        .op("looking the roles up")?;
    if !missing.is_empty() {
        return Err(Error::Invalid(format!(
            "no such role: {} (roles are cluster-wide: create them first, e.g. CREATE ROLE {} LOGIN)",
            missing.join(", "),
            quote_ident(&missing[0])
        )));
    }
    let too_powerful: Vec<String> = sqlx::query_scalar(TOO_POWERFUL)
        .bind(&roles)
        .bind(&owner)
        .fetch_all(pool)
        .await
        .op("looking the roles up")?;
    if !too_powerful.is_empty() {
        return Err(Error::Invalid(format!(
            "{} is a superuser, the owner of schema rotessa ({owner}), or a role the owner \
             belongs to: it already has every right, and granting would revoke the owner's own. \
             Name roles of their own (a single-user deployment needs no `grant`)",
            too_powerful.join(", ")
        )));
    }
    let mut relations: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (table, column) in sqlx::query_as::<_, (String, String)>(RELATIONS)
        .fetch_all(pool)
        .await
        .op("reading the schema's tables")?
    {
        relations.entry(table).or_default().push(column);
    }
    let views: Vec<String> = sqlx::query_scalar(VIEWS)
        .fetch_all(pool)
        .await
        .op("reading the schema's views")?;
    let migrations_table: Option<String> = sqlx::query_scalar("select to_regclass($1)::text")
        .bind(super::migrations::TABLE)
        .fetch_one(pool)
        .await
        .op("finding the migrations table")?;
    Ok(Catalog {
        owner,
        relations,
        views,
        migrations_table,
    })
}

/// `name` as an SQL identifier, quoted.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn qualified(table: &str) -> String {
    format!("rotessa.{}", quote_ident(table))
}

/// The statements for `plan`, in order: every right a named role holds in the schema revoked
/// first (tables, sequences, functions, the schema, default privileges, the migrations table),
/// then the grants (a role named twice, say reader and consumer, gets both).
pub fn statements(plan: &Plan, catalog: &Catalog) -> Vec<String> {
    let mut roles: Vec<&String> = plan.roles().collect();
    roles.sort();
    roles.dedup();
    let owner = quote_ident(&catalog.owner);
    let mut out: Vec<String> = Vec::new();
    for role in roles {
        let r = quote_ident(role);
        out.push(format!(
            "revoke all on all tables in schema rotessa from {r}"
        ));
        out.push(format!(
            "revoke all on all sequences in schema rotessa from {r}"
        ));
        out.push(format!(
            "revoke all on all functions in schema rotessa from {r}"
        ));
        out.push(format!("revoke all on schema rotessa from {r}"));
        out.push(format!(
            "alter default privileges for role {owner} in schema rotessa revoke all on tables from {r}"
        ));
        out.push(format!(
            "alter default privileges for role {owner} in schema rotessa revoke all on sequences from {r}"
        ));
        if let Some(migrations) = &catalog.migrations_table {
            out.push(format!("revoke all on {migrations} from {r}"));
        }
    }
    if let Some(writer) = &plan.writer {
        let w = quote_ident(writer);
        out.push(format!("grant usage on schema rotessa to {w}"));
        for table in catalog
            .relations
            .keys()
            .filter(|t| !CONSUMER_TABLES.contains(&t.as_str()))
        {
            let rights = if catalog.views.contains(table) {
                "select"
            } else {
                "select, insert, update, delete"
            };
            out.push(format!("grant {rights} on {} to {w}", qualified(table)));
        }
        out.push(format!(
            "grant usage, select on all sequences in schema rotessa to {w}"
        ));
        for function in CONSUMER_FUNCTIONS.iter().chain([&PRUNE_FUNCTION]) {
            out.push(format!("grant execute on function {function} to {w}"));
        }
        if let Some(migrations) = &catalog.migrations_table {
            out.push(format!("grant select on {migrations} to {w}"));
        }
        out.push(format!(
            "alter default privileges for role {owner} in schema rotessa \
             grant select, insert, update, delete on tables to {w}"
        ));
        out.push(format!(
            "alter default privileges for role {owner} in schema rotessa \
             grant usage, select on sequences to {w}"
        ));
    }
    for reader in &plan.readers {
        let r = quote_ident(reader);
        out.push(format!("grant usage on schema rotessa to {r}"));
        for (table, allowed) in READER_COLUMNS {
            let Some(columns) = catalog.relations.get(table) else {
                continue;
            };
            // Only the listed columns this database has (an older schema may lack some).
            let kept: Vec<String> = columns
                .iter()
                .filter(|c| allowed.contains(&c.as_str()))
                .map(|c| quote_ident(c))
                .collect();
            if !kept.is_empty() {
                out.push(format!(
                    "grant select ({}) on {} to {r}",
                    kept.join(", "),
                    qualified(table)
                ));
            }
        }
    }
    for consumer in &plan.consumers {
        let c = quote_ident(consumer);
        out.push(format!("grant usage on schema rotessa to {c}"));
        out.push(format!(
            "grant select on rotessa.outbox, rotessa.outbox_consumer_lag to {c}"
        ));
        for function in CONSUMER_FUNCTIONS {
            out.push(format!("grant execute on function {function} to {c}"));
        }
    }
    out
}

/// Applies `statements` in one transaction.
pub async fn apply(pool: &PgPool, statements: &[String]) -> Result<(), Error> {
    let mut tx = pool.begin().await.op("starting the grants")?;
    for statement in statements {
        sqlx::query(sqlx::AssertSqlSafe(statement.as_str()))
            .execute(&mut *tx)
            .await
            .map_err(|source| Error::Query {
                op: "granting (run `grant` as the owner of schema rotessa, the role that runs `migrate`)",
                source,
            })?;
    }
    tx.commit().await.op("committing the grants")
}
