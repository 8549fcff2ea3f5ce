-- Delivery guarantees: fenced leases, outcomes whose effect is unknown, and due times that can
-- never be missing.

-- Every lease carries a token; an outcome is recorded only while the sender's token still holds,
-- so a sender that lost its lease can never overwrite the new owner's state.
alter table alert_deliveries add column lease_token uuid;
-- Set once an attempt ended without a definite answer (timeout after the request was written, a
-- crash mid-send): the provider may have it. Such a delivery is re-sent only while the channel's
-- idempotency window covers its key; after that it becomes `uncertain`.
alter table alert_deliveries add column maybe_sent boolean not null default false;
alter table alert_deliveries drop constraint alert_deliveries_status_check;
alter table alert_deliveries add constraint alert_deliveries_status_check
  check (status in ('pending', 'delivered', 'failed', 'suppressed', 'exhausted', 'uncertain'));
alter table alert_deliveries add constraint alert_deliveries_lease_check
  check ((lease_token is null) = (lease_until is null));

-- Content de-duplication counts what was delivered or is still being delivered (pending, failed
-- and waiting for a retry, uncertain), so identical copies collapse into one while a channel is
-- down.
drop index alert_deliveries_hash;
create index alert_deliveries_hash on alert_deliveries (content_hash, created_at)
  where status in ('pending', 'delivered', 'failed', 'uncertain');

-- A sender that recorded after losing its lease keeps its attempt row, marked as fenced.
alter table delivery_attempts add column fenced boolean not null default false;
alter table delivery_attempts drop constraint delivery_attempts_outcome_check;
alter table delivery_attempts add constraint delivery_attempts_outcome_check
  check (outcome in ('delivered', 'failed', 'unknown', 'exhausted', 'uncertain', 'discarded'));

alter table alert_dlq drop constraint alert_dlq_state_check;
alter table alert_dlq add constraint alert_dlq_state_check
  check (state in ('pending', 'exhausted', 'uncertain'));
-- A pending row without a due time would never be claimed nor exhausted.
alter table alert_dlq add constraint alert_dlq_due_check
  check (state <> 'pending' or next_retry_at is not null);
