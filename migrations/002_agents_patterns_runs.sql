-- Remote agents (built-in agents live in code), pattern definitions and the history of runs.
create table agents (
  name text primary key,
  url text not null,
  capabilities jsonb not null,
  timeout_ms integer not null check (timeout_ms > 0),
  created_at timestamptz not null,
  updated_at timestamptz not null
);

create table patterns (
  id text primary key,
  version integer not null check (version > 0),
  definition jsonb not null,
  created_at timestamptz not null,
  updated_at timestamptz not null
);

create table pattern_runs (
  id uuid primary key,
  pattern_id text not null,
  version integer not null,
  user_id uuid references users (id) on delete set null,
  status text not null check (status in ('success', 'error')),
  inputs jsonb not null,
  outputs jsonb,
  trace jsonb not null,
  error text,
  trace_id text,
  started_at timestamptz not null,
  duration_ms double precision not null
);
-- Keyset pages (newest first) for admins, per user and per pattern; pruning by age.
create index pattern_runs_started on pattern_runs (started_at desc, id desc);
create index pattern_runs_user on pattern_runs (user_id, started_at desc, id desc);
create index pattern_runs_pattern on pattern_runs (pattern_id, started_at desc, id desc);
