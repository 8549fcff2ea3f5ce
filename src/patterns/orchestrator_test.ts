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

/** 19 steps, each interpolating the previous result twice: 1 KiB would grow to 256 MiB. */
function doubling(steps = 19) {
  return pattern({
    id: "doubling",
    inputs: { s: { type: "string" } },
    steps: Array.from({ length: steps }, (_, i) => ({
      capability: "test.echo",
      args: {
        value: i === 0 ? "{{inputs.s}}{{inputs.s}}" : `{{s${i - 1}.value}}{{s${i - 1}.value}}`,
      },
      as: `s${i}`,
    })),
    outputs: { last: `{{s${steps - 1}.value}}` },
  });
}

Deno.test("orchestrator: a doubling pattern hits the render budget, not the heap", async () => {
  const { orchestrator, calls } = testRuntime();
  const started = performance.now();
  const result = await orchestrator.run({
    definition: doubling(),
    inputs: { s: "x".repeat(1024) },
    userId: null,
  });
  assertEquals(result.status, "error");
  assertMatch(
    result.error!,
    /^step 9 \(test.echo as "s9"\) failed: templates rendered more than 1048576 bytes in this run \(PATTERN_MAX_RENDER_BYTES\)$/,
  );
  assertEquals(calls.length, 9);
  assert(performance.now() - started < 2000);
});

Deno.test("orchestrator: the run's deadline aborts the step in flight", async () => {
  const { orchestrator } = testRuntime({ limits: { timeoutMs: 50 } });
  const def = pattern({
    id: "late",
    steps: [
      { capability: "test.echo", args: { value: 1 }, as: "a" },
      { capability: "test.hang", args: {}, as: "b" }, // its own timeout is 5 s
    ],
  });
  const started = performance.now();
  const result = await orchestrator.run({ definition: def, inputs: {}, userId: null });
  const took = performance.now() - started;
  assert(took >= 45 && took < 1000, `took ${took} ms`);
  assertEquals(result.status, "error");
  assertEquals(
    result.error,
    'deadline exceeded: the run took longer than 50 ms (PATTERN_RUN_TIMEOUT_MS) at step 1 (test.hang as "b")',
  );
  assertEquals(result.trace.length, 2);
  // A step timeout shorter than what is left of the deadline is still the step's own failure.
  const own = await testRuntime({ limits: { timeoutMs: 5000 } }).orchestrator.run({
    definition: pattern({
      id: "own",
      steps: [{ capability: "test.hang", args: {}, as: "x", timeout_ms: 20 }],
    }),
    inputs: {},
    userId: null,
  });
  assertEquals(own.error, 'step 0 (test.hang as "x") failed: test.hang timed out after 20 ms');
});

Deno.test("orchestrator: results too big, too deep or unstorable make an error run", async () => {
  const { orchestrator } = testRuntime({ limits: { resultBytes: 10_000 } });
  const run = (value: unknown) =>
    orchestrator.run({
      definition: pattern({
        id: "big",
        inputs: { v: { type: "array" } },
        steps: [{ capability: "test.echo", args: { value: "{{inputs.v}}" }, as: "a" }],
        outputs: { v: "{{a.value}}" },
      }),
      inputs: { v: value },
      userId: null,
    });
  const big = await run(["x".repeat(20_000)]);
  assertEquals(big.status, "error");
  assertEquals(big.outputs, null);
  assertMatch(
    big.error!,
    /^the run's result is \d+ bytes, more than 10000 \(PATTERN_MAX_RESULT_BYTES\)$/,
  );
  const nested = (levels: number) => {
    let deep: unknown = [];
    for (let i = 0; i < levels; i++) deep = [deep];
    return deep;
  };
  const tooDeep = await run([nested(150)]);
  assertEquals(tooDeep.error, "outputs are nested deeper than 100 levels");
  const wayTooDeep = await run([nested(10_000)]);
  assertEquals(
    wayTooDeep.error,
    'step 0 (test.echo as "a") failed: value is nested deeper than 256 levels',
  );
  const nul = await run(["a\u0000", "\ud800"]);
  assertMatch(nul.error!, /^outputs: v\.0 contains a NUL character/);
  const fine = await run(["é"]);
  assertEquals(fine.outputs, { v: ["é"] });
});
