/**
 * vigil's entry point: config, logging, tracing, database, migrations, services, app, server,
 * scheduled jobs, and a graceful stop on SIGINT/SIGTERM.
 */
import { createApp } from "./app.ts";
import { systemClock } from "./clock.ts";
import { type Config, ConfigError, loadConfig } from "./config.ts";
import { openDatabase, type Sql } from "./db/database.ts";
import { tolerateStrayConnectionErrors } from "./db/connection_errors.ts";
import { migrate } from "./db/migrate.ts";
import { scheduleJobs } from "./jobs/scheduler.ts";
import { closeLogging, rootLogger, setupLogging } from "./observability/logger.ts";
import { createMetrics, VERSION } from "./observability/metrics.ts";
import { EventLoopLag } from "./observability/event_loop.ts";
import { setupTracing } from "./observability/tracing.ts";
import { noopReporter, setupErrorReporting } from "./observability/sentry.ts";
import { loadExamplePatterns } from "./patterns/examples.ts";
import { reencryptSecrets } from "./security/reencrypt.ts";
import { type ResolvedKeys, resolveKeys, Secrets } from "./security/secrets.ts";
import { createServices } from "./services.ts";
import { bootstrapAdmin } from "./users/bootstrap.ts";
import { withinMs } from "./util/timeout.ts";

function configOrExit(): Config {
  try {
    return loadConfig(Deno.env.toObject());
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    Deno.stderr.writeSync(new TextEncoder().encode(`vigil: ${error.message}\n`));
    Deno.exit(1);
  }
}

/** The keys of secrets at rest, or one line on stderr and exit 1 (no key in production). */
async function keysOrExit(config: Config): Promise<ResolvedKeys> {
  try {
    return await resolveKeys(config);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    closeLogging();
    Deno.stderr.writeSync(new TextEncoder().encode(`vigil: ${error.message}\n`));
    Deno.exit(1);
  }
}

/**
 * Binds HOST:PORT, answering 503 until `ready` hands it the app; a port in use (or not allowed)
 * is one line on stderr, naming it, and exit 1.
 */
function listenOrExit(config: Config) {
  let handler: Deno.ServeHandler = () =>
    Response.json(
      {
        type: "urn:vigil:problem:unavailable",
        title: "Service Unavailable",
        status: 503,
        detail: "vigil is starting",
      },
      { status: 503, headers: { "content-type": "application/problem+json", "Retry-After": "1" } },
    );
  try {
    const server = Deno.serve(
      { hostname: config.HOST, port: config.PORT, onListen: () => {} },
      (req, info) => handler(req, info),
    );
    return {
      ready(app: Deno.ServeHandler): Deno.HttpServer<Deno.NetAddr> {
        handler = app;
        return server;
      },
    };
  } catch (error) {
    const where = `${config.HOST}:${config.PORT}`;
    const why = error instanceof Deno.errors.AddrInUse
      ? `${where} is already in use (another vigil?); start with another port, e.g. PORT=${
        config.PORT + 1
      }`
      : `cannot listen on ${where}: ${(error as Error).message}`;
    Deno.stderr.writeSync(new TextEncoder().encode(`vigil: ${why}\n`));
    Deno.exit(1);
  }
}

/** host:port of DATABASE_URL (never its password), or the embedded database's directory. */
function databaseAddress(config: Config): string {
  if (!config.DATABASE_URL) return `embedded, in ${config.DATA_DIR}`;
  const url = new URL(config.DATABASE_URL);
  return `${url.hostname}:${url.port || 5432}${url.pathname}`;
}

/** The database answers a query, or one line naming where it was looked for, and exit 1. */
async function databaseOrExit(db: { sql: Sql; close(): Promise<void> }, config: Config) {
  try {
    await db.sql`select 1`;
  } catch (error) {
    const reason = (error as { code?: string }).code ?? (error as Error).message;
    closeLogging();
    Deno.stderr.writeSync(
      new TextEncoder().encode(
        `vigil: cannot reach the database at ${databaseAddress(config)}: ${
          (error as Error).message || reason
        } (DATABASE_URL, DB_TIMEOUT_MS)\n`,
      ),
    );
    Deno.exit(1);
  }
}

async function main() {
  const config = configOrExit();
  // Who this replica is, in its log lines, its spans and its database connections.
  const instance = `${Deno.hostname()}:${Deno.pid}`;
  setupLogging({
    level: config.LOG_LEVEL,
    identity: { service: config.OTEL_SERVICE_NAME, version: VERSION, instance },
  });
  const logger = rootLogger;
  // The port first, before anything is created or printed (a database, an admin key): a busy
  // port stops start-up here, named. Until vigil is ready it answers 503 "starting".
  const listener = listenOrExit(config);
  const keys = await keysOrExit(config);
  if (keys.source.kind === "file") {
    const fields = { path: keys.source.path, key_id: keys.keyring.currentId };
    if (keys.source.created) {
      logger.warn(
        "generated a development secret key in {path} (production needs VIGIL_SECRET_KEY)",
        fields,
      );
    } else {
      logger.info("using the development secret key in {path}", fields);
    }
  }
  tolerateStrayConnectionErrors(logger.child("db"));
  const clock = systemClock;
  const startedAt = clock.now();
  const tracing = setupTracing(config, undefined, instance);
  if (config.OTEL_EXPORTER_OTLP_ENDPOINT) {
    logger.info("exporting traces to {endpoint}", { endpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT });
  }
  // Error tracking: @sentry/deno is imported only when SENTRY_DSN is set.
  const errors = await setupErrorReporting(config).catch((error) => {
    logger.warn("error tracking is off: @sentry/deno did not load: {message}", {
      message: (error as Error).message,
    });
    return noopReporter;
  });
  if (errors.enabled) {
    logger.info("reporting errors to Sentry at {host}", { host: new URL(config.SENTRY_DSN!).host });
  }

  if (!config.METRICS_TOKEN && !config.METRICS_PUBLIC) {
    logger.warn("/metrics is off: set METRICS_TOKEN for Prometheus (or METRICS_PUBLIC=true)");
  }

  if (config.VIGIL_ENV === "production" && !config.DATABASE_URL) {
    logger.warn(
      "production on the embedded database (one connection, one process): set DATABASE_URL " +
        "to a PostgreSQL server",
      { data_dir: config.DATA_DIR },
    );
  }
  const db = await openDatabase(config, `vigil ${instance}`);
  await databaseOrExit(db, config);
  logger.info("database connected ({kind})", { kind: db.kind, at: databaseAddress(config) });
  await migrate(db.sql, logger.child("db"));
  await bootstrapAdmin(db.sql, config, clock, logger.child("users"));

  const services = createServices({
    config,
    sql: db.sql,
    clock,
    logger,
    metrics: createMetrics(),
    tracer: tracing.tracer,
    secrets: Secrets.of(keys.keyring),
    errors,
  });
  // Rows written before encryption, or sealed with a previous key, are sealed with the current
  // one (compare-and-set per row: safe while other replicas do the same).
  await reencryptSecrets(db.sql, services.secrets, logger.child("secrets")).catch((error) =>
    logger.warn("could not re-encrypt the stored secrets: {message}", {
      message: (error as Error).message,
    })
  );
  await services.remote.refresh(true);
  await loadExamplePatterns(config.PATTERNS_DIR, {
    ...services,
    logger: logger.child("patterns"),
  });

  await services.patterns.initMetrics();
  services.dbMonitor.start();
  services.slaTraffic.start();
  const eventLoop = new EventLoopLag(services.metrics);
  eventLoop.start();
  await services.skew.measure().catch((error) =>
    logger.warn("could not read the database's clock: {error}", { error })
  );

  const app = createApp({ ...services, startedAt });
  const server = listener.ready(app.fetch);
  const { hostname, port } = server.addr;
  logger.info("listening on http://{hostname}:{port}", { hostname, port });
  scheduleJobs(services.jobs, { ...services, logger: logger.child("jobs") });

  // A graceful stop: no new requests, jobs or claims; in-flight requests and sends finish and
  // are recorded; at the deadline the sends still running are cut off and released (leased to
  // nobody, so another replica sends them at once), then the database closes. The hard deadline
  // exits anyway — after writing its own log line.
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const timeoutMs = config.SHUTDOWN_TIMEOUT_MS;
    logger.info("stopping on {signal}", {
      signal,
      timeout_ms: timeoutMs,
      jobs_in_flight: services.drain.inFlight,
    });
    const deadline = setTimeout(() => {
      logger.error("shutdown took longer than {ms} ms; exiting", { ms: timeoutMs });
      closeLogging();
      Deno.exit(1);
    }, timeoutMs);
    // Leave time at the end for recording cut-off sends, and for closing.
    const closing = Math.min(3000, Math.floor(timeoutMs / 4));
    const [, drained] = await Promise.all([
      server.shutdown(), // stops accepting, lets in-flight requests finish
      services.drain.stop(timeoutMs - 2 * closing, closing),
    ]);
    if (!drained) logger.warn("some work was still running at the deadline and was cut off");
    // The last seconds of API traffic, for /sla/status (kept in memory until flushed).
    await withinMs(services.slaTraffic.stop(), closing, "SLA flush").catch(() => {
      logger.warn("the last SLA traffic could not be written before exit");
    });
    services.dbMonitor.stop();
    eventLoop.stop();
    // The last error events (sends cut off or exhausted while stopping), within a short wait.
    await errors.flush(Math.min(2000, closing)).catch(() => false);
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
