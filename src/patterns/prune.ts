/** The `runs.prune` job: deletes pattern runs older than PATTERN_RUN_RETENTION_DAYS. */
import type { Sql } from "../db/database.ts";
import type { Job } from "../jobs/scheduler.ts";
import { pruneRuns } from "./store.ts";

const DAY_MS = 86_400_000;

export function pruneRunsJob(sql: Sql, retentionDays: number): Job {
  return {
    name: "runs.prune",
    schedule: "17 * * * *",
    run: async (now) => ({
      deleted: await pruneRuns(sql, new Date(now.getTime() - retentionDays * DAY_MS)),
    }),
  };
}
