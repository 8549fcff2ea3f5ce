/** The sliced /metrics renderer: byte for byte what prom-client renders, and it lets requests in. */
import fc from "fast-check";
import { Counter, Gauge, Histogram, Registry, Summary } from "prom-client";
import { assert, assertEquals } from "../../tests/support/assert.ts";
import { createMetrics, renderMetrics } from "./metrics.ts";
import { metricsRoutes } from "./routes.ts";

/** Renders in the smallest slices, counting the pauses (each a microtask: fast and exact). */
function sliced() {
  let pauses = 0;
  return {
    options: { sliceMs: 0, pause: () => (pauses++, Promise.resolve()) },
    pauses: () => pauses,
  };
}

/** A registry with every kind of metric and value the text format has to spell. */
function everything(): Registry {
  const registry = new Registry();
  const registers = [registry];
  new Counter({ name: "plain_total", help: "No labels.", registers }).inc(3);
  new Counter({
    name: "never_total",
    help: "Labels, no series yet.",
    labelNames: ["a"],
    registers,
  });
  const c = new Counter({
    name: "labelled_total",
    help: 'Help with a \\ backslash,\na newline and "quotes".',
    labelNames: ["method", "route", "code"] as const,
    registers,
  });
  c.inc({ method: "GET", route: "/v1/x", code: "200" }, 2);
  c.inc({ route: "/v1/y", method: "POST", code: "500" }); // another order: kept as given
  c.inc({ method: 'q"u\\o\nte', route: "ünïcødé ✓", code: "0" }, 0.5);
  c.inc({ method: "PUT", route: "/", code: 201 as unknown as string }, 1e21);
  const g = new Gauge({ name: "odd_values", help: "Gauge.", labelNames: ["v"], registers });
  g.set({ v: "nan" }, NaN);
  g.set({ v: "inf" }, Infinity);
  g.set({ v: "-inf" }, -Infinity);
  g.set({ v: "tiny" }, 1e-9);
  g.set({ v: "neg" }, -0.25);
  g.set({ v: "zero" }, -0);
  let n = 0;
  new Gauge({
    name: "collected",
    help: "Set by collect().",
    registers,
    collect() {
      this.set(++n);
    },
  });
  new Gauge({
    name: "collected_async",
    help: "Set by an async collect().",
    labelNames: ["k"],
    registers,
    async collect() {
      await Promise.resolve();
      this.set({ k: "a" }, 7);
    },
  });
  new Histogram({ name: "bare_seconds", help: "No labels, no observations.", registers });
  const h = new Histogram({
    name: "lat_seconds",
    help: "Histogram.",
    labelNames: ["op", "step"] as const,
    buckets: [0.001, 0.01, 0.1, 1, 10],
    registers,
  });
  for (const x of [0.0005, 0.002, 0.05, 0.5, 5, 50, 0.01]) h.observe({ op: "run", step: "0" }, x);
  h.observe({ step: "1", op: "run" }, 0.3);
  h.zero({ op: "idle", step: "2" });
  const s = new Summary({ name: "sizes", help: "A summary: rendered by prom-client.", registers });
  s.observe(1);
  s.observe(3);
  return registry;
}

Deno.test("metrics rendering: byte for byte prom-client's, whole and in the smallest slices", async () => {
  // `collected` counts its collects: two registries rendered alike say the same.
  const expected = await everything().metrics();
  assertEquals(await renderMetrics(everything()), expected);
  const s = sliced();
  assertEquals(await renderMetrics(everything(), s.options), expected);
  assert(s.pauses() >= 9, `paused ${s.pauses()} times (once per family at least)`);
});

Deno.test("metrics rendering: vigil's registry after activity, as prom-client renders it", async () => {
  const metrics = createMetrics();
  for (let i = 0; i < 300; i++) {
    metrics.patternExecutions.inc({ pattern_id: `p-${i}`, status: i % 7 ? "success" : "error" });
    metrics.stepDuration.observe(
      { pattern_id: `p-${i}`, step_index: String(i % 3), capability: "data.compare" },
      i / 1000,
    );
  }
  metrics.httpRequests.inc({ method: "GET", status: "200", ok: "true", route: "/v1/me" });
  // Process metrics read the process at every collect: compare everything else.
  const steady = (text: string) =>
    text.split("\n").filter((l) => !/^process_(resident|heap|cpu|uptime)/.test(l)).join("\n");
  const expected = steady(await metrics.registry.metrics());
  assertEquals(steady(await renderMetrics(metrics.registry)), expected);
  assertEquals(steady(await renderMetrics(metrics.registry, sliced().options)), expected);
});

Deno.test("metrics rendering: any label values and observations (property)", async () => {
  const label = fc.string({ unit: "binary", maxLength: 12 });
  const value = fc.oneof(
    fc.double(),
    fc.constantFrom(NaN, Infinity, -Infinity, 0, -0),
    fc.integer(),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(label, label, value), { maxLength: 30 }),
      async (points) => {
        const build = () => {
          const registry = new Registry();
          const registers = [registry];
          const g = new Gauge({ name: "g", help: "g", labelNames: ["a", "b"], registers });
          const c = new Counter({ name: "c_total", help: "c", labelNames: ["a"], registers });
          const h = new Histogram({ name: "h", help: "h", labelNames: ["b"], registers });
          for (const [a, b, v] of points) {
            g.set({ b, a }, v);
            c.inc({ a }, Number.isFinite(v) ? Math.abs(v) : 1);
            if (Number.isFinite(v)) h.observe({ b }, v);
          }
          return registry;
        };
        assertEquals(await renderMetrics(build(), sliced().options), await build().metrics());
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("metrics rendering: series kept from the last scrape are rendered anew when they change", async () => {
  const registry = new Registry();
  const registers = [registry];
  const c = new Counter({ name: "c_total", help: "c", labelNames: ["a"], registers });
  const g = new Gauge({ name: "g", help: "g", labelNames: ["a"], registers });
  const h = new Histogram({
    name: "h",
    help: "h",
    labelNames: ["a"],
    buckets: [1, 2],
    registers,
  });
  const same = async (step: string) =>
    assertEquals(await renderMetrics(registry), await registry.metrics(), step);
  c.inc({ a: "x" });
  g.set({ a: "x" }, 1);
  h.observe({ a: "x" }, 1.5);
  h.observe({ a: "y" }, 0.5);
  await same("first");
  await same("unchanged");
  c.inc({ a: "x" }, 0); // same value
  c.inc({ a: "x" }, 2);
  g.inc({ a: "x" }, 0.5);
  g.set({ a: "y" }, 1); // a new series, same value as another's
  h.observe({ a: "x" }, 5); // count, +Inf and sum change; the finite buckets do not
  h.observe({ a: "y" }, 0); // the same bucket again: its value changes
  await same("changed");
  h.reset();
  h.zero({ a: "x" });
  g.remove({ a: "x" });
  c.reset();
  await same("reset, zeroed and removed");
  g.set({ a: "y" }, 1); // set again to the same value: a new series object
  await same("set again");
});

Deno.test("metrics rendering: default labels and OpenMetrics are left to prom-client", async () => {
  const labelled = () => {
    const registry = everything();
    registry.setDefaultLabels({ replica: "a" });
    return registry;
  };
  assertEquals(await renderMetrics(labelled()), await labelled().metrics());
  const open = new Registry();
  open.setContentType(Registry.OPENMETRICS_CONTENT_TYPE as typeof open.contentType);
  new Counter({ name: "x_total", help: "x", registers: [open] }).inc();
  assertEquals(await renderMetrics(open), await open.metrics());
});

Deno.test("metrics rendering: the event loop runs between slices (timers, I/O)", async () => {
  const registry = new Registry();
  const h = new Histogram({ name: "h", help: "h", labelNames: ["i"], registers: [registry] });
  for (let i = 0; i < 2000; i++) h.observe({ i: String(i) }, i / 1000);
  let fired = false;
  setTimeout(() => (fired = true), 0);
  let firedBeforeTheEnd = false;
  const text = await renderMetrics(registry, {
    sliceMs: 0,
    pause: async () => {
      await new Promise((r) => setTimeout(r, 0));
      firedBeforeTheEnd ||= fired;
    },
  });
  assert(firedBeforeTheEnd, "a timer due during the rendering ran before it ended");
  assertEquals(text, await registry.metrics());
});

Deno.test("metrics rendering: a family changed during a pause is rendered from one set of series", async () => {
  const registry = new Registry();
  const g = new Gauge({ name: "g", help: "g", labelNames: ["i"], registers: [registry] });
  for (let i = 0; i < 100; i++) g.set({ i: String(i) }, 1);
  let changed = false;
  const text = await renderMetrics(registry, {
    sliceMs: 0,
    pause: () => {
      if (!changed) {
        changed = true;
        g.reset(); // as the database monitor does with check_up: a new set of series
        g.set({ i: "new" }, 2);
      }
      return Promise.resolve();
    },
  });
  const lines = text.split("\n").filter((l) => l.startsWith("g{"));
  assertEquals(lines.length, 100);
  assert(lines.every((l) => l.endsWith(" 1")));
  assertEquals((await renderMetrics(registry)).split("\n").filter((l) => l.startsWith("g{")), [
    'g{i="new"} 2',
  ]);
});

Deno.test("/metrics: scrapes that arrive during a rendering share it", async () => {
  const metrics = createMetrics();
  for (let i = 0; i < 500; i++) metrics.patternExecutions.inc({ pattern_id: `p${i}`, status: "x" });
  let renders = 0;
  const list = metrics.registry.getMetricsAsArray.bind(metrics.registry);
  metrics.registry.getMetricsAsArray = () => (renders++, list());
  const app = metricsRoutes({
    metrics,
    open: true,
    render: { sliceMs: 0, pause: () => new Promise((r) => setTimeout(r, 0)) },
  });
  const [a, b] = await Promise.all([app.request("/metrics"), app.request("/metrics")]);
  const [ta, tb] = [await a.text(), await b.text()];
  assertEquals(renders, 1);
  assertEquals(ta, tb);
  assert(ta.includes('pattern_executions_total{pattern_id="p499",status="x"} 1'));
  await (await app.request("/metrics")).text();
  assertEquals(renders, 2, "a later scrape renders anew");
});
