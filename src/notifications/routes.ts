/** `/v1/notifications`: the in-app channel, as the user sees it (own notifications only). */
import { createRoute, z } from "@hono/zod-openapi";
import type { Clock } from "../clock.ts";
import type { Sql } from "../db/database.ts";
import { bearerAuth, createRouter, json, problems, Timestamp, UuidParam } from "../http/openapi.ts";
import { decodeCursor, page, pageOf, PageQuery } from "../http/pagination.ts";
import { Problem } from "../http/problem.ts";

const NotificationSchema = z.object({
  id: z.uuid(),
  alert_id: z.uuid().nullable(),
  // Null once the delivery is pruned (DELIVERY_RETENTION_DAYS) while the notification is unread.
  delivery_id: z.uuid().nullable(),
  title: z.string(),
  message: z.string(),
  read_at: Timestamp.nullable(),
  created_at: Timestamp,
}).openapi("Notification");

type Notification = z.output<typeof NotificationSchema>;

export function notificationsRoutes({ sql, clock }: { sql: Sql; clock: Clock }) {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "get",
      path: "/notifications",
      tags: ["notifications"],
      summary: "Your notifications, newest first, with the unread count",
      security: bearerAuth,
      request: {
        query: PageQuery.extend({
          unread_only: z.enum(["true", "false"]).default("false").transform((v) => v === "true")
            .openapi({ param: { name: "unread_only", in: "query" }, type: "boolean" }),
        }),
      },
      responses: {
        200: json(
          pageOf(NotificationSchema).extend({ unread_count: z.number().int() }),
          "A page",
        ),
        ...problems(401, 422),
      },
    }),
    async (c) => {
      const { limit, cursor, unread_only } = c.req.valid("query");
      const userId = c.get("principal").userId;
      const after = decodeCursor(cursor);
      const rows = await sql<Notification[]>`
        select id, alert_id, delivery_id, title, message, read_at, created_at from notifications
        where user_id = ${userId}
          ${unread_only ? sql`and read_at is null` : sql``}
          ${after ? sql`and (created_at, id) < (${after.at}, ${after.id})` : sql``}
        order by created_at desc, id desc limit ${limit + 1}`;
      const [{ n }] = await sql<{ n: number }[]>`
        select count(*)::int as n from notifications where user_id = ${userId} and read_at is null`;
      return c.json({ ...page(rows, limit, (r) => [r.created_at, r.id]), unread_count: n }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/notifications/{id}/read",
      tags: ["notifications"],
      summary: "Mark one notification read",
      security: bearerAuth,
      request: { params: UuidParam },
      responses: { 200: json(NotificationSchema, "The notification"), ...problems(401, 404, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const [row] = await sql<Notification[]>`
        update notifications set read_at = coalesce(read_at, ${clock.now()})
        where id = ${id} and user_id = ${c.get("principal").userId}
        returning id, alert_id, delivery_id, title, message, read_at, created_at`;
      if (!row) throw Problem.notFound(`You have no notification ${id}.`);
      return c.json(row, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/notifications/read-all",
      tags: ["notifications"],
      summary: "Mark all your notifications read",
      security: bearerAuth,
      responses: {
        200: json(z.object({ marked: z.number().int() }), "How many were unread"),
        ...problems(401),
      },
    }),
    async (c) => {
      const rows = await sql`
        update notifications set read_at = ${clock.now()}
        where user_id = ${c.get("principal").userId} and read_at is null returning 1`;
      return c.json({ marked: rows.length }, 200);
    },
  );

  return app;
}
