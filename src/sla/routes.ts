/** GET /sla/status: public by default; with SLA_PUBLIC=false it needs an API key (any role). */
import { createRoute, z } from "@hono/zod-openapi";
import { createRouter, json } from "../http/openapi.ts";
import { authenticate, type Authenticator } from "../users/auth.ts";
import { SLA_WINDOWS, type SlaReport } from "./status.ts";

const Timestamp = z.date().or(z.string()).openapi({ type: "string", format: "date-time" });

const BudgetSchema = z.object({
  remaining_percent: z.number().nullable().openapi({
    description: "Of the window's error budget, what is left (negative: overspent)",
  }),
  remaining_minutes: z.number().nullable().openapi({
    description: "The budget left as minutes of the window that may still be bad",
  }),
  burn_rate: z.number().nullable().openapi({
    description: "Bad share ÷ allowed bad share: 1 spends the budget exactly by the window's end",
  }),
});

const objective = <T extends z.ZodRawShape>(extra: T) =>
  z.object({
    ...extra,
    target: z.number(),
    met: z.boolean().nullable().openapi({ description: "null: no requests in the window" }),
    error_budget: BudgetSchema,
  });

const WindowSchema = z.object({
  window: z.enum(SLA_WINDOWS),
  from: Timestamp,
  to: Timestamp,
  requests: z.number(),
  errors: z.number().openapi({ description: "5xx answers" }),
  met: z.boolean().nullable(),
  availability: objective({ percent: z.number().nullable() }),
  error_rate: objective({ percent: z.number().nullable() }),
  latency: objective({
    p95_ms: z.number().nullable(),
    within_target_percent: z.number().nullable(),
  }),
}).openapi("SlaWindow");

const SlaStatusSchema = z.object({
  generated_at: Timestamp,
  targets: z.object({
    availability_percent: z.number(),
    error_rate_percent: z.number(),
    p95_ms: z.number(),
  }),
  windows: z.array(WindowSchema),
}).openapi("SlaStatus");

export function slaRoutes(deps: { report: SlaReport; auth: Authenticator; open: boolean }) {
  const app = createRouter();
  if (!deps.open) app.use("/sla/*", authenticate(deps.auth));
  app.openapi(
    createRoute({
      method: "get",
      path: "/sla/status",
      tags: ["sla"],
      summary: "vigil's own API against its SLA: availability, error rate, p95, error budget",
      description: "From every replica's API traffic (the /v1 requests http_requests_total " +
        "counts), over 1h, 24h (per minute), 7d and 30d (per hour). Public unless " +
        "SLA_PUBLIC=false. Recomputed at most every 10 s.",
      ...(deps.open ? {} : { security: [{ bearerAuth: [] }] }),
      responses: { 200: json(SlaStatusSchema, "The SLA per window") },
    }),
    async (c) => c.json(await deps.report.status(), 200),
  );
  return app;
}
