-- Parking poison events (docs/outbox-consumers.md "Parking poison events"): a polling consumer
-- that cannot process an event records it here with the error, acks past it with the usual
-- outbox_ack, and goes on with the events after it. Later, once the cause is fixed, the event is
-- marked for replay (outbox_unpark), read again (outbox_replay_poll) and, once handled, removed
-- (outbox_replay_done). Retention never deletes an event that is parked here.
--
-- Same ownership model as rotessa.outbox_consumers (20261205000001_consumer_owners.sql): a
-- consumer's parked events belong to the consumer's owner. The functions run as the schema owner
-- (SECURITY DEFINER) and check the caller with rotessa.outbox_consumer_check; consumer roles
-- have no privilege on the table itself, and row-level security keeps a role to the rows of its
-- own consumers where a grant survives.

create table rotessa.outbox_parked (
    consumer         text not null
                     references rotessa.outbox_consumers (name) on delete cascade,
    event_id         uuid not null,
    error            text not null,
    state            text not null default 'parked' check (state in ('parked', 'replay')),
    times_parked     integer not null default 1 check (times_parked > 0),
    first_parked_at  timestamptz not null default now(),
    parked_at        timestamptz not null default now(),
    primary key (consumer, event_id)
);
comment on table rotessa.outbox_parked is
    'Events a polling consumer gave up on (parked) or that wait to be processed again (replay); '
    'retention keeps their outbox rows; unregistering the consumer deletes its rows';
-- No foreign key to rotessa.outbox: it would make every retention delete check this table row by
-- row and forbid truncating the outbox. Retention skips parked events itself (outbox_prune below)
-- and outbox_park and outbox_prune serialise on a table lock, so an event cannot be parked and
-- deleted at once.
-- Retention asks "is this event parked by anyone?" for each event it considers.
create index outbox_parked_event_id on rotessa.outbox_parked (event_id);

-- Default privileges of the schema owner may have given the writer (or others) rights on every new
-- table: parked rows, like consumer rows, change only through the functions below.
do $$
declare
    grantee text;
begin
    for grantee in
        select distinct case when a.grantee = 0 then 'public' else quote_ident(r.rolname) end
        from pg_class c
        cross join lateral aclexplode(c.relacl) a
        left join pg_roles r on r.oid = a.grantee
        where c.oid = 'rotessa.outbox_parked'::regclass and a.grantee <> c.relowner
    loop
        execute format('revoke all on rotessa.outbox_parked from %s', grantee);
    end loop;
end
$$;

alter table rotessa.outbox_parked enable row level security;
create policy outbox_parked_owned on rotessa.outbox_parked
    using (exists (
        select from rotessa.outbox_consumers c
        where c.name = outbox_parked.consumer
          and to_regrole(c.owner) is not null
          and pg_has_role(session_user, c.owner, 'MEMBER')))
    with check (exists (
        select from rotessa.outbox_consumers c
        where c.name = outbox_parked.consumer
          and to_regrole(c.owner) is not null
          and pg_has_role(session_user, c.owner, 'MEMBER')));

-- Records that `consumer` gave up on `event_id`, with the error; parking it again (after a failed
-- replay, say) counts it, puts it back to 'parked' and keeps the latest error. The consumer then
-- acks past the event as usual. The event must still be in rotessa.outbox.
create function rotessa.outbox_park(consumer text, event_id uuid, error text)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if not rotessa.outbox_consumer_check(outbox_park.consumer) then
        raise exception 'outbox consumer % is not registered', quote_literal(outbox_park.consumer)
            using errcode = 'undefined_object',
                  hint = format('call rotessa.outbox_register(%L) once', outbox_park.consumer);
    end if;
    if outbox_park.error is null then
        raise exception 'outbox_park: error must not be null: say why the event could not be processed'
            using errcode = 'null_value_not_allowed';
    end if;
    -- Retention takes a SHARE lock on this table before it deletes: holding ROW EXCLUSIVE first,
    -- the event found below cannot be deleted before this transaction commits, and a prune
    -- already running has committed (its deletions are seen below) before this goes on.
    lock table rotessa.outbox_parked in row exclusive mode;
    perform from rotessa.outbox o where o.id = outbox_park.event_id for key share;
    if not found then
        raise exception 'outbox event % does not exist: it was never written, or retention deleted it',
            outbox_park.event_id
            using errcode = 'no_data_found',
                  hint = 'park the id of an event returned by outbox_poll or outbox_replay_poll';
    end if;
    insert into rotessa.outbox_parked as p (consumer, event_id, error)
    values (outbox_park.consumer, outbox_park.event_id, outbox_park.error)
    on conflict on constraint outbox_parked_pkey do update
        set error = excluded.error,
            state = 'parked',
            times_parked = p.times_parked + 1,
            parked_at = now();
end
$$;

-- Marks one parked event of `consumer` (or all of them, when event_id is null) for replay;
-- returns how many changed (events already marked are not counted).
create function rotessa.outbox_unpark(consumer text, event_id uuid default null)
returns integer
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    marked integer;
begin
    if not rotessa.outbox_consumer_check(outbox_unpark.consumer) then
        raise exception 'outbox consumer % is not registered', quote_literal(outbox_unpark.consumer)
            using errcode = 'undefined_object',
                  hint = format('call rotessa.outbox_register(%L) once', outbox_unpark.consumer);
    end if;
    update rotessa.outbox_parked p
    set state = 'replay'
    where p.consumer = outbox_unpark.consumer
      and (outbox_unpark.event_id is null or p.event_id = outbox_unpark.event_id)
      and p.state = 'parked';
    get diagnostics marked = row_count;
    return marked;
end
$$;

-- The events of `consumer` marked for replay, oldest (in delivery order) first, as outbox_poll
-- returns events. Reading changes nothing: until outbox_replay_done, they come back.
create function rotessa.outbox_replay_poll(consumer text, max integer)
returns setof rotessa.outbox
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if not rotessa.outbox_consumer_check(outbox_replay_poll.consumer) then
        raise exception 'outbox consumer % is not registered', quote_literal(outbox_replay_poll.consumer)
            using errcode = 'undefined_object',
                  hint = format('call rotessa.outbox_register(%L) once', outbox_replay_poll.consumer);
    end if;
    return query
        select o.*
        from rotessa.outbox_parked p
        join rotessa.outbox o on o.id = p.event_id
        where p.consumer = outbox_replay_poll.consumer
          and p.state = 'replay'
        order by o.txid, o.seq
        limit outbox_replay_poll.max;
end
$$;

-- A replayed event was handled: its parked row goes. False when it was not marked for replay
-- (never parked, parked but not unparked, or already done).
create function rotessa.outbox_replay_done(consumer text, event_id uuid)
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if not rotessa.outbox_consumer_check(outbox_replay_done.consumer) then
        raise exception 'outbox consumer % is not registered', quote_literal(outbox_replay_done.consumer)
            using errcode = 'undefined_object',
                  hint = format('call rotessa.outbox_register(%L) once', outbox_replay_done.consumer);
    end if;
    delete from rotessa.outbox_parked p
    where p.consumer = outbox_replay_done.consumer
      and p.event_id = outbox_replay_done.event_id
      and p.state = 'replay';
    return found;
end
$$;

-- Every parked event of `consumer` (in either state), in delivery order, with what the outbox
-- says of it (type, aggregateid, occurred_at: null if the event was deleted by hand).
create function rotessa.outbox_parked_list(consumer text)
returns table (event_id uuid, type text, aggregateid text, state text, error text,
               times_parked integer, first_parked_at timestamptz, parked_at timestamptz,
               occurred_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if not rotessa.outbox_consumer_check(outbox_parked_list.consumer) then
        raise exception 'outbox consumer % is not registered', quote_literal(outbox_parked_list.consumer)
            using errcode = 'undefined_object',
                  hint = format('call rotessa.outbox_register(%L) once', outbox_parked_list.consumer);
    end if;
    return query
        select p.event_id, o.type, o.aggregateid, p.state, p.error, p.times_parked,
               p.first_parked_at, p.parked_at, o.occurred_at
        from rotessa.outbox_parked p
        left join rotessa.outbox o on o.id = p.event_id
        where p.consumer = outbox_parked_list.consumer
        order by o.txid nulls first, o.seq, p.event_id;
end
$$;

-- Retention, as in 20261122000003, except that a parked event (any consumer, either state) is
-- never deleted: it is skipped, and the events after it can still go. The SHARE lock waits for
-- outbox_park calls in flight and holds new ones back until this batch commits.
create or replace function rotessa.outbox_prune(retention interval, batch_size integer default 1000,
                                                without_consumers boolean default false)
returns bigint
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
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
    lock table rotessa.outbox_parked in share mode;
    with head as (
        select o.id,
               bool_and(o.occurred_at < now() - retention)
                   over (order by o.txid, o.seq) as old_prefix
        from rotessa.outbox o
        where (o.txid, o.seq) <= (bound_txid, bound_seq)
          and not exists (select from rotessa.outbox_parked p where p.event_id = o.id)
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

-- The lag view gains each consumer's parked events: `parked` (given up on) and
-- `awaiting_replay` (marked for replay, not done yet). Same visibility as before.
create or replace view rotessa.outbox_consumer_lag as
select c.name,
       c.last_txid,
       c.last_seq,
       c.updated_at,
       b.backlog,
       b.oldest_unacked_at,
       now() - b.oldest_unacked_at as oldest_unacked_age,
       k.parked,
       k.awaiting_replay
from rotessa.outbox_consumers c
cross join lateral (
    select count(*) as backlog, min(o.occurred_at) as oldest_unacked_at
    from rotessa.outbox o
    where (o.txid, o.seq) > (c.last_txid, c.last_seq)
) b
cross join lateral (
    select count(*) filter (where p.state = 'parked') as parked,
           count(*) filter (where p.state = 'replay') as awaiting_replay
    from rotessa.outbox_parked p
    where p.consumer = c.name
) k
where has_function_privilege(session_user, 'rotessa.outbox_prune(interval, integer, boolean)', 'EXECUTE')
   or (to_regrole(c.owner) is not null and pg_has_role(session_user, c.owner, 'MEMBER'));

revoke execute on function rotessa.outbox_park(text, uuid, text) from public;
revoke execute on function rotessa.outbox_unpark(text, uuid) from public;
revoke execute on function rotessa.outbox_replay_poll(text, integer) from public;
revoke execute on function rotessa.outbox_replay_done(text, uuid) from public;
revoke execute on function rotessa.outbox_parked_list(text) from public;
