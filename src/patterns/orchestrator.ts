/**
 * Runs a pattern: executes its steps in order through the agent runtime, storing each result
 * under its `as`, then renders the outputs. A failing step stops the run and is named in the
 * error. Every run yields a trace (per step: capability, agent, duration, cache hit, error), a
 * `pattern.run` span with one `pattern.step` span per step, and metrics.
 */
import type { Tracer } from "@opentelemetry/api";
import { type AgentRuntime, recordError, type RunCache } from "../agents/runtime.ts";
import type { Clock } from "../clock.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { PatternDefinition } from "./definition.ts";
import { render } from "./template.ts";

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
  trace_id: string;
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

export interface OrchestratorDeps {
  runtime: AgentRuntime;
  metrics: Metrics;
  tracer: Tracer;
  clock: Clock;
}

const ms = (from: number) => Math.round((performance.now() - from) * 1000) / 1000;

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class Orchestrator {
  constructor(private readonly deps: OrchestratorDeps) {}

  run(request: RunRequest): Promise<RunResult> {
    const { definition: def } = request;
    const { tracer, metrics, clock } = this.deps;
    const attributes = { pattern_id: def.id, version: def.version };
    return tracer.startActiveSpan("pattern.run", { attributes }, async (span) => {
      const runId = crypto.randomUUID();
      const startedAt = clock.now();
      const started = performance.now();
      const state: Record<string, unknown> = { inputs: request.inputs };
      const cache: RunCache = new Map();
      const trace: StepTrace[] = [];
      let error: string | null = null;

      for (const [index, step] of def.steps.entries()) {
        const entry = await this.#step(def, index, state, cache, runId, request);
        trace.push(entry);
        if (entry.error) {
          error = `step ${index} (${step.capability} as "${step.as}") failed: ${entry.error}`;
          break;
        }
      }

      let outputs: Record<string, unknown> | null = null;
      if (!error) {
        try {
          outputs = render(def.outputs, state) as Record<string, unknown>;
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
        trace_id: span.spanContext().traceId,
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
  ): Promise<StepTrace> {
    const step = def.steps[index];
    const { runtime, tracer, metrics } = this.deps;
    const attributes = { pattern_id: def.id, step_index: index, capability: step.capability };
    return tracer.startActiveSpan("pattern.step", { attributes }, async (span) => {
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
        const args = render(step.args, state);
        const invocation = await runtime.invoke(step.capability, args, {
          cache,
          timeoutMs: step.timeout_ms,
          runId,
          patternId: def.id,
          requestId: request.requestId,
        });
        state[step.as] = invocation.value;
        entry.cache_hit = invocation.cacheHit;
      } catch (error) {
        entry.error = message(error);
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
      return entry;
    });
  }
}
