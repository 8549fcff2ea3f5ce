-- What Grafana's read-only role may see: two views over the dead-letter queue, in their own
-- schema, without secrets (webhook signing secrets live in alerts.channels), key hashes or
-- emails. The role (observability/compose/grafana-reader.sh) is granted this schema only.
create schema if not exists reporting;

create or replace view reporting.dlq_summary as
select
  d.channel,
  q.state,
  count(*) as entries,
  min(q.created_at) as oldest,
  min(q.next_retry_at) filter (where q.state = 'pending') as next_retry
from alert_dlq q
join alert_deliveries d on d.id = q.delivery_id
group by d.channel, q.state;

create or replace view reporting.dlq_latest as
select
  q.created_at as queued_at,
  q.state,
  d.channel,
  d.attempts,
  q.retry_count as retries,
  q.last_retry_at as last_retry,
  q.next_retry_at as next_retry,
  coalesce(a.name, '(Alertmanager)') as alert,
  left(coalesce(q.error_message, d.last_error, ''), 500) as error,
  q.delivery_id
from alert_dlq q
join alert_deliveries d on d.id = q.delivery_id
left join alerts a on a.id = d.alert_id;
