-- Least privilege for outbox consumers (docs/deployment.md "Roles"): each consumer row records
-- the role that registered it, and only that role (or a role that is a member of it) may poll,
-- ack or unregister it.
--
-- The consumer functions run with the rights of their owner, the schema owner (SECURITY
-- DEFINER), and check the caller's login role, session_user, against the row's owner:
-- inside such a function current_user is the owner, and session_user is the one identity of
-- the caller that SET ROLE cannot change. Consumer roles get EXECUTE on the functions and no
-- privilege on the table itself (`rotessa-recon grant --consumer ROLE`), so direct reads and
-- writes of rotessa.outbox_consumers fail with "permission denied"; row-level security keeps
-- each role to its own rows even where an older grant survives. The schema owner (a
-- single-user deployment) is unaffected: it owns every existing row and bypasses row-level
-- security on its own table.

alter table rotessa.outbox_consumers
    add column owner text not null default session_user;
comment on column rotessa.outbox_consumers.owner is
    'the login role that registered the consumer; only its members may poll, ack or unregister it';

-- Grants made by the earlier documentation (select, insert, update on the table to each consumer
-- role, table-wide or per column) would let one consumer move another's position: withdraw them.
-- The functions below are the way in now.
do $$
declare
    grantee text;
begin
    for grantee in
        select distinct case when a.grantee = 0 then 'public' else quote_ident(r.rolname) end
        from pg_class c
        cross join lateral aclexplode(c.relacl) a
        left join pg_roles r on r.oid = a.grantee
        where c.oid = 'rotessa.outbox_consumers'::regclass and a.grantee <> c.relowner
        union
        select distinct case when a.grantee = 0 then 'public' else quote_ident(r.rolname) end
        from pg_attribute att
        cross join lateral aclexplode(att.attacl) a
        left join pg_roles r on r.oid = a.grantee
        where att.attrelid = 'rotessa.outbox_consumers'::regclass and att.attacl is not null
    loop
        execute format('revoke all on rotessa.outbox_consumers from %s', grantee);
        raise notice 'revoked the direct grants of % on rotessa.outbox_consumers: each consumer now belongs to a role (docs/outbox-consumers.md "Permissions": run rotessa-recon grant --consumer for consumer roles, and hand each consumer to its role)', grantee;
    end loop;
end
$$;

alter table rotessa.outbox_consumers enable row level security;
create policy outbox_consumers_owned on rotessa.outbox_consumers
    using (to_regrole(owner) is not null and pg_has_role(session_user, owner, 'MEMBER'))
    with check (pg_has_role(session_user, owner, 'MEMBER'));

-- Whether a consumer is registered; raises insufficient_privilege when the caller may not act on
-- it. The caller may when its login role is a member of the consumer's owner, or of the schema
-- owner (current_user here: an operator retiring a consumer); a consumer whose owning role was
-- dropped belongs to the schema owner.
create function rotessa.outbox_consumer_check(consumer text)
returns boolean
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    owned_by text;
begin
    select c.owner into owned_by from rotessa.outbox_consumers c where c.name = consumer;
    if not found then
        return false;
    end if;
    if pg_has_role(session_user, current_user, 'MEMBER')
       or (to_regrole(owned_by) is not null and pg_has_role(session_user, owned_by, 'MEMBER')) then
        return true;
    end if;
    raise exception 'outbox consumer % belongs to role %, not to %',
        quote_literal(consumer), quote_ident(owned_by), quote_ident(session_user)
        using errcode = 'insufficient_privilege',
              hint = 'each role registers and acks its own consumers (docs/outbox-consumers.md "Permissions")';
end
$$;

create or replace function rotessa.outbox_register(consumer text, start_from text default 'beginning')
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    start_txid xid8 := '0';
    start_seq  bigint := 0;
    inserted   bigint;
begin
    if rotessa.outbox_consumer_check(consumer) then
        return false;
    end if;
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
    insert into rotessa.outbox_consumers (name, last_txid, last_seq, owner)
    values (consumer, start_txid, start_seq, session_user)
    on conflict (name) do nothing;
    get diagnostics inserted = row_count;
    -- A registration by another role between the check and the insert: its owner decides.
    if inserted = 0 then
        perform rotessa.outbox_consumer_check(consumer);
    end if;
    return inserted > 0;
end
$$;

create or replace function rotessa.outbox_unregister(consumer text)
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if not rotessa.outbox_consumer_check(consumer) then
        return false;
    end if;
    -- Locked and checked again in one statement: a row re-registered by another role since the
    -- check above is left alone.
    delete from rotessa.outbox_consumers c
    where c.name = consumer
      and (pg_has_role(session_user, current_user, 'MEMBER')
           or (to_regrole(c.owner) is not null and pg_has_role(session_user, c.owner, 'MEMBER')));
    return found;
end
$$;

create or replace function rotessa.outbox_poll(consumer text, max integer default 100)
returns setof rotessa.outbox
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    pos record;
begin
    if not rotessa.outbox_consumer_check(consumer) then
        raise exception 'outbox consumer % is not registered', quote_literal(consumer)
            using errcode = 'undefined_object',
                  hint = format('call rotessa.outbox_register(%L) once', consumer);
    end if;
    select c.last_txid, c.last_seq into pos
    from rotessa.outbox_consumers c
    where c.name = consumer;
    return query select * from rotessa.outbox_read(pos.last_txid, pos.last_seq, max);
end
$$;

create or replace function rotessa.outbox_ack(consumer text, txid xid8, seq bigint)
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    moved bigint;
begin
    if not rotessa.outbox_consumer_check(consumer) then
        raise exception 'outbox consumer % is not registered', quote_literal(consumer)
            using errcode = 'undefined_object',
                  hint = format('call rotessa.outbox_register(%L) once', consumer);
    end if;
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
      and (c.last_txid, c.last_seq) < (outbox_ack.txid, outbox_ack.seq)
      and (pg_has_role(session_user, current_user, 'MEMBER')
           or (to_regrole(c.owner) is not null and pg_has_role(session_user, c.owner, 'MEMBER')));
    get diagnostics moved = row_count;
    return moved > 0;
end
$$;

-- Retention reads every consumer's position, whoever registered it.
alter function rotessa.outbox_prune(interval, integer, boolean)
    security definer set search_path = pg_catalog, pg_temp;

-- The lag view shows a consumer role its own consumers; the writer (who may run retention) and the
-- owner see them all, for `outbox stats` and the backlog metrics.
create or replace view rotessa.outbox_consumer_lag as
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
) b
where has_function_privilege(session_user, 'rotessa.outbox_prune(interval, integer, boolean)', 'EXECUTE')
   or (to_regrole(c.owner) is not null and pg_has_role(session_user, c.owner, 'MEMBER'));

-- Only the roles `rotessa-recon grant` names may call what changes consumers or the outbox, and
-- functions of later migrations are not callable by everyone by default.
revoke execute on function rotessa.outbox_consumer_check(text) from public;
revoke execute on function rotessa.outbox_register(text, text) from public;
revoke execute on function rotessa.outbox_unregister(text) from public;
revoke execute on function rotessa.outbox_poll(text, integer) from public;
revoke execute on function rotessa.outbox_ack(text, xid8, bigint) from public;
revoke execute on function rotessa.outbox_prune(interval, integer, boolean) from public;
alter default privileges revoke execute on functions from public;
