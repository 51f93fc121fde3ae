//! The grants of `rotessa-recon grant`: exactly the rights each kind of role needs, as SQL
//! built from the catalog (so that tables of later migrations are covered by re-running it).
//!
//! - the **writer** (the daemon, `run --no-migrate`, `sync --no-migrate`): DML on the tables it
//!   writes, the consumer functions (the relay and `outbox tail --consumer` are consumers too)
//!   and retention, reading the migrations table; no DDL; default privileges give it DML on the
//!   tables of later migrations;
//! - a **reader** (accountants, BI tools): SELECT on the accounting tables and views, without
//!   the columns that carry raw payloads, bank numbers or contact details the accounting queries
//!   do not use; no outbox, no internal state; no writes;
//! - a **consumer**: SELECT on the outbox, and the consumer functions, which only act on the
//!   consumers that role registered (migration `20261205000001_consumer_owners.sql`).
//!
//! Every role named starts from `revoke all` on the schema's tables, so running it again leaves
//! exactly the rights of that run.

use std::collections::BTreeMap;

use sqlx::PgPool;

use super::{Error, ResultExt};

/// The one table the writer never touches directly: consumers move only through the functions.
const CONSUMERS_TABLE: &str = "outbox_consumers";

/// The functions of the consumer contract (docs/outbox-consumers.md).
const CONSUMER_FUNCTIONS: [&str; 5] = [
    "rotessa.outbox_read(xid8, bigint, integer)",
    "rotessa.outbox_register(text, text)",
    "rotessa.outbox_unregister(text)",
    "rotessa.outbox_poll(text, integer)",
    "rotessa.outbox_ack(text, xid8, bigint)",
];

/// Retention, which only the writer runs.
const PRUNE_FUNCTION: &str = "rotessa.outbox_prune(interval, integer, boolean)";

/// What readers may read: each table or view, and the columns withheld from them (empty: all).
const READER_TABLES: [(&str, &[&str]); 13] = [
    (
        "transactions",
        &[
            "extra",
            "account_number",
            "transit_number",
            "institution_number",
        ],
    ),
    ("transaction_status_history", &[]),
    ("settlements", &["extra"]),
    ("settlement_reconciliation", &[]),
    ("reconciliation_state", &[]),
    ("status_anomalies", &[]),
    // The quarantine keeps rows as sent, masked like the tables (README "Personal data"); the
    // README's query of refused rows shows them.
    ("rejected_records", &[]),
    ("clients", &["raw"]),
    (
        "customers",
        &[
            "extra",
            "account_number",
            "transit_number",
            "institution_number",
            "routing_number",
            "phone",
            "home_phone",
            "address",
        ],
    ),
    ("transaction_schedules", &["extra"]),
    ("payouts", &["extra"]),
    ("sync_state", &[]),
    ("sync_runs", &[]),
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
    /// The migrations table sqlx keeps, as the database resolves `_sqlx_migrations`.
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
        order by c.relname, a.attnum
    "#;
    const MISSING_ROLES: &str = r#"
        select r from unnest($1::text[]) as r
        where not exists (select from pg_roles where rolname = r)
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
    let mut relations: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (table, column) in sqlx::query_as::<_, (String, String)>(RELATIONS)
        .fetch_all(pool)
        .await
        .op("reading the schema's tables")?
    {
        relations.entry(table).or_default().push(column);
    }
    let migrations_table: Option<String> =
        sqlx::query_scalar("select to_regclass('_sqlx_migrations')::text")
            .fetch_one(pool)
            .await
            .op("finding the migrations table")?;
    Ok(Catalog {
        owner,
        relations,
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

/// The statements for `plan`, in order: every role's table rights revoked first, then the
/// grants (a role named twice, say reader and consumer, gets both).
pub fn statements(plan: &Plan, catalog: &Catalog) -> Vec<String> {
    let mut roles: Vec<&String> = plan.roles().collect();
    roles.sort();
    roles.dedup();
    let mut out: Vec<String> = roles
        .iter()
        .map(|role| {
            format!(
                "revoke all on all tables in schema rotessa from {}",
                quote_ident(role)
            )
        })
        .collect();
    let owner = quote_ident(&catalog.owner);
    if let Some(writer) = &plan.writer {
        let w = quote_ident(writer);
        out.push(format!("grant usage on schema rotessa to {w}"));
        out.push(format!("revoke create on schema rotessa from {w}"));
        for table in catalog.relations.keys().filter(|t| *t != CONSUMERS_TABLE) {
            out.push(format!(
                "grant select, insert, update, delete on {} to {w}",
                qualified(table)
            ));
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
        for (table, withheld) in READER_TABLES {
            let Some(columns) = catalog.relations.get(table) else {
                continue;
            };
            if withheld.is_empty() {
                out.push(format!("grant select on {} to {r}", qualified(table)));
            } else {
                let kept: Vec<String> = columns
                    .iter()
                    .filter(|c| !withheld.contains(&c.as_str()))
                    .map(|c| quote_ident(c))
                    .collect();
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
