import { createMetrics, renderMetrics } from "../src/observability/metrics.ts";
import { metricsRoutes } from "../src/observability/routes.ts";
const m = createMetrics();
for (let i = 0; i < 200; i++) {
  m.patternExecutions.inc({ pattern_id: `series-${i}`, status: "success" });
  m.patternDuration.observe({ pattern_id: `series-${i}`, status: "success" }, 0.001);
  for (let s = 0; s < 3; s++) m.stepDuration.observe({ pattern_id: `series-${i}`, step_index: String(s), capability: "data.compare" }, 0.0001);
}
const mode = Deno.args[0];
const STATIC = await m.registry.metrics();
const app = metricsRoutes({ metrics: m, open: true });
const lags: number[] = [];
let last = performance.now();
setInterval(() => { const now = performance.now(); lags.push(now - last - 1); last = now; }, 1);
Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.args[1]), onListen() {} }, async (req) => {
  const path = new URL(req.url).pathname;
  if (path === "/metrics") {
    if (mode === "prom") return new Response(await m.registry.metrics());
    if (mode === "text") return new Response(await renderMetrics(m.registry));
    if (mode === "static") return new Response(STATIC);
    return app.fetch(req);
  }
  if (path === "/lag") { const l = lags.splice(0).sort((a, b) => a - b); return new Response(`lag p99 ${l[Math.floor(l.length * 0.99)].toFixed(2)} max ${l[l.length - 1].toFixed(2)}`); }
  return new Response("ok");
});
