/** `/v1/me`, `/v1/users` (admin) and `/v1/api-keys`. */
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
import { type Authenticator, ownerScope, requireAdmin } from "./auth.ts";
import {
  createApiKey,
  createApiKeyFor,
  createUser,
  listApiKeys,
  listUsers,
  revokeApiKey,
} from "./store.ts";

const RoleSchema = z.enum(["admin", "user"]);

const UserSchema = z.object({
  id: z.uuid(),
  email: z.email(),
  name: z.string(),
  created_at: Timestamp,
}).openapi("User");

const ApiKeySchema = z.object({
  id: z.uuid(),
  user_id: z.uuid(),
  key_prefix: z.string().openapi({
    description: "First characters of the key, for telling keys apart",
  }),
  role: RoleSchema,
  label: z.string().nullable(),
  created_at: Timestamp,
  last_used_at: Timestamp.nullable(),
  revoked_at: Timestamp.nullable(),
}).openapi("ApiKey");

const NewApiKeySchema = ApiKeySchema.extend({
  key: z.string().openapi({ description: "The secret key. Shown once; store it now." }),
}).openapi("NewApiKey");

const CreateUserBody = z.object({
  email: z.email({ error: "must be an email address" }).max(320),
  name: z.string().trim().min(1, "must not be empty").max(200),
  role: RoleSchema.default("user").openapi({ description: "Role of the user's first API key" }),
}).strict().openapi("CreateUser");

const CreateKeyBody = z.object({
  label: z.string().trim().min(1).max(200).optional(),
}).strict().openapi("CreateApiKey");

const CreateKeyForBody = CreateKeyBody.extend({
  role: RoleSchema.default("user").openapi({ description: "Role of the new key" }),
}).strict().openapi("CreateApiKeyFor");

export interface UsersDeps {
  sql: Sql;
  clock: Clock;
  auth: Authenticator;
}

export function usersRoutes({ sql, clock, auth }: UsersDeps) {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "get",
      path: "/me",
      tags: ["users"],
      summary: "The caller: user and API key",
      security: bearerAuth,
      responses: {
        200: json(
          z.object({
            user: UserSchema.omit({ created_at: true }),
            api_key: z.object({ id: z.uuid(), role: RoleSchema }),
          }),
          "The caller",
        ),
        ...problems(401),
      },
    }),
    (c) => {
      const p = c.get("principal");
      return c.json({
        user: { id: p.userId, email: p.email, name: p.name },
        api_key: { id: p.keyId, role: p.role },
      }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/users",
      tags: ["users"],
      summary: "Create a user and its first API key (admin)",
      security: bearerAuth,
      middleware: [requireAdmin] as const,
      request: jsonBody(CreateUserBody),
      responses: {
        201: json(
          z.object({ user: UserSchema, api_key: NewApiKeySchema }),
          "The user, with its first key (shown once)",
        ),
        ...problems(400, 401, 403, 409, 422),
      },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const created = await createUser(sql, { ...body, now: clock.now() });
      c.header("Cache-Control", "no-store"); // carries a new API key, shown once
      return c.json(created, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/users",
      tags: ["users"],
      summary: "List users, newest first (admin)",
      security: bearerAuth,
      middleware: [requireAdmin] as const,
      request: { query: PageQuery },
      responses: {
        200: json(
          pageOf(UserSchema),
          "A page of users",
        ),
        ...problems(401, 403, 422),
      },
    }),
    async (c) => {
      const { limit, cursor } = c.req.valid("query");
      const rows = await listUsers(sql, limit + 1, decodeCursor(cursor));
      return c.json(page(rows, limit, (u) => [u.created_at, u.id]), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/users/{id}/api-keys",
      tags: ["users"],
      summary:
        "Create an API key for a user (admin): one created without a key, or who lost theirs",
      security: bearerAuth,
      middleware: [requireAdmin] as const,
      request: {
        params: UuidParam,
        body: { required: false, content: { "application/json": { schema: CreateKeyForBody } } },
      },
      responses: {
        201: json(NewApiKeySchema, "The new key (shown once)"),
        ...problems(400, 401, 403, 404, 422),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { label, role } = c.req.valid("json");
      const key = await createApiKeyFor(sql, {
        userId: id,
        role: role ?? "user", // no body at all: the defaults
        label: label ?? null,
        now: clock.now(),
      });
      if (!key) throw Problem.notFound(`There is no user ${id}.`);
      c.header("Cache-Control", "no-store"); // carries a new API key, shown once
      return c.json(key, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api-keys",
      tags: ["users"],
      summary: "Create another API key for the caller (same role)",
      security: bearerAuth,
      request: {
        body: { required: false, content: { "application/json": { schema: CreateKeyBody } } },
      },
      responses: {
        201: json(NewApiKeySchema, "The new key (shown once)"),
        ...problems(400, 401, 422),
      },
    }),
    async (c) => {
      const { label } = c.req.valid("json");
      const p = c.get("principal");
      const key = await createApiKey(sql, {
        userId: p.userId,
        role: p.role,
        label: label ?? null,
        now: clock.now(),
      });
      c.header("Cache-Control", "no-store"); // carries a new API key, shown once
      return c.json(key, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api-keys",
      tags: ["users"],
      summary: "The caller's API keys (without secrets)",
      security: bearerAuth,
      responses: {
        200: json(z.object({ items: z.array(ApiKeySchema) }), "The caller's keys"),
        ...problems(401),
      },
    }),
    async (c) => c.json({ items: await listApiKeys(sql, c.get("principal").userId) }, 200),
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/api-keys/{id}",
      tags: ["users"],
      summary: "Revoke an API key (your own; admins any)",
      security: bearerAuth,
      request: { params: UuidParam },
      responses: { 204: { description: "Revoked" }, ...problems(401, 404, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const p = c.get("principal");
      if (!await revokeApiKey(sql, id, clock.now(), ownerScope(p))) {
        throw Problem.notFound(`You have no API key ${id}.`);
      }
      auth.evictKey(id);
      return c.body(null, 204);
    },
  );

  return app;
}
