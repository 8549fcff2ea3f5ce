-- A notification policy per user, by severity (src/policies/): which of an alert's channels to
-- use, how often to repeat, and a time window outside which notifications wait for it to open.

-- The whole policy in one document (src/policies/schema.ts validates it); a user without a row
-- has the defaults.
create table notification_policies (
  user_id uuid primary key references users (id) on delete cascade,
  policy jsonb not null,
  updated_at timestamptz not null
);

-- Whether an alert takes its channels and its repeat interval from its user's policy for its
-- severity (true) or uses its own (false). Rows that exist already keep what they had: false.
-- With channels_from_policy the alert's `channels` are what is configured (usable); the policy
-- chooses among them.
alter table alerts
  add column channels_from_policy boolean not null default false,
  add column repeat_interval_from_policy boolean not null default false;

-- A delivery written outside its severity's time window is due at the window's next opening: no
-- sender may take it before. It is written leased to nobody (no lease, so never "stale"); the
-- retry job's sweep sends it once due. Null: due at once (every delivery before this migration).
alter table alert_deliveries add column not_before timestamptz;
-- Deferred deliveries waiting for a window, for the sweep and for the "already waiting" check.
create index alert_deliveries_deferred on alert_deliveries (alert_id, not_before)
  where status = 'pending' and not_before is not null;
