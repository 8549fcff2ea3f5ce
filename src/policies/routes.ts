/** `/v1/me/notification-policy`: the caller's notification policy, by severity. */
import { createRoute } from "@hono/zod-openapi";
import type { Clock } from "../clock.ts";
import type { Sql } from "../db/database.ts";
import { bearerAuth, createRouter, json, jsonBody, problems, Timestamp } from "../http/openapi.ts";
import { PolicyInputSchema, PolicySchema } from "./schema.ts";
import { policyOf, putPolicy, type StoredPolicy } from "./store.ts";

const PolicyAnswer = PolicySchema.extend({
  updated_at: Timestamp.nullable().openapi({ description: "Null: never set (the defaults)" }),
}).openapi("NotificationPolicy");

const answer = ({ policy, updated_at }: StoredPolicy) => ({ ...policy, updated_at });

const DESCRIPTION = "For each severity: which of an alert's channels to use (for alerts that " +
  "take their channels from the policy), the repeat interval (for alerts that take it from the " +
  "policy) and a time window outside which notifications wait until it opens (all alerts of " +
  "that severity; never dropped).";

export function policiesRoutes({ sql, clock }: { sql: Sql; clock: Clock }) {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "get",
      path: "/me/notification-policy",
      tags: ["notification policy"],
      summary: "Your notification policy (the defaults until you set one)",
      description: DESCRIPTION,
      security: bearerAuth,
      responses: { 200: json(PolicyAnswer, "The policy"), ...problems(401) },
    }),
    async (c) => c.json(answer(await policyOf(sql, c.get("principal").userId)), 200),
  );

  app.openapi(
    createRoute({
      method: "put",
      path: "/me/notification-policy",
      tags: ["notification policy"],
      summary: "Replace your notification policy",
      description: `${DESCRIPTION} A severity left out takes its default; a 422 lists every ` +
        "problem.",
      security: bearerAuth,
      request: jsonBody(PolicyInputSchema),
      responses: { 200: json(PolicyAnswer, "The policy"), ...problems(400, 401, 422) },
    }),
    async (c) => {
      const policy = c.req.valid("json");
      const stored = await putPolicy(sql, c.get("principal").userId, policy, clock.now());
      return c.json(answer(stored), 200);
    },
  );

  return app;
}
