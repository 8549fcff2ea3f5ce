/**
 * The `alerts.evaluate` job (every minute): claims due alerts in batches with FOR UPDATE SKIP
 * LOCKED (their next evaluation is scheduled by the claim itself), evaluates each and applies the
 * result to its lifecycle. Every replica may run it at once: each alert is evaluated by one.
 *
 * Every evaluation is a check result of the alert's uptime history (src/uptime/): a batch's
 * results are written together, in one statement.
 *
 * The deliveries of a batch go out together (one write for all in-app notifications), but never
 * wait long for the rest of the batch: once the oldest has waited a quarter of a lease, what has
 * accumulated is sent at once (a slow alert must not hold the others' leases).
 */
import type { Sql } from "../db/database.ts";
import type { Dispatcher, LeasedDelivery } from "../delivery/dispatcher.ts";
import type { DeliverySchedule } from "../delivery/schedule.ts";
import type { Drain } from "../jobs/drain.ts";
import type { Job } from "../jobs/scheduler.ts";
import { mapPool } from "../util/pool.ts";
import { type AlertEvaluator, checkResultOf } from "./evaluator.ts";
import type { CheckResult } from "../uptime/store.ts";
import { claimDueAlerts } from "./store.ts";

export const EVALUATION_BATCH = 100;
const CONCURRENCY = 8;

export interface EvaluateDeps {
  sql: Sql;
  evaluator: AlertEvaluator;
  dispatcher: Dispatcher;
  schedule: DeliverySchedule;
  drain: Drain;
}

/** The job's work at `now`; tests call it directly. */
export async function evaluateDueAlerts(
  deps: EvaluateDeps,
  now: Date,
): Promise<{ evaluated: number; matched: number; fired: number; errors: number }> {
  const totals = { evaluated: 0, matched: 0, fired: 0, errors: 0 };
  const maxWaitMs = deps.schedule.leaseMs / 4;
  while (!deps.drain.stopping) {
    const due = await claimDueAlerts(deps.sql, now, EVALUATION_BATCH);
    let pending: LeasedDelivery[] = [];
    let oldest = 0;
    const results: CheckResult[] = [];
    const flush = async () => {
      const batch = pending;
      pending = [];
      await deps.dispatcher.deliver(batch);
    };
    await mapPool(due, CONCURRENCY, async (alert) => {
      const checked = await deps.evaluator.check(alert);
      totals.evaluated++;
      if (checked.error) totals.errors++;
      if (checked.matched) totals.matched++;
      const applied = await deps.evaluator.apply(alert, checked, now);
      results.push(checkResultOf(alert, checked, now));
      if (applied.fired) totals.fired++;
      const fresh = applied.deliveries.filter((d) => d.status === "pending");
      if (fresh.length === 0) return;
      if (pending.length === 0) oldest = performance.now();
      pending.push(...fresh);
      if (performance.now() - oldest >= maxWaitMs) await flush();
    });
    // The batch's check results in one statement, beside the last of the deliveries it owes.
    await Promise.all([flush(), deps.evaluator.record(results)]);
    if (due.length < EVALUATION_BATCH) break;
  }
  return totals;
}

export function evaluateJob(deps: EvaluateDeps): Job {
  return {
    name: "alerts.evaluate",
    schedule: "* * * * *",
    claims: true,
    run: (now) => evaluateDueAlerts(deps, now),
  };
}
