-- Outbox consumers: a SQL contract any language can use to read rotessa.outbox safely, by
-- polling (docs/outbox-consumers.md). CDC (Debezium) reads the WAL and needs none of this.
--
-- Delivery order is (txid, seq). seq is assigned at insert, not at commit, so a transaction
-- that inserted first can commit last; reading by seq alone would skip its events. Every read
-- therefore stops at the visibility fence, txid < pg_snapshot_xmin(pg_current_snapshot()):
-- every transaction below it has finished, so no event can later appear behind a position
-- that was already delivered.

-- One row per registered polling consumer: its acknowledged position in (txid, seq) order.
-- Registration is explicit (rotessa.outbox_register) because a registered consumer holds
-- events back from retention until it has acked them: a misspelt name must not silently
-- start holding every event forever.
create table rotessa.outbox_consumers (
    name        text primary key check (name <> ''),
    last_txid   xid8 not null,
    last_seq    bigint not null,
    updated_at  timestamptz not null default now()
);
comment on table rotessa.outbox_consumers is
    'Registered polling consumers of rotessa.outbox and the last (txid, seq) each acked';

-- The events after (after_txid, after_seq), in delivery order, behind the visibility fence.
-- For consumers that keep their own position (e.g. in their own database, committed with
-- their side effects). ('0', 0) means "from the beginning".
create function rotessa.outbox_read(after_txid xid8, after_seq bigint, max integer default 100)
returns setof rotessa.outbox
language sql
stable
as $$
    select o.*
    from rotessa.outbox o
    where (o.txid, o.seq) > (after_txid, after_seq)
      and o.txid < pg_snapshot_xmin(pg_current_snapshot())
    order by o.txid, o.seq
    limit max
$$;

-- Registers a consumer; does nothing (and returns false) when it already exists, keeping its
-- position. start_from: 'beginning' (every event still retained) or 'now' (only events that
-- become visible after this call).
create function rotessa.outbox_register(consumer text, start_from text default 'beginning')
returns boolean
language plpgsql
as $$
declare
    start_txid xid8 := '0';
    start_seq  bigint := 0;
    inserted   bigint;
begin
    if start_from = 'now' then
        select o.txid, o.seq into start_txid, start_seq
        from rotessa.outbox o
        where o.txid < pg_snapshot_xmin(pg_current_snapshot())
        order by o.txid desc, o.seq desc
        limit 1;
        if not found then
            start_txid := '0';
            start_seq := 0;
        end if;
    elsif start_from is distinct from 'beginning' then
        raise exception 'outbox_register: start_from must be ''beginning'' or ''now'', not %',
            quote_nullable(start_from)
            using errcode = 'invalid_parameter_value';
    end if;
    insert into rotessa.outbox_consumers (name, last_txid, last_seq)
    values (consumer, start_txid, start_seq)
    on conflict (name) do nothing;
    get diagnostics inserted = row_count;
    return inserted > 0;
end
$$;

-- Removes a consumer, releasing the events it held back from retention.
create function rotessa.outbox_unregister(consumer text)
returns boolean
language sql
as $$
    with gone as (
        delete from rotessa.outbox_consumers c where c.name = consumer returning 1
    )
    select exists (select from gone)
$$;

-- The next events for a registered consumer, after its acked position, in (txid, seq) order,
-- behind the visibility fence. Reading does not move the position: until outbox_ack, the same
-- events come back (at-least-once).
create function rotessa.outbox_poll(consumer text, max integer default 100)
returns setof rotessa.outbox
language plpgsql
stable
as $$
declare
    pos record;
begin
    select c.last_txid, c.last_seq into pos
    from rotessa.outbox_consumers c
    where c.name = consumer;
    if not found then
        raise exception 'outbox consumer % is not registered', quote_literal(consumer)
            using errcode = 'undefined_object',
                  hint = format('call rotessa.outbox_register(%L) once', consumer);
    end if;
    return query select * from rotessa.outbox_read(pos.last_txid, pos.last_seq, max);
end
$$;

-- Moves a consumer's position to (txid, seq), forward only: acking an older position is a
-- no-op that returns false. A position at or past the visibility fence is refused, since a
-- transaction still in flight could commit events before it.
create function rotessa.outbox_ack(consumer text, txid xid8, seq bigint)
returns boolean
language plpgsql
as $$
declare
    moved bigint;
begin
    if outbox_ack.txid >= pg_snapshot_xmin(pg_current_snapshot()) then
        raise exception 'cannot ack (%, %): it is not behind the visibility fence (%)',
            outbox_ack.txid, outbox_ack.seq, pg_snapshot_xmin(pg_current_snapshot())
            using errcode = 'invalid_parameter_value',
                  hint = 'ack only (txid, seq) of events returned by outbox_poll or outbox_read';
    end if;
    update rotessa.outbox_consumers c
    set last_txid = outbox_ack.txid,
        last_seq = outbox_ack.seq,
        updated_at = now()
    where c.name = consumer
      and (c.last_txid, c.last_seq) < (outbox_ack.txid, outbox_ack.seq);
    get diagnostics moved = row_count;
    if moved = 0 and not exists (select from rotessa.outbox_consumers c where c.name = consumer) then
        raise exception 'outbox consumer % is not registered', quote_literal(consumer)
            using errcode = 'undefined_object',
                  hint = format('call rotessa.outbox_register(%L) once', consumer);
    end if;
    return moved > 0;
end
$$;

-- Retention, one batch: deletes up to batch_size of the oldest events in (txid, seq) order,
-- stopping at the first event that is younger than `retention` or that some registered
-- consumer has not acked. With no registered consumer nothing is deleted, unless
-- without_consumers is true (CDC-only deployments). Returns the number of events deleted; call
-- again while it returns batch_size.
create function rotessa.outbox_prune(retention interval, batch_size integer default 1000,
                                     without_consumers boolean default false)
returns bigint
language plpgsql
as $$
declare
    bound_txid xid8;
    bound_seq  bigint;
    deleted    bigint;
begin
    -- The lowest acked position: every consumer has acked everything up to it.
    select c.last_txid, c.last_seq into bound_txid, bound_seq
    from rotessa.outbox_consumers c
    order by c.last_txid, c.last_seq
    limit 1;
    if not found then
        if not without_consumers then
            return 0;
        end if;
        bound_txid := '18446744073709551615';
        bound_seq := 9223372036854775807;
    end if;
    with head as (
        select o.id,
               bool_and(o.occurred_at < now() - retention)
                   over (order by o.txid, o.seq) as old_prefix
        from rotessa.outbox o
        where (o.txid, o.seq) <= (bound_txid, bound_seq)
        order by o.txid, o.seq
        limit batch_size
    )
    delete from rotessa.outbox o
    using head
    where o.id = head.id and head.old_prefix;
    get diagnostics deleted = row_count;
    return deleted;
end
$$;

-- Per consumer: its position, how many events it has not acked, and how old the oldest is.
create view rotessa.outbox_consumer_lag as
select c.name,
       c.last_txid,
       c.last_seq,
       c.updated_at,
       b.backlog,
       b.oldest_unacked_at,
       now() - b.oldest_unacked_at as oldest_unacked_age
from rotessa.outbox_consumers c
cross join lateral (
    select count(*) as backlog, min(o.occurred_at) as oldest_unacked_at
    from rotessa.outbox o
    where (o.txid, o.seq) > (c.last_txid, c.last_seq)
) b;
