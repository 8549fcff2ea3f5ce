/**
 * Wires vigil's services from its base dependencies. `main.ts` and the tests build the same
 * graph; only the base (database, clock, config, exporter) differs.
 */
import type { Tracer } from "@opentelemetry/api";
import { AlertEvaluator } from "./alerts/evaluator.ts";
import { evaluateJob } from "./alerts/evaluate_job.ts";
import { alertStateCounts } from "./alerts/store.ts";
import { builtinAgents } from "./agents/builtin/index.ts";
import { RemoteAgents } from "./agents/remote.ts";
import { AgentRuntime } from "./agents/runtime.ts";
import type { Clock } from "./clock.ts";
import type { Config } from "./config.ts";
import type { Sql } from "./db/database.ts";
import { emailSender } from "./delivery/channels/email.ts";
import { inappSender } from "./delivery/channels/inapp.ts";
import { pagerdutySender } from "./delivery/channels/pagerduty.ts";
import { slackSender } from "./delivery/channels/slack.ts";
import { webhookSender } from "./delivery/channels/webhook.ts";
import { DatabaseMonitor } from "./db/monitor.ts";
import { instrumentSql } from "./db/instrumented_sql.ts";
import { EMBEDDED_POOL_SIZE } from "./db/embedded.ts";
import { trackTransactions } from "./db/pool_stats.ts";
import { Dispatcher } from "./delivery/dispatcher.ts";
import { pruneDeliveriesJob } from "./delivery/prune_job.ts";
import { retryJob } from "./delivery/retry_job.ts";
import type { DeliverySchedule } from "./delivery/schedule.ts";
import { dlqCounts } from "./delivery/store.ts";
import { ClockSkew, clockSkewJob } from "./jobs/clock_skew.ts";
import { Drain } from "./jobs/drain.ts";
import type { Job } from "./jobs/scheduler.ts";
import type { Logger } from "./observability/logger.ts";
import type { Metrics } from "./observability/metrics.ts";
import { type ErrorReporter, noopReporter } from "./observability/sentry.ts";
import { Orchestrator } from "./patterns/orchestrator.ts";
import { pruneRunsJob } from "./patterns/prune.ts";
import { slaAgent } from "./sla/agent.ts";
import { SlaReport } from "./sla/status.ts";
import { SlaTraffic } from "./sla/traffic.ts";
import { pruneUptimeJob } from "./uptime/prune_job.ts";
import { publicChecks } from "./uptime/store.ts";
import { PatternService } from "./patterns/service.ts";
import { Secrets } from "./security/secrets.ts";

export interface BaseDeps {
  config: Config;
  sql: Sql;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  tracer: Tracer;
  /**
   * The keyring of secrets at rest; main.ts resolves it at start-up. Without it, it is resolved
   * from the configuration at first use.
   */
  secrets?: Secrets;
  /** Error tracking (Sentry when SENTRY_DSN is set); a no-op by default. */
  errors?: ErrorReporter;
}

export function createServices(base: BaseDeps) {
  const { config, clock, logger, metrics, tracer } = base;
  // Client spans for database statements (issue 10), only when traces go somewhere: without an
  // endpoint they would be made and dropped. Every service, and the app, gets this `sql`.
  // Every call has a deadline; statements are traced when traces go somewhere.
  const sql = instrumentSql(base.sql, {
    deadlineMs: config.DB_TIMEOUT_MS,
    tracer: config.OTEL_EXPORTER_OTLP_ENDPOINT ? tracer : undefined,
  });
  const secrets = base.secrets ?? Secrets.fromConfig(config);
  const errors = base.errors ?? noopReporter;
  const policy = { allowPrivate: config.ALLOW_PRIVATE_TARGETS, tracer };
  const runtime = new AgentRuntime({
    clock,
    metrics,
    tracer,
    failureThreshold: config.CB_FAILURE_THRESHOLD,
    openMs: config.CB_OPEN_SECONDS * 1000,
  });
  for (const agent of builtinAgents(config, policy)) runtime.register(agent);
  // vigil's own API traffic, for /sla/status and the `sla.status` capability.
  const slaTraffic = new SlaTraffic({
    sql,
    clock,
    logger: logger.child("sla"),
    onDropped: (requests) => metrics.slaTrafficDropped.inc(requests),
  });
  const slaReport = new SlaReport({ sql, clock, targets: config });
  runtime.register(slaAgent(slaReport));
  const remote = new RemoteAgents({
    sql,
    runtime,
    clock,
    policy,
    logger: logger.child("agents"),
    secrets,
  });
  const orchestrator = new Orchestrator({
    runtime,
    metrics,
    tracer,
    clock,
    limits: {
      renderBytes: config.PATTERN_MAX_RENDER_BYTES,
      timeoutMs: config.PATTERN_RUN_TIMEOUT_MS,
      resultBytes: config.PATTERN_MAX_RESULT_BYTES,
    },
  });
  const patterns = new PatternService({
    sql,
    clock,
    runtime,
    remote,
    orchestrator,
    maxPatterns: config.MAX_PATTERNS,
    onRunBatch: (size) => metrics.runWriteBatch.observe(size),
  });

  const schedule: DeliverySchedule = {
    backoffMs: config.DELIVERY_BACKOFF,
    leaseMs: config.DELIVERY_LEASE_SECONDS * 1000,
  };
  // Background work of this process: waited for, then cut off, on shutdown.
  const drain = new Drain();
  const skew = new ClockSkew({ sql, clock, metrics, logger: logger.child("clock") });
  const senders = {
    inapp: inappSender(sql, clock),
    email: emailSender(config, logger.child("email"), tracer),
    webhook: webhookSender(sql, clock, policy, config.WEBHOOK_TIMEOUT_MS, secrets),
    slack: slackSender(sql, policy, config.WEBHOOK_TIMEOUT_MS, secrets),
    pagerduty: pagerdutySender(
      sql,
      policy,
      config.PAGERDUTY_EVENTS_URL,
      config.WEBHOOK_TIMEOUT_MS,
      secrets,
    ),
  };
  const dispatcher = new Dispatcher({
    sql,
    clock,
    metrics,
    logger: logger.child("delivery"),
    senders,
    schedule,
    drain,
    tracer,
    errors,
    batchSize: config.DELIVERY_BATCH_SIZE,
  });
  const evaluator = new AlertEvaluator({
    sql,
    clock,
    metrics,
    logger: logger.child("alerts"),
    patterns,
    runtime,
    remote,
    dispatcher,
    schedule,
  });
  const dbMonitor = new DatabaseMonitor({
    sql,
    metrics,
    logger: logger.child("db"),
    timeoutMs: config.DB_TIMEOUT_MS,
    dlqCounts: () => dlqCounts(sql),
    alertStates: () => alertStateCounts(sql),
    publicChecks: () => publicChecks(sql, clock.now()),
    pool: trackTransactions(sql),
    poolMax: config.DATABASE_URL ? config.DB_POOL_SIZE : EMBEDDED_POOL_SIZE,
  });

  const jobs: Job[] = [
    evaluateJob({ sql, evaluator, dispatcher, schedule, drain }),
    retryJob(dispatcher),
    clockSkewJob(skew),
    pruneRunsJob(sql, config.PATTERN_RUN_RETENTION_DAYS),
    pruneDeliveriesJob(sql, config.DELIVERY_RETENTION_DAYS),
    pruneUptimeJob(sql, config.CHECK_RESULT_RETENTION_DAYS),
  ];
  return {
    ...base,
    sql, // traced (above)
    secrets,
    errors,
    policy,
    runtime,
    remote,
    orchestrator,
    patterns,
    senders,
    dispatcher,
    evaluator,
    schedule,
    drain,
    skew,
    dbMonitor,
    slaTraffic,
    slaReport,
    jobs,
  };
}

export type Services = ReturnType<typeof createServices>;
