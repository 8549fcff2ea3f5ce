/**
 * The agent runtime: routes a capability to its agent, validates the arguments, serves repeated
 * calls of one run from its cache, applies a timeout, and wraps every call in the agent's
 * circuit breaker — with a metric and a span for each invocation.
 */
import type { Tracer } from "@opentelemetry/api";
import type { Clock } from "../clock.ts";
import { fieldErrors } from "../http/problem.ts";
import {
  BREAKER_STATES,
  type BreakerState,
  type Metrics,
  setBreakerState,
} from "../observability/metrics.ts";
import { recordError, startActiveSpan } from "../observability/tracing.ts";
import { canonicalJson } from "../util/json.ts";
import { CircuitBreaker } from "./circuit_breaker.ts";
import { type Agent, CallerError, type Capability } from "./types.ts";

const PENDING = Symbol("pending");
const NOT_YET = Promise.resolve(PENDING);

export type CapabilityErrorKind =
  | "unknown"
  | "invalid_args"
  | "circuit_open"
  | "timeout"
  | "failed";

export class CapabilityError extends Error {
  override name = "CapabilityError";
  constructor(readonly kind: CapabilityErrorKind, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** Results of one pattern run, keyed by capability and canonical arguments. */
export type RunCache = Map<string, unknown>;

export interface InvokeOptions {
  cache?: RunCache;
  /** Shorter than the agent's own timeout, when a step asks for it. */
  timeoutMs?: number;
  runId?: string;
  patternId?: string;
  requestId?: string;
}

export interface Invocation {
  value: unknown;
  agent: string;
  cacheHit: boolean;
}

export interface AgentInfo {
  name: string;
  kind: "builtin" | "remote";
  url: string | null;
  timeout_ms: number;
  capabilities: { name: string; description: string }[];
  circuit_breaker: { state: BreakerState; consecutive_failures: number; retry_at: Date | null };
}

interface Registered {
  agent: Agent;
  breaker: CircuitBreaker;
}

export interface RuntimeDeps {
  clock: Clock;
  metrics: Metrics;
  tracer: Tracer;
  failureThreshold: number;
  openMs: number;
}

export class AgentRuntime {
  #agents = new Map<string, Registered>();
  #routes = new Map<string, { registered: Registered; capability: Capability }>();

  constructor(private readonly deps: RuntimeDeps) {}

  /** Adds (or replaces) an agent; throws if one of its capabilities belongs to another agent. */
  register(agent: Agent): void {
    for (const cap of agent.capabilities) {
      const owner = this.#routes.get(cap.name)?.registered.agent.name;
      if (owner && owner !== agent.name) {
        throw new Error(`capability ${cap.name} is already provided by agent ${owner}`);
      }
    }
    const previous = this.#agents.get(agent.name);
    if (previous) this.#unroute(previous);
    const breaker = previous?.breaker ?? this.#breaker(agent.name);
    const registered = { agent, breaker };
    this.#agents.set(agent.name, registered);
    for (const cap of agent.capabilities) {
      this.#routes.set(cap.name, { registered, capability: cap });
      // Every series exists from the start, so the first call after a restart shows in rate().
      const labels = { agent_name: agent.name, capability: cap.name };
      for (const status of ["success", "error", "rejected"]) {
        this.deps.metrics.agentInvocations.inc({ ...labels, status }, 0);
      }
      this.deps.metrics.agentLatency.zero(labels);
    }
  }

  unregister(name: string): boolean {
    const registered = this.#agents.get(name);
    if (!registered) return false;
    this.#unroute(registered);
    this.#agents.delete(name);
    for (const state of BREAKER_STATES) {
      this.deps.metrics.breakerState.remove({ agent_name: name, state });
    }
    return true;
  }

  /** The capability and the agent that provides it, if any. */
  resolve(name: string): { agent: Agent; capability: Capability } | undefined {
    const route = this.#routes.get(name);
    return route && { agent: route.registered.agent, capability: route.capability };
  }

  list(): AgentInfo[] {
    return [...this.#agents.values()]
      .map(({ agent, breaker }) => ({
        name: agent.name,
        kind: agent.kind,
        url: agent.url ?? null,
        timeout_ms: agent.timeoutMs,
        capabilities: agent.capabilities.map((c) => ({ name: c.name, description: c.description })),
        circuit_breaker: {
          state: breaker.state,
          consecutive_failures: breaker.consecutiveFailures,
          retry_at: breaker.retryAt ?? null,
        },
      }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async invoke(name: string, rawArgs: unknown, options: InvokeOptions = {}): Promise<Invocation> {
    const route = this.#routes.get(name);
    if (!route) throw new CapabilityError("unknown", `unknown capability "${name}"`);
    const { registered: { agent, breaker }, capability } = route;

    const parsed = capability.args.safeParse(rawArgs);
    if (!parsed.success) {
      const detail = fieldErrors(parsed.error).map((e) => `${e.path}: ${e.message}`).join("; ");
      throw new CapabilityError("invalid_args", `invalid arguments for ${name}: ${detail}`);
    }
    const args = parsed.data;

    const key = options.cache && `${name}\u0000${canonicalJson(args)}`;
    if (key && options.cache!.has(key)) {
      return { value: options.cache!.get(key), agent: agent.name, cacheHit: true };
    }

    const labels = { agent_name: agent.name, capability: name };
    const admission = breaker.admit();
    if (!admission.admitted) {
      this.deps.metrics.agentInvocations.inc({ ...labels, status: "rejected" });
      const error = new CapabilityError(
        "circuit_open",
        `circuit breaker of agent "${agent.name}" is open until ${admission.retryAt.toISOString()}`,
      );
      // The call that was not made is in the trace too: an agent.call that failed at once.
      const span = this.deps.tracer.startSpan("agent.call", {
        attributes: { agent_name: agent.name, capability: name, "vigil.breaker": "open" },
      });
      recordError(span, error);
      span.end();
      throw error;
    }

    const { permit } = admission;
    try {
      const timeoutMs = Math.min(options.timeoutMs ?? agent.timeoutMs, agent.timeoutMs);
      return await startActiveSpan(
        this.deps.tracer,
        "agent.call",
        { attributes: { agent_name: agent.name, capability: name } },
        async (span) => {
          const started = performance.now();
          try {
            const value = await this.#callWithTimeout(capability, args, timeoutMs, options);
            permit.success();
            this.deps.metrics.agentInvocations.inc({ ...labels, status: "success" });
            if (key) options.cache!.set(key, value);
            return { value, agent: agent.name, cacheHit: false };
          } catch (error) {
            // A caller's mistake says nothing about the agent's health; anything else thrown
            // (a timeout, a non-Error) is the agent's failure.
            if (error instanceof CallerError) permit.release();
            else permit.failure();
            this.deps.metrics.agentInvocations.inc({ ...labels, status: "error" });
            recordError(span, error);
            if (error instanceof CapabilityError) throw error;
            throw new CapabilityError("failed", errorText(error), { cause: error });
          } finally {
            this.deps.metrics.agentLatency.observe(labels, (performance.now() - started) / 1000);
            span.end();
          }
        },
      );
    } finally {
      // Whatever was thrown on the way, the permit is settled (a no-op if it already was): an
      // unsettled half-open trial would make the breaker reject every later call.
      permit.release();
    }
  }

  async #callWithTimeout(
    capability: Capability,
    args: unknown,
    timeoutMs: number,
    options: InvokeOptions,
  ): Promise<unknown> {
    const controller = new AbortController();
    const call = capability.handler(args, {
      signal: controller.signal,
      runId: options.runId,
      patternId: options.patternId,
      requestId: options.requestId,
    });
    // An in-process handler that answered at once (the data agent) needs no timer: a race with
    // an already settled promise is won by `call` if `call` has settled too.
    const first = await Promise.race([call, NOT_YET]);
    if (first !== PENDING) return first;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new CapabilityError(
          "timeout",
          `${capability.name} timed out after ${timeoutMs} ms`,
        );
        controller.abort(error);
        reject(error);
      }, timeoutMs);
    });
    try {
      return await Promise.race([call, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  #breaker(agentName: string): CircuitBreaker {
    setBreakerState(this.deps.metrics, agentName, "closed");
    const breaker: CircuitBreaker = new CircuitBreaker({
      failureThreshold: this.deps.failureThreshold,
      openMs: this.deps.openMs,
      clock: this.deps.clock,
      onStateChange: (state) => {
        // A call still out when its agent was removed must not bring the agent's series back.
        if (this.#agents.get(agentName)?.breaker !== breaker) return;
        setBreakerState(this.deps.metrics, agentName, state);
      },
    });
    return breaker;
  }

  #unroute(registered: Registered): void {
    for (const cap of registered.agent.capabilities) {
      if (this.#routes.get(cap.name)?.registered === registered) this.#routes.delete(cap.name);
    }
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
