-- The settlement reconciliation: Rotessa's settlement totals per client and settlement date
-- beside the totals computed from rotessa.transactions, the differences, and a matched flag.
-- A settlement records what moved on its day: a transaction counts as approved on its
-- settlement_date if it was approved (it still counts there after a later chargeback), as
-- declined on its settlement_date if it is Declined, and a chargeback counts on the day it
-- happened (its decline_date). Payouts have no transaction-side counterpart.
create view rotessa.settlement_reconciliation as
with settled as (
    select client_id,
           settlement_date,
           count(*) filter (where status in ('Approved', 'Chargeback'))                 as number_approved,
           coalesce(sum(amount) filter (where status in ('Approved', 'Chargeback')), 0) as total_approved,
           count(*) filter (where status = 'Declined')                                 as number_declined,
           coalesce(sum(amount) filter (where status = 'Declined'), 0)                  as total_declined
    from rotessa.transactions
    where settlement_date is not null and client_id is not null
    group by client_id, settlement_date
),
charged_back as (
    select client_id,
           decline_date as settlement_date,
           count(*)    as number_chargeback,
           sum(amount) as total_chargeback
    from rotessa.transactions
    where status = 'Chargeback' and decline_date is not null and client_id is not null
    group by client_id, decline_date
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

-- The last reconciliation outcome per client and settlement date, so that an event is emitted
-- only when a date's comparison changes (first evaluation included).
create table rotessa.reconciliation_state (
    client_id        bigint not null,
    settlement_date  date not null,
    matched          boolean not null,
    changed_at       timestamptz not null default now(),
    primary key (client_id, settlement_date)
);
