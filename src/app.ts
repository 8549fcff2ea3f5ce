/**
 * Builds the HTTP application from injected dependencies. Tests call `createApp(deps).request()`
 * without a server; `main.ts` serves the same app.
 */
import { secureHeaders } from "hono/secure-headers";
import { agentsRoutes } from "./agents/routes.ts";
import { ALERTMANAGER_WEBHOOK_PATH, alertmanagerRoutes } from "./alertmanager/routes.ts";
import { alertsRoutes } from "./alerts/routes.ts";
import { dlqRoutes } from "./delivery/routes.ts";
import { healthRoutes, type ReadinessCheck } from "./health/routes.ts";
import { limitBody, MAX_BODY_BYTES } from "./http/body_limit.ts";
import { docsRoutes } from "./http/docs_assets.ts";
import { errorHandler, notFoundHandler } from "./http/errors.ts";
import { createRouter } from "./http/openapi.ts";
import { guardInputs } from "./http/json_guard.ts";
import { jobsRoutes } from "./jobs/routes.ts";
import { observeRequests } from "./http/observe.ts";
import { limitAuthFailures, limitPerKey } from "./http/rate_limits.ts";
import { notificationsRoutes } from "./notifications/routes.ts";
import { metricsRoutes } from "./observability/routes.ts";
import { patternRoutes } from "./patterns/routes.ts";
import { policiesRoutes } from "./policies/routes.ts";
import type { Services } from "./services.ts";
import { silencesRoutes } from "./silences/routes.ts";
import { slaRoutes } from "./sla/routes.ts";
import { statusRoutes } from "./status/routes.ts";
import { authenticate, Authenticator } from "./users/auth.ts";
import { uptimeRoutes } from "./uptime/routes.ts";
import { usersRoutes } from "./users/routes.ts";

export interface AppDeps extends Services {
  startedAt: Date;
  /** Dependencies reported by /health/ready; the database is always one. */
  readiness?: ReadinessCheck[];
}

export function createApp(deps: AppDeps) {
  const { sql, clock, logger, config, metrics, tracer } = deps;
  const auth = new Authenticator(sql, clock, config.AUTH_CACHE_SECONDS);
  const app = createRouter();

  // First, so that its span, log fields and timing wrap everything else.
  app.use(observeRequests({ tracer, metrics, logger: logger.child("http"), sla: deps.slaTraffic }));
  // Pages (/docs, /status) get hono's whole set. Badges are images for other sites' pages
  // (READMEs, wikis): they may be embedded anywhere. JSON answers get what OWASP's REST Security
  // Cheat Sheet asks of an API; the other six headers only mean something to an HTML document
  // (several only to old browsers), and each header costs a request ~1 µs (README: Performance).
  const pageHeaders = secureHeaders();
  const badgeHeaders = secureHeaders({ crossOriginResourcePolicy: "cross-origin" });
  const apiHeaders = secureHeaders({
    crossOriginOpenerPolicy: false,
    originAgentCluster: false,
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    xPermittedCrossDomainPolicies: false,
    xXssProtection: false,
  });
  app.use((c, next) => {
    const path = c.req.path;
    if (isJsonPath(path)) return apiHeaders(c, next);
    return path.startsWith("/status/badge/") ? badgeHeaders(c, next) : pageHeaders(c, next);
  });
  // 1 MiB for every route but the Alertmanager receiver, which limits its own body (after its
  // token check): Alertmanager drops a group answered 413, and a big group exceeds 1 MiB.
  const apiBodyLimit = limitBody(MAX_BODY_BYTES);
  app.use((c, next) =>
    c.req.path === `/v1${ALERTMANAGER_WEBHOOK_PATH}` ? next() : apiBodyLimit(c, next)
  );
  // Alertmanager authenticates with its shared token; registered before the API-key check.
  app.route(
    "/v1",
    alertmanagerRoutes({
      ...deps,
      logger: logger.child("alertmanager"),
      token: config.ALERTMANAGER_WEBHOOK_TOKEN,
      recipients: config.ALERTMANAGER_RECIPIENTS,
      maxBodyBytes: config.ALERTMANAGER_MAX_BODY_BYTES,
    }),
  );
  app.use("/v1/*", limitAuthFailures(config.AUTH_FAILURES_PER_MINUTE, metrics));
  app.use("/v1/*", authenticate(auth));
  app.use("/v1/*", limitPerKey(config.RATE_LIMIT_PER_MINUTE, metrics));
  // After the key check, so only callers with a key make vigil read and scan a body.
  app.use("/v1/*", guardInputs(config.MAX_JSON_DEPTH));

  app.route(
    "/",
    healthRoutes({
      clock,
      logger: logger.child("health"),
      startedAt: deps.startedAt,
      checks: [
        { name: "database", required: true, check: async () => void await sql`select 1` },
        // Email is optional: without it, deliveries wait in the DLQ instead of failing readiness.
        {
          name: "email",
          required: false,
          check: () => Promise.resolve(deps.senders.email.status()),
        },
        ...(deps.readiness ?? []),
      ],
    }),
  );
  app.route(
    "/",
    metricsRoutes({ metrics, token: config.METRICS_TOKEN, open: config.METRICS_PUBLIC }),
  );
  app.route("/", slaRoutes({ report: deps.slaReport, auth, open: config.SLA_PUBLIC }));
  app.route("/v1", usersRoutes({ sql, clock, auth }));
  app.route("/v1", agentsRoutes(deps));
  app.route("/v1", patternRoutes(deps));
  app.route("/v1", alertsRoutes(deps));
  app.route("/v1", uptimeRoutes(deps));
  app.route("/v1", silencesRoutes(deps));
  app.route("/v1", notificationsRoutes(deps));
  app.route("/v1", policiesRoutes(deps));
  app.route("/v1", dlqRoutes(deps));
  app.route("/v1", jobsRoutes({ ...deps, logger: logger.child("jobs") }));

  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    description: "An API key (`vgl_…`)",
  });
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "vigil",
      version: "1.0.0",
      description: "Patterns, alerts and reliable delivery, observable from the first request.",
    },
  });
  // Swagger UI, served from vigil itself (works offline).
  app.route("/", docsRoutes());
  // The public status page (alerts marked public), its data and badges.
  app.route("/", statusRoutes(deps));

  app.onError(errorHandler(logger.child("http"), deps.errors));
  app.notFound(notFoundHandler);
  return app;
}

/** Paths that answer JSON (or Prometheus text), never an HTML page. */
function isJsonPath(path: string): boolean {
  return path.startsWith("/v1/") || path.startsWith("/health/") || path === "/metrics" ||
    path.startsWith("/sla/") || path === "/openapi.json";
}
