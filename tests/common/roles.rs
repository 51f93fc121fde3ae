//! Real PostgreSQL roles for the least-privilege tests: created with unique names (roles are
//! cluster-wide), granted through the real `grant` command, connected to as themselves, and
//! dropped at the end.

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use super::{database_url, output_text, run_binary};

/// Login roles named `rr<unique>_<kind>`, dropped by [`Roles::drop_all`].
pub struct Roles {
    admin: PgPool,
    names: Vec<String>,
}

impl Roles {
    /// Creates one login role per kind (no password: the test server trusts local TCP).
    pub async fn create(admin: &PgPool, kinds: &[&str]) -> Self {
        let unique = &uuid::Uuid::now_v7().simple().to_string()[20..];
        let mut names = Vec::new();
        for kind in kinds {
            let name = format!("rr{unique}_{kind}");
            sqlx::query(sqlx::AssertSqlSafe(format!("create role {name} login")))
                .execute(admin)
                .await
                .expect("create role");
            names.push(name);
        }
        Self {
            admin: admin.clone(),
            names,
        }
    }

    /// The role made for `kind`.
    pub fn name(&self, kind: &str) -> &str {
        self.names
            .iter()
            .find(|n| n.ends_with(&format!("_{kind}")))
            .expect("a role of that kind")
    }

    /// Drops every role, with the privileges they hold in the test database.
    pub async fn drop_all(self) {
        for name in &self.names {
            for sql in [format!("drop owned by {name}"), format!("drop role {name}")] {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&self.admin)
                    .await
                    .expect("drop role");
            }
        }
    }
}

/// The test database's URL, connecting as `role`.
pub fn url_as(pool: &PgPool, role: &str) -> String {
    let mut url = reqwest::Url::parse(&database_url(pool)).expect("database URL");
    url.set_username(role).expect("user name");
    url.set_password(None).expect("no password");
    url.to_string()
}

/// A small pool connected as `role`.
pub async fn connect_as(pool: &PgPool, role: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .connect(&url_as(pool, role))
        .await
        .expect("connect as the role")
}

/// Runs the real `grant` command as the test database's owner.
pub fn grant(pool: &PgPool, args: &[&str]) -> String {
    let mut all = vec!["grant"];
    all.extend_from_slice(args);
    let out = run_binary(&all, &[("DATABASE_URL", &database_url(pool))]);
    let text = output_text(&out);
    assert!(out.status.success(), "grant {args:?}: {text}");
    text
}

/// The SQLSTATE of a statement run as `pool`'s role, or `None` when it succeeded.
pub async fn sqlstate(pool: &PgPool, sql: &str) -> Option<String> {
    match sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(pool)
        .await
    {
        Ok(_) => None,
        Err(sqlx::Error::Database(e)) => Some(e.code().map(|c| c.into_owned()).unwrap_or_default()),
        Err(e) => Some(format!("not a database error: {e}")),
    }
}

/// SQLSTATE 42501: permission denied, or not the owner.
pub const DENIED: &str = "42501";
