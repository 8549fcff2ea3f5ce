/** `/v1/dlq` (admin): the dead-letter queue — list, replay, discard with a reason. */
import { createRoute, z } from "@hono/zod-openapi";
import type { Clock } from "../clock.ts";
import type { Sql } from "../db/database.ts";
import {
  bearerAuth,
  createRouter,
  json,
  jsonBody,
  problems,
  Timestamp,
  UuidParam,
} from "../http/openapi.ts";
import { decodeCursor, page, pageOf, PageQuery } from "../http/pagination.ts";
import { Problem } from "../http/problem.ts";
import { requireAdmin } from "../users/auth.ts";
import { discardDlq, DLQ_STATES, listDlq, replayDlq } from "./store.ts";
import { CHANNELS } from "./types.ts";

const DlqSchema = z.object({
  id: z.uuid(),
  delivery_id: z.uuid(),
  alert_id: z.uuid().nullable(),
  user_id: z.uuid(),
  channel: z.enum(CHANNELS),
  error_message: z.string(),
  retry_count: z.number().int(),
  next_retry_at: Timestamp.nullable(),
  last_retry_at: Timestamp.nullable(),
  state: z.enum(DLQ_STATES).openapi({
    description: "`pending`: retried at next_retry_at; `exhausted`: every retry failed; " +
      "`uncertain`: an attempt got no answer and the channel's idempotency window has passed, " +
      "so it may have arrived: never re-sent automatically",
  }),
  maybe_sent: z.boolean(),
  created_at: Timestamp,
}).openapi("DlqEntry");

export function dlqRoutes({ sql, clock }: { sql: Sql; clock: Clock }) {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "get",
      path: "/dlq",
      tags: ["delivery"],
      summary: "Dead-letter queue entries, newest first (admin)",
      security: bearerAuth,
      middleware: [requireAdmin] as const,
      request: {
        query: PageQuery.extend({
          state: z.enum(DLQ_STATES).optional().openapi({
            param: { name: "state", in: "query" },
          }),
          channel: z.enum(CHANNELS).optional().openapi({ param: { name: "channel", in: "query" } }),
        }),
      },
      responses: {
        200: json(
          pageOf(DlqSchema),
          "A page",
        ),
        ...problems(401, 403, 422),
      },
    }),
    async (c) => {
      const { limit, cursor, state, channel } = c.req.valid("query");
      const rows = await listDlq(sql, { state, channel }, limit + 1, decodeCursor(cursor));
      return c.json(page(rows, limit, (r) => [r.created_at, r.id]), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/dlq/{id}/replay",
      tags: ["delivery"],
      summary: "Retry an entry at the next tick (retry count and history are kept) (admin)",
      description: "Replaying an `uncertain` entry sends it again although an earlier attempt " +
        "may have arrived: that is the caller's decision.",
      security: bearerAuth,
      middleware: [requireAdmin] as const,
      request: { params: UuidParam },
      responses: {
        200: json(DlqSchema, "The entry, due now"),
        ...problems(401, 403, 404, 409, 422),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const row = await replayDlq(sql, id, clock.now());
      if (!row) throw Problem.notFound(`There is no DLQ entry ${id}.`);
      if (row === "busy") {
        throw Problem.conflict(`DLQ entry ${id} is being retried right now; try again shortly.`);
      }
      return c.json(row, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/dlq/{id}",
      tags: ["delivery"],
      summary: "Give up on an entry for good, saying why (admin)",
      description: "The delivery becomes `exhausted`; the reason is kept in its attempt history.",
      security: bearerAuth,
      middleware: [requireAdmin] as const,
      request: {
        params: UuidParam,
        ...jsonBody(z.object({ reason: z.string().trim().min(1, "say why").max(500) }).strict()),
      },
      responses: { 204: { description: "Discarded" }, ...problems(400, 401, 403, 404, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      if (!await discardDlq(sql, id, c.req.valid("json").reason, clock.now())) {
        throw Problem.notFound(`There is no DLQ entry ${id}.`);
      }
      return c.body(null, 204);
    },
  );

  return app;
}
