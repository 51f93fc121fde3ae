-- A date's reconciliation event fires when its comparison changes: the outcome (matched or not)
-- or, for a mismatch, the difference between what Rotessa reports and what the transactions add
-- up to. `difference` remembers the last one: the count and total differences of approved,
-- declined and chargeback rows. NULL on rows recorded before this column existed; those are
-- filled in silently by their next evaluation.
alter table rotessa.reconciliation_state add column difference jsonb;
