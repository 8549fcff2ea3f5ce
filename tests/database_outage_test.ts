/**
 * The database goes away under traffic and comes back: a real vigil process on its own real
 * PostgreSQL. While it is away, /metrics answers at once with `vigil_database_up 0`, API requests
 * get a 503 `database unavailable` problem within DB_TIMEOUT_MS (none hangs), and after the
 * restart everything answers again by itself.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { startCluster, which } from "./support/cluster.ts";
import { startVigil } from "./support/process.ts";
import { parseMetrics, sampleValue } from "./support/prometheus_text.ts";

const TIMEOUT_MS = 2000;
const ADMIN_KEY = "vgl_" + "o".repeat(40);

Deno.test({
  name: "outage: a stopped database gives fast 503s and healthy scrapes, then recovers",
  ignore: !(which("initdb") && which("pg_ctl")),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const cluster = await startCluster({ durable: false, prefix: "vigil-outage-" });
    try {
      await using vigil = await startVigil({
        DATABASE_URL: cluster.url,
        ADMIN_API_KEY: ADMIN_KEY,
        DB_TIMEOUT_MS: String(TIMEOUT_MS),
        AUTH_CACHE_SECONDS: "0", // every request reads the database
      });
      const get = async (path: string) => {
        const started = performance.now();
        const res = await fetch(`${vigil.url}${path}`, {
          headers: { authorization: `Bearer ${ADMIN_KEY}` },
          signal: AbortSignal.timeout(30_000),
        });
        const body = await res.text();
        return { status: res.status, body, ms: performance.now() - started, res };
      };
      const up = async () =>
        sampleValue(parseMetrics((await get("/metrics")).body), "vigil_database_up", {});
      const waitFor = async (want: number) => {
        // The monitor pings every 5 s: poll the process (no test clock reaches it).
        for (let i = 0; i < 100 && (await up()) !== want; i++) {
          await new Promise((r) => setTimeout(r, 200));
        }
        assertEquals(await up(), want);
      };
      /** Requests succeed again (polled: the database comes back in its own time). */
      const answersAgain = async () => {
        let status = 0;
        for (let i = 0; i < 50 && status !== 200; i++) {
          status = (await get("/v1/me")).status;
          if (status !== 200) await new Promise((r) => setTimeout(r, 200));
        }
        assertEquals(status, 200);
        await waitFor(1);
      };

      await t.step("healthy; every log line says which service, version and instance", async () => {
        assertEquals((await get("/v1/me")).status, 200);
        const first = vigil.logs[0];
        assertEquals(first.service, "vigil");
        assert(typeof first.version === "string" && /:\d+$/.test(String(first.instance)));
        await waitFor(1);
      });

      await cluster.pause();
      await t.step("while the database is stopped: fast 503s, scrapes answer", async () => {
        const answers = await Promise.all(
          Array.from({ length: 20 }, (_, i) => get(i % 2 ? "/v1/me" : "/v1/alerts")),
        );
        for (const a of answers) {
          assertEquals(a.status, 503, a.body);
          assert(a.ms < TIMEOUT_MS + 1000, `answered in ${Math.round(a.ms)} ms`);
          const problem = JSON.parse(a.body);
          assertEquals(problem.detail, "database unavailable: try again shortly");
          assertEquals(a.res.headers.get("retry-after"), "5");
        }
        await waitFor(0);
        const scrape = await get("/metrics");
        assertEquals(scrape.status, 200);
        assert(scrape.ms < 1000, `scrape took ${Math.round(scrape.ms)} ms`);
        const ready = await get("/health/ready");
        assertEquals(ready.status, 503);
        const live = await get("/health/live");
        assertEquals(live.status, 200);
      });

      await cluster.resume();
      await t.step("after the restart: answers again, by itself", async () => {
        await answersAgain();
        const unhandled = vigil.logs.filter((l) => String(l.msg).startsWith("unhandled error"));
        assertEquals(unhandled, [], "no request got a 500");
      });
      cluster.freeze();
      try {
        await t.step(
          "a frozen database (a partition: nothing answers, nothing refuses)",
          async () => {
            const answers = await Promise.all(
              Array.from({ length: 10 }, (_, i) => get(i % 2 ? "/v1/me" : "/v1/alerts")),
            );
            for (const a of answers) {
              assertEquals(a.status, 503, a.body);
              // An open connection that never answers is given up after DB_TIMEOUT_MS.
              assert(a.ms < TIMEOUT_MS + 1000, `answered in ${Math.round(a.ms)} ms`);
              assertEquals(JSON.parse(a.body).detail, "database unavailable: try again shortly");
            }
            await waitFor(0);
            const scrape = await get("/metrics");
            assert(scrape.ms < 1000, `scrape took ${Math.round(scrape.ms)} ms`);
            const samples = parseMetrics(scrape.body);
            const unavailable = samples.filter((s) =>
              s.name === "http_requests_total" && s.labels.status === "503"
            ).reduce((n, s) => n + s.value, 0);
            assert(unavailable >= 30, `503s are counted in the HTTP metrics (${unavailable})`);
          },
        );
      } finally {
        cluster.thaw();
      }
      await t.step("thawed: answers again, by itself", async () => {
        await answersAgain();
      });
      assertEquals(await vigil.stop("SIGTERM"), 0);
    } finally {
      cluster.stop();
    }
  },
});
