-- Retention of delivered deliveries (the deliveries.prune job, DELIVERY_RETENTION_DAYS).

-- A pruned delivery must not take its notification along: an unread notification stays until it
-- is read (and then ages out itself), so it outlives its delivery with delivery_id null.
alter table notifications
  alter column delivery_id drop not null,
  drop constraint notifications_delivery_id_fkey,
  add constraint notifications_delivery_id_fkey foreign key (delivery_id)
    references alert_deliveries (id) on delete set null;

-- Deleting an alert sets its notifications' alert_id to null: without this, a sequential scan.
create index notifications_alert on notifications (alert_id);

-- The prune finds old settled deliveries and old read notifications without scanning the rest
-- (pending and exhausted deliveries, unread notifications, are kept whatever their age).
create index alert_deliveries_settled on alert_deliveries (created_at)
  where status in ('delivered', 'suppressed');
create index notifications_read on notifications (read_at) where read_at is not null;
