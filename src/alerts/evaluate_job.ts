/**
 * The `alerts.evaluate` job (every minute): claims due alerts in batches with FOR UPDATE SKIP
 * LOCKED (their next evaluation is scheduled by the claim itself), evaluates each, and fires the
 * ones that match. Every replica may run it at once: each alert is evaluated by one of them.
 */
import type { Sql } from "../db/database.ts";
import type { Job } from "../jobs/scheduler.ts";
import { mapPool } from "../util/pool.ts";
import type { AlertEvaluator } from "./evaluator.ts";
import { claimDueAlerts } from "./store.ts";

export const EVALUATION_BATCH = 100;
const CONCURRENCY = 8;

/** The job's work at `now`; tests call it directly. */
export async function evaluateDueAlerts(
  deps: { sql: Sql; evaluator: AlertEvaluator },
  now: Date,
): Promise<{ evaluated: number; matched: number; fired: number; errors: number }> {
  const totals = { evaluated: 0, matched: 0, fired: 0, errors: 0 };
  while (true) {
    const due = await claimDueAlerts(deps.sql, now, EVALUATION_BATCH);
    const results = await mapPool(due, CONCURRENCY, (alert) => deps.evaluator.evaluate(alert, now));
    for (const r of results) {
      totals.evaluated++;
      if (r.matched) totals.matched++;
      if (r.fired) totals.fired++;
      if (r.error) totals.errors++;
    }
    if (due.length < EVALUATION_BATCH) return totals;
  }
}

export function evaluateJob(deps: { sql: Sql; evaluator: AlertEvaluator }): Job {
  return {
    name: "alerts.evaluate",
    schedule: "* * * * *",
    run: (now) => evaluateDueAlerts(deps, now),
  };
}
