/**
 * The `alerts.evaluate` job (every minute): claims due alerts in batches with FOR UPDATE SKIP
 * LOCKED (their next evaluation is scheduled by the claim itself), evaluates each, and fires the
 * ones that match. Every replica may run it at once: each alert is evaluated by one of them.
 */
import type { Sql } from "../db/database.ts";
import type { Dispatcher } from "../delivery/dispatcher.ts";
import type { Delivery } from "../delivery/types.ts";
import type { Job } from "../jobs/scheduler.ts";
import { mapPool } from "../util/pool.ts";
import type { AlertEvaluator } from "./evaluator.ts";
import { claimDueAlerts } from "./store.ts";

export const EVALUATION_BATCH = 100;

export interface EvaluateDeps {
  sql: Sql;
  evaluator: AlertEvaluator;
  dispatcher: Dispatcher;
}
const CONCURRENCY = 8;

/** The job's work at `now`; tests call it directly. */
export async function evaluateDueAlerts(
  deps: EvaluateDeps,
  now: Date,
): Promise<{ evaluated: number; matched: number; fired: number; errors: number }> {
  const totals = { evaluated: 0, matched: 0, fired: 0, errors: 0 };
  while (true) {
    const due = await claimDueAlerts(deps.sql, now, EVALUATION_BATCH);
    const pending: Delivery[] = [];
    await mapPool(due, CONCURRENCY, async (alert) => {
      const checked = await deps.evaluator.check(alert);
      totals.evaluated++;
      if (checked.error) totals.errors++;
      if (!checked.matched) return;
      totals.matched++;
      const firing = await deps.evaluator.fire(alert, checked.value, now);
      if (firing.fired) totals.fired++;
      pending.push(...firing.deliveries.filter((d) => d.status === "pending"));
    });
    // The batch's deliveries go out together: one write for all in-app notifications.
    await deps.dispatcher.deliver(pending);
    if (due.length < EVALUATION_BATCH) return totals;
  }
}

export function evaluateJob(deps: EvaluateDeps): Job {
  return {
    name: "alerts.evaluate",
    schedule: "* * * * *",
    run: (now) => evaluateDueAlerts(deps, now),
  };
}
