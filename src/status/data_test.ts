import postgres from "postgres";
import { assert, assertEquals } from "../../tests/support/assert.ts";
import { HOUR, MINUTE } from "../../tests/support/clock.ts";
import { dbTest } from "../../tests/support/database.ts";
import type { Sql } from "../db/database.ts";
import { overallState, RESOLVED_INCIDENTS, statusData } from "./data.ts";
import { BAR_DAYS, DEFAULT_GROUP, SPARK_HOURS } from "./schema.ts";
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
const NOW = new Date("2026-03-15T12:30:00.000Z");
const CONFIG = { STATUS_PAGE_TITLE: "Acme status", STATUS_PAGE_DESCRIPTION: "Our services" };
const ago = (ms: number) => new Date(NOW.getTime() - ms);

Deno.test("status: the overall state rule", () => {
  const a = (state: "ok" | "pending" | "firing" | "error", severity = "warning") => ({
    state,
    severity,
  });
  assertEquals(overallState([]), "operational");
  assertEquals(overallState([a("ok"), a("ok", "critical")]), "operational");
  assertEquals(overallState([a("ok"), a("pending")]), "degraded");
  assertEquals(overallState([a("ok"), a("error", "critical")]), "degraded");
  assertEquals(overallState([a("error"), a("firing")]), "partial_outage");
  assertEquals(overallState([a("firing", "info"), a("pending", "critical")]), "partial_outage");
  assertEquals(overallState([a("firing"), a("firing", "critical")]), "major_outage");
});

async function world(sql: Sql) {
  const user = await owner(sql, ago(100 * DAY));
  const made = ago(100 * DAY);
  const api = await makeAlert(sql, user, { name: "API", group: "Core" }, made);
  const web = await makeAlert(
    sql,
    user,
    { name: "Website", group: "Core", state: "pending" },
    made,
  );
  const search = await makeAlert(sql, user, { name: "Search" }, made);
  const mail = await makeAlert(sql, user, { name: "Mail", group: "Edge", state: "error" }, made);
  const hidden = await makeAlert(
    sql,
    user,
    { name: "Private payroll check", public: false, group: "Core", severity: "critical" },
    made,
  );
  return { user, api, web, search, mail, hidden };
}

dbTest("status data: public alerts only, grouped, with states, bars and latency", async (t, db) => {
  const { sql } = db;
  const w = await world(sql);
  // API: today 3 evaluations, 1 failed; 5 days ago 10 good ones; 100 days ago (outside the bar).
  await checks(sql, w.api, ago(2 * HOUR), 3, 1, 200);
  await checks(sql, w.api, ago(5 * DAY), 10, 0, 50);
  await checks(sql, w.api, ago(100 * DAY), 5, 5);
  await checks(sql, w.hidden, ago(HOUR), 4, 4);
  await openEpisode(sql, w.search, ago(90 * MINUTE));
  await openEpisode(sql, w.hidden, ago(30 * MINUTE));

  const data = await statusData(sql, NOW, CONFIG);
  const text = JSON.stringify(data);

  await t.step("nothing private: no private alert, condition, URL or other label", () => {
    for (const secret of ["Private payroll", w.hidden, SECRET_URL, "secret-health", SECRET_LABEL]) {
      assert(!text.includes(secret), `${secret} is not in the data`);
    }
    for (const key of ["condition", "severity", "user_id", "labels", "threshold", "value"]) {
      assert(!text.includes(`"${key}"`), `no ${key}`);
    }
  });

  await t.step("title, description, groups by label (default group), sorted", () => {
    assertEquals(data.title, "Acme status");
    assertEquals(data.description, "Our services");
    assertEquals(data.generated_at, NOW.toISOString());
    assertEquals(
      data.groups.map((g) => [g.name, g.alerts.map((a) => a.name)]),
      [["Core", ["API", "Website"]], ["Edge", ["Mail"]], [DEFAULT_GROUP, ["Search"]]],
    );
  });

  const byName = Object.fromEntries(data.groups.flatMap((g) => g.alerts).map((a) => [a.name, a]));

  await t.step("states as status and text", () => {
    assertEquals(
      Object.values(byName).map((a) => [a.name, a.state, a.status, a.status_text]),
      [
        ["API", "ok", "operational", "Operational"],
        ["Website", "pending", "degraded", "Degraded"],
        ["Mail", "error", "unknown", "Unknown"],
        ["Search", "firing", "down", "Down"],
      ],
    );
    // Search fires with a warning severity: a partial outage (the private critical one fires
    // too, and does not count).
    assertEquals(data.overall, { state: "partial_outage", text: "Partial outage" });
  });

  await t.step("90 days, oldest first, today last; no data marked null", () => {
    const days = byName.API.days;
    assertEquals(days.length, BAR_DAYS);
    assertEquals(days[BAR_DAYS - 1].date, "2026-03-15");
    assertEquals(days[0].date, "2025-12-16");
    assertEquals(days[BAR_DAYS - 1], {
      date: "2026-03-15",
      evaluations: 3,
      ok: 2,
      uptime_percent: 66.6667,
    });
    assertEquals(days[BAR_DAYS - 6], {
      date: "2026-03-10",
      evaluations: 10,
      ok: 10,
      uptime_percent: 100,
    });
    assertEquals(days.filter((d) => d.uptime_percent === null).length, BAR_DAYS - 2);
    assertEquals(byName.API.uptime_90d_percent, 92.3077); // 12 of 13
    assertEquals(byName.Search.uptime_90d_percent, null);
    for (const a of Object.values(byName)) assertEquals(a.days.length, BAR_DAYS);
  });

  await t.step("24 hourly latency points, oldest first", () => {
    const hours = byName.API.latency_24h;
    assertEquals(hours.length, SPARK_HOURS);
    assertEquals(hours[SPARK_HOURS - 1].start, "2026-03-15T12:00:00.000Z");
    assertEquals(hours[0].start, "2026-03-14T13:00:00.000Z");
    assertEquals(hours[SPARK_HOURS - 3], {
      start: "2026-03-15T10:00:00.000Z",
      evaluations: 3,
      latency_avg_ms: 200,
    });
    assertEquals(hours.filter((h) => h.latency_avg_ms !== null).length, 1);
    assertEquals(byName.API.latency_24h_avg_ms, 200);
    assertEquals(byName.Website.latency_24h_avg_ms, null);
  });

  await t.step("ongoing incidents: public alerts' open episodes, with their duration", () => {
    assertEquals(data.incidents.ongoing, [{
      alert_id: w.search,
      alert_name: "Search",
      group: DEFAULT_GROUP,
      started_at: ago(90 * MINUTE).toISOString(),
      ended_at: null,
      duration_seconds: 90 * 60,
    }]);
  });
});

dbTest("status data: the last 10 resolved incidents, most recent first", async (_t, db) => {
  const { sql } = db;
  const w = await world(sql);
  // 12 incidents of API, one a day, each lasting i minutes; one of the private alert, latest.
  for (let i = 1; i <= 12; i++) {
    await closedEpisode(sql, w.api, ago(i * DAY), ago(i * DAY - i * MINUTE));
  }
  await closedEpisode(sql, w.mail, ago(3 * DAY + HOUR), ago(3 * DAY - HOUR));
  await closedEpisode(sql, w.hidden, ago(2 * HOUR), ago(HOUR));
  // Ends after `now` (a clock behind the database's): not resolved yet at `now`.
  await closedEpisode(sql, w.web, ago(HOUR), new Date(NOW.getTime() + HOUR));

  const { incidents } = await statusData(sql, NOW, CONFIG);
  assertEquals(incidents.ongoing, []);
  assertEquals(incidents.resolved.length, RESOLVED_INCIDENTS);
  assertEquals(
    incidents.resolved.map((i) => [i.alert_name, i.duration_seconds / 60]),
    [
      ["API", 1],
      ["API", 2],
      ["Mail", 120],
      ["API", 3],
      ["API", 4],
      ["API", 5],
      ["API", 6],
      ["API", 7],
      ["API", 8],
      ["API", 9],
    ],
  );
  const ends = incidents.resolved.map((i) => i.ended_at!);
  assertEquals(ends, [...ends].sort().reverse());
  assertEquals(incidents.resolved[2].group, "Edge");
});

dbTest("status data: the number of statements does not grow with the alerts", async (_t, db) => {
  let statements = 0;
  const counted = postgres(db.url, {
    max: 1,
    onnotice: () => {},
    debug: () => void statements++,
  });
  try {
    const user = await owner(db.sql, ago(DAY));
    const count = async () => {
      statements = 0;
      await statusData(counted, NOW, CONFIG);
      return statements;
    };
    const empty = await count();
    const a = await makeAlert(db.sql, user, { name: "a0" }, ago(DAY));
    await checks(db.sql, a, ago(HOUR), 2);
    await openEpisode(db.sql, a, ago(HOUR));
    const one = await count();
    for (let i = 1; i < 25; i++) {
      const id = await makeAlert(db.sql, user, { name: `a${i}`, group: `g${i % 3}` }, ago(DAY));
      await checks(db.sql, id, ago(HOUR), 2);
      await closedEpisode(db.sql, id, ago(2 * HOUR), ago(HOUR));
    }
    const many = await count();
    assertEquals(many, one, `${one} statements for 1 alert, ${many} for 25`);
    assert(empty <= one && one <= 8, `statements: ${empty}, ${one}`);
  } finally {
    await counted.end();
  }
});
