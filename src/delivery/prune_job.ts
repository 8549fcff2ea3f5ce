/**
 * The `deliveries.prune` job: deletes delivered and suppressed deliveries (with their attempts),
 * read notifications and silences that ended, older than DELIVERY_RETENTION_DAYS (closed
 * episodes are uptime history: the `uptime.prune` job keeps them longer). Pending, failed, exhausted (or any
 * other unsettled) deliveries and unread notifications are kept whatever their age: they are
 * still someone's to act on. Retention is at least a day, the de-duplication window, so pruning
 * never lets a duplicate through.
 */
import { deleteInBatches, PRUNE_BATCH } from "../db/batched_delete.ts";
import type { Sql } from "../db/database.ts";
import type { Job } from "../jobs/scheduler.ts";

const DAY_MS = 86_400_000;

export function pruneDeliveriesJob(sql: Sql, retentionDays: number, batch = PRUNE_BATCH): Job {
  return {
    name: "deliveries.prune",
    schedule: "47 * * * *",
    run: async (now) => {
      const cutoff = new Date(now.getTime() - retentionDays * DAY_MS);
      // Every replica runs this at the same minute: `skip locked` lets them split the rows
      // instead of waiting on each other. Attempts and DLQ rows cascade; notifications keep
      // their row with delivery_id set to null.
      const deliveries = await deleteInBatches(batch, () =>
        sql`
          delete from alert_deliveries where id in (
            select id from alert_deliveries
            where status in ('delivered', 'suppressed') and created_at < ${cutoff}
            limit ${batch} for update skip locked
          ) returning 1`);
      const notifications = await deleteInBatches(batch, () =>
        sql`
          delete from notifications where id in (
            select id from notifications where read_at < ${cutoff}
            limit ${batch} for update skip locked
          ) returning 1`);
      // Silences are kept as long as deliveries, for "why was I not notified".
      const silences = await deleteInBatches(batch, () =>
        sql`
          delete from silences where id in (
            select id from silences where ends_at < ${cutoff}
            limit ${batch} for update skip locked
          ) returning 1`);
      return { deliveries, notifications, silences };
    },
  };
}
