import { assert, assertEquals, assertMatch } from "../../tests/support/assert.ts";
import { testRuntime } from "../../tests/support/agents.ts";
import { inputsSchema, type PatternDefinition, PatternDefinitionSchema } from "./definition.ts";

function pattern(raw: unknown): PatternDefinition & { version: number } {
  return { ...PatternDefinitionSchema.parse(raw), version: 1 };
}

Deno.test("orchestrator: steps run in order; templates keep types or interpolate", async () => {
  const { orchestrator } = testRuntime();
  const def = pattern({
    id: "typed",
    inputs: { limit: { type: "number" }, name: { type: "string" } },
    steps: [
      { capability: "test.echo", args: { value: { latency_ms: "{{inputs.limit}}" } }, as: "first" },
      {
        capability: "data.compare",
        args: { value: "{{first.value.latency_ms}}", op: ">", threshold: 2 },
        as: "cmp",
      },
      {
        capability: "test.echo",
        args: { value: "hello {{inputs.name}}, {{first.value.latency_ms}} ms" },
        as: "text",
      },
    ],
    outputs: {
      over: "{{cmp.result}}",
      latency: "{{first.value.latency_ms}}",
      text: "{{text.value}}",
    },
  });
  const result = await orchestrator.run({
    definition: def,
    inputs: { limit: 3, name: "ann" },
    userId: null,
  });
  assertEquals(result.status, "success");
  assertEquals(result.error, null);
  assertEquals(result.outputs, { over: true, latency: 3, text: "hello ann, 3 ms" });
  assertEquals(result.trace.map((s) => [s.step_index, s.capability, s.agent, s.as, s.cache_hit]), [
    [0, "test.echo", "test", "first", false],
    [1, "data.compare", "data", "cmp", false],
    [2, "test.echo", "test", "text", false],
  ]);
  assert(result.trace.every((s) => s.duration_ms >= 0 && s.error === undefined));
  assertMatch(result.run_id, /^[0-9a-f-]{36}$/);
});

Deno.test("orchestrator: the same capability and arguments run once per run (cache)", async () => {
  const { orchestrator, calls } = testRuntime();
  const def = pattern({
    id: "cached",
    steps: [
      { capability: "test.echo", args: { value: { a: 1, b: 2 } }, as: "one" },
      { capability: "test.echo", args: { value: { b: 2, a: 1 } }, as: "two" }, // same, keys reordered
      { capability: "test.echo", args: { value: { a: 1, b: 3 } }, as: "three" },
    ],
    outputs: { two: "{{two.value.b}}" },
  });
  const first = await orchestrator.run({ definition: def, inputs: {}, userId: null });
  assertEquals(first.trace.map((s) => s.cache_hit), [false, true, false]);
  assertEquals(calls.length, 2);
  assertEquals(first.outputs, { two: 2 });
  // The cache belongs to one run: a second run calls again.
  await orchestrator.run({ definition: def, inputs: {}, userId: null });
  assertEquals(calls.length, 4);
});

Deno.test("orchestrator: a failing step stops the run and is named", async () => {
  const { orchestrator, calls } = testRuntime();
  const def = pattern({
    id: "failing",
    steps: [
      { capability: "test.echo", args: { value: 1 }, as: "a" },
      { capability: "test.fail", args: { message: "database on fire" }, as: "b" },
      { capability: "test.echo", args: { value: 2 }, as: "c" },
    ],
    outputs: { a: "{{a.value}}" },
  });
  const result = await orchestrator.run({ definition: def, inputs: {}, userId: "u1" });
  assertEquals(result.status, "error");
  assertEquals(result.error, 'step 1 (test.fail as "b") failed: database on fire');
  assertEquals(result.outputs, null);
  assertEquals(result.trace.length, 2);
  assertEquals(result.trace[1].error, "database on fire");
  assertEquals(calls.map((c) => c.name), ["test.echo", "test.fail"]);
});

Deno.test("orchestrator: a step that exceeds its timeout fails the run", async () => {
  const { orchestrator } = testRuntime();
  const def = pattern({
    id: "slow",
    steps: [{ capability: "test.hang", args: {}, as: "x", timeout_ms: 30 }],
  });
  const result = await orchestrator.run({ definition: def, inputs: {}, userId: null });
  assertEquals(result.status, "error");
  assertEquals(result.error, 'step 0 (test.hang as "x") failed: test.hang timed out after 30 ms');
});

Deno.test("orchestrator: a template naming a missing field fails its step", async () => {
  const { orchestrator } = testRuntime();
  const def = pattern({
    id: "missing",
    steps: [
      { capability: "test.echo", args: { value: 1 }, as: "a" },
      { capability: "test.echo", args: { value: "{{a.nope}}" }, as: "b" },
    ],
  });
  const result = await orchestrator.run({ definition: def, inputs: {}, userId: null });
  assertEquals(result.error, 'step 1 (test.echo as "b") failed: {{a.nope}}: a has no "nope"');
});

Deno.test("orchestrator: pattern and step metrics are recorded", async () => {
  const { orchestrator, metrics } = testRuntime();
  const ok = pattern({
    id: "m",
    steps: [{ capability: "test.echo", args: { value: 1 }, as: "a" }],
  });
  const bad = pattern({ id: "m", steps: [{ capability: "test.fail", args: {}, as: "a" }] });
  await orchestrator.run({ definition: ok, inputs: {}, userId: null });
  await orchestrator.run({ definition: ok, inputs: {}, userId: null });
  await orchestrator.run({ definition: bad, inputs: {}, userId: null });
  const executions = (await metrics.patternExecutions.get()).values;
  assertEquals(
    executions.map((v) => [v.labels.pattern_id, v.labels.status, v.value]).sort(),
    [["m", "error", 1], ["m", "success", 2]],
  );
  const steps = (await metrics.stepDuration.get()).values.filter((v) =>
    v.metricName?.endsWith("_count")
  );
  assertEquals(steps.map((v) => [v.labels.step_index, v.labels.capability, v.value]).sort(), [
    ["0", "test.echo", 2],
    ["0", "test.fail", 1],
  ]);
});

Deno.test("inputs: declared types are checked, defaults applied, unknown names refused", () => {
  const schema = inputsSchema({
    inputs: {
      url: { type: "string" },
      max_ms: { type: "number", default: 1000 },
      retries: { type: "integer", required: false },
    },
  });
  assertEquals(schema.parse({ url: "http://x" }), { url: "http://x", max_ms: 1000 });
  const bad = schema.safeParse({ max_ms: "fast", retries: 1.5, extra: true });
  assert(!bad.success);
  assertEquals(bad.error.issues.map((i) => i.path.join(".") || i.code).sort(), [
    "max_ms",
    "retries",
    "unrecognized_keys",
    "url",
  ]);
});
