/** GET /v1/alerts/:id/uptime: an alert's uptime, evaluations, latency and downtime over a window. */
import { createRoute, z } from "@hono/zod-openapi";
import { getAlert } from "../alerts/store.ts";
import type { Clock } from "../clock.ts";
import type { Sql } from "../db/database.ts";
import { bearerAuth, createRouter, json, problems, UuidParam } from "../http/openapi.ts";
import { Problem } from "../http/problem.ts";
import { ownerScope } from "../users/auth.ts";
import { uptime, UPTIME_WINDOWS } from "./store.ts";

const Timestamp = z.date().or(z.string()).openapi({ type: "string", format: "date-time" });

const UptimeSchema = z.object({
  alert_id: z.uuid(),
  window: z.enum(UPTIME_WINDOWS),
  from: Timestamp,
  to: Timestamp,
  uptime_percent: z.number().nullable().openapi({
    description: "Evaluations that passed (could be made and did not match) ÷ all; null: none",
  }),
  evaluations: z.number().int(),
  failures: z.number().int().openapi({ description: "Matched, or could not be evaluated" }),
  latency_avg_ms: z.number().nullable(),
  latency_p95_ms: z.number().nullable().openapi({
    description: "Exact for 1h and 24h; from the rollups' histogram for longer windows",
  }),
  downtime: z.array(z.object({
    episode_id: z.uuid(),
    started_at: Timestamp,
    ended_at: Timestamp.nullable().openapi({ description: "null: still firing" }),
    duration_seconds: z.number().int().openapi({ description: "Inside the window" }),
  })).openapi({ description: "The firing episodes overlapping the window" }),
  downtime_seconds: z.number().int(),
}).openapi("Uptime");

export function uptimeRoutes(deps: { sql: Sql; clock: Clock }) {
  const app = createRouter();
  app.openapi(
    createRoute({
      method: "get",
      path: "/alerts/{id}/uptime",
      tags: ["alerts"],
      summary: "Uptime of an alert's check over a window, with its downtime",
      description: "1h and 24h from every evaluation; 7d from whole hours (the current one and " +
        "the 168 before); 30d and 90d from whole UTC days (today and the 29 or 89 before).",
      security: bearerAuth,
      request: {
        params: UuidParam,
        query: z.object({ window: z.enum(UPTIME_WINDOWS).default("24h") }),
      },
      responses: { 200: json(UptimeSchema, "The window's figures"), ...problems(401, 404, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { window } = c.req.valid("query");
      const alert = await getAlert(deps.sql, id, ownerScope(c.get("principal")));
      if (!alert) throw Problem.notFound(`You have no alert ${id}.`);
      return c.json({ alert_id: id, ...await uptime(deps.sql, id, window, deps.clock.now()) }, 200);
    },
  );
  return app;
}
