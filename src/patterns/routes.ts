/** `/v1/patterns` (definitions and runs) and `/v1/runs` (run history). */
import { createRoute, z } from "@hono/zod-openapi";
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
import { ownerScope, requireAdmin } from "../users/auth.ts";
import { PatternDefinitionSchema, PatternIdSchema } from "./definition.ts";
import type { PatternService } from "./service.ts";
import { getRun, listRuns, type StoredPattern } from "./store.ts";

const IdParam = z.object({
  id: PatternIdSchema.openapi({ param: { name: "id", in: "path" }, example: "service-health" }),
});

const StoredPatternSchema = z.object({
  id: z.string(),
  version: z.number().int(),
  definition: PatternDefinitionSchema,
  created_at: Timestamp,
  updated_at: Timestamp,
}).openapi("StoredPattern");

const StepTraceSchema = z.object({
  step_index: z.number().int(),
  capability: z.string(),
  agent: z.string().nullable(),
  as: z.string(),
  duration_ms: z.number(),
  cache_hit: z.boolean(),
  error: z.string().optional(),
}).openapi("StepTrace");

const RunResultSchema = z.object({
  run_id: z.uuid(),
  pattern_id: z.string(),
  version: z.number().int(),
  status: z.enum(["success", "error"]),
  outputs: z.record(z.string(), z.unknown()).nullable(),
  trace: z.array(StepTraceSchema),
  error: z.string().nullable(),
  duration_ms: z.number(),
  trace_id: z.string().nullable(),
  started_at: Timestamp,
}).openapi("RunResult");

const RunRecordSchema = RunResultSchema.omit({ run_id: true }).extend({
  id: z.uuid(),
  user_id: z.uuid().nullable(),
  inputs: z.record(z.string(), z.unknown()),
}).openapi("Run");

const RunBody = z.object({
  inputs: z.record(z.string(), z.unknown()).default({}),
}).strict().openapi("RunPattern");

const RunsQuery = PageQuery.extend({
  pattern_id: PatternIdSchema.optional().openapi({ param: { name: "pattern_id", in: "query" } }),
  status: z.enum(["success", "error"]).optional().openapi({
    param: { name: "status", in: "query" },
  }),
});

function present(p: StoredPattern) {
  return {
    id: p.id,
    version: p.version,
    definition: p.definition,
    created_at: p.created_at,
    updated_at: p.updated_at,
  };
}

export function patternRoutes({ sql, patterns }: { sql: Sql; patterns: PatternService }) {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "post",
      path: "/patterns",
      tags: ["patterns"],
      summary: "Create a pattern (admin)",
      description:
        "The definition is validated against the capabilities that exist; a 422 lists every problem.",
      security: bearerAuth,
      middleware: [requireAdmin] as const,
      request: jsonBody(PatternDefinitionSchema),
      responses: {
        201: json(StoredPatternSchema, "Created (version 1)"),
        ...problems(400, 401, 403, 409, 422),
      },
    }),
    async (c) => c.json(present(await patterns.create(c.req.valid("json"))), 201),
  );

  app.openapi(
    createRoute({
      method: "put",
      path: "/patterns/{id}",
      tags: ["patterns"],
      summary: "Replace a pattern's definition with a new version (admin)",
      security: bearerAuth,
      middleware: [requireAdmin] as const,
      request: {
        params: IdParam,
        body: {
          required: true,
          content: {
            "application/json": { schema: PatternDefinitionSchema.partial({ id: true }) },
          },
        },
      },
      responses: {
        200: json(StoredPatternSchema, "The new version"),
        ...problems(400, 401, 403, 404, 422),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const body = c.req.valid("json");
      if (body.id !== undefined && body.id !== id) {
        throw Problem.invalid([{ path: "id", message: `must be ${id}, the id in the path` }]);
      }
      return c.json(present(await patterns.update({ ...body, id })), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/patterns",
      tags: ["patterns"],
      summary: "List patterns",
      security: bearerAuth,
      responses: {
        200: json(z.object({ items: z.array(StoredPatternSchema) }), "Patterns"),
        ...problems(401),
      },
    }),
    async (c) => c.json({ items: (await patterns.list()).map(present) }, 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/patterns/{id}",
      tags: ["patterns"],
      summary: "Read a pattern",
      security: bearerAuth,
      request: { params: IdParam },
      responses: { 200: json(StoredPatternSchema, "The pattern"), ...problems(401, 404, 422) },
    }),
    async (c) => c.json(present(await patterns.get(c.req.valid("param").id)), 200),
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/patterns/{id}",
      tags: ["patterns"],
      summary: "Delete a pattern (admin)",
      security: bearerAuth,
      middleware: [requireAdmin] as const,
      request: { params: IdParam },
      responses: { 204: { description: "Deleted" }, ...problems(401, 403, 404, 422) },
    }),
    async (c) => {
      await patterns.delete(c.req.valid("param").id);
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/patterns/{id}/run",
      tags: ["patterns"],
      summary: "Run a pattern",
      description:
        "Answers 200 with status `success` or `error` (the failing step is named); every run is recorded.",
      security: bearerAuth,
      request: { params: IdParam, ...jsonBody(RunBody) },
      responses: { 200: json(RunResultSchema, "The run"), ...problems(400, 401, 404, 422) },
    }),
    async (c) => {
      const result = await patterns.run(c.req.valid("param").id, c.req.valid("json").inputs, {
        userId: c.get("principal").userId,
        requestId: c.get("requestId"),
      });
      const { user_id: _u, inputs: _i, ...body } = result;
      return c.json(body, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/runs/{id}",
      tags: ["patterns"],
      summary: "Read a run (your own; admins any)",
      security: bearerAuth,
      request: { params: UuidParam },
      responses: { 200: json(RunRecordSchema, "The run"), ...problems(401, 404, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const p = c.get("principal");
      const run = await getRun(sql, id, ownerScope(p));
      if (!run) throw Problem.notFound(`There is no run ${id}.`);
      return c.json(run, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/runs",
      tags: ["patterns"],
      summary: "Runs, newest first (your own; admins all)",
      security: bearerAuth,
      request: { query: RunsQuery },
      responses: {
        200: json(
          pageOf(RunRecordSchema),
          "A page of runs",
        ),
        ...problems(401, 422),
      },
    }),
    async (c) => {
      const { limit, cursor, pattern_id, status } = c.req.valid("query");
      const p = c.get("principal");
      const rows = await listRuns(
        sql,
        { userId: ownerScope(p), patternId: pattern_id, status },
        limit + 1,
        decodeCursor(cursor),
      );
      return c.json(page(rows, limit, (r) => [r.started_at, r.id]), 200);
    },
  );

  return app;
}
