/**
 * The `alerts.retry` job (every minute): first re-sends pending deliveries whose sender died,
 * then retries the due rows of the dead-letter queue. Safe on every replica at once.
 */
import type { Job } from "../jobs/scheduler.ts";
import type { Dispatcher, DispatchOutcome } from "./dispatcher.ts";

function tally(outcomes: DispatchOutcome[]) {
  const counts = { delivered: 0, failed: 0, exhausted: 0 };
  for (const o of outcomes) counts[o.status]++;
  return counts;
}

/** The job's work for one tick at `now`; tests call it directly. */
export async function retryDeliveries(dispatcher: Dispatcher, now: Date) {
  const abandoned = await dispatcher.sweepStale(now);
  const retried = await dispatcher.retryDue(now);
  return { abandoned: tally(abandoned), retried: tally(retried) };
}

export function retryJob(dispatcher: Dispatcher): Job {
  return {
    name: "alerts.retry",
    schedule: "* * * * *",
    run: (now) => retryDeliveries(dispatcher, now),
  };
}
