-- Alerts, and their delivery: the outbox (alert_deliveries), every send attempt, the dead-letter
-- queue and in-app notifications.
create table alerts (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references users (id) on delete cascade,
  name text not null,
  condition jsonb not null,
  channels jsonb not null default '{"inapp": true, "email": false}',
  interval_seconds integer not null default 60 check (interval_seconds >= 60),
  cooldown_seconds integer not null default 86400 check (cooldown_seconds >= 0),
  enabled boolean not null default true,
  last_fired_at timestamptz,
  last_evaluated_at timestamptz,
  next_eval_at timestamptz not null,
  created_at timestamptz not null,
  updated_at timestamptz not null
);
-- The evaluation job claims due alerts; users list their own.
create index alerts_due on alerts (next_eval_at) where enabled;
create index alerts_user on alerts (user_id, created_at desc, id desc);

create table alert_deliveries (
  id uuid primary key,
  alert_id uuid references alerts (id) on delete set null,
  user_id uuid not null references users (id) on delete cascade,
  channel text not null check (channel in ('inapp', 'email', 'webhook')),
  content_hash text not null,
  payload jsonb not null,
  status text not null check (status in ('pending', 'delivered', 'failed', 'suppressed', 'exhausted')),
  attempts integer not null default 0,
  last_error text,
  -- A sender holds a delivery until this time; a crashed sender's deliveries are taken over after.
  lease_until timestamptz,
  created_at timestamptz not null,
  delivered_at timestamptz
);
-- Content de-duplication looks back 24 h for the same hash.
create index alert_deliveries_hash on alert_deliveries (content_hash, created_at)
  where status in ('pending', 'delivered');
-- The retry job picks up pending deliveries whose sender died.
create index alert_deliveries_pending on alert_deliveries (created_at) where status = 'pending';
-- "Why was I not notified?": the deliveries of an alert, newest first.
create index alert_deliveries_alert on alert_deliveries (alert_id, created_at desc, id desc);

create table delivery_attempts (
  id bigint generated always as identity primary key,
  delivery_id uuid not null references alert_deliveries (id) on delete cascade,
  attempt integer not null,
  at timestamptz not null,
  outcome text not null check (outcome in ('delivered', 'failed', 'exhausted', 'discarded')),
  error text,
  provider_status integer,
  duration_ms double precision not null default 0
);
create index delivery_attempts_delivery on delivery_attempts (delivery_id, id);

create table alert_dlq (
  id uuid primary key default gen_random_uuid(),
  delivery_id uuid not null unique references alert_deliveries (id) on delete cascade,
  error_message text not null,
  retry_count integer not null default 0,
  next_retry_at timestamptz,
  last_retry_at timestamptz,
  state text not null check (state in ('pending', 'exhausted')),
  created_at timestamptz not null
);
-- The retry job claims due pending rows; admins page through the queue.
create index alert_dlq_due on alert_dlq (next_retry_at) where state = 'pending';
create index alert_dlq_created on alert_dlq (created_at desc, id desc);

create table notifications (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references users (id) on delete cascade,
  alert_id uuid references alerts (id) on delete set null,
  delivery_id uuid not null unique references alert_deliveries (id) on delete cascade,
  title text not null,
  message text not null,
  read_at timestamptz,
  created_at timestamptz not null
);
create index notifications_user on notifications (user_id, created_at desc, id desc);
create index notifications_unread on notifications (user_id) where read_at is null;
