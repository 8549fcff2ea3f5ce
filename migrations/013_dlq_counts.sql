-- alert_dlq_entries without counting the queue: every replica's database monitor read
-- `count(*) ... group by state` over the whole DLQ every 5 s (a sequential scan: 300,000 rows,
-- ~40 ms of a database core each time, per replica; it grows with the queue). The counts are
-- now kept by statement-level triggers as append-only deltas: one row per state a statement
-- changed, so concurrent writers never wait on a shared counter row, and a claim (which moves
-- next_retry_at, not the state) writes nothing. The counts are the sums of the deltas; the
-- reader folds them into one row per state once they pile up (src/delivery/store.ts).
create table alert_dlq_counts (
  state text not null,
  n bigint not null
);

create function alert_dlq_counts_inserted() returns trigger language plpgsql as $$
begin
  insert into alert_dlq_counts (state, n) select state, count(*) from new_rows group by state;
  return null;
end
$$;

create function alert_dlq_counts_deleted() returns trigger language plpgsql as $$
begin
  insert into alert_dlq_counts (state, n) select state, -count(*) from old_rows group by state;
  return null;
end
$$;

create function alert_dlq_counts_updated() returns trigger language plpgsql as $$
begin
  insert into alert_dlq_counts (state, n)
  select state, sum(n) from (
    select state, -1 as n from old_rows
    union all
    select state, 1 from new_rows
  ) moved
  group by state
  having sum(n) <> 0;
  return null;
end
$$;

create function alert_dlq_counts_truncated() returns trigger language plpgsql as $$
begin
  delete from alert_dlq_counts;
  return null;
end
$$;

-- Transition tables need one trigger per event. Cascaded deletes (pruned deliveries) fire them.
create trigger alert_dlq_counts_insert after insert on alert_dlq
  referencing new table as new_rows
  for each statement execute function alert_dlq_counts_inserted();
create trigger alert_dlq_counts_delete after delete on alert_dlq
  referencing old table as old_rows
  for each statement execute function alert_dlq_counts_deleted();
create trigger alert_dlq_counts_update after update on alert_dlq
  referencing old table as old_rows new table as new_rows
  for each statement execute function alert_dlq_counts_updated();
create trigger alert_dlq_counts_truncate after truncate on alert_dlq
  for each statement execute function alert_dlq_counts_truncated();

-- The triggers hold alert_dlq against writes until this transaction ends: the counts start exact.
insert into alert_dlq_counts (state, n) select state, count(*) from alert_dlq group by state;
