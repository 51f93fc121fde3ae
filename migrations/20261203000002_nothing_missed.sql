-- Nothing falls through the cracks (README "Removed rows", "The reconciliation", "Run history"):
-- rows Rotessa stops reporting are marked, a settlement date is reconciled once both of its
-- sides are in, the chargeback model is a setting, and the run history is bounded.

-- Rows Rotessa no longer reports inside a window read in full: marked, never deleted.
-- `absent_reads` counts consecutive complete reads of the row's window that did not return it;
-- at two the row is marked `removed_at` (a row that only moved between pages while they were
-- read is missing from one read, not two).
alter table rotessa.transactions
    add column removed_at timestamptz,
    add column absent_reads smallint not null default 0;
comment on column rotessa.transactions.removed_at is
    'when the row was found gone from Rotessa''s transaction report (NULL while reported)';
-- The rows of a transaction-report window (by process date), to find the ones it no longer
-- returns; and the few rows some read did not return (usually none).
create index transactions_process_date on rotessa.transactions (process_date);
create index transactions_absent on rotessa.transactions (process_date) where absent_reads > 0;

-- History records removals and restorations beside status changes.
alter table rotessa.transaction_status_history
    add column change text not null default 'status'
        check (change in ('status', 'removed', 'restored'));

-- A removed Approved or Chargeback row should not happen: an anomaly of its own kind.
alter table rotessa.status_anomalies drop constraint status_anomalies_kind_check;
alter table rotessa.status_anomalies add constraint status_anomalies_kind_check
    check (kind in ('stale', 'backward', 'reversal', 'removed'));

-- Since when each stream's last complete read began: a settlement date is reconciled only once
-- the transactions and declines read after its settlement was (SPEC "Reconcile when both
-- sides are in").
alter table rotessa.sync_state add column last_success_started_at timestamptz;

-- Dates whose comparison may have changed, noted in the transaction of the change (a new or
-- changed settlement, a transaction written, removed or restored, the model switched) and
-- reconciled at the end of a pass once both sides are in. Never updated, only inserted and
-- deleted by id, so a note taken while a date is being reconciled is never lost.
create table rotessa.reconciliation_pending (
    id               bigint generated always as identity primary key,
    client_id        bigint not null,
    settlement_date  date not null,
    noted_at         timestamptz not null default now()
);

-- The chargeback model in force (`reconciliation.chargeback_on`): Rotessa does not document on
-- which settlement date a chargeback counts. Written by the sync at every pass; one row (read as
-- 'decline_date' if missing).
create table rotessa.reconciliation_settings (
    singleton      boolean primary key default true check (singleton),
    chargeback_on  text not null default 'decline_date'
        check (chargeback_on in ('decline_date', 'settlement_date')),
    changed_at     timestamptz not null default now()
);
insert into rotessa.reconciliation_settings default values;

-- The reconciliation, without removed rows and under the chargeback model in force:
--   decline_date     a charged-back transaction counts as approved on its settlement date (that
--                    day's money moved) and as a chargeback on the day it happened;
--   settlement_date  it counts as a chargeback on its own settlement date, not as approved.
create or replace view rotessa.settlement_reconciliation as
with settled as (
    select client_id,
           settlement_date,
           count(*) filter (where status = 'Approved' or (status = 'Chargeback'
               and (select coalesce(max(chargeback_on), 'decline_date') from rotessa.reconciliation_settings) = 'decline_date'))
               as number_approved,
           coalesce(sum(amount) filter (where status = 'Approved' or (status = 'Chargeback'
               and (select coalesce(max(chargeback_on), 'decline_date') from rotessa.reconciliation_settings) = 'decline_date')),
               0) as total_approved,
           count(*) filter (where status = 'Declined')                                 as number_declined,
           coalesce(sum(amount) filter (where status = 'Declined'), 0)                  as total_declined
    from rotessa.transactions
    where settlement_date is not null and client_id is not null and removed_at is null
    group by client_id, settlement_date
),
charged_back as (
    select client_id,
           decline_date as settlement_date,
           count(*)    as number_chargeback,
           sum(amount) as total_chargeback
    from rotessa.transactions
    where status = 'Chargeback' and decline_date is not null and client_id is not null
      and removed_at is null
      and (select coalesce(max(chargeback_on), 'decline_date') from rotessa.reconciliation_settings) = 'decline_date'
    group by client_id, decline_date
    union all
    select client_id,
           settlement_date,
           count(*),
           sum(amount)
    from rotessa.transactions
    where status = 'Chargeback' and settlement_date is not null and client_id is not null
      and removed_at is null
      and (select coalesce(max(chargeback_on), 'decline_date') from rotessa.reconciliation_settings) = 'settlement_date'
    group by client_id, settlement_date
),
computed as (
    select s.client_id, s.settlement_date,
           coalesce(c.number_approved, 0)   as number_approved,
           coalesce(c.total_approved, 0)    as total_approved,
           coalesce(c.number_declined, 0)   as number_declined,
           coalesce(c.total_declined, 0)    as total_declined,
           coalesce(k.number_chargeback, 0) as number_chargeback,
           coalesce(k.total_chargeback, 0)  as total_chargeback
    from rotessa.settlements s
    left join settled c
           on c.client_id = s.client_id and c.settlement_date = s.settlement_date
    left join charged_back k
           on k.client_id = s.client_id and k.settlement_date = s.settlement_date
)
select s.client_id,
       s.settlement_date,
       s.number_approved                                              as rotessa_number_approved,
       c.number_approved                                              as computed_number_approved,
       s.total_approved                                               as rotessa_total_approved,
       c.total_approved::numeric(14, 2)                               as computed_total_approved,
       (s.total_approved - c.total_approved)::numeric(14, 2)          as diff_total_approved,
       s.number_declined                                              as rotessa_number_declined,
       c.number_declined                                              as computed_number_declined,
       s.total_declined                                               as rotessa_total_declined,
       c.total_declined::numeric(14, 2)                               as computed_total_declined,
       (s.total_declined - c.total_declined)::numeric(14, 2)          as diff_total_declined,
       s.number_chargeback                                            as rotessa_number_chargeback,
       c.number_chargeback                                            as computed_number_chargeback,
       s.total_chargeback                                             as rotessa_total_chargeback,
       c.total_chargeback::numeric(14, 2)                             as computed_total_chargeback,
       (s.total_chargeback - c.total_chargeback)::numeric(14, 2)      as diff_total_chargeback,
       s.total_payout                                                 as rotessa_total_payout,
       (    s.number_approved = c.number_approved
        and s.total_approved = c.total_approved
        and s.number_declined = c.number_declined
        and s.total_declined = c.total_declined
        and s.number_chargeback = c.number_chargeback
        and s.total_chargeback = c.total_chargeback)                  as matched
from rotessa.settlements s
join computed c on c.client_id = s.client_id and c.settlement_date = s.settlement_date;

-- Run history is pruned by age; `status` and the pruning read each stream and client's latest
-- runs through `sync_runs_stream_client`. Finding old finished runs in batches:
create index sync_runs_finished on rotessa.sync_runs (finished_at) where status <> 'running';
