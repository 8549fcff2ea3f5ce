/** `GET /metrics`: the Prometheus text exposition, behind METRICS_TOKEN when it is set. */
import { createRoute, z } from "@hono/zod-openapi";
import type { TypedResponse } from "hono";
import { bearerToken } from "../http/bearer.ts";
import { createRouter, problems } from "../http/openapi.ts";
import { Problem } from "../http/problem.ts";
import { sameHash } from "../users/keys.ts";
import { type Metrics, renderMetricsChunks, type RenderOptions } from "./metrics.ts";

/**
 * `/metrics`: with METRICS_TOKEN set, only for that bearer token; without it, open only where
 * METRICS_PUBLIC says so (the default outside production) — production does not expose its
 * internals to anyone by accident.
 *
 * The text is rendered in slices between which requests are served (renderMetrics) and sent in
 * chunks, each encoded as the response is written, so that no turn handles the whole text;
 * scrapes that arrive while one is being rendered get that one's text (Prometheus servers
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
  let rendering: Promise<string[]> | undefined;
  const scrape = () =>
    rendering ??= renderMetricsChunks(metrics.registry, render).finally(() =>
      rendering = undefined
    );
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
      const chunks = await scrape();
      const encoder = new TextEncoder();
      let next = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (next < chunks.length) controller.enqueue(encoder.encode(chunks[next++]));
          else controller.close();
        },
      });
      // The documented text, streamed: the route's typing knows text responses only.
      return new Response(body, {
        headers: { "content-type": metrics.registry.contentType },
      }) as unknown as TypedResponse<string, 200, "text">;
    },
  );
  return app;
}
