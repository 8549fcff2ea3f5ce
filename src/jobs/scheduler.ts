/**
 * Scheduled work through `Deno.cron`, in the same process. Every replica runs every job, so each
 * job must be safe to run concurrently (the database claims make it so). A job's handler takes
 * the time as an argument: tests call it directly with an injected clock.
 */
import type { Clock } from "../clock.ts";
import { type Logger, withLogContext } from "../observability/logger.ts";
import { initJobMetrics, type Metrics } from "../observability/metrics.ts";

export interface Job {
  /** Also the `job` label of the cron metrics, e.g. `alerts.retry`. */
  name: string;
  /** Cron expression (UTC). */
  schedule: string;
  run(now: Date): Promise<unknown>;
}

export interface JobDeps {
  clock: Clock;
  metrics: Metrics;
  logger: Logger;
}

/** Runs a job once, recording its outcome; never throws. */
export async function runJob(job: Job, deps: JobDeps): Promise<"success" | "error"> {
  const started = performance.now();
  let status: "success" | "error" = "success";
  try {
    // Every line the job logs says which job it was.
    const result = await withLogContext({ job: job.name }, () => job.run(deps.clock.now()));
    deps.logger.debug("job {job} done", { job: job.name, result });
  } catch (error) {
    status = "error";
    deps.logger.error("job {job} failed", { job: job.name, error });
  }
  deps.metrics.cronRuns.inc({ job: job.name, status });
  deps.metrics.cronDuration.observe({ job: job.name }, (performance.now() - started) / 1000);
  return status;
}

export function scheduleJobs(jobs: Job[], deps: JobDeps, signal: AbortSignal): void {
  for (const job of jobs) {
    initJobMetrics(deps.metrics, job.name);
    // Deno.cron names allow no dots. backoffSchedule: [] because a failed run is simply retried
    // by the next tick; the local default would silently re-run it.
    Deno.cron(
      job.name.replaceAll(".", "_"),
      job.schedule,
      { backoffSchedule: [], signal },
      async () => void await runJob(job, deps),
    );
  }
}
