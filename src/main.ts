/**
 * vigil's entry point: config, logging, tracing, database, migrations, services, app, server,
 * scheduled jobs, and a graceful stop on SIGINT/SIGTERM.
 */
import { createApp } from "./app.ts";
import { systemClock } from "./clock.ts";
import { type Config, ConfigError, loadConfig } from "./config.ts";
import { openDatabase } from "./db/database.ts";
import { migrate } from "./db/migrate.ts";
import { scheduleJobs } from "./jobs/scheduler.ts";
import { closeLogging, rootLogger, setupLogging } from "./observability/logger.ts";
import { createMetrics } from "./observability/metrics.ts";
import { setupTracing } from "./observability/tracing.ts";
import { loadExamplePatterns } from "./patterns/examples.ts";
import { createServices } from "./services.ts";
import { bootstrapAdmin } from "./users/bootstrap.ts";

function configOrExit(): Config {
  try {
    return loadConfig(Deno.env.toObject());
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    Deno.stderr.writeSync(new TextEncoder().encode(`vigil: ${error.message}\n`));
    Deno.exit(1);
  }
}

async function main() {
  const config = configOrExit();
  setupLogging({ level: config.LOG_LEVEL });
  const logger = rootLogger;
  const clock = systemClock;
  const startedAt = clock.now();
  const tracing = setupTracing(config);
  if (config.OTEL_EXPORTER_OTLP_ENDPOINT) {
    logger.info("exporting traces to {endpoint}", { endpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT });
  }

  const db = await openDatabase(config);
  logger.info("database connected ({kind})", { kind: db.kind });
  await migrate(db.sql, logger.child("db"));
  await bootstrapAdmin(db.sql, config, clock, logger.child("users"));

  const services = createServices({
    config,
    sql: db.sql,
    clock,
    logger,
    metrics: createMetrics(),
    tracer: tracing.tracer,
  });
  await services.remote.refresh(true);
  await loadExamplePatterns(config.PATTERNS_DIR, {
    ...services,
    logger: logger.child("patterns"),
  });

  const app = createApp({ ...services, startedAt });
  const server = Deno.serve({
    hostname: config.HOST,
    port: config.PORT,
    onListen: ({ hostname, port }) =>
      logger.info("listening on http://{hostname}:{port}", { hostname, port }),
  }, app.fetch);
  const jobs = new AbortController();
  scheduleJobs(services.jobs, { ...services, logger: logger.child("jobs") }, jobs.signal);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info("stopping on {signal}", { signal });
    const deadline = setTimeout(() => {
      logger.error("shutdown took longer than {ms} ms; exiting", {
        ms: config.SHUTDOWN_TIMEOUT_MS,
      });
      Deno.exit(1);
    }, config.SHUTDOWN_TIMEOUT_MS);
    jobs.abort();
    await server.shutdown(); // stops accepting, lets in-flight requests finish
    await tracing.shutdown();
    await db.close();
    logger.info("stopped");
    clearTimeout(deadline);
    closeLogging();
    Deno.exit(0);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => void stop(signal));
  }
}

try {
  await main();
} catch (error) {
  rootLogger.fatal("vigil failed to start: {message}", {
    message: error instanceof Error ? error.message : String(error),
    error,
  });
  closeLogging();
  Deno.exit(1);
}
