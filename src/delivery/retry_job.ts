/**
 * The `alerts.retry` job (every minute): first sends pending deliveries whose sender died (or
 * released them), then retries the due rows of the dead-letter queue. Safe on every replica at
 * once. Each batch is claimed at the clock's current time, so its lease starts when it is sent.
 */
import type { Job } from "../jobs/scheduler.ts";
import type { Dispatcher, DispatchOutcome } from "./dispatcher.ts";

function tally(outcomes: DispatchOutcome[]) {
  const counts = { delivered: 0, failed: 0, exhausted: 0, uncertain: 0, pending: 0 };
  for (const o of outcomes) counts[o.status]++;
  return counts;
}

/** The job's work for one tick; tests call it directly. */
export async function retryDeliveries(dispatcher: Dispatcher) {
  const abandoned = await dispatcher.sweepStale();
  const retried = await dispatcher.retryDue();
  return { abandoned: tally(abandoned), retried: tally(retried) };
}

export function retryJob(dispatcher: Dispatcher): Job {
  return {
    name: "alerts.retry",
    schedule: "* * * * *",
    claims: true,
    run: () => retryDeliveries(dispatcher),
  };
}
