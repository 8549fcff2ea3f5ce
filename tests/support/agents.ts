/** A runtime with the built-in agents and a `test` agent whose calls are counted. */
import { trace } from "@opentelemetry/api";
import { z } from "zod";
import { dataAgent } from "../../src/agents/builtin/data.ts";
import { httpAgent } from "../../src/agents/builtin/http.ts";
import { AgentRuntime } from "../../src/agents/runtime.ts";
import { type Agent, capability } from "../../src/agents/types.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import { Orchestrator, type RunLimits } from "../../src/patterns/orchestrator.ts";
import { ManualClock } from "./clock.ts";

export function testAgent(calls: { name: string; args: unknown }[] = []): Agent {
  return {
    name: "test",
    kind: "builtin",
    timeoutMs: 5000,
    capabilities: [
      capability({
        name: "test.echo",
        description: "Returns its arguments.",
        args: z.object({ value: z.unknown(), n: z.number().optional() }),
        handler: (args) => {
          calls.push({ name: "test.echo", args });
          return Promise.resolve(args);
        },
      }),
      capability({
        name: "test.hang",
        description: "Never answers; ends only when aborted.",
        args: z.object({}),
        handler: (_args, ctx) =>
          new Promise((_, reject) =>
            ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason))
          ),
      }),
      capability({
        name: "test.fail",
        description: "Always fails.",
        args: z.object({ message: z.string().default("boom") }),
        handler: (args) => {
          calls.push({ name: "test.fail", args });
          return Promise.reject(new Error(args.message));
        },
      }),
    ],
  };
}

export function testRuntime(
  options: { failureThreshold?: number; openMs?: number; limits?: Partial<RunLimits> } = {},
) {
  const clock = new ManualClock();
  const metrics = createMetrics();
  const tracer = trace.getTracer("test");
  const calls: { name: string; args: unknown }[] = [];
  const runtime = new AgentRuntime({
    clock,
    metrics,
    tracer,
    failureThreshold: options.failureThreshold ?? 5,
    openMs: options.openMs ?? 60_000,
  });
  runtime.register(httpAgent({ allowPrivate: true }));
  runtime.register(dataAgent());
  runtime.register(testAgent(calls));
  const orchestrator = new Orchestrator({
    runtime,
    metrics,
    tracer,
    clock,
    limits: options.limits,
  });
  return { clock, metrics, tracer, runtime, orchestrator, calls };
}
