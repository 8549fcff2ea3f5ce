/** `GET /metrics`: the Prometheus text exposition, behind METRICS_TOKEN when it is set. */
import { createRoute, z } from "@hono/zod-openapi";
import { bearerToken } from "../http/bearer.ts";
import { createRouter, problems } from "../http/openapi.ts";
import { Problem } from "../http/problem.ts";
import { sameHash } from "../users/keys.ts";
import type { Metrics } from "./metrics.ts";

export function metricsRoutes({ metrics, token }: { metrics: Metrics; token?: string }) {
  const app = createRouter();
  app.openapi(
    createRoute({
      method: "get",
      path: "/metrics",
      tags: ["observability"],
      summary: "Prometheus metrics",
      description: "Needs `Authorization: Bearer <METRICS_TOKEN>` when METRICS_TOKEN is set.",
      responses: {
        200: {
          description: "Text exposition format",
          content: { "text/plain": { schema: z.string() } },
        },
        ...problems(401),
      },
    }),
    async (c) => {
      if (token) {
        const given = bearerToken(c.req.header("authorization")) ?? "";
        if (!sameHash(given, token)) {
          throw Problem.unauthorized("/metrics needs the metrics token.");
        }
      }
      const body = await metrics.registry.metrics();
      return c.text(body, 200, { "content-type": metrics.registry.contentType });
    },
  );
  return app;
}
