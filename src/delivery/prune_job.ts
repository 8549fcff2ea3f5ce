/**
 * The `deliveries.prune` job: deletes delivered and suppressed deliveries (with their attempts),
 * read notifications and silences that ended, older than DELIVERY_RETENTION_DAYS (closed
 * episodes are uptime history: the `uptime.prune` job keeps them longer). Pending, failed, exhausted (or any
 * other unsettled) deliveries and unread notifications are kept whatever their age: they are
 * still someone's to act on. Retention is at least a day, the de-duplication window, so pruning
 * never lets a duplicate through.
 */
import type { Sql } from "../db/database.ts";
import type { Job } from "../jobs/scheduler.ts";

const DAY_MS = 86_400_000;
/** Rows per statement: each delete is short, so it never holds many locks or a long transaction. */
export const PRUNE_BATCH = 1000;

export function pruneDeliveriesJob(sql: Sql, retentionDays: number, batch = PRUNE_BATCH): Job {
  return {
    name: "deliveries.prune",
    schedule: "47 * * * *",
    run: async (now) => {
      const cutoff = new Date(now.getTime() - retentionDays * DAY_MS);
      // Every replica runs this at the same minute: `skip locked` lets them split the rows
      // instead of waiting on each other. Attempts and DLQ rows cascade; notifications keep
      // their row with delivery_id set to null.
      const deliveries = await inBatches(batch, () =>
        sql`
          delete from alert_deliveries where id in (
            select id from alert_deliveries
            where status in ('delivered', 'suppressed') and created_at < ${cutoff}
            limit ${batch} for update skip locked
          ) returning 1`);
      const notifications = await inBatches(batch, () =>
        sql`
          delete from notifications where id in (
            select id from notifications where read_at < ${cutoff}
            limit ${batch} for update skip locked
          ) returning 1`);
      // Silences are kept as long as deliveries, for "why was I not notified".
      const silences = await inBatches(batch, () =>
        sql`
          delete from silences where id in (
            select id from silences where ends_at < ${cutoff}
            limit ${batch} for update skip locked
          ) returning 1`);
      return { deliveries, notifications, silences };
    },
  };
}

/** Repeats a batched delete until a batch comes back short; returns the rows deleted. */
export async function inBatches(
  batch: number,
  deleteBatch: () => PromiseLike<readonly unknown[]>,
): Promise<number> {
  let total = 0;
  while (true) {
    const n = (await deleteBatch()).length;
    total += n;
    if (n < batch) return total;
  }
}
