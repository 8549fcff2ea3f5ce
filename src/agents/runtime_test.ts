import { assert, assertEquals, assertRejects } from "../../tests/support/assert.ts";
import { testAgent, testRuntime } from "../../tests/support/agents.ts";
import { CapabilityError } from "./runtime.ts";
import { CallerError } from "./types.ts";
import { z } from "zod";

/** The calls counted (series that exist at zero from registration on are left out). */
async function counts(metrics: ReturnType<typeof testRuntime>["metrics"]) {
  return (await metrics.agentInvocations.get()).values
    .filter((v) => v.value > 0)
    .map((v) => `${v.labels.agent_name}/${v.labels.capability}/${v.labels.status}=${v.value}`)
    .sort();
}

Deno.test("runtime: every capability's series exist at zero from registration on", async () => {
  const { metrics } = testRuntime();
  const series = (await metrics.agentInvocations.get()).values
    .filter((v) => v.labels.capability === "data.compare")
    .map((v) => `${v.labels.status}=${v.value}`)
    .sort();
  assertEquals(series, ["error=0", "rejected=0", "success=0"]);
});

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

/** "ok" or the kind of CapabilityError a call ended with. */
const settled = (p: Promise<unknown>) => p.then(() => "ok", (e) => (e as CapabilityError).kind);

/** An agent whose every call waits until the test answers it (in call order). */
function gatedAgent() {
  const pending: { resolve: (v: unknown) => void; reject: (e: unknown) => void }[] = [];
  const agent = {
    name: "gated",
    kind: "builtin" as const,
    timeoutMs: 60_000,
    capabilities: [{
      name: "gated.call",
      description: "",
      args: z.object({}),
      handler: () => new Promise((resolve, reject) => pending.push({ resolve, reject })),
    }],
  };
  return { agent, pending };
}

Deno.test("runtime: a caller error on the half-open trial does not jam the breaker", async () => {
  const { runtime, clock } = testRuntime({ failureThreshold: 1, openMs: 10_000 });
  const { agent, pending } = gatedAgent();
  runtime.register(agent);
  const call = () => settled(runtime.invoke("gated.call", {}));
  const state = () => runtime.list().find((a) => a.name === "gated")!.circuit_breaker.state;

  const first = call();
  pending.shift()!.reject(new Error("down"));
  assertEquals(await first, "failed");
  assertEquals(state(), "open");

  clock.advance(10_000);
  const trial = call();
  pending.shift()!.reject(new CallerError("refused address"));
  assertEquals(await trial, "failed");
  assertEquals(state(), "half_open");

  // The trial slot is free again: the next call is admitted (it used to be rejected for good).
  const next = call();
  assertEquals(pending.length, 1, "the next call reached the agent");
  pending.shift()!.resolve("fine");
  assertEquals(await next, "ok");
  assertEquals(state(), "closed");
});

Deno.test("runtime: an outcome of a call admitted before the breaker opened is ignored", async () => {
  const { runtime, clock } = testRuntime({ failureThreshold: 1, openMs: 10_000 });
  const { agent, pending } = gatedAgent();
  runtime.register(agent);
  const call = () => runtime.invoke("gated.call", {});
  const state = () => runtime.list().find((a) => a.name === "gated")!.circuit_breaker.state;

  const stale = settled(call()); // admitted while CLOSED, answered much later
  const opener = settled(call());
  await Promise.resolve();
  const [staleCall, openerCall] = pending.splice(0, 2);
  openerCall.reject(new Error("down"));
  assertEquals(await opener, "failed");
  assertEquals(state(), "open");

  clock.advance(10_000);
  const trial = settled(call());
  await Promise.resolve();
  const [trialCall] = pending.splice(0, 1);
  assertEquals(state(), "half_open");

  staleCall.reject(new Error("late failure"));
  assertEquals(await stale, "failed");
  assertEquals(state(), "half_open", "a stale failure does not re-open the breaker");
  clock.advance(10_000);
  assertEquals(await settled(call()), "circuit_open", "no second trial while the first is out");

  trialCall.resolve("fine");
  assertEquals(await trial, "ok");
  assertEquals(state(), "closed");
});

Deno.test("runtime: a thrown non-Error counts as a failure and frees the trial", async () => {
  const { runtime, clock } = testRuntime({ failureThreshold: 1, openMs: 10_000 });
  const { agent, pending } = gatedAgent();
  runtime.register(agent);
  const state = () => runtime.list().find((a) => a.name === "gated")!.circuit_breaker.state;

  const first = runtime.invoke("gated.call", {});
  pending.shift()!.reject("a string");
  assertEquals((await assertRejects(() => first, CapabilityError)).message, "a string");
  assertEquals(state(), "open");
  clock.advance(10_000);
  const trial = settled(runtime.invoke("gated.call", {}));
  pending.shift()!.reject(undefined);
  assertEquals(await trial, "failed");
  assertEquals(state(), "open", "the trial's failure opened it again");
});

Deno.test("runtime: a call still out when its agent is removed does not bring its gauge back", async () => {
  const { runtime, metrics } = testRuntime({ failureThreshold: 1 });
  const { agent, pending } = gatedAgent();
  runtime.register(agent);
  const out = settled(runtime.invoke("gated.call", {}));
  assert(runtime.unregister("gated"));
  pending.shift()!.reject(new Error("down")); // would open the breaker
  assertEquals(await out, "failed");
  const series = (await metrics.breakerState.get()).values
    .filter((v) => v.labels.agent_name === "gated");
  assertEquals(series, []);
});
