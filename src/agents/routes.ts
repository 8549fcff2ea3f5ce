/** `/v1/agents`: every agent with its capabilities and breaker state; remote agent management. */
import { createRoute, z } from "@hono/zod-openapi";
import type { Clock } from "../clock.ts";
import type { Sql } from "../db/database.ts";
import { bearerAuth, createRouter, json, jsonBody, problems, Timestamp } from "../http/openapi.ts";
import { Problem } from "../http/problem.ts";
import { requireAdmin } from "../users/auth.ts";
import { assertOutboundAllowed, type OutboundPolicy } from "./outbound.ts";
import type { RemoteAgents, RemoteAgentSpec } from "./remote.ts";
import type { AgentRuntime } from "./runtime.ts";
import type { Secrets } from "../security/secrets.ts";
import { deleteRemoteAgent, saveRemoteAgent } from "./store.ts";
import { CallerError } from "./types.ts";

const NAME = /^[a-z][a-z0-9_-]{0,62}$/;
const CAPABILITY = /^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)+$/;

const AgentSchema = z.object({
  name: z.string(),
  kind: z.enum(["builtin", "remote"]),
  url: z.string().nullable().openapi({ description: "Remote agents' URL, shown to admins only" }),
  timeout_ms: z.number().int(),
  capabilities: z.array(z.object({ name: z.string(), description: z.string() })),
  circuit_breaker: z.object({
    state: z.enum(["closed", "open", "half_open"]),
    consecutive_failures: z.number().int(),
    retry_at: Timestamp.nullable(),
  }),
}).openapi("Agent");

const RegisterAgentBody = z.object({
  name: z.string().regex(
    NAME,
    "must be 1-63 lowercase letters, digits, '_' or '-', starting with a letter",
  ),
  url: z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }),
  capabilities: z.array(
    z.union([
      z.string().regex(CAPABILITY, "must look like agent.capability"),
      z.object({
        name: z.string().regex(CAPABILITY, "must look like agent.capability"),
        description: z.string().max(500).default(""),
      }).strict(),
    ]),
  ).min(1, "an agent needs at least one capability").max(100),
  timeout_ms: z.number().int().min(1).max(300_000).default(10_000),
  authorization: z.string().min(1).max(4096)
    .regex(/^[\t\x20-\x7e]+$/, "must be printable ASCII on one line (a header value)")
    .optional().openapi({
      description: "Sent as the `Authorization` header of every call (for example " +
        "`Bearer …`); write-only: never shown again. Credentials in the URL are refused.",
    }),
}).strict().openapi("RegisterAgent");

export interface AgentsDeps {
  sql: Sql;
  clock: Clock;
  runtime: AgentRuntime;
  remote: RemoteAgents;
  policy: OutboundPolicy;
  secrets: Secrets;
}

export function agentsRoutes({ sql, clock, runtime, remote, policy, secrets }: AgentsDeps) {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "get",
      path: "/agents",
      tags: ["agents"],
      summary: "Every agent, its capabilities and its circuit breaker",
      security: bearerAuth,
      responses: {
        200: json(z.object({ items: z.array(AgentSchema) }), "Agents"),
        ...problems(401),
      },
    }),
    async (c) => {
      await remote.refresh();
      // Where a remote agent lives is for admins: its URL may carry a token.
      const admin = c.get("principal").role === "admin";
      const items = runtime.list().map((a) => (admin || a.url === null ? a : { ...a, url: null }));
      return c.json({ items }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/agents",
      tags: ["agents"],
      summary: "Register (or re-register) a remote agent (admin)",
      description: "A call to capability `c` is `POST {url}/c` with `{args, context}` and a " +
        "`traceparent` header; the agent answers 2xx with the JSON result.",
      security: bearerAuth,
      middleware: [requireAdmin] as const,
      request: jsonBody(RegisterAgentBody),
      responses: {
        200: json(AgentSchema, "Replaced"),
        201: json(AgentSchema, "Registered"),
        ...problems(400, 401, 403, 409, 422),
      },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const spec: RemoteAgentSpec = {
        name: body.name,
        url: body.url,
        timeout_ms: body.timeout_ms,
        authorization: body.authorization ?? null,
        capabilities: body.capabilities.map((cap) =>
          typeof cap === "string" ? { name: cap, description: "" } : cap
        ),
      };
      checkCapabilities(spec, runtime);
      try {
        await assertOutboundAllowed(new URL(spec.url), policy);
      } catch (error) {
        if (error instanceof CallerError) {
          throw Problem.invalid([{ path: "url", message: error.message }]);
        }
        throw error;
      }
      const created = await saveRemoteAgent(sql, spec, clock.now(), secrets);
      remote.apply(spec);
      const info = runtime.list().find((a) => a.name === spec.name)!;
      return created ? c.json(info, 201) : c.json(info, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/agents/{name}",
      tags: ["agents"],
      summary: "Remove a remote agent (admin)",
      security: bearerAuth,
      middleware: [requireAdmin] as const,
      request: {
        params: z.object({ name: z.string().openapi({ param: { name: "name", in: "path" } }) }),
      },
      responses: { 204: { description: "Removed" }, ...problems(401, 403, 404, 409) },
    }),
    async (c) => {
      const { name } = c.req.valid("param");
      const agent = runtime.list().find((a) => a.name === name);
      if (agent?.kind === "builtin") {
        throw Problem.conflict(`Agent ${name} is built in and cannot be removed.`);
      }
      if (!await deleteRemoteAgent(sql, name)) {
        throw Problem.notFound(`There is no remote agent ${name}.`);
      }
      remote.remove(name);
      return c.body(null, 204);
    },
  );

  return app;
}

/** Capability names must be unique within the agent and not belong to another agent. */
function checkCapabilities(spec: RemoteAgentSpec, runtime: AgentRuntime): void {
  const existing = runtime.list().find((a) => a.name === spec.name);
  if (existing?.kind === "builtin") throw Problem.conflict(`Agent ${spec.name} is built in.`);
  const seen = new Set<string>();
  const errors = [];
  for (const [i, cap] of spec.capabilities.entries()) {
    if (seen.has(cap.name)) {
      errors.push({ path: `capabilities.${i}`, message: `${cap.name} is listed twice` });
    }
    seen.add(cap.name);
    const owner = runtime.resolve(cap.name)?.agent.name;
    if (owner && owner !== spec.name) {
      throw Problem.conflict(`Capability ${cap.name} is already provided by agent ${owner}.`);
    }
  }
  if (errors.length) throw Problem.invalid(errors);
}
