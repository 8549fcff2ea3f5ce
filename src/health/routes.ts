/**
 * Liveness (the process answers) and readiness (its dependencies answer). Readiness is 503 when
 * a required dependency is down; optional ones (an email provider, say) only report.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Clock } from "../clock.ts";
import type { Logger } from "../observability/logger.ts";
import { withinMs } from "../util/timeout.ts";
import { createRouter, json } from "../http/openapi.ts";

export interface DependencyStatus {
  status: "up" | "down" | "unavailable";
  required: boolean;
  latency_ms?: number;
  detail?: string;
}

/**
 * A named readiness check; throwing (or timing out) means "unavailable". The error itself goes to
 * the log only: these endpoints are public, and a driver's message names hosts, ports, users.
 */
export interface ReadinessCheck {
  name: string;
  required: boolean;
  check(): Promise<{ status?: "up" | "unavailable"; detail?: string } | void>;
}

const CHECK_TIMEOUT_MS = 2000;

const DependencySchema = z.object({
  status: z.enum(["up", "down", "unavailable"]),
  required: z.boolean(),
  latency_ms: z.number().optional(),
  detail: z.string().optional(),
});

const ReadySchema = z.object({
  status: z.enum(["ready", "not_ready"]),
  dependencies: z.record(z.string(), DependencySchema),
}).openapi("Readiness");

export function healthRoutes(
  deps: { clock: Clock; startedAt: Date; checks: ReadinessCheck[]; logger: Logger },
) {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "get",
      path: "/health/live",
      tags: ["health"],
      summary: "Liveness",
      responses: {
        200: json(z.object({ status: z.literal("ok"), uptime_seconds: z.number() }), "Alive"),
      },
    }),
    (c) =>
      c.json({
        status: "ok" as const,
        uptime_seconds: (deps.clock.now().getTime() - deps.startedAt.getTime()) / 1000,
      }, 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/health/ready",
      tags: ["health"],
      summary: "Readiness, with the state of every dependency",
      responses: {
        200: json(ReadySchema, "Ready"),
        503: json(ReadySchema, "A required dependency is down"),
      },
    }),
    async (c) => {
      const results = await Promise.all(deps.checks.map((check) => runCheck(check, deps.logger)));
      const dependencies = Object.fromEntries(results);
      const ready = results.every(([, d]) => !d.required || d.status === "up");
      return ready
        ? c.json({ status: "ready" as const, dependencies }, 200)
        : c.json({ status: "not_ready" as const, dependencies }, 503);
    },
  );

  return app;
}

async function runCheck(
  check: ReadinessCheck,
  logger: Logger,
): Promise<[string, DependencyStatus]> {
  const started = performance.now();
  try {
    const result = await withinMs(check.check(), CHECK_TIMEOUT_MS, check.name);
    return [check.name, {
      status: result?.status ?? "up",
      required: check.required,
      latency_ms: Math.round(performance.now() - started),
      ...(result?.detail ? { detail: result.detail } : {}),
    }];
  } catch (error) {
    logger.warn("readiness check {name} failed: {error}", {
      name: check.name,
      error: error instanceof Error ? error.message : String(error),
    });
    return [check.name, {
      status: "unavailable",
      required: check.required,
      detail: `${check.name} did not answer`,
    }];
  }
}
