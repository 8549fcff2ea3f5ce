/**
 * The public status page (no API key):
 * - `GET /status`: the page (server-rendered HTML, no script);
 * - `GET /status.json`: the same data as JSON;
 * - `GET /status/badge/health.svg`: the overall state as a badge;
 * - `GET /status/badge/:alert_id/uptime.svg?window=30d`: a public alert's uptime as a badge.
 *
 * Every answer comes from an in-memory cache (STATUS_CACHE_MS, single flight), so that however
 * often the public hits these, the database sees at most one computation per cache period (and
 * one per public alert and window for the uptime badges). A badge for an alert that does not
 * exist or is not public is the same 404, decided from the cached list of public alerts without
 * a query, so it tells nothing about private alerts.
 */
import { accepts } from "hono/accepts";
import { createRoute, z } from "@hono/zod-openapi";
import type { Clock } from "../clock.ts";
import type { Config } from "../config.ts";
import type { Sql } from "../db/database.ts";
import { createRouter, json, problems, ProblemSchema } from "../http/openapi.ts";
import { fieldErrors, Problem } from "../http/problem.ts";
import { uptimePercent } from "../uptime/store.ts";
import { LEVEL_COLOUR, OVERALL_BADGE, renderBadge } from "./badge.tsx";
import { SingleFlightCache } from "../util/single_flight.ts";
import { statusData } from "./data.ts";
import { formatPercent, uptimeLevel } from "./format.ts";
import { renderStatusPage } from "./page.tsx";
import { type PublicAlert, type StatusData, StatusDataSchema } from "./schema.ts";

/** How long the status data and badges are reused before they are read again. */
export const STATUS_CACHE_MS = 10_000;

/** The page's inline style, nothing else: no script, no other origin. */
export const STATUS_CSP = [
  "default-src 'none'",
  "style-src 'unsafe-inline'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'self'",
].join("; ");
/** A badge is an image: it loads nothing. */
const BADGE_CSP = "default-src 'none'; frame-ancestors 'self'";

const PAGE_CACHE = "public, max-age=10";
const BADGE_CACHE = "public, max-age=60";

export const BADGE_WINDOWS = ["24h", "7d", "30d", "90d"] as const;
type BadgeWindow = typeof BADGE_WINDOWS[number];

const WINDOW_WORDS: Record<BadgeWindow, string> = {
  "24h": "24 hours",
  "7d": "7 days",
  "30d": "30 days",
  "90d": "90 days",
};

export interface StatusDeps {
  sql: Sql;
  clock: Clock;
  config: Pick<Config, "STATUS_PAGE_TITLE" | "STATUS_PAGE_DESCRIPTION">;
  /** Tests shorten or lengthen it. */
  cacheMs?: number;
}

const NOT_PUBLIC = "There is no public alert with this id.";

const BadgeParams = z.object({
  alert_id: z.string().openapi({
    param: { name: "alert_id", in: "path" },
    description: "The id of an alert marked public",
  }),
});

const BadgeQuery = z.object({
  window: z.enum(BADGE_WINDOWS, { error: `must be one of ${BADGE_WINDOWS.join(", ")}` })
    .default("30d").openapi({ param: { name: "window", in: "query" } }),
});

const svg = (description: string) => ({
  description,
  content: { "image/svg+xml": { schema: z.string() } },
});

/**
 * What every /status route answers from, made once per computation: the data, the page (rendered
 * and gzipped: 100 alerts are ~20 ms to render, 1.25 MB of HTML, ~4 % of that gzipped) and the
 * public alerts by id, so that no request renders, compresses or searches.
 */
interface Snapshot {
  data: StatusData;
  html: string;
  gzip: Uint8Array<ArrayBuffer>;
  byId: Map<string, PublicAlert>;
}

async function snapshot(data: StatusData): Promise<Snapshot> {
  const html = renderStatusPage(data);
  const gzipped = new Blob([html]).stream().pipeThrough(new CompressionStream("gzip"));
  return {
    data,
    html,
    gzip: new Uint8Array(await new Response(gzipped).arrayBuffer()),
    byId: new Map(data.groups.flatMap((g) => g.alerts).map((a) => [a.id, a])),
  };
}

export function statusRoutes(deps: StatusDeps) {
  const { sql, clock, config } = deps;
  const ttl = deps.cacheMs ?? STATUS_CACHE_MS;
  // With the cache answering stale while it recomputes, no request waits for a computation.
  const snapshots = new SingleFlightCache<Snapshot>(clock, ttl);
  const uptimes = new SingleFlightCache<number | null>(clock, ttl);
  const current = () =>
    snapshots.get("status", async () => snapshot(await statusData(sql, clock.now(), config)));

  const app = createRouter();

  app.openapi(
    createRoute({
      method: "get",
      path: "/status",
      tags: ["status"],
      summary: "The public status page (HTML)",
      description: "Every alert marked `public`, by its `group` label: state, 90-day uptime, " +
        "24-hour latency, incidents. No API key; cached for 10 s.",
      responses: {
        200: { description: "The page", content: { "text/html": { schema: z.string() } } },
        ...problems(503),
      },
    }),
    async (c) => {
      const { html, gzip } = await current();
      const headers = {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": STATUS_CSP,
        "Cache-Control": PAGE_CACHE,
        "Vary": "Accept-Encoding",
      };
      const encoding = accepts(c, {
        header: "Accept-Encoding",
        supports: ["gzip"],
        default: "identity",
      });
      return encoding === "gzip"
        ? c.body(gzip, 200, { ...headers, "Content-Encoding": "gzip" })
        : c.body(html, 200, headers);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/status.json",
      tags: ["status"],
      summary: "The public status page's data",
      responses: { 200: json(StatusDataSchema, "What /status shows"), ...problems(503) },
    }),
    async (c) => {
      const { data } = await current();
      c.header("Cache-Control", PAGE_CACHE);
      c.header("Content-Security-Policy", BADGE_CSP);
      // Public data: other sites' scripts may read it.
      c.header("Access-Control-Allow-Origin", "*");
      return c.json(data, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/status/badge/health.svg",
      tags: ["status"],
      summary: "A badge of the overall state",
      responses: { 200: svg("An SVG badge"), ...problems(503) },
    }),
    async () => {
      const { data } = await current();
      const { message, colour } = OVERALL_BADGE[data.overall.state];
      return badgeResponse(renderBadge({
        label: "status",
        message,
        colour,
        title: `${data.title}: ${data.overall.text}`,
      }));
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/status/badge/{alert_id}/uptime.svg",
      tags: ["status"],
      summary: "A badge of a public alert's uptime",
      request: { params: BadgeParams, query: BadgeQuery },
      responses: {
        200: svg("An SVG badge"),
        ...problems(422, 503),
        404: {
          description: "No public alert has this id (the same answer whether it exists or not)",
          content: { "application/problem+json": { schema: ProblemSchema } },
        },
      },
    }),
    async (c) => {
      const { alert_id: id } = c.req.valid("param");
      const { window } = c.req.valid("query");
      const alert = (await current()).byId.get(id);
      if (!alert) throw Problem.notFound(NOT_PUBLIC);
      const pct = await uptimes.get(
        `${id} ${window}`,
        () => uptimePercent(sql, id, window, clock.now()),
      );
      return badgeResponse(renderBadge({
        label: `uptime ${window}`,
        message: formatPercent(pct),
        colour: LEVEL_COLOUR[uptimeLevel(pct)],
        title: pct === null
          ? `${alert.name}: no uptime data over the last ${WINDOW_WORDS[window]}`
          : `${alert.name}: ${formatPercent(pct)} uptime over the last ${WINDOW_WORDS[window]}`,
      }));
    },
    (result) => {
      if (!result.success) {
        if (result.target === "param") throw Problem.notFound(NOT_PUBLIC);
        throw Problem.invalid(fieldErrors(result.error, ["query"]));
      }
    },
  );

  return app;
}

function badgeResponse(body: string): Response {
  return new Response(body, {
    status: 200,
    headers: {
      "Content-Type": "image/svg+xml; charset=utf-8",
      "Cache-Control": BADGE_CACHE,
      "Content-Security-Policy": BADGE_CSP,
    },
  });
}
