/**
 * The `uptime.prune` job: history past its retention goes. Check results after
 * CHECK_RESULT_RETENTION_DAYS (their rollups stay), rollups and closed episodes (the downtime
 * the status page lists) after HISTORY_RETENTION_DAYS, SLA traffic per minute after two days
 * (the 24 h window is the longest read from minutes), per hour after HISTORY_RETENTION_DAYS.
 * Batched deletes with `skip locked`, like deliveries.prune: every replica runs it at once.
 */
import type { Sql } from "../db/database.ts";
import { deleteInBatches, PRUNE_BATCH } from "../db/batched_delete.ts";
import type { Job } from "../jobs/scheduler.ts";

const DAY_MS = 86_400_000;
/** Rollups, episodes and hourly SLA traffic: a year and a bit, for year-over-year views. */
export const HISTORY_RETENTION_DAYS = 400;
export const SLA_MINUTE_RETENTION_DAYS = 2;

export function pruneUptimeJob(sql: Sql, resultRetentionDays: number, batch = PRUNE_BATCH): Job {
  return {
    name: "uptime.prune",
    schedule: "53 * * * *",
    run: async (now) => {
      const before = (days: number) => new Date(now.getTime() - days * DAY_MS);
      const results = before(resultRetentionDays);
      const history = before(HISTORY_RETENTION_DAYS);
      const minutes = before(SLA_MINUTE_RETENTION_DAYS);
      // check_results has no key: rows are picked by their physical address.
      const checkResults = await deleteInBatches(batch, () =>
        sql`
          delete from check_results where ctid = any(array(
            select ctid from check_results where at < ${results}
            limit ${batch} for update skip locked
          )) returning 1`);
      const rollups = await deleteInBatches(batch, () =>
        sql`
          delete from check_rollups where (alert_id, period, bucket) in (
            select alert_id, period, bucket from check_rollups where bucket < ${history}
            limit ${batch} for update skip locked
          ) returning 1`);
      // An open episode has no end; closed ones go with their history (their events stay,
      // episode_id set to null).
      const episodes = await deleteInBatches(batch, () =>
        sql`
          delete from alert_episodes where id in (
            select id from alert_episodes where ended_at < ${history}
            limit ${batch} for update skip locked
          ) returning 1`);
      const slaTraffic = await deleteInBatches(batch, () =>
        sql`
          delete from sla_traffic where (period, bucket, route) in (
            select period, bucket, route from sla_traffic
            where (period = 'minute' and bucket < ${minutes})
               or (period = 'hour' and bucket < ${history})
            limit ${batch} for update skip locked
          ) returning 1`);
      return { check_results: checkResults, rollups, episodes, sla_traffic: slaTraffic };
    },
  };
}
