/**
 * Issue 11 through the API: every evaluation (job or evaluate-now) is a check result; an alert's
 * uptime per window with its downtime; /sla/status public or behind a key; the `sla.status`
 * capability an alert can watch; check_up and check_uptime_ratio for public alerts.
 */
import { evaluateDueAlerts } from "../src/alerts/evaluate_job.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { testApp } from "./support/app.ts";
import { MINUTE } from "./support/clock.ts";
import { dbTest } from "./support/database.ts";
import { gaugeApp, overTen } from "./support/gauge.ts";
import { parseMetrics, sampleValue } from "./support/prometheus_text.ts";

dbTest("uptime: evaluations are the history; uptime and downtime per window", async (t, db) => {
  const app = await gaugeApp(db);
  await using _server = app.server;
  const ann = await app.newUser("ann@example.com");
  const bob = await app.newUser("bob@example.com");
  const created = await app.request("POST", "/v1/alerts", {
    key: ann.key,
    body: { name: "gauge over ten", condition: overTen, public: true, labels: { group: "Core" } },
  });
  assertEquals([created.status, created.body.public], [201, true]);
  const id = created.body.id;
  const uptime = (window: string, key = ann.key) =>
    app.request("GET", `/v1/alerts/${id}/uptime?window=${window}`, { key });

  await t.step("ten minutes by the job: 7 pass, 3 fail (an episode), all recorded", async () => {
    for (let minute = 0; minute < 10; minute++) {
      app.gauge.value = minute >= 4 && minute < 7 ? 12 : 5;
      await evaluateDueAlerts(app, app.clock.now());
      app.clock.advance(MINUTE);
    }
    const [{ n }] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from check_results where alert_id = ${id}`;
    assertEquals(n, 10);
  });

  await t.step("evaluate now is a check result too; a dry run is not", async () => {
    await app.request("POST", `/v1/alerts/${id}/evaluate`, { key: ann.key, body: {} });
    await app.request("POST", `/v1/alerts/${id}/evaluate`, {
      key: ann.key,
      body: { dry_run: true },
    });
    const [{ n }] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from check_results where alert_id = ${id}`;
    assertEquals(n, 11);
  });

  await t.step("1h: figures and the episode as downtime", async () => {
    const res = await uptime("1h");
    assertEquals(res.status, 200);
    assertEquals([res.body.evaluations, res.body.failures], [11, 3]);
    assertEquals(res.body.uptime_percent, Math.round((8 / 11) * 1e6) / 1e4);
    assertEquals(res.body.downtime.length, 1);
    assertEquals(res.body.downtime[0].duration_seconds, 180, "firing from minute 4 to 7");
    // Durations are the checks' own (real time); null (`null >= 0` holds) would be a miss.
    const p95 = res.body.latency_p95_ms;
    assert(typeof p95 === "number" && p95 >= 0, `p95 ${p95}`);
  });

  await t.step("90d from the daily rollups: the same evaluations", async () => {
    const res = await uptime("90d");
    assertEquals([res.body.evaluations, res.body.failures], [11, 3]);
  });

  await t.step("someone else's alert is 404; a bad window a 422 naming it", async () => {
    assertEquals((await uptime("24h", bob.key)).status, 404);
    const bad = await uptime("2y");
    assertEquals(bad.status, 422);
    assertEquals(bad.body.errors[0].path, "query.window");
  });

  await t.step("/metrics: check_up and check_uptime_ratio for the public alert", async () => {
    await app.dbMonitor.refresh();
    const text = await (await app.app.request("/metrics")).text();
    const samples = parseMetrics(text);
    const labels = { alert_id: id, name: "gauge over ten", group: "Core" };
    assertEquals(sampleValue(samples, "check_up", labels), 1);
    assertEquals(
      sampleValue(samples, "check_uptime_ratio", { ...labels, window: "24h" }),
      8 / 11,
    );
  });
});

dbTest("sla: /sla/status counts the API's requests; public or behind a key", async (t, db) => {
  const app = await testApp(db);
  await t.step("requests counted per window after a flush", async () => {
    for (let i = 0; i < 9; i++) await app.request("GET", "/v1/me");
    await app.request("GET", "/v1/me", { key: null }); // 401: not 5xx
    await app.request("GET", "/health/live"); // not an API request
    await app.slaTraffic.flush();
    const res = await app.request("GET", "/sla/status", { key: null });
    assertEquals(res.status, 200);
    const hour = res.body.windows.find((w: { window: string }) => w.window === "1h");
    assertEquals([hour.requests, hour.errors], [10, 0]);
    assertEquals(hour.availability.percent, 100);
    assertEquals(hour.availability.met, true);
    assertEquals(res.body.targets, {
      availability_percent: 99.5,
      error_rate_percent: 1,
      p95_ms: 1000,
    });
    assertEquals(res.body.windows.map((w: { window: string }) => w.window), [
      "1h",
      "24h",
      "7d",
      "30d",
    ]);
  });

  await t.step("the capability sla.status answers the same figures", async () => {
    const run = await app.runtime.invoke("sla.status", { window: "24h" });
    const value = run.value as { requests: number; availability: { percent: number } };
    assertEquals([value.requests, value.availability.percent], [10, 100]);
    const bad = await app.request("POST", "/v1/alerts", {
      body: {
        name: "budget",
        condition: {
          capability: "sla.status",
          args: { window: "2d" },
          path: "availability.error_budget.burn_rate",
          op: ">",
          threshold: 14.4,
        },
      },
    });
    assertEquals(bad.status, 422, "a bad window is refused at creation");
  });
});

dbTest("sla: SLA_PUBLIC=false needs an API key", async (_t, db) => {
  const app = await testApp(db, { env: { SLA_PUBLIC: "false" } });
  assertEquals((await app.request("GET", "/sla/status", { key: null })).status, 401);
  assertEquals((await app.request("GET", "/sla/status")).status, 200);
});
