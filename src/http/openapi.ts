/**
 * Route declaration helpers over @hono/zod-openapi: every router validates with zod, turns a
 * failed validation into a 422 problem listing each issue, and documents itself in /openapi.json.
 */
import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "./env.ts";
import { fieldErrors, Problem } from "./problem.ts";

export function createRouter(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        const prefix = result.target === "json"
          ? []
          : [result.target === "param" ? "path" : result.target];
        throw Problem.invalid(fieldErrors(result.error, prefix));
      }
    },
  });
}

export const ProblemSchema = z.object({
  type: z.string().openapi({ example: "urn:vigil:problem:validation-failed" }),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  request_id: z.string().optional(),
  trace_id: z.string().optional().openapi({
    description: "The request's trace, when it was sampled (look it up in Jaeger)",
  }),
  errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  more_errors: z.number().int().optional().openapi({
    description: "How many problems were found beyond the 50 listed",
  }),
}).openapi("Problem");

const PROBLEM_DESCRIPTIONS: Record<number, string> = {
  400: "Malformed request (for example, invalid JSON)",
  401: "Missing, invalid or revoked API key",
  403: "The API key's role may not do this",
  404: "Not found",
  409: "Conflicts with existing state",
  413: "Body larger than 1 MiB",
  422: "Validation failed; `errors` lists every problem",
  503: "A dependency is unavailable",
};

/** Problem responses for the given statuses, for a route's `responses`. */
export function problems(...statuses: (keyof typeof PROBLEM_DESCRIPTIONS)[]) {
  return Object.fromEntries(
    statuses.map((status) => [status, {
      description: PROBLEM_DESCRIPTIONS[status],
      content: { "application/problem+json": { schema: ProblemSchema } },
    }]),
  );
}

export function json<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { "application/json": { schema } } };
}

export function jsonBody<T extends z.ZodType>(schema: T) {
  return { body: { required: true, content: { "application/json": { schema } } } };
}

export const bearerAuth = [{ bearerAuth: [] }];

export const UuidParam = z.object({
  id: z.uuid({ error: "must be a UUID" }).openapi({ param: { name: "id", in: "path" } }),
});

/** A timestamp: a Date in the handler, an ISO 8601 string on the wire. */
export const Timestamp = z.date().openapi({ type: "string", format: "date-time" });
