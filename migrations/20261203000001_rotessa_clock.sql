-- Rotessa's clock decides (README "Status rules"): every report row carries `updated_at`, and an
-- observation older than what is stored is stale, one newer is applied.

-- The newest `updated_at` Rotessa has reported for the row. `api_updated_at` is what the last
-- applied observation said, and a report that omits `updated_at` (the decline report's
-- documented example does) leaves it NULL; this one never goes back, so a row's order survives.
alter table rotessa.transactions add column latest_updated_at timestamptz;
update rotessa.transactions set latest_updated_at = api_updated_at
where api_updated_at is not null;
comment on column rotessa.transactions.latest_updated_at is
    'the newest updated_at Rotessa reported for this row: observations older than it are stale';

-- Anomalies now come in three kinds an operator treats differently:
--   stale    a report lagging behind what is stored: not applied;
--   backward a move against the lifecycle with no newer updated_at to justify it: not applied;
--   reversal a move back in the lifecycle that was applied (a newer updated_at, or a
--            resubmission): emitted with "reversal": true, kept here for review.
alter table rotessa.status_anomalies
    add column kind text not null default 'backward'
        check (kind in ('stale', 'backward', 'reversal')),
    add column stored_updated_at timestamptz,
    add column observed_updated_at timestamptz;
alter table rotessa.status_anomalies alter column kind drop default;
do $$
declare
    old_key text;
begin
    select conname into old_key from pg_constraint
    where conrelid = 'rotessa.status_anomalies'::regclass and contype = 'u';
    execute format('alter table rotessa.status_anomalies drop constraint %I', old_key);
end
$$;
alter table rotessa.status_anomalies add constraint status_anomalies_once_per_kind
    unique (transaction_id, kind, stored_status, observed_status, source);

-- Observations not applied because they were not newer than the stored row, per run.
alter table rotessa.sync_runs add column rows_stale bigint not null default 0;

-- The page cache holds a digest only while the table holds what the page's application left:
-- `covered` rows whose fingerprints add up to `state`. A dense page (ids close together) covers
-- its primary-key range [id_from, id_to], the other rows in between included (their change
-- only makes the page be compared again); a sparse page (id_from NULL) covers exactly its `ids`.
-- A read that finds another count or sum (a writer changed a row since) does not skip the page.
-- `ids` are the page's rows either way (`id_sum` their sum, so that the rows of skipped pages
-- can be counted without reading the arrays). Digests recorded before this migration cannot say
-- so, and are forgotten.
truncate rotessa.page_digests;
alter table rotessa.page_digests
    add column ids bigint[] not null,
    add column id_sum numeric not null,
    add column id_from bigint,
    add column id_to bigint,
    add column covered bigint not null,
    add column state numeric not null,
    add constraint page_digests_range check ((id_from is null) = (id_to is null));
