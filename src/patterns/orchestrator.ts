/**
 * Runs a pattern: executes its steps in order through the agent runtime, storing each result
 * under its `as`, then renders the outputs. A failing step stops the run and is named in the
 * error. Every run yields a trace (per step: capability, agent, duration, cache hit, error), a
 * `pattern.run` span with one `pattern.step` span per step, and metrics.
 */
import type { Tracer } from "@opentelemetry/api";
import { type AgentRuntime, CapabilityError, type RunCache } from "../agents/runtime.ts";
import type { Clock } from "../clock.ts";
import type { Metrics } from "../observability/metrics.ts";
import { recordError, sampledTraceId, startActiveSpan } from "../observability/tracing.ts";
import type { PatternDefinition } from "./definition.ts";
import { jsonDepth, storableText, unstorablePaths, utf8Length } from "../util/json_limits.ts";
import { render, RenderBudget } from "./template.ts";

export interface StepTrace {
  step_index: number;
  capability: string;
  agent: string | null;
  as: string;
  duration_ms: number;
  cache_hit: boolean;
  error?: string;
}

export interface RunResult {
  run_id: string;
  pattern_id: string;
  version: number;
  user_id: string | null;
  status: "success" | "error";
  inputs: Record<string, unknown>;
  outputs: Record<string, unknown> | null;
  trace: StepTrace[];
  error: string | null;
  /** null when the run's trace is not sampled (it will never exist in Jaeger). */
  trace_id: string | null;
  started_at: Date;
  duration_ms: number;
}

export interface RunRequest {
  definition: PatternDefinition & { version: number };
  /** Already validated against the declared inputs (defaults applied). */
  inputs: Record<string, unknown>;
  userId: string | null;
  requestId?: string;
}

/** Bounds of one run (PATTERN_MAX_RENDER_BYTES, PATTERN_RUN_TIMEOUT_MS, PATTERN_MAX_RESULT_BYTES). */
export interface RunLimits {
  renderBytes: number;
  timeoutMs: number;
  resultBytes: number;
}

export const DEFAULT_RUN_LIMITS: RunLimits = {
  renderBytes: 1024 * 1024,
  timeoutMs: 120_000,
  resultBytes: 1024 * 1024,
};

/** Stored outputs deeper than this would overflow recursive readers later (GET /v1/runs). */
export const MAX_RESULT_DEPTH = 100;

export interface OrchestratorDeps {
  runtime: AgentRuntime;
  metrics: Metrics;
  tracer: Tracer;
  clock: Clock;
  limits?: Partial<RunLimits>;
}

const ms = (from: number) => Math.round((performance.now() - from) * 1000) / 1000;

function message(error: unknown): string {
  // Errors come from agents too: bounded, and storable in a text column.
  return storableText(error instanceof Error ? error.message : String(error));
}

/** Why outputs cannot be stored as they are, if they cannot. */
function resultProblem(
  outputs: Record<string, unknown>,
  trace: StepTrace[],
  maxBytes: number,
): string | null {
  if (jsonDepth(outputs, MAX_RESULT_DEPTH) > MAX_RESULT_DEPTH) {
    return `outputs are nested deeper than ${MAX_RESULT_DEPTH} levels`;
  }
  const [unstorable] = unstorablePaths(outputs);
  if (unstorable) return `outputs: ${unstorable.path} ${unstorable.message}`;
  const bytes = utf8Length(JSON.stringify({ outputs, trace }));
  if (bytes > maxBytes) {
    return `the run's result is ${bytes} bytes, more than ${maxBytes} (PATTERN_MAX_RESULT_BYTES)`;
  }
  return null;
}

export class Orchestrator {
  readonly limits: RunLimits;

  constructor(private readonly deps: OrchestratorDeps) {
    this.limits = { ...DEFAULT_RUN_LIMITS, ...deps.limits };
  }

  /**
   * Starts a pattern's series at zero (both outcomes, every step), so that its first run after a
   * restart is an increase `rate()` can see. Idempotent.
   */
  initMetrics(def: Pick<RunRequest["definition"], "id" | "steps">): void {
    const { metrics } = this.deps;
    for (const status of ["success", "error"]) {
      metrics.patternExecutions.inc({ pattern_id: def.id, status }, 0);
      metrics.patternDuration.zero({ pattern_id: def.id, status });
    }
    def.steps.forEach((step, index) =>
      metrics.stepDuration.zero({
        pattern_id: def.id,
        step_index: String(index),
        capability: step.capability,
      })
    );
  }

  run(request: RunRequest): Promise<RunResult> {
    const { definition: def } = request;
    const { tracer, metrics, clock } = this.deps;
    const attributes = { pattern_id: def.id, version: def.version };
    return startActiveSpan(tracer, "pattern.run", { attributes }, async (span) => {
      const runId = crypto.randomUUID();
      const startedAt = clock.now();
      const started = performance.now();
      const state: Record<string, unknown> = { inputs: request.inputs };
      const cache: RunCache = new Map();
      const trace: StepTrace[] = [];
      let error: string | null = null;
      const { timeoutMs, renderBytes, resultBytes } = this.limits;
      const deadline = started + timeoutMs;
      const budget = new RenderBudget(renderBytes);
      const deadlineExceeded = (at: string) =>
        `deadline exceeded: the run took longer than ${timeoutMs} ms (PATTERN_RUN_TIMEOUT_MS) ${at}`;

      for (const [index, step] of def.steps.entries()) {
        const at = `at step ${index} (${step.capability} as "${step.as}")`;
        const remaining = deadline - performance.now();
        if (remaining <= 0) {
          error = deadlineExceeded(at);
          break;
        }
        const { entry, cutByDeadline } = await this.#step(
          def,
          index,
          state,
          cache,
          runId,
          request,
          { budget, remainingMs: remaining },
        );
        trace.push(entry);
        if (entry.error) {
          error = cutByDeadline
            ? deadlineExceeded(at)
            : `step ${index} (${step.capability} as "${step.as}") failed: ${entry.error}`;
          break;
        }
      }

      let outputs: Record<string, unknown> | null = null;
      if (!error) {
        try {
          outputs = render(def.outputs, state, budget) as Record<string, unknown>;
          error = resultProblem(outputs, trace, resultBytes);
          if (error) outputs = null;
        } catch (e) {
          error = `outputs: ${message(e)}`;
        }
      }

      const status: RunResult["status"] = error ? "error" : "success";
      const duration = ms(started);
      span.setAttribute("status", status);
      if (error) recordError(span, new Error(error));
      span.end();
      metrics.patternExecutions.inc({ pattern_id: def.id, status });
      metrics.patternDuration.observe({ pattern_id: def.id, status }, duration / 1000);

      return {
        run_id: runId,
        pattern_id: def.id,
        version: def.version,
        user_id: request.userId,
        status,
        inputs: request.inputs,
        outputs,
        trace,
        error,
        trace_id: sampledTraceId(span),
        started_at: startedAt,
        duration_ms: duration,
      };
    });
  }

  #step(
    def: RunRequest["definition"],
    index: number,
    state: Record<string, unknown>,
    cache: RunCache,
    runId: string,
    request: RunRequest,
    bounds: { budget: RenderBudget; remainingMs: number },
  ): Promise<{ entry: StepTrace; cutByDeadline: boolean }> {
    const step = def.steps[index];
    const agentTimeout = this.deps.runtime.resolve(step.capability)?.agent.timeoutMs ?? Infinity;
    const stepTimeout = Math.min(step.timeout_ms ?? Infinity, agentTimeout);
    // The run's deadline comes first: the step gets what is left of it, through its own timeout
    // (which aborts the call's signal), so nothing keeps running past the deadline.
    const clamped = bounds.remainingMs < stepTimeout;
    let cutByDeadline = false;
    const { runtime, tracer, metrics } = this.deps;
    const attributes = { pattern_id: def.id, step_index: index, capability: step.capability };
    return startActiveSpan(tracer, "pattern.step", { attributes }, async (span) => {
      const started = performance.now();
      const entry: StepTrace = {
        step_index: index,
        capability: step.capability,
        agent: runtime.resolve(step.capability)?.agent.name ?? null,
        as: step.as,
        duration_ms: 0,
        cache_hit: false,
      };
      try {
        const args = render(step.args, state, bounds.budget);
        const invocation = await runtime.invoke(step.capability, args, {
          cache,
          timeoutMs: clamped ? Math.max(1, Math.ceil(bounds.remainingMs)) : step.timeout_ms,
          runId,
          patternId: def.id,
          requestId: request.requestId,
        });
        state[step.as] = invocation.value;
        entry.cache_hit = invocation.cacheHit;
      } catch (error) {
        entry.error = message(error);
        cutByDeadline = clamped && error instanceof CapabilityError && error.kind === "timeout";
        recordError(span, error);
      } finally {
        entry.duration_ms = ms(started);
        span.setAttribute("cache_hit", entry.cache_hit);
        span.end();
        metrics.stepDuration.observe(
          { pattern_id: def.id, step_index: String(index), capability: step.capability },
          entry.duration_ms / 1000,
        );
      }
      return { entry, cutByDeadline };
    });
  }
}
