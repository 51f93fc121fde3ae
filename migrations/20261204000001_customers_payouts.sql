-- Who paid, on what schedule, and what the platform earned (README "Customers, schedules and
-- payouts"): the customers stream with their nested schedules, and the platform's payout report.
--
-- Personal data is minimised on purpose: bank numbers are kept masked to at most their last 3
-- characters, phone numbers and addresses only with `sync.customers.store_contact = true`, and
-- a customer's nested financial transactions not at all (the reports own transactions).

create table rotessa.customers (
    id                  bigint primary key,
    client_id           bigint,            -- null for v1 (single-merchant) accounts
    custom_identifier   text,
    identifier          text,
    name                text,
    email               text,
    customer_type       text,
    active              boolean,
    bank_name           text,
    authorization_type  text,
    bank_account_type   text,
    -- Masked: every character but the last 3 (never the whole value) becomes '*'.
    account_number      text,
    transit_number      text,
    institution_number  text,
    routing_number      text,
    -- Only with sync.customers.store_contact = true; null otherwise.
    phone               text,
    home_phone          text,
    address             jsonb,
    api_created_at      timestamptz,
    api_updated_at      timestamptz,
    extra               jsonb,             -- fields without a column (contact and bank data never)
    first_seen_at       timestamptz not null default now(),
    changed_at          timestamptz not null default now(),
    -- A customer that a complete read of its client's list no longer returns: marked, never deleted.
    removed_at          timestamptz
);
comment on column rotessa.customers.account_number is
    'masked to its last 3 characters; the full number is never stored';
-- "Who is this client's customer" and the per-client removal check.
create index customers_client on rotessa.customers (client_id);

create table rotessa.transaction_schedules (
    id                 bigint primary key,
    customer_id        bigint not null,
    client_id          bigint,
    amount             numeric(14, 2),
    frequency          text,
    installments       integer,
    process_date       date,
    next_process_date  date,
    active             boolean,
    comment            text,
    api_created_at     timestamptz,
    api_updated_at     timestamptz,
    extra              jsonb,
    first_seen_at      timestamptz not null default now(),
    changed_at         timestamptz not null default now(),
    -- Gone from its customer's `transaction_schedules`: marked, never deleted.
    removed_at         timestamptz
);
-- A customer's schedules, for the removal check and the expected-collections query.
create index transaction_schedules_customer on rotessa.transaction_schedules (customer_id);

-- The platform's payouts (`GET /v2/payout_report`). Rotessa gives a Future payout no id and no
-- financial transaction, so the key is chosen here (README "Payout keys"):
--   'payout:<id>'                    when it has an id (a transaction may have several payouts);
--   'ft:<financial transaction id>'  else when it names its financial transaction;
--   'future:<customer id>:<transaction amount>:<amount>:<n>'
--                                    else: the n-th such payout of one response (a forecast,
--                                    replaced by each complete run).
create table rotessa.payouts (
    payout_key                text primary key,
    payout_id                 bigint,
    financial_transaction_id  bigint,
    customer_id               bigint,
    amount                    numeric(14, 2) not null,
    transaction_amount        numeric(14, 2),
    status                    text,
    -- From the nested financial transaction, when there is one.
    process_date              date,
    settlement_date           date,
    api_updated_at            timestamptz,
    extra                     jsonb,
    first_seen_at             timestamptz not null default now(),
    changed_at                timestamptz not null default now(),
    -- A forecast payout no longer in a complete run's window: marked, never deleted.
    removed_at                timestamptz
);
-- Payouts of a transaction (the join to rotessa.transactions).
create index payouts_financial_transaction on rotessa.payouts (financial_transaction_id)
    where financial_transaction_id is not null;
