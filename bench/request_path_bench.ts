/**
 * Where a `/v1/me` request's CPU goes: the request path built up from bare Hono one layer at a
 * time, each case answering in process (`app.fetch`, no network, the body read) what
 * `deno task bench`'s wrk load sends (an admin key, no traceparent, no request id).
 *
 *   deno task bench:layers        (deno bench -A bench/request_path_bench.ts)
 *
 * Every case adds one layer to the one before, in createApp's order (src/app.ts): the OpenAPIHono
 * router with the real /v1/me route → observeRequests (unsampled; and, instead, sampled: every
 * span kept and handed to a BatchSpanProcessor whose exporter drops it) → secureHeaders → the body
 * limit → limitAuthFailures → authenticate (the real Authenticator, cache warm) → limitPerKey →
 * guardInputs; then the full createApp, unsampled and sampled. Until authenticate is added, a
 * one-line middleware puts the same principal on the context. A variant of bare Hono answers with
 * the headers vigil adds, and nothing else. Log lines are formatted as on stdout (formatJsonLine)
 * and dropped. Database: DATABASE_URL, else a throwaway cluster (tests/support/database.ts); the
 * cached path asks it nothing. What this cannot show is Deno.serve's own cost of each response
 * header, which only a served request pays (README, "Where a request's time goes").
 */
import { Hono, type MiddlewareHandler } from "hono";
import type { ExportResult } from "@opentelemetry/core";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";
import { secureHeaders } from "hono/secure-headers";
import { createApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { limitBody, MAX_BODY_BYTES } from "../src/http/body_limit.ts";
import type { AppEnv, Principal } from "../src/http/env.ts";
import { errorHandler, notFoundHandler } from "../src/http/errors.ts";
import { guardInputs } from "../src/http/json_guard.ts";
import { observeRequests } from "../src/http/observe.ts";
import { createRouter } from "../src/http/openapi.ts";
import { limitAuthFailures, limitPerKey } from "../src/http/rate_limits.ts";
import { formatJsonLine, rootLogger, setupLogging } from "../src/observability/logger.ts";
import { createMetrics } from "../src/observability/metrics.ts";
import { setupTracing } from "../src/observability/tracing.ts";
import { SlaTraffic } from "../src/sla/traffic.ts";
import { createServices } from "../src/services.ts";
import { authenticate, Authenticator } from "../src/users/auth.ts";
import { usersRoutes } from "../src/users/routes.ts";
import { createUser } from "../src/users/store.ts";
import { ManualClock } from "../tests/support/clock.ts";
import { testDatabase } from "../tests/support/database.ts";

let logBytes = 0;
setupLogging({
  level: "info",
  sink: (record) => void (logBytes += formatJsonLine(record).length + 1),
  identity: { service: "vigil", version: "bench", instance: "bench:1" },
});

/** Takes every span and drops it: the OTLP export (in batches, off the request) is not measured. */
class DropExporter implements SpanExporter {
  export(_spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    done({ code: 0 });
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

const db = await testDatabase();
globalThis.addEventListener("unload", () => void db[Symbol.asyncDispose]());
const clock = new ManualClock();
const env = {
  VIGIL_ENV: "test",
  RATE_LIMIT_PER_MINUTE: "100000000", // as deno task bench: one key sends everything
  OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9", // statements traced as in production
};
const unsampledConfig = loadConfig({ ...env, OTEL_TRACES_SAMPLER_ARG: "0" });
const sampledConfig = loadConfig({ ...env, OTEL_TRACES_SAMPLER_ARG: "1" });
const unsampled = setupTracing(unsampledConfig, new DropExporter());
const sampled = setupTracing(sampledConfig, new DropExporter());

const { user, api_key } = await createUser(db.sql, {
  email: "bench@example.com",
  name: "Bench",
  role: "admin",
  now: clock.now(),
});
const principal: Principal = {
  userId: user.id,
  email: user.email,
  name: user.name,
  keyId: api_key.id,
  role: "admin",
};
const body = {
  user: { id: principal.userId, email: principal.email, name: principal.name },
  api_key: { id: principal.keyId, role: principal.role },
};
const request = new Request("http://127.0.0.1:8000/v1/me", {
  headers: {
    authorization: `Bearer ${api_key.key}`,
    host: "127.0.0.1:8000",
    accept: "*/*",
    "user-agent": "wrk",
  },
});
// As Deno.serve hands it to app.fetch: the connection's address is the env.
const connInfo = { remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 40000 } };

type Layer =
  | "router"
  | "observe"
  | "headers"
  | "bodyLimit"
  | "authFailures"
  | "authenticate"
  | "perKey"
  | "guard";
const ORDER: Layer[] = [
  "router",
  "observe",
  "headers",
  "bodyLimit",
  "authFailures",
  "authenticate",
  "perKey",
  "guard",
];

/** The app with the first `n` layers of ORDER, wired as createApp wires them. */
function layered(n: number, traced: boolean): { fetch: (req: Request, env: unknown) => unknown } {
  const has = new Set(ORDER.slice(0, n));
  const metrics = createMetrics();
  const app = createRouter();
  if (has.has("observe")) {
    const tracer = (traced ? sampled : unsampled).tracer;
    const sla = new SlaTraffic({ sql: db.sql, clock, logger: rootLogger.child("sla") });
    app.use(observeRequests({ tracer, metrics, logger: rootLogger.child("http"), sla }));
  }
  if (has.has("headers")) {
    const headers = secureHeaders();
    const badgeHeaders = secureHeaders({ crossOriginResourcePolicy: "cross-origin" });
    app.use((c, next) =>
      c.req.path.startsWith("/status/badge/") ? badgeHeaders(c, next) : headers(c, next)
    );
  }
  if (has.has("bodyLimit")) {
    const apiBodyLimit = limitBody(MAX_BODY_BYTES);
    app.use((c, next) =>
      c.req.path === "/v1/alertmanager/webhook" ? next() : apiBodyLimit(c, next)
    );
  }
  if (has.has("authFailures")) app.use("/v1/*", limitAuthFailures(30, metrics));
  if (has.has("authenticate")) {
    app.use("/v1/*", authenticate(new Authenticator(db.sql, clock, 10)));
  } else {
    const stub: MiddlewareHandler<AppEnv> = (c, next) => {
      c.set("principal", principal);
      return next();
    };
    app.use("/v1/*", stub);
  }
  if (has.has("perKey")) app.use("/v1/*", limitPerKey(100_000_000, metrics));
  if (has.has("guard")) app.use("/v1/*", guardInputs(32));
  app.route("/v1", usersRoutes({ sql: db.sql, clock, auth: new Authenticator(db.sql, clock, 10) }));
  app.onError(errorHandler(rootLogger.child("http")));
  app.notFound(notFoundHandler);
  return app;
}

function fullApp(traced: boolean) {
  const config = traced ? sampledConfig : unsampledConfig;
  const services = createServices({
    config,
    sql: db.sql,
    clock,
    logger: rootLogger,
    metrics: createMetrics(),
    tracer: (traced ? sampled : unsampled).tracer,
  });
  return createApp({ ...services, startedAt: clock.now() });
}

const bare = new Hono();
bare.get("/v1/me", (c) => c.json(body));

/** The 16 headers vigil adds to a /v1 answer, on bare Hono: what the headers alone cost. */
const withHeaders = new Hono();
withHeaders.use(secureHeaders());
withHeaders.use(async (c, next) => {
  await next();
  const headers = c.res.headers;
  headers.set("RateLimit-Policy", "100000000;w=60");
  headers.set("RateLimit-Limit", "100000000");
  headers.set("RateLimit-Remaining", "99999999");
  headers.set("RateLimit-Reset", "60");
  headers.set("X-Request-Id", crypto.randomUUID());
});
withHeaders.get("/v1/me", (c) => c.json(body));

const cases: [string, { fetch: (req: Request, env: unknown) => unknown }][] = [
  ["bare Hono", bare],
  ["  bare Hono with vigil's response headers (instead)", withHeaders],
  ["+ OpenAPIHono router, /v1/me route (principal stubbed)", layered(1, false)],
  ["+ observeRequests, unsampled", layered(2, false)],
  ["  observeRequests, sampled (instead)", layered(2, true)],
  ["+ secureHeaders", layered(3, false)],
  ["+ body limit", layered(4, false)],
  ["+ limitAuthFailures", layered(5, false)],
  ["+ authenticate (cache warm; replaces the stub)", layered(6, false)],
  ["+ limitPerKey", layered(7, false)],
  ["+ guardInputs", layered(8, false)],
  ["createApp, unsampled", fullApp(false)],
  ["createApp, sampled", fullApp(true)],
];

async function once(app: { fetch: (req: Request, env: unknown) => unknown }): Promise<void> {
  const res = await app.fetch(request, connInfo) as Response;
  if (res.status !== 200) throw new Error(`${res.status}: ${await res.text()}`);
  await res.text();
}

// Every case answers the same body before it is measured (and warms the key cache).
for (const [name, app] of cases) {
  const res = await app.fetch(request, connInfo) as Response;
  const got = await res.json();
  if (JSON.stringify(got) !== JSON.stringify(body)) {
    throw new Error(`${name}: unexpected body ${JSON.stringify(got)}`);
  }
  for (let i = 0; i < 2000; i++) await once(app);
}

/**
 * An iteration is BATCH requests (bodies read): deno bench's own figures are per BATCH. Every
 * case is measured in ROUNDS rounds, one after the other in each round, so that a burst of other
 * work on a shared machine falls on one round of every case rather than on one case; the table
 * printed at the end is per request, the median iteration of all rounds.
 */
const BATCH = 100;
const ROUNDS = 5;
const timings = new Map<string, number[]>(cases.map(([name]) => [name, []]));
for (let round = 1; round <= ROUNDS; round++) {
  for (const [i, [name, app]] of cases.entries()) {
    const mine = timings.get(name)!;
    Deno.bench({
      name: ROUNDS > 1 ? `${name} (round ${round})` : name,
      group: `round ${round}, ${BATCH} requests an iteration`,
      baseline: i === 0,
      n: 100,
      warmup: 10,
      async fn() {
        const started = performance.now();
        for (let j = 0; j < BATCH; j++) await once(app);
        mine.push(((performance.now() - started) * 1000) / BATCH);
      },
    });
  }
}

globalThis.addEventListener("unload", () => {
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const lines = [
    "| case | µs a request (median) | Δ to the case before (an “instead” one: to the one it replaces) |",
    "| --- | ---: | ---: |",
  ];
  let previous: number | undefined;
  for (const [name, xs] of timings) {
    if (xs.length === 0) continue;
    const us = median(xs);
    const delta = previous === undefined
      ? ""
      : `${us - previous >= 0 ? "+" : ""}${(us - previous).toFixed(1)}`;
    lines.push(`| ${name.trim()} | ${us.toFixed(1)} | ${delta} |`);
    // A variant ("instead") replaces the case above it: compared with it, and not the next base.
    if (!name.startsWith(" ")) previous = us;
  }
  Deno.stdout.writeSync(new TextEncoder().encode(`\n${lines.join("\n")}\n`));
});
