//! `rotessa.customers` and `rotessa.transaction_schedules`: one client's customer list is
//! compared and written in one transaction, under a lock of that list, so that two writers of
//! the same list never interleave (README "Customers, schedules and payouts").

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::{Error, ResultExt};
use crate::domain::{Contact, Customer, Schedule};

/// A stored row and whether it is marked removed.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored<T> {
    pub row: T,
    pub removed: bool,
}

/// Serializes the writers of one customer list (`client_id` `None`: a v1 account's) until the
/// transaction ends.
pub async fn lock_list(conn: &mut PgConnection, client_id: Option<i64>) -> Result<(), Error> {
    const SQL: &str = r#"
        select pg_advisory_xact_lock(hashtextextended('rotessa.customers:' || coalesce($1::text, 'v1'), 0))
    "#;
    sqlx::query(SQL)
        .bind(client_id)
        .execute(conn)
        .await
        .op("locking the customer list")?;
    Ok(())
}

fn customer_of(r: &PgRow) -> Result<Stored<Customer>, sqlx::Error> {
    Ok(Stored {
        row: Customer {
            id: r.try_get("id")?,
            client_id: r.try_get("client_id")?,
            custom_identifier: r.try_get("custom_identifier")?,
            identifier: r.try_get("identifier")?,
            name: r.try_get("name")?,
            email: r.try_get("email")?,
            customer_type: r.try_get("customer_type")?,
            active: r.try_get("active")?,
            bank_name: r.try_get("bank_name")?,
            authorization_type: r.try_get("authorization_type")?,
            bank_account_type: r.try_get("bank_account_type")?,
            account_number: r.try_get("account_number")?,
            transit_number: r.try_get("transit_number")?,
            institution_number: r.try_get("institution_number")?,
            routing_number: r.try_get("routing_number")?,
            contact: Contact {
                phone: r.try_get("phone")?,
                home_phone: r.try_get("home_phone")?,
                address: r.try_get("address")?,
            },
            api_created_at: r.try_get("api_created_at")?,
            api_updated_at: r.try_get("api_updated_at")?,
            extra: r.try_get("extra")?,
        },
        removed: r
            .try_get::<Option<chrono::DateTime<chrono::Utc>>, _>("removed_at")?
            .is_some(),
    })
}

/// The stored customers among `ids`.
pub async fn current(
    conn: &mut PgConnection,
    ids: &[i64],
) -> Result<HashMap<i64, Stored<Customer>>, Error> {
    const SQL: &str = r#"
        select id, client_id, custom_identifier, identifier, name, email, customer_type, active,
               bank_name, authorization_type, bank_account_type, account_number, transit_number,
               institution_number, routing_number, phone, home_phone, address, api_created_at,
               api_updated_at, extra, removed_at
        from rotessa.customers
        where id = any($1)
    "#;
    let rows = sqlx::query(SQL)
        .bind(ids)
        .fetch_all(conn)
        .await
        .op("reading stored customers")?;
    rows.iter()
        .map(|r| customer_of(r).map(|c| (c.row.id, c)))
        .collect::<Result<_, _>>()
        .op("decoding stored customers")
}

/// Inserts new customers and rewrites changed ones (`changed_at` now, no longer removed).
pub async fn upsert(conn: &mut PgConnection, rows: &[&Customer]) -> Result<(), Error> {
    const SQL: &str = r#"
        insert into rotessa.customers as c (
            id, client_id, custom_identifier, identifier, name, email, customer_type, active,
            bank_name, authorization_type, bank_account_type, account_number, transit_number,
            institution_number, routing_number, phone, home_phone, address, api_created_at,
            api_updated_at, extra)
        select * from unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                             $6::text[], $7::text[], $8::boolean[], $9::text[], $10::text[],
                             $11::text[], $12::text[], $13::text[], $14::text[], $15::text[],
                             $16::text[], $17::text[], $18::jsonb[], $19::timestamptz[],
                             $20::timestamptz[], $21::jsonb[])
        on conflict (id) do update set
            client_id = excluded.client_id,
            custom_identifier = excluded.custom_identifier,
            identifier = excluded.identifier,
            name = excluded.name,
            email = excluded.email,
            customer_type = excluded.customer_type,
            active = excluded.active,
            bank_name = excluded.bank_name,
            authorization_type = excluded.authorization_type,
            bank_account_type = excluded.bank_account_type,
            account_number = excluded.account_number,
            transit_number = excluded.transit_number,
            institution_number = excluded.institution_number,
            routing_number = excluded.routing_number,
            phone = excluded.phone,
            home_phone = excluded.home_phone,
            address = excluded.address,
            api_created_at = excluded.api_created_at,
            api_updated_at = excluded.api_updated_at,
            extra = excluded.extra,
            changed_at = now(),
            removed_at = null
    "#;
    if rows.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&Customer) -> Option<&str>| rows.iter().map(|c| f(c)).collect::<Vec<_>>();
    sqlx::query(SQL)
        .bind(rows.iter().map(|c| c.id).collect::<Vec<_>>())
        .bind(rows.iter().map(|c| c.client_id).collect::<Vec<_>>())
        .bind(col(|c| c.custom_identifier.as_deref()))
        .bind(col(|c| c.identifier.as_deref()))
        .bind(col(|c| c.name.as_deref()))
        .bind(col(|c| c.email.as_deref()))
        .bind(col(|c| c.customer_type.as_deref()))
        .bind(rows.iter().map(|c| c.active).collect::<Vec<_>>())
        .bind(col(|c| c.bank_name.as_deref()))
        .bind(col(|c| c.authorization_type.as_deref()))
        .bind(col(|c| c.bank_account_type.as_deref()))
        .bind(col(|c| c.account_number.as_deref()))
        .bind(col(|c| c.transit_number.as_deref()))
        .bind(col(|c| c.institution_number.as_deref()))
        .bind(col(|c| c.routing_number.as_deref()))
        .bind(col(|c| c.contact.phone.as_deref()))
        .bind(col(|c| c.contact.home_phone.as_deref()))
        .bind(
            rows.iter()
                .map(|c| c.contact.address.as_ref())
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|c| c.api_created_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|c| c.api_updated_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|c| c.extra.as_ref()).collect::<Vec<_>>())
        .execute(conn)
        .await
        .op("writing customers")?;
    Ok(())
}

/// Marks the customers of a list that it no longer holds; returns their ids. A customer
/// written after `fetched_after` came from a newer read of the list and is left alone.
pub async fn mark_removed(
    conn: &mut PgConnection,
    client_id: Option<i64>,
    listed: &[i64],
    fetched_after: DateTime<Utc>,
) -> Result<Vec<i64>, Error> {
    const SQL: &str = r#"
        update rotessa.customers set removed_at = now()
        where client_id is not distinct from $1 and removed_at is null and id <> all($2)
          and changed_at < $3
        returning id
    "#;
    sqlx::query_scalar(SQL)
        .bind(client_id)
        .bind(listed)
        .bind(fetched_after)
        .fetch_all(conn)
        .await
        .op("marking removed customers")
}

/// Clears the phone numbers and addresses of a list's customers, stored while
/// `sync.customers.store_contact` was on (removed customers and older views included); returns
/// how many customers had some.
pub async fn clear_contact(conn: &mut PgConnection, client_id: Option<i64>) -> Result<u64, Error> {
    const SQL: &str = r#"
        update rotessa.customers set phone = null, home_phone = null, address = null
        where client_id is not distinct from $1
          and (phone is not null or home_phone is not null or address is not null)
    "#;
    let done = sqlx::query(SQL)
        .bind(client_id)
        .execute(conn)
        .await
        .op("clearing stored contact details")?;
    Ok(done.rows_affected())
}

fn schedule_of(r: &PgRow) -> Result<Stored<Schedule>, sqlx::Error> {
    Ok(Stored {
        row: Schedule {
            id: r.try_get("id")?,
            customer_id: r.try_get("customer_id")?,
            client_id: r.try_get("client_id")?,
            amount: r.try_get("amount")?,
            frequency: r.try_get("frequency")?,
            installments: r.try_get("installments")?,
            process_date: r.try_get("process_date")?,
            next_process_date: r.try_get("next_process_date")?,
            active: r.try_get("active")?,
            comment: r.try_get("comment")?,
            api_created_at: r.try_get("api_created_at")?,
            api_updated_at: r.try_get("api_updated_at")?,
            extra: r.try_get("extra")?,
        },
        removed: r
            .try_get::<Option<chrono::DateTime<chrono::Utc>>, _>("removed_at")?
            .is_some(),
    })
}

/// The stored schedules among `ids`.
pub async fn current_schedules(
    conn: &mut PgConnection,
    ids: &[i64],
) -> Result<HashMap<i64, Stored<Schedule>>, Error> {
    const SQL: &str = r#"
        select id, customer_id, client_id, amount, frequency, installments, process_date,
               next_process_date, active, comment, api_created_at, api_updated_at, extra,
               removed_at
        from rotessa.transaction_schedules
        where id = any($1)
    "#;
    let rows = sqlx::query(SQL)
        .bind(ids)
        .fetch_all(conn)
        .await
        .op("reading stored schedules")?;
    rows.iter()
        .map(|r| schedule_of(r).map(|s| (s.row.id, s)))
        .collect::<Result<_, _>>()
        .op("decoding stored schedules")
}

/// Inserts new schedules and rewrites changed ones (`changed_at` now, no longer removed).
pub async fn upsert_schedules(conn: &mut PgConnection, rows: &[&Schedule]) -> Result<(), Error> {
    const SQL: &str = r#"
        insert into rotessa.transaction_schedules as s (
            id, customer_id, client_id, amount, frequency, installments, process_date,
            next_process_date, active, comment, api_created_at, api_updated_at, extra)
        select * from unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::numeric[], $5::text[],
                             $6::integer[], $7::date[], $8::date[], $9::boolean[], $10::text[],
                             $11::timestamptz[], $12::timestamptz[], $13::jsonb[])
        on conflict (id) do update set
            customer_id = excluded.customer_id,
            client_id = excluded.client_id,
            amount = excluded.amount,
            frequency = excluded.frequency,
            installments = excluded.installments,
            process_date = excluded.process_date,
            next_process_date = excluded.next_process_date,
            active = excluded.active,
            comment = excluded.comment,
            api_created_at = excluded.api_created_at,
            api_updated_at = excluded.api_updated_at,
            extra = excluded.extra,
            changed_at = now(),
            removed_at = null
    "#;
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(SQL)
        .bind(rows.iter().map(|s| s.id).collect::<Vec<_>>())
        .bind(rows.iter().map(|s| s.customer_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|s| s.client_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|s| s.amount).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|s| s.frequency.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|s| s.installments).collect::<Vec<_>>())
        .bind(rows.iter().map(|s| s.process_date).collect::<Vec<_>>())
        .bind(rows.iter().map(|s| s.next_process_date).collect::<Vec<_>>())
        .bind(rows.iter().map(|s| s.active).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|s| s.comment.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|s| s.api_created_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|s| s.api_updated_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|s| s.extra.as_ref()).collect::<Vec<_>>())
        .execute(conn)
        .await
        .op("writing transaction schedules")?;
    Ok(())
}

/// Marks the schedules of these customers that their lists no longer hold; returns how many.
/// A schedule written after `fetched_after` came from a newer read and is left alone.
pub async fn mark_schedules_removed(
    conn: &mut PgConnection,
    customers: &[i64],
    listed: &[i64],
    fetched_after: DateTime<Utc>,
) -> Result<u64, Error> {
    const SQL: &str = r#"
        update rotessa.transaction_schedules set removed_at = now()
        where customer_id = any($1) and removed_at is null and id <> all($2)
          and changed_at < $3
    "#;
    let done = sqlx::query(SQL)
        .bind(customers)
        .bind(listed)
        .bind(fetched_after)
        .execute(conn)
        .await
        .op("marking removed schedules")?;
    Ok(done.rows_affected())
}
