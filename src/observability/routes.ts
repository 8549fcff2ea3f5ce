/** `GET /metrics`: the Prometheus text exposition, behind METRICS_TOKEN when it is set. */
import { createRoute, z } from "@hono/zod-openapi";
import { bearerToken } from "../http/bearer.ts";
import { createRouter, problems } from "../http/openapi.ts";
import { Problem } from "../http/problem.ts";
import { sameHash } from "../users/keys.ts";
import { type Metrics, renderMetrics, type RenderOptions } from "./metrics.ts";

/**
 * `/metrics`: with METRICS_TOKEN set, only for that bearer token; without it, open only where
 * METRICS_PUBLIC says so (the default outside production) — production does not expose its
 * internals to anyone by accident.
 *
 * The text is rendered in slices between which requests are served (renderMetrics), and sent as
 * one string: Deno writes a string body on its fast path, where a streamed body (measured: 64 KiB
 * chunks from a ReadableStream) held requests beside it up for longer than the rendering does.
 * Scrapes that arrive while one is being rendered get that one's text (Prometheus servers
 * scraping one replica together, or a retry), instead of rendering it once more each.
 */
export function metricsRoutes(
  { metrics, token, open, render }: {
    metrics: Metrics;
    token?: string;
    open: boolean;
    render?: RenderOptions;
  },
) {
  const app = createRouter();
  let rendering: Promise<string> | undefined;
  const scrape = () =>
    rendering ??= renderMetrics(metrics.registry, render).finally(() => (rendering = undefined));
  app.openapi(
    createRoute({
      method: "get",
      path: "/metrics",
      tags: ["observability"],
      summary: "Prometheus metrics",
      description: "Needs `Authorization: Bearer <METRICS_TOKEN>` when METRICS_TOKEN is set; " +
        "without it, answers only with METRICS_PUBLIC=true (the default outside production).",
      responses: {
        200: {
          description: "Text exposition format",
          content: { "text/plain": { schema: z.string() } },
        },
        ...problems(401, 403),
      },
    }),
    async (c) => {
      if (token) {
        const given = bearerToken(c.req.header("authorization")) ?? "";
        if (!sameHash(given, token)) {
          throw Problem.unauthorized("/metrics needs the metrics token.");
        }
      } else if (!open) {
        throw Problem.forbidden("/metrics is off: set METRICS_TOKEN (or METRICS_PUBLIC=true).");
      }
      const body = await scrape();
      return c.text(body, 200, { "content-type": metrics.registry.contentType });
    },
  );
  return app;
}
