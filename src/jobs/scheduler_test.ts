import "../../tests/support/logs.ts";
import { assertEquals } from "../../tests/support/assert.ts";
import { ManualClock } from "../../tests/support/clock.ts";
import { logsSince } from "../../tests/support/logs.ts";
import { rootLogger } from "../observability/logger.ts";
import { createMetrics, initJobMetrics } from "../observability/metrics.ts";
import { runJob } from "./scheduler.ts";

Deno.test("jobs: a run is timed and counted by outcome; its log lines name the job", async () => {
  const clock = new ManualClock("2026-03-01T12:00:00Z");
  const metrics = createMetrics();
  const logger = rootLogger.child("jobs");
  initJobMetrics(metrics, "demo.job");
  const seen: Date[] = [];
  const logs = logsSince();
  const ok = await runJob({
    name: "demo.job",
    schedule: "* * * * *",
    run: (now) => {
      seen.push(now);
      logger.info("working");
      return Promise.resolve({ done: 1 });
    },
  }, { clock, metrics, logger });
  const failed = await runJob({
    name: "demo.job",
    schedule: "* * * * *",
    run: () => Promise.reject(new Error("database away")),
  }, { clock, metrics, logger });
  assertEquals([ok.status, failed.status], ["success", "error"]);
  assertEquals([ok.result, failed.error], [{ done: 1 }, "database away"]);
  assertEquals(seen, [clock.now()], "the job gets the time from the clock");
  const runs = (await metrics.cronRuns.get()).values.map((
    v,
  ) => [v.labels.job, v.labels.status, v.value]);
  assertEquals(runs.sort(), [["demo.job", "error", 1], ["demo.job", "success", 1]]);
  const count = (await metrics.cronDuration.get()).values.find((v) =>
    v.metricName === "cron_job_duration_seconds_count"
  );
  assertEquals(count?.value, 2);
  const lines = logs();
  assertEquals(lines.find((r) => r.msg === "working")?.fields.job, "demo.job");
  const error = lines.find((r) => r.level === "error");
  assertEquals(error?.msg, "job demo.job failed");
  assertEquals((error?.fields.error as Error).message, "database away");
});
