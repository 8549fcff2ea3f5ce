import { assert, assertEquals, assertRejects } from "../../tests/support/assert.ts";
import { testAgent, testRuntime } from "../../tests/support/agents.ts";
import { CapabilityError } from "./runtime.ts";
import { CallerError } from "./types.ts";
import { z } from "zod";

async function counts(metrics: ReturnType<typeof testRuntime>["metrics"]) {
  return (await metrics.agentInvocations.get()).values
    .map((v) => `${v.labels.agent_name}/${v.labels.capability}/${v.labels.status}=${v.value}`)
    .sort();
}

Deno.test("runtime: routes a capability to its agent and validates arguments", async () => {
  const { runtime, metrics } = testRuntime();
  const ok = await runtime.invoke("data.compare", { value: 3, op: ">", threshold: 2 });
  assertEquals(ok, {
    value: { result: true, value: 3, threshold: 2 },
    agent: "data",
    cacheHit: false,
  });

  const unknown = await assertRejects(() => runtime.invoke("nope.nothing", {}), CapabilityError);
  assertEquals(unknown.kind, "unknown");
  assertEquals(unknown.message, 'unknown capability "nope.nothing"');

  const invalid = await assertRejects(
    () => runtime.invoke("data.compare", { value: 3, op: "~", threshold: 2, x: 1 }),
    CapabilityError,
  );
  assertEquals(invalid.kind, "invalid_args");
  assert(invalid.message.startsWith("invalid arguments for data.compare: op: Invalid option"));
  assertEquals(await counts(metrics), ["data/data.compare/success=1"]);
});

Deno.test("runtime: a capability name belongs to one agent", () => {
  const { runtime } = testRuntime();
  let error: Error | undefined;
  try {
    runtime.register({ ...testAgent(), name: "other" });
  } catch (e) {
    error = e as Error;
  }
  assertEquals(error?.message, "capability test.echo is already provided by agent test");
  runtime.register(testAgent()); // re-registering the same agent replaces it
});

Deno.test("runtime: failures open the breaker; open rejects at once; a trial closes it", async () => {
  const { runtime, metrics, clock } = testRuntime({ failureThreshold: 2, openMs: 10_000 });
  let healthy = false;
  runtime.register({
    name: "flaky",
    kind: "builtin",
    timeoutMs: 1000,
    capabilities: [{
      name: "flaky.call",
      description: "",
      args: z.object({}),
      handler: () => healthy ? Promise.resolve("fine") : Promise.reject(new Error("down")),
    }],
  });
  const state = () => runtime.list().find((a) => a.name === "flaky")!.circuit_breaker.state;

  for (let i = 0; i < 2; i++) {
    const e = await assertRejects(() => runtime.invoke("flaky.call", {}), CapabilityError);
    assertEquals(e.kind, "failed");
  }
  assertEquals(state(), "open");
  const rejected = await assertRejects(() => runtime.invoke("flaky.call", {}), CapabilityError);
  assertEquals(rejected.kind, "circuit_open");
  assert(rejected.message.startsWith('circuit breaker of agent "flaky" is open until '));

  healthy = true;
  clock.advance(10_000);
  assertEquals((await runtime.invoke("flaky.call", {})).value, "fine");
  assertEquals(state(), "closed");
  assertEquals(await counts(metrics), [
    "flaky/flaky.call/error=2",
    "flaky/flaky.call/rejected=1",
    "flaky/flaky.call/success=1",
  ]);
});

Deno.test("runtime: a caller's mistake fails the call but not the agent's breaker", async () => {
  const { runtime } = testRuntime({ failureThreshold: 1 });
  runtime.register({
    name: "strict",
    kind: "builtin",
    timeoutMs: 1000,
    capabilities: [{
      name: "strict.call",
      description: "",
      args: z.object({}),
      handler: () => Promise.reject(new CallerError("PROMETHEUS_URL is not configured")),
    }],
  });
  const e = await assertRejects(() => runtime.invoke("strict.call", {}), CapabilityError);
  assertEquals(e.message, "PROMETHEUS_URL is not configured");
  assertEquals(runtime.list().find((a) => a.name === "strict")!.circuit_breaker.state, "closed");
});

Deno.test("runtime: a call is aborted at its timeout and counts as a failure", async () => {
  const { runtime } = testRuntime({ failureThreshold: 1 });
  const e = await assertRejects(
    () => runtime.invoke("test.hang", {}, { timeoutMs: 20 }),
    CapabilityError,
  );
  assertEquals(e.kind, "timeout");
  assertEquals(runtime.list().find((a) => a.name === "test")!.circuit_breaker.state, "open");
});
