-- Uptime and SLA (src/uptime/, src/sla/, src/status/): every alert evaluation is a check result,
-- rolled up per hour and per UTC day; vigil's own API traffic as per-minute and per-hour
-- aggregates from every replica; alerts shown on the public status page.

-- Shown on /status (name, state, uptime: never its condition, value or URL).
alter table alerts add column public boolean not null default false;
create index alerts_public on alerts (id) where public;

-- One row per evaluation: ok = the condition did not match and could be evaluated.
-- Pruned after CHECK_RESULT_RETENTION_DAYS; time-ordered inserts make a BRIN index on `at`
-- enough for the pruning and cheap to keep up.
create table check_results (
  alert_id uuid not null references alerts (id) on delete cascade,
  at timestamptz not null,
  ok boolean not null,
  value double precision,
  duration_ms real not null check (duration_ms >= 0),
  error text
);
create index check_results_alert_at on check_results (alert_id, at desc);
create index check_results_at on check_results using brin (at);

-- Hourly and daily (UTC) rollups, added to in the statement that writes the results. Latency is
-- kept as a histogram (counts per bucket of src/util/histogram.ts), so that rollups add up and
-- their p95 is read like Prometheus' histogram_quantile. Pruned after 400 days.
create table check_rollups (
  alert_id uuid not null references alerts (id) on delete cascade,
  period text not null check (period in ('hour', 'day')),
  bucket timestamptz not null,
  evaluations integer not null check (evaluations > 0),
  ok integer not null check (ok between 0 and evaluations),
  latency_min_ms real not null,
  latency_max_ms real not null,
  latency_sum_ms double precision not null,
  latency_buckets integer[] not null,
  primary key (alert_id, period, bucket)
);
create index check_rollups_bucket on check_rollups (period, bucket);

-- vigil's API requests (/v1, the ones http_requests_total counts), per minute and per hour and
-- route, added to by every replica's flush. Durations as counts per bucket of the
-- http_request_duration_seconds histogram (same bounds), so /sla/status and Prometheus compute
-- the same p95.
create table sla_traffic (
  period text not null check (period in ('minute', 'hour')),
  bucket timestamptz not null,
  route text not null,
  requests bigint not null check (requests >= 0),
  errors bigint not null check (errors between 0 and requests),
  duration_sum_seconds double precision not null,
  duration_buckets bigint[] not null,
  primary key (period, bucket, route)
);
