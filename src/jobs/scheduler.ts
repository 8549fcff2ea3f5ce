/**
 * Scheduled work through `Deno.cron`, in the same process. Every replica runs every job, so each
 * job must be safe to run concurrently (the database claims make it so). A job's handler takes
 * the time as an argument: tests call it directly with an injected clock.
 *
 * Runs are tracked by the process's Drain: on shutdown no new run starts and the running ones
 * are waited for. Jobs that claim shared work are refused while this replica's clock is too far
 * off the database's (ClockSkew), since leases and due times are compared across replicas.
 */
import { SpanKind, type Tracer } from "@opentelemetry/api";
import type { Clock } from "../clock.ts";
import { type Logger, withLogContext } from "../observability/logger.ts";
import { initJobMetrics, type Metrics } from "../observability/metrics.ts";
import type { ErrorReporter } from "../observability/sentry.ts";
import { inSpan } from "../observability/tracing.ts";
import type { ClockSkew } from "./clock_skew.ts";
import type { Drain } from "./drain.ts";

export interface Job {
  /** Also the `job` label of the cron metrics, e.g. `alerts.retry`. */
  name: string;
  /** Cron expression (UTC). */
  schedule: string;
  run(now: Date): Promise<unknown>;
  /** Claims work that other replicas may claim too (leases, due times). */
  claims?: boolean;
}

export interface JobDeps {
  clock: Clock;
  metrics: Metrics;
  logger: Logger;
  tracer?: Tracer;
  skew?: ClockSkew;
  /** A failed run is reported (Sentry, when configured). */
  errors?: ErrorReporter;
}

export interface JobRun {
  status: "success" | "error";
  result?: unknown;
  error?: string;
}

/**
 * Runs a job once, recording its outcome; never throws. A cron tick is the root of its own trace
 * (`cron <job>`); a run asked for through the API is a child of the request.
 */
export async function runJob(job: Job, deps: JobDeps): Promise<JobRun> {
  const started = performance.now();
  let run: JobRun;
  // Every line the job logs says which job it was.
  const work = () => withLogContext({ job: job.name }, () => job.run(deps.clock.now()));
  try {
    if (job.claims) deps.skew?.assertCanClaim();
    const result = deps.tracer
      ? await inSpan(deps.tracer, `cron ${job.name}`, {
        kind: SpanKind.INTERNAL,
        attributes: { "job.name": job.name, "job.schedule": job.schedule },
      }, work)
      : await work();
    deps.logger.debug("job {job} done", { job: job.name, result });
    run = { status: "success", result };
  } catch (error) {
    run = { status: "error", error: error instanceof Error ? error.message : String(error) };
    deps.logger.error("job {job} failed", { job: job.name, error });
    deps.errors?.captureException(error, {
      tags: { job: job.name },
      transaction: `cron ${job.name}`,
    });
  }
  deps.metrics.cronRuns.inc({ job: job.name, status: run.status });
  deps.metrics.cronDuration.observe({ job: job.name }, (performance.now() - started) / 1000);
  return run;
}

export function scheduleJobs(jobs: Job[], deps: JobDeps & { drain: Drain }): void {
  for (const job of jobs) {
    initJobMetrics(deps.metrics, job.name);
    // Deno.cron names allow no dots. backoffSchedule: [] because a failed run is simply retried
    // by the next tick; the local default would silently re-run it.
    Deno.cron(
      job.name.replaceAll(".", "_"),
      job.schedule,
      { backoffSchedule: [] },
      async () => {
        if (deps.drain.stopping) return;
        await deps.drain.track(runJob(job, deps));
      },
    );
  }
}
