-- The alert lifecycle (src/alerts/lifecycle.ts): states, thresholds, episodes, transitions,
-- acknowledgement, silences, labels and severity.

-- The cooldown becomes the repeat interval while an episode fires (the API still accepts
-- cooldown_seconds as an alias); last_fired_at is the last firing or repeat that went out.
alter table alerts rename column cooldown_seconds to repeat_interval_seconds;
alter table alerts
  add column state text not null default 'ok' check (state in ('ok', 'pending', 'firing', 'error')),
  add column state_since timestamptz,
  add column failure_threshold integer not null default 1 check (failure_threshold between 1 and 100),
  add column success_threshold integer not null default 1 check (success_threshold between 1 and 100),
  add column error_threshold integer not null default 3 check (error_threshold between 1 and 100),
  add column notify_on_resolved boolean not null default true,
  add column consecutive_failures integer not null default 0,
  add column consecutive_successes integer not null default 0,
  add column consecutive_errors integer not null default 0,
  -- When the current run of matching evaluations began ("failing since").
  add column failing_since timestamptz,
  -- A firing or repeat held back by a silence: one goes out once it is over.
  add column owed_notification boolean not null default false,
  add column error_notified boolean not null default false,
  add column labels jsonb not null default '{}',
  add column severity text not null default 'warning'
    check (severity in ('critical', 'warning', 'info'));
update alerts set state_since = created_at;
alter table alerts alter column state_since set not null, alter column state_since set default now();

-- An episode: from pending → firing to firing → ok. Alertmanager's alerts have episodes too,
-- keyed by their fingerprint (alert_id null).
create table alert_episodes (
  id uuid primary key,
  alert_id uuid references alerts (id) on delete cascade,
  user_id uuid references users (id) on delete cascade,
  fingerprint text,
  started_at timestamptz not null,
  ended_at timestamptz,
  -- A firing (or repeat) of it went out: only then is its end announced.
  notified boolean not null default false,
  acknowledged_at timestamptz,
  acknowledged_by uuid references users (id) on delete set null,
  ack_note text,
  check (alert_id is not null or fingerprint is not null)
);
-- At most one open episode per alert (and per Alertmanager fingerprint and recipient): the
-- database refuses a second, whatever two replicas do.
create unique index alert_episodes_open on alert_episodes (alert_id) where ended_at is null
  and alert_id is not null;
create unique index alert_episodes_open_fingerprint on alert_episodes (fingerprint, user_id)
  where ended_at is null and fingerprint is not null;
create index alert_episodes_alert on alert_episodes (alert_id, started_at desc);

alter table alerts add column episode_id uuid references alert_episodes (id) on delete set null;

-- Every transition, for GET /v1/alerts/:id/events.
create table alert_events (
  id uuid primary key default gen_random_uuid(),
  alert_id uuid not null references alerts (id) on delete cascade,
  episode_id uuid references alert_episodes (id) on delete set null,
  from_state text not null,
  to_state text not null,
  value jsonb,
  error text,
  at timestamptz not null
);
create index alert_events_alert on alert_events (alert_id, at desc, id desc);

-- Silences, like Alertmanager's: matchers on alert ids or labels, a time range, a comment.
create table silences (
  id uuid primary key,
  user_id uuid not null references users (id) on delete cascade,
  matchers jsonb not null,
  starts_at timestamptz not null,
  ends_at timestamptz not null check (ends_at > starts_at),
  comment text not null,
  created_by uuid references users (id) on delete set null,
  created_at timestamptz not null
);
create index silences_active on silences (user_id, ends_at);

-- A delivery recorded but not sent says why: a duplicate of its content, or a silence.
alter table alert_deliveries add column suppressed_by text
  check (suppressed_by in ('content', 'silence'));
update alert_deliveries set suppressed_by = 'content' where status = 'suppressed';
