-- A date's reconciliation event fires when its comparison changes: the outcome (matched or not)
-- or, for a mismatch, the difference between what Rotessa reports and what the transactions add
-- up to. `difference` remembers the last one: the count and total differences of approved,
-- declined and chargeback rows. NULL on rows recorded before this column existed; those are
-- filled in silently by their next evaluation.
alter table rotessa.reconciliation_state add column difference jsonb;

-- An older binary (during a rolling upgrade) flips `matched` without knowing `difference`; the
-- stale difference it leaves would make the next evaluation report the same flip again. An
-- outcome can only flip with its difference (matched means a zero difference), so such an
-- update clears it instead, and the next evaluation fills it in without an event.
create function rotessa.reconciliation_state_forget_stale_difference() returns trigger
language plpgsql as $$
begin
    if new.matched is distinct from old.matched
       and new.difference is not distinct from old.difference then
        new.difference := null;
    end if;
    return new;
end
$$;

create trigger forget_stale_difference
    before update on rotessa.reconciliation_state
    for each row execute function rotessa.reconciliation_state_forget_stale_difference();
