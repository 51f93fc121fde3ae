-- rotessa-recon: the whole schema of SPEC.md "Database".
-- Money is numeric(14,2); dates are date; instants are timestamptz (UTC).
-- Indexes are few on purpose: each secondary index costs ingest speed. Each one names the
-- README query it serves.

create schema if not exists rotessa;

-- One row per Rotessa financial transaction.
create table rotessa.transactions (
    id                          bigint primary key,
    client_id                   bigint,            -- null for v1 (single-merchant) accounts
    customer_id                 bigint,
    transaction_schedule_id     bigint,
    amount                      numeric(14, 2) not null,
    status                      text not null
        check (status in ('Future', 'Pending', 'Approved', 'Declined', 'Chargeback')),
    status_reason               text,
    process_date                date not null,
    settlement_date             date,
    decline_date                date,
    earliest_approval_date      date,
    transaction_number          text,
    custom_identifier           text,
    schedule_custom_identifier  text,              -- the API's `transaction_custom_identifieer`
    comment                     text,
    institution_number          text,
    transit_number              text,
    account_number              text,              -- as sent (numbers become their decimal text)
    api_created_at              timestamptz,
    api_updated_at              timestamptz,
    extra                       jsonb,             -- fields without a column, and the original text
                                                   -- of optional fields that could not be parsed
    fingerprint                 bigint not null,   -- hash of every stored field: cheap change detection
    first_seen_at               timestamptz not null default now(),
    changed_at                  timestamptz not null default now(),
    status_changed_at           timestamptz not null default now()
);
comment on column rotessa.transactions.fingerprint is
    'xxh3 of the stored API fields; equal fingerprints mean nothing to write';
-- Approved amount per settlement date; the settlement reconciliation.
create index transactions_settlement on rotessa.transactions (settlement_date, client_id);
-- Declines by reason this month; chargebacks in a period.
create index transactions_decline on rotessa.transactions (decline_date)
    where decline_date is not null;

-- Every observed status transition (from_status null on first sight).
create table rotessa.transaction_status_history (
    id              bigint generated always as identity,
    transaction_id  bigint not null,
    from_status     text,
    to_status       text not null,
    status_reason   text,
    decline_date    date,
    observed_at     timestamptz not null,
    source          text not null,
    sync_run_id     bigint,
    -- One index serves both uniqueness and "the history of transaction X".
    primary key (transaction_id, id)
);
-- What changed today: history is append-only in time order, so BRIN costs almost nothing.
create index transaction_status_history_observed on rotessa.transaction_status_history
    using brin (observed_at);

-- Rotessa's settlement totals per client and settlement date.
create table rotessa.settlements (
    client_id          bigint not null,
    settlement_date    date not null,
    number_approved    integer not null,
    number_declined    integer not null,
    number_chargeback  integer not null,
    number_payout      integer not null,
    total_approved     numeric(14, 2) not null,
    total_declined     numeric(14, 2) not null,
    total_chargeback   numeric(14, 2) not null,
    total_payout       numeric(14, 2) not null,
    extra              jsonb,
    first_seen_at      timestamptz not null default now(),
    changed_at         timestamptz not null default now(),
    primary key (client_id, settlement_date)
);

-- The platform's clients; few rows, so the whole payload is kept (API keys stripped).
create table rotessa.clients (
    id             bigint primary key,
    business_name  text,
    operating_as   text,
    status         text,
    raw            jsonb not null,
    seen_at        timestamptz not null default now()
);

-- Status-change events, with Debezium outbox event router column names.
create table rotessa.outbox (
    id             uuid primary key,
    aggregatetype  text not null,
    aggregateid    text not null,
    type           text not null,
    payload        jsonb not null,
    occurred_at    timestamptz not null default now(),
    seq            bigint generated always as identity,
    txid           xid8 not null default pg_current_xact_id()
);
-- Polling consumers read (txid, seq) > (last_txid, last_seq) behind the snapshot fence.
create index outbox_txid_seq on rotessa.outbox (txid, seq);

-- Per (stream, client): where the next run starts. client_id 0 = account-wide (all clients, or v1).
create table rotessa.sync_state (
    stream           text not null,
    client_id        bigint not null default 0,
    cursor_date      date,
    last_success_at  timestamptz,
    last_run_id      bigint,
    primary key (stream, client_id)
);

-- One row per run of a stream for a client.
create table rotessa.sync_runs (
    id               bigint generated always as identity primary key,
    stream           text not null,
    client_id        bigint not null default 0,
    status           text not null default 'running'
        check (status in ('running', 'succeeded', 'failed', 'cancelled', 'abandoned')),
    started_at       timestamptz not null default now(),
    finished_at      timestamptz,
    heartbeat_at     timestamptz not null default now(),
    window_from      date,
    window_to        date,
    pages            integer not null default 0,
    rows_seen        bigint not null default 0,
    rows_inserted    bigint not null default 0,
    rows_updated     bigint not null default 0,
    rows_unchanged   bigint not null default 0,
    rows_rejected    bigint not null default 0,
    anomalies        bigint not null default 0,
    events_emitted   bigint not null default 0,
    error            text,
    host             text
);
-- `status`: the latest runs per stream and client.
create index sync_runs_stream_client on rotessa.sync_runs (stream, client_id, id desc);
-- Finding runs whose process died.
create index sync_runs_running on rotessa.sync_runs (heartbeat_at) where status = 'running';

-- Rows the parser could not accept, kept with their raw JSON; repeats are counted, not re-stored.
create table rotessa.rejected_records (
    id            bigint generated always as identity primary key,
    stream        text not null,
    client_id     bigint not null default 0,
    sync_run_id   bigint,
    page          integer,
    raw           text not null,
    raw_hash      bigint not null,
    error         text not null,
    first_seen_at timestamptz not null default now(),
    last_seen_at  timestamptz not null default now(),
    times_seen    integer not null default 1,
    unique (stream, client_id, raw_hash)
);

-- Observations the status rules refused to apply (a move backward), with both sides.
create table rotessa.status_anomalies (
    id                     bigint generated always as identity primary key,
    transaction_id         bigint not null,
    stored_status          text not null,
    stored_status_reason   text,
    stored_status_at       timestamptz,
    observed_status        text not null,
    observed_status_reason text,
    source                 text not null,
    sync_run_id            bigint,
    first_seen_at          timestamptz not null default now(),
    last_seen_at           timestamptz not null default now(),
    times_seen             integer not null default 1,
    unique (transaction_id, stored_status, observed_status, source)
);

-- The single-writer lease: one row per lease name, held until expires_at.
create table rotessa.leases (
    name         text primary key,
    holder       text not null,
    token        bigint not null,
    acquired_at  timestamptz not null default now(),
    renewed_at   timestamptz not null default now(),
    expires_at   timestamptz not null
);
