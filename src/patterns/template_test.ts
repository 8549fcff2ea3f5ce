import { assert, assertEquals, assertMatch, assertThrows } from "../../tests/support/assert.ts";
import { findTemplates, render, RenderBudget, scanTemplates, TemplateError } from "./template.ts";

const state = {
  inputs: { url: "http://x", limit: 3, flags: { on: true } },
  check: { ok: true, latency_ms: 12.5, status: null, series: [{ value: 7 }] },
};

Deno.test("template: a whole-string template keeps the value's type", () => {
  assertEquals(render("{{check.latency_ms}}", state), 12.5);
  assertEquals(render("{{ check.ok }}", state), true);
  assertEquals(render("{{check.status}}", state), null);
  assertEquals(render("{{inputs.flags}}", state), { on: true });
  assertEquals(render("{{check.series.0.value}}", state), 7);
});

Deno.test("template: inside a longer string it is interpolated", () => {
  assertEquals(render("took {{check.latency_ms}} ms", state), "took 12.5 ms");
  assertEquals(render("{{inputs.url}}/health?n={{inputs.limit}}", state), "http://x/health?n=3");
  assertEquals(render("flags={{inputs.flags}}", state), 'flags={"on":true}');
});

Deno.test("template: nested values are rendered; plain values pass through", () => {
  assertEquals(
    render({ a: ["{{inputs.limit}}", "x"], b: { c: "{{check.ok}}" }, n: 1, z: null }, state),
    { a: [3, "x"], b: { c: true }, n: 1, z: null },
  );
});

Deno.test("template: a missing reference is a clear error", () => {
  const e1 = assertThrows(() => render("{{check.latency}}", state), TemplateError);
  assertEquals(e1.message, '{{check.latency}}: check has no "latency"');
  const e2 = assertThrows(() => render("{{nope.x}}", state), TemplateError);
  assertEquals(e2.message, '{{nope.x}}: nothing is named "nope"');
  const e3 = assertThrows(() => render("{{check..x}}", state), TemplateError);
  assertEquals(e3.message, "{{check..x}} is not a valid reference");
});

Deno.test("template: findTemplates reports every reference and where it is", () => {
  const refs = findTemplates({
    url: "{{inputs.url}}",
    h: { x: "a {{check.ok}} b {{inputs.limit}}" },
  });
  assertEquals(refs.map((r) => [r.location, r.expression, r.whole]), [
    [["url"], "inputs.url", true],
    [["h", "x"], "check.ok", false],
    [["h", "x"], "inputs.limit", false],
  ]);
});

Deno.test("template: the scanner finds what the old regex found, in linear time", () => {
  const ANY = /\{\{\s*([^{}]*?)\s*\}\}/g;
  const alphabet = ["{", "}", "{{", "}}", " ", "a", ".", "b"];
  for (let n = 0; n < 5000; n++) {
    let text = "";
    const length = Math.floor(Math.random() * 12);
    for (let i = 0; i < length; i++) text += alphabet[Math.floor(Math.random() * alphabet.length)];
    const expected = [...text.matchAll(ANY)].map((m) => [m.index, m.index + m[0].length, m[1]]);
    const actual = scanTemplates(text).map((m) => [m.start, m.end, m.expression]);
    assertEquals(actual, expected, JSON.stringify(text));
  }
  for (
    const text of ["{{" + " ".repeat(5000), "{{" + " ".repeat(200_000) + "}", "{".repeat(200_000)]
  ) {
    const started = performance.now();
    assertEquals(findTemplates({ a: text }), []);
    assertEquals(render(text, state), text);
    assert(performance.now() - started < 200, `${text.length} characters took too long`);
  }
});

Deno.test("template: interpolation is bounded by the run's render budget", () => {
  const budget = new RenderBudget(10_000);
  const big = { inputs: { s: "x".repeat(4000) } };
  assertEquals((render("{{inputs.s}}{{inputs.s}}", big, budget) as string).length, 8000);
  const e = assertThrows(() => render("x{{inputs.s}}", big, budget), TemplateError);
  assertMatch(e.message, /more than 10000 bytes in this run \(PATTERN_MAX_RENDER_BYTES\)/);
  // A whole-string template passes the value itself: nothing is copied, nothing is counted.
  assertEquals(render("{{inputs.s}}", big, new RenderBudget(10)), big.inputs.s);
  // Multi-byte text counts its UTF-8 bytes.
  assertThrows(
    () => render("a{{inputs.s}}", { inputs: { s: "é".repeat(6) } }, new RenderBudget(12)),
    TemplateError,
  );
});

Deno.test("template: deep values cannot overflow the stack", () => {
  let deep: unknown = "{{inputs.limit}}";
  for (let i = 0; i < 10_000; i++) deep = [deep];
  assertEquals(findTemplates(deep).length, 1);
  const e = assertThrows(() => render(deep, state), TemplateError);
  assertMatch(e.message, /nest at most 64 levels/);
  let value: unknown = 1;
  for (let i = 0; i < 100_000; i++) value = [value];
  // Interpolating a deep value writes it as JSON, or fails with a TemplateError, never a crash.
  assertEquals((render("x {{inputs.v}}", { inputs: { v: value } }) as string).length, 200_003);
  const e3 = assertThrows(() => render(`{{${"a".repeat(10_000)}.}}`, state), TemplateError);
  assert(e3.message.length < 200);
});
