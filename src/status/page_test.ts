import { assert, assertEquals, assertMatch } from "../../tests/support/assert.ts";
import { testApp } from "../../tests/support/app.ts";
import { HOUR, ManualClock, MINUTE } from "../../tests/support/clock.ts";
import { dbTest } from "../../tests/support/database.ts";
import { renderStatusPage } from "./page.tsx";
import { BAR_DAYS, type StatusData } from "./schema.ts";
import { STATUS_CACHE_MS } from "./routes.ts";
import {
  checks,
  closedEpisode,
  makeAlert,
  openEpisode,
  owner,
  SECRET_LABEL,
  SECRET_URL,
} from "./test_fixtures.ts";

const DAY = 24 * HOUR;
const ENV = {
  STATUS_PAGE_TITLE: "Acme <status>",
  STATUS_PAGE_DESCRIPTION: "Everything Acme runs",
};

async function setup(db: Parameters<typeof testApp>[0]) {
  // Midday: today has a morning of checks.
  const app = await testApp(db, { env: ENV, clock: new ManualClock("2026-01-01T12:00:00.000Z") });
  const { sql, clock } = app;
  const ago = (ms: number) => new Date(clock.now().getTime() - ms);
  const user = await owner(sql, ago(100 * DAY));
  const made = ago(100 * DAY);
  const api = await makeAlert(sql, user, { name: "API", group: "Core" }, made);
  const db_ = await makeAlert(
    sql,
    user,
    { name: "Database", group: "Core", severity: "critical" },
    made,
  );
  const web = await makeAlert(sql, user, { name: "Web & <Site>", state: "pending" }, made);
  const hidden = await makeAlert(
    sql,
    user,
    { name: "Private payroll check", public: false, severity: "critical" },
    made,
  );
  await checks(sql, api, ago(3 * HOUR), 10, 1);
  await checks(sql, api, ago(10 * DAY), 20);
  await checks(sql, hidden, ago(2 * HOUR), 3, 3);
  await openEpisode(sql, db_, ago(2 * HOUR));
  await openEpisode(sql, hidden, ago(HOUR));
  await closedEpisode(sql, api, ago(3 * DAY), ago(3 * DAY - 25 * MINUTE));
  await closedEpisode(sql, hidden, ago(4 * DAY), ago(4 * DAY - 5 * MINUTE));
  return { app, api, db: db_, web, hidden, user, ago };
}

const cells = (html: string, alertId: string) => {
  const start = html.indexOf(`data-alert-id="${alertId}"`);
  const end = html.indexOf("</li>", start);
  return [...html.slice(start, end).matchAll(/<rect class="day day-(\w+)"/g)].map((m) => m[1]);
};

dbTest("GET /status: the public alerts, their states, bars and incidents", async (t, db) => {
  const s = await setup(db);
  const res = await s.app.request("GET", "/status", { key: null });
  const html = res.body as string;

  await t.step("HTML, its own CSP, no script, refreshes every minute", () => {
    assertEquals(res.status, 200);
    assertEquals(res.headers.get("content-type"), "text/html; charset=utf-8");
    const csp = res.headers.get("content-security-policy") ?? "";
    assert(csp.includes("default-src 'none'"), csp);
    assert(csp.includes("style-src 'unsafe-inline'"), csp);
    assert(!csp.includes("script-src"), csp);
    assertMatch(res.headers.get("cache-control") ?? "", /max-age=\d+/);
    assertEquals(res.headers.get("x-content-type-options"), "nosniff"); // secure-headers still
    assert(html.startsWith('<!doctype html><html lang="en">'));
    assert(html.includes('<meta http-equiv="refresh" content="60">'), "auto-refresh");
    assert(!/<script/i.test(html), "no script");
    assert(!/(src|href)="(https?:)?\/\//.test(html), "nothing from elsewhere");
  });

  await t.step("gzipped for clients that take it (compressed once, with the data)", async () => {
    assertEquals(res.headers.get("content-encoding"), null, "none asked, none given");
    assertEquals(res.headers.get("vary"), "Accept-Encoding");
    const gz = await s.app.app.request("/status", { headers: { "accept-encoding": "br, gzip" } });
    assertEquals(gz.headers.get("content-encoding"), "gzip");
    assertEquals(gz.headers.get("vary"), "Accept-Encoding");
    const bytes = new Uint8Array(await gz.arrayBuffer());
    assert(bytes.length * 5 < html.length, `${bytes.length} gzipped bytes of ${html.length}`);
    const plain = await new Response(
      new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip")),
    ).text();
    assertEquals(plain, html);
    const refused = await s.app.app.request("/status", {
      headers: { "accept-encoding": "gzip;q=0, identity" },
    });
    assertEquals(refused.headers.get("content-encoding"), null);
    assertEquals(await refused.text(), html);
  });

  await t.step("title (escaped), description, groups, state texts", () => {
    assert(html.includes("<title>Acme &lt;status&gt;</title>"));
    assert(html.includes("<h1>Acme &lt;status&gt;</h1>"));
    assert(html.includes("Everything Acme runs"));
    assert(html.includes("Web &amp; &lt;Site&gt;"), "names are escaped");
    assert(!html.includes("<Site>"));
    assertMatch(html, /<h2 id="group-0">Core<\/h2>[\s\S]*<h2 id="group-1">Services<\/h2>/);
    const state = (id: string) =>
      new RegExp(`data-alert-id="${id}" data-status="(\\w+)"[\\s\\S]*?state-text">(\\w+)<`)
        .exec(html)?.slice(1);
    assertEquals(state(s.api), ["operational", "Operational"]);
    assertEquals(state(s.db), ["down", "Down"]);
    assertEquals(state(s.web), ["degraded", "Degraded"]);
    // A critical public alert fires.
    assert(html.includes('data-state="major_outage"'));
    assertMatch(html, /<span>Major outage<\/span>/);
  });

  await t.step("90 cells per alert, coloured by uptime, with their figures", () => {
    for (const id of [s.api, s.db, s.web]) assertEquals(cells(html, id).length, BAR_DAYS);
    const api = cells(html, s.api);
    assertEquals(api.at(-1), "bad"); // today: 9 of 10
    assertEquals(api.at(-11), "good");
    assertEquals(api.filter((c) => c === "none").length, BAR_DAYS - 2);
    assert(html.includes("<title>2026-01-01: 90.00% uptime, 10 evaluations</title>"), "today");
    assert(html.includes("<title>2025-12-22: 100% uptime, 20 evaluations</title>"));
    assert(html.includes("<title>2025-12-21: no data</title>"));
    assert(html.includes("Uptime colours"), "a legend");
  });

  await t.step("a latency sparkline with its figures in words", () => {
    assertMatch(html, /<svg class="spark"[^>]*role="img"/);
    assert(html.includes("lowest 100 ms, highest 100 ms, latest 100 ms"));
    assert(html.includes("No latency data in the last 24 hours"));
  });

  await t.step("ongoing and resolved incidents of public alerts only", () => {
    const ongoing = html.slice(html.indexOf('id="ongoing"'), html.indexOf('id="group-0"'));
    assert(ongoing.includes("Database"));
    assert(ongoing.includes('<time datetime="2026-01-01T10:00:00.000Z">2026-01-01 10:00 UTC'));
    assert(ongoing.includes("for 2 h"));
    const past = html.slice(html.indexOf('id="resolved"'));
    assert(past.includes("API") && past.includes("lasted 25 min"));
  });

  await t.step("nothing private", () => {
    for (
      const secret of ["Private payroll", s.hidden, SECRET_URL, "internal.example", SECRET_LABEL]
    ) {
      assert(!html.includes(secret), `${secret} is not on the page`);
    }
  });
});

/** The background recomputation is a few statements away: polls a bounded number of turns. */
async function eventually<T>(check: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const value = await check();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("the recomputed value never came");
}

dbTest("GET /status.json: the same data, nothing private, cached", async (_t, db) => {
  const s = await setup(db);
  const res = await s.app.request("GET", "/status.json", { key: null });
  assertEquals(res.status, 200);
  const data = res.body as StatusData;
  const text = JSON.stringify(data);
  for (const secret of ["Private payroll", s.hidden, SECRET_URL, SECRET_LABEL, '"condition"']) {
    assert(!text.includes(secret), `${secret} is not in /status.json`);
  }
  assertEquals(data.overall.state, "major_outage");
  assertEquals(data.groups.map((g) => g.alerts.length), [2, 1]);
  assertEquals(data.incidents.ongoing.map((i) => i.alert_id), [s.db]);
  assertEquals(data.incidents.resolved.map((i) => i.alert_id), [s.api]);

  // The page renders exactly these data.
  const html = (await s.app.request("GET", "/status", { key: null })).body as string;
  assertEquals(html, renderStatusPage(data));

  // A new public alert shows once the cache period has passed (the first request after it gets
  // the old page at once and has the new one computed), not before.
  const late = await makeAlert(s.app.sql, s.user, { name: "Late" }, s.app.clock.now());
  s.app.clock.advance(STATUS_CACHE_MS - 1);
  const cached = (await s.app.request("GET", "/status.json", { key: null })).body as StatusData;
  assertEquals(cached.generated_at, data.generated_at);
  assert(!JSON.stringify(cached).includes(late));
  s.app.clock.advance(1);
  const stale = (await s.app.request("GET", "/status.json", { key: null })).body as StatusData;
  assertEquals(stale.generated_at, data.generated_at);
  const fresh = await eventually(async () => {
    const body = (await s.app.request("GET", "/status.json", { key: null })).body as StatusData;
    return JSON.stringify(body).includes(late) ? body : undefined;
  });
  assert(fresh.generated_at !== data.generated_at);
});

dbTest(
  "badges: SVG for public alerts and health; 404 private or unknown; 422 window",
  async (t, db) => {
    const s = await setup(db);
    const get = (path: string) => s.app.request("GET", path, { key: null });

    await t.step("health", async () => {
      const res = await get("/status/badge/health.svg");
      assertEquals(res.status, 200);
      assertEquals(res.headers.get("content-type"), "image/svg+xml; charset=utf-8");
      assertEquals(res.headers.get("cache-control"), "public, max-age=60");
      assertEquals(
        res.headers.get("cross-origin-resource-policy"),
        "cross-origin",
        "embeddable in other sites' pages",
      );
      const svg = res.body as string;
      assert(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
      assert(svg.includes("<title>Acme &lt;status&gt;: Major outage</title>"), svg);
      assert(svg.includes(">major outage</text>"));
    });

    await t.step("uptime of a public alert, 30 d by default, other windows", async () => {
      const res = await get(`/status/badge/${s.api}/uptime.svg`);
      assertEquals(res.status, 200);
      const svg = res.body as string;
      assert(svg.includes(">uptime 30d</text>"), svg);
      assert(svg.includes(">96.66%</text>"), svg); // 29 of 30
      assert(svg.includes("<title>API: 96.66% uptime over the last 30 days</title>"));
      const day = (await get(`/status/badge/${s.api}/uptime.svg?window=24h`)).body as string;
      assert(day.includes(">90.00%</text>"), day);
      const none = (await get(`/status/badge/${s.web}/uptime.svg?window=7d`)).body as string;
      assert(none.includes(">no data</text>"), none);
    });

    await t.step("private, unknown and malformed ids: the same 404", async () => {
      const answers = [];
      for (
        const id of [
          s.hidden,
          crypto.randomUUID(),
          "not-a-uuid",
          "x".repeat(500),
          "%ZZ",
          "%00",
          "%C3%28",
        ]
      ) {
        const res = await get(`/status/badge/${id}/uptime.svg?window=7d`);
        assertEquals(res.status, 404, id);
        assertEquals(res.headers.get("content-type"), "application/problem+json");
        answers.push(res.body.detail);
        assert(!JSON.stringify(res.body).includes("Private"));
      }
      assertEquals(new Set(answers).size, 1, "one answer for all");
    });

    await t.step("a bad window: 422 problem naming it", async () => {
      for (const w of ["1h", "1y", "", "30D"]) {
        const res = await get(`/status/badge/${s.api}/uptime.svg?window=${w}`);
        assertEquals(res.status, 422, w);
        assertEquals(res.headers.get("content-type"), "application/problem+json");
        assertEquals(res.body.errors[0].path, "query.window");
      }
    });
  },
);

Deno.test("renderStatusPage: 100 alerts, 90 cells each", () => {
  const days = Array.from({ length: BAR_DAYS }, (_, i) => ({
    date: new Date(Date.UTC(2026, 0, 1 + i)).toISOString().slice(0, 10),
    evaluations: 1440,
    ok: 1440 - (i % 7),
    uptime_percent: ((1440 - (i % 7)) / 1440) * 100,
  }));
  const hours = Array.from({ length: 24 }, (_, i) => ({
    start: new Date(Date.UTC(2026, 3, 1, i)).toISOString(),
    evaluations: 60,
    latency_avg_ms: i % 5 === 0 ? null : 100 + i,
  }));
  const alerts = Array.from({ length: 100 }, (_, i) => ({
    id: crypto.randomUUID(),
    name: `service ${i}`,
    group: `group ${i % 4}`,
    state: "ok" as const,
    status: "operational" as const,
    status_text: "Operational",
    since: "2026-01-01T00:00:00.000Z",
    uptime_90d_percent: 99.95,
    days,
    latency_24h: hours,
    latency_24h_avg_ms: 110,
  }));
  const html = renderStatusPage({
    title: "t",
    description: null,
    generated_at: "2026-04-01T00:00:00.000Z",
    overall: { state: "operational", text: "All systems operational" },
    groups: [0, 1, 2, 3].map((g) => ({
      name: `group ${g}`,
      alerts: alerts.filter((a) => a.group === `group ${g}`),
    })),
    incidents: { ongoing: [], resolved: [] },
  });
  assertEquals(html.match(/<rect class="day /g)?.length, 100 * BAR_DAYS);
  assertEquals(html.match(/<svg class="spark"/g)?.length, 100);
});
