import { assertEquals, assertThrows } from "../../tests/support/assert.ts";
import { findTemplates, render, TemplateError } from "./template.ts";

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
