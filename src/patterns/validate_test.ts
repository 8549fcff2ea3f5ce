import { assertEquals } from "../../tests/support/assert.ts";
import { testRuntime } from "../../tests/support/agents.ts";
import { PatternDefinitionSchema } from "./definition.ts";
import { validateDefinition } from "./validate.ts";

const { runtime } = testRuntime();
const validate = (raw: unknown) => validateDefinition(PatternDefinitionSchema.parse(raw), runtime);

Deno.test("validate: a correct definition has no errors", () => {
  assertEquals(
    validate({
      id: "ok",
      inputs: { url: { type: "string" }, max: { type: "number", default: 500 } },
      steps: [
        {
          capability: "http.check",
          args: { url: "{{inputs.url}}", timeout_ms: 1000 },
          as: "check",
        },
        {
          capability: "data.compare",
          args: { value: "{{check.latency_ms}}", op: "<=", threshold: "{{inputs.max}}" },
          as: "fast",
        },
      ],
      outputs: { up: "{{check.ok}}", fast: "{{fast.result}}" },
    }),
    [],
  );
});

Deno.test("validate: every problem is listed at once, with its path", () => {
  const errors = validate({
    id: "bad",
    inputs: { url: { type: "string" }, n: { type: "number", default: "many" } },
    steps: [
      { capability: "http.chek", args: { url: "{{inputs.url}}" }, as: "check" },
      {
        capability: "data.compare",
        args: { value: "{{later.x}}", op: "~=", threshold: "{{inputs.nope}}" },
        as: "cmp",
      },
      { capability: "test.echo", args: { value: "{{ghost.y}}" }, as: "later" },
      { capability: "test.echo", args: { value: 1 }, as: "cmp" },
      { capability: "http.check", args: { url: "{{inputs.n}}", method: "POST" }, as: "other" },
    ],
    outputs: { x: "{{missing.value}}", y: "{{inputs}}" },
  });
  assertEquals(errors, [
    { path: "inputs.n.default", message: "must be of the declared type number" },
    { path: "steps.3.as", message: 'duplicate result name "cmp" (also steps.1.as)' },
    { path: "steps.0.capability", message: 'unknown capability "http.chek"' },
    {
      path: "steps.1.args.value",
      message: '{{later.x}} names "later", which only steps.2 produces (later)',
    },
    {
      path: "steps.1.args.threshold",
      message: '{{inputs.nope}} names input "nope", which is not declared',
    },
    {
      path: "steps.1.args.op",
      message: 'Invalid option: expected one of ">"|">="|"<"|"<="|"=="|"!="',
    },
    {
      path: "steps.2.args.value",
      message: '{{ghost.y}} names "ghost", which is neither an input nor a step result',
    },
    { path: "steps.4.args.url", message: "must be an http(s) URL" }, // a number can never be a URL
    { path: "steps.4.args.method", message: 'Invalid option: expected one of "GET"|"HEAD"' },
    {
      path: "outputs.x",
      message: '{{missing.value}} names "missing", which is neither an input nor a step result',
    },
    { path: "outputs.y", message: "{{inputs}} must name an input, as in {{inputs.url}}" },
  ]);
});

Deno.test("validate: required arguments missing once filled in are reported", () => {
  assertEquals(validate({ id: "x", steps: [{ capability: "http.check", args: {}, as: "c" }] }), [
    { path: "steps.0.args.url", message: "must be an http(s) URL" },
  ]);
});

Deno.test("validate: a template of unknown type is not held to the schema", () => {
  // {{r.value}} could be anything at run time; an interpolated string is a string.
  assertEquals(
    validate({
      id: "x",
      inputs: { host: { type: "string" } },
      steps: [
        { capability: "test.echo", args: { value: 1 }, as: "r" },
        {
          capability: "http.check",
          args: { url: "{{r.value}}", timeout_ms: "{{r.value}}" },
          as: "a",
        },
        { capability: "http.check", args: { url: "http://{{inputs.host}}/health" }, as: "b" },
      ],
    }),
    [],
  );
});
