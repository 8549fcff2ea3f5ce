/**
 * Issue 11: /sla/status and Prometheus' SLO recording rules agree on the same traffic. A real
 * Prometheus (Debian's) scrapes vigil every second while random, seeded traffic — successes,
 * 4xx, 5xx and slow requests — goes through vigil's API; then the recording rules' own
 * expressions (read from observability/prometheus/rules/) are run by Prometheus and compared with
 * vigil's 1h window: availability, error rate and the share of requests within 1 s (the latency
 * SLI) within 0.1 percentage point, p95 within 2 %.
 *
 * Prometheus starts a counter series at its first scrape, so a small warm-up of each kind of
 * answer goes first (vigil counts it, Prometheus sees its series start): 6 requests of ~2000.
 */
import fc from "fast-check";
import { assert, assertEquals } from "./support/assert.ts";
import { testApp } from "./support/app.ts";
import { eventually, startChild, stopChild } from "./support/child.ts";
import { freePort, which } from "./support/cluster.ts";
import { testDatabase } from "./support/database.ts";
import { prometheusConfig, ruleGroups } from "./support/observability.ts";

const missing = ["prometheus"].filter((b) => !which(b));
const REQUESTS = 2000;
const CONCURRENCY = 16;

type Vector = { metric: Record<string, string>; value: [number, string] }[];

/** A recording rule's expression, as committed. */
function recordedExpr(record: string): string {
  for (const { group } of ruleGroups()) {
    for (const rule of group.rules) {
      if ("record" in rule && rule.record === record) return rule.expr;
    }
  }
  throw new Error(`no recording rule ${record}`);
}

Deno.test({
  name: missing.length
    ? `sla: /sla/status agrees with Prometheus (skipped: needs ${missing.join(", ")})`
    : "sla: /sla/status agrees with Prometheus' SLO rules on the same traffic",
  ignore: missing.length > 0,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using db = await testDatabase();
    const vigil = await testApp(db, {
      env: { RATE_LIMIT_PER_MINUTE: "1000000", AUTH_FAILURES_PER_MINUTE: "100000" },
    });
    // Answers on demand: a failure, and a request as slow as asked.
    vigil.app.get("/v1/test/fail", () => {
      throw new Error("failing on purpose");
    });
    vigil.app.get("/v1/test/slow", async (c) => {
      await new Promise((r) => setTimeout(r, Number(c.req.query("ms"))));
      return c.json({ ok: true });
    });
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      vigil.app.fetch,
    );
    const origin = `http://127.0.0.1:${server.addr.port}`;
    const dir = await Deno.makeTempDir({ prefix: "vigil-sla-" });
    const promPort = freePort();
    const prom = `http://127.0.0.1:${promPort}`;
    await Deno.writeTextFile(
      `${dir}/prometheus.yml`,
      prometheusConfig({ vigil: `127.0.0.1:${server.addr.port}`, ruleFiles: [] }),
    );
    const prometheus = startChild("prometheus", [
      `--config.file=${dir}/prometheus.yml`,
      `--storage.tsdb.path=${dir}/prom`,
      `--web.listen-address=127.0.0.1:${promPort}`,
    ]);
    const query = async (expr: string): Promise<Vector> => {
      const r = await (await fetch(`${prom}/api/v1/query?query=${encodeURIComponent(expr)}`))
        .json();
      assertEquals(r.status, "success", `${expr}: ${r.error}`);
      return r.data.result;
    };
    /** Waits until Prometheus has scraped twice more (the last traffic is in). */
    const twoMoreScrapes = async () => {
      const count = async () =>
        Number((await query('count_over_time(up{job="vigil"}[10m])'))[0]?.value[1] ?? 0);
      const before = await count();
      await eventually(
        "two more scrapes",
        30,
        async () => (await count()) >= before + 2 || undefined,
      );
    };
    const send = async (kind: string, ms = 0) => {
      const key = { authorization: `Bearer ${vigil.adminKey}` };
      const res = kind === "ok"
        ? await fetch(`${origin}/v1/me`, { headers: key })
        : kind === "unauthorized"
        ? await fetch(`${origin}/v1/me`)
        : kind === "not_found"
        ? await fetch(`${origin}/v1/alerts/${crypto.randomUUID()}`, { headers: key })
        : kind === "fail"
        ? await fetch(`${origin}/v1/test/fail`, { headers: key })
        : await fetch(`${origin}/v1/test/slow?ms=${ms}`, { headers: key });
      await res.body?.cancel();
      return res.status;
    };

    try {
      await eventually(
        "Prometheus scrapes vigil",
        30,
        async () => (await query('up{job="vigil"}'))[0]?.value[1] === "1" || undefined,
      );
      // Warm-up: every kind of answer once, so that each series exists before the traffic.
      for (const kind of ["ok", "unauthorized", "not_found", "fail"]) await send(kind);
      await send("slow", 1);
      await send("slow", 1200);
      await twoMoreScrapes();

      const seed = Number(Deno.env.get("VIGIL_PROPERTY_SEED") ?? Date.now() % 1_000_000);
      const plan = fc.sample(
        fc.oneof(
          { weight: 70, arbitrary: fc.constant({ kind: "ok", ms: 0 }) },
          { weight: 8, arbitrary: fc.constant({ kind: "unauthorized", ms: 0 }) },
          { weight: 8, arbitrary: fc.constant({ kind: "not_found", ms: 0 }) },
          { weight: 4, arbitrary: fc.constant({ kind: "fail", ms: 0 }) },
          {
            weight: 10,
            arbitrary: fc.integer({ min: 1, max: 1500 }).map((ms) => ({ kind: "slow", ms })),
          },
        ),
        { numRuns: REQUESTS, seed },
      );
      let next = 0;
      const statuses: number[] = [];
      await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
        while (next < plan.length) {
          const { kind, ms } = plan[next++];
          statuses.push(await send(kind, ms));
        }
      }));
      const byStatus: Record<number, number> = {};
      for (const s of statuses) byStatus[s] = (byStatus[s] ?? 0) + 1;
      assert(
        statuses.filter((s) => s >= 500).length > 20,
        `seed ${seed}: ${JSON.stringify(byStatus)}`,
      );
      await twoMoreScrapes();
      await vigil.slaTraffic.flush();

      const sla = await vigil.slaReport.status();
      const hour = sla.windows.find((w) => w.window === "1h")!;
      assertEquals(hour.requests, REQUESTS + 6, "vigil counted every request");
      const promErrorRatio = Number(
        (await query(recordedExpr("job:http_request_errors:ratio_rate1h")))[0].value[1],
      );
      const promP95 = Number(
        (await query(
          'histogram_quantile(0.95, sum by (job, le) (rate(http_request_duration_seconds_bucket{job="vigil"}[1h])))',
        ))[0].value[1],
      );
      const promSlow = Number(
        (await query(recordedExpr("job:http_requests_over_1s:ratio_rate1h")))[0].value[1],
      );
      const report = {
        seed,
        vigil: {
          error_rate: hour.error_rate.percent,
          p95_ms: hour.latency.p95_ms,
          within_1s: hour.latency.within_target_percent,
        },
        prometheus: {
          error_rate: promErrorRatio * 100,
          p95_ms: promP95 * 1000,
          within_1s: (1 - promSlow) * 100,
        },
      };
      // deno-lint-ignore no-console
      console.log(`sla vs Prometheus: ${JSON.stringify(report)}`);
      const within = (a: number, b: number, d: number) => Math.abs(a - b) <= d;
      assert(
        within(hour.error_rate.percent!, promErrorRatio * 100, 0.1),
        `error rate: ${JSON.stringify(report)}`,
      );
      assert(
        within(hour.availability.percent!, (1 - promErrorRatio) * 100, 0.1),
        `availability: ${JSON.stringify(report)}`,
      );
      assert(
        within(hour.latency.p95_ms!, promP95 * 1000, 0.02 * promP95 * 1000),
        `p95: ${JSON.stringify(report)}`,
      );
      assert(
        within(hour.latency.within_target_percent!, (1 - promSlow) * 100, 0.1),
        `requests within 1 s: ${JSON.stringify(report)}`,
      );
    } finally {
      await stopChild(prometheus);
      await server.shutdown();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
