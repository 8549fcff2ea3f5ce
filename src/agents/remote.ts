/**
 * Remote agents: registered by URL, each capability call a `POST {url}/{capability}` with
 * `{args, context}` and the W3C `traceparent` of the calling span. A non-2xx answer or a body
 * that is not JSON is a failure (counted by the agent's circuit breaker).
 *
 * An agent's Authorization header is stored sealed (README: secrets at rest) and opened only
 * when a call is made; one that does not open fails the call (a CallerError: the configuration's
 * fault, not the agent's, so the circuit breaker ignores it) and the call is not made.
 *
 * Registrations live in the `agents` table; every replica refreshes its runtime from it at most
 * every REFRESH_MS, so a registration made through one replica reaches the others quickly.
 */
import { z } from "zod";
import type { Clock } from "../clock.ts";
import type { Sql } from "../db/database.ts";
import type { Logger } from "../observability/logger.ts";
import type { Secrets } from "../security/secrets.ts";
import { outboundFetch, type OutboundPolicy, readLimited } from "./outbound.ts";
import type { AgentRuntime } from "./runtime.ts";
import { AGENT_AUTHORIZATION } from "./store.ts";
import { type Agent, type CallContext, CallerError } from "./types.ts";

export interface RemoteAgentSpec {
  name: string;
  url: string;
  capabilities: { name: string; description: string }[];
  timeout_ms: number;
  /**
   * Sent as `Authorization` on every call; never shown by the API. Sealed when read from the
   * table; the plaintext when a registration is applied at once.
   */
  authorization: string | null;
}

const AnyArgs = z.record(z.string(), z.unknown());

export function remoteAgent(
  spec: RemoteAgentSpec,
  policy: OutboundPolicy,
  secrets: Secrets,
): Agent {
  const base = spec.url.endsWith("/") ? spec.url : `${spec.url}/`;
  return {
    name: spec.name,
    kind: "remote",
    url: spec.url,
    timeoutMs: spec.timeout_ms,
    capabilities: spec.capabilities.map((c) => ({
      name: c.name,
      description: c.description,
      args: AnyArgs,
      handler: (args, ctx) =>
        callRemote(
          spec.name,
          new URL(encodeURIComponent(c.name), base),
          args,
          ctx,
          policy,
          spec.authorization,
          secrets,
        ),
    })),
  };
}

/** Why a request got no answer, in words ("connection refused"), from fetch's error and cause. */
function noAnswer(error: unknown): string {
  const cause = (error as { cause?: unknown })?.cause;
  const text = `${(error as Error)?.message ?? error} ${
    cause instanceof Error ? cause.message : ""
  }`;
  if (/refused/i.test(text)) return "connection refused";
  if (/dns|resolve|lookup|name or service/i.test(text)) return "its host name does not resolve";
  if (/reset|closed|broken pipe/i.test(text)) return "the connection was closed";
  if (/certificate|tls|ssl/i.test(text)) {
    return `TLS failed (${cause instanceof Error ? cause.message : text.trim()})`;
  }
  return cause instanceof Error ? cause.message : String((error as Error)?.message ?? error);
}

async function callRemote(
  name: string,
  url: URL,
  args: unknown,
  ctx: CallContext,
  policy: OutboundPolicy,
  authorization: string | null,
  secrets: Secrets,
): Promise<unknown> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (authorization) {
    try {
      headers.authorization = await secrets.open(authorization, AGENT_AUTHORIZATION);
    } catch (error) {
      throw new CallerError(
        `cannot decrypt the agent's Authorization header: ${(error as Error).message}`,
      );
    }
  }
  const call = outboundFetch(
    url,
    {
      method: "POST",
      headers,
      body: JSON.stringify({
        args,
        context: {
          run_id: ctx.runId ?? null,
          pattern_id: ctx.patternId ?? null,
          request_id: ctx.requestId ?? null,
        },
      }),
      signal: ctx.signal,
    },
    policy,
    { propagate: true },
  );
  let res: Response;
  try {
    res = await call;
  } catch (error) {
    // A refused policy check or a timeout says so itself; a request with no answer names the
    // agent, its URL and why (fetch alone says "fetch failed").
    if (error instanceof CallerError || ctx.signal.aborted) throw error;
    throw new Error(
      `agent "${name}" at ${url.origin}${url.pathname} did not answer: ${noAnswer(error)}`,
      {
        cause: error,
      },
    );
  }
  const text = await readLimited(res);
  if (!res.ok) throw new Error(`agent answered HTTP ${res.status}: ${text.slice(0, 200)}`);
  try {
    return JSON.parse(text);
  } catch {
    throw new Error("agent answered with a body that is not JSON");
  }
}

export const REFRESH_MS = 15_000;

/** Keeps the runtime's remote agents in step with the `agents` table. */
export class RemoteAgents {
  #refreshedAt = -Infinity;
  #loading: Promise<void> | undefined;
  #specs = new Map<string, string>(); // name → canonical spec, to skip unchanged rows

  constructor(
    private readonly deps: {
      sql: Sql;
      runtime: AgentRuntime;
      clock: Clock;
      policy: OutboundPolicy;
      logger: Logger;
      secrets: Secrets;
    },
  ) {}

  /**
   * Reloads when the last load is older than REFRESH_MS (or always, with `force`). Concurrent
   * callers share one load, and none returns before it is applied.
   */
  refresh(force = false): Promise<void> {
    const now = this.deps.clock.now().getTime();
    if (this.#loading) return this.#loading;
    if (!force && now - this.#refreshedAt < REFRESH_MS) return Promise.resolve();
    this.#loading = this.#load()
      .then(() => void (this.#refreshedAt = now))
      .finally(() => (this.#loading = undefined));
    return this.#loading;
  }

  async #load(): Promise<void> {
    const rows = await this.deps.sql<RemoteAgentSpec[]>`
      select name, url, capabilities, timeout_ms, authorization_header as authorization
      from agents order by name`;
    const seen = new Set<string>();
    for (const row of rows) {
      seen.add(row.name);
      this.#apply(row);
    }
    for (const name of [...this.#specs.keys()]) {
      if (!seen.has(name)) this.remove(name);
    }
  }

  /** Applies a registration now (the caller has stored it). */
  apply(spec: RemoteAgentSpec): void {
    this.#apply(spec);
  }

  remove(name: string): void {
    this.#specs.delete(name);
    this.deps.runtime.unregister(name);
  }

  #apply(spec: RemoteAgentSpec): void {
    const canonical = JSON.stringify(spec);
    if (this.#specs.get(spec.name) === canonical) return;
    try {
      this.deps.runtime.register(remoteAgent(spec, this.deps.policy, this.deps.secrets));
      this.#specs.set(spec.name, canonical);
    } catch (error) {
      this.deps.logger.error("cannot load remote agent {name}: {message}", {
        name: spec.name,
        message: (error as Error).message,
      });
    }
  }
}
