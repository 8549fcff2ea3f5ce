/**
 * Issue 11: the public status page in a real browser. vigil runs as a process on a throwaway
 * database; public alerts (and a private one) are created through the API, and their states,
 * episodes and check history are then set in SQL. A headless Chromium (Debian's `chromium`,
 * driven by puppeteer-core) that can reach loopback only opens `/status`: every public alert and
 * its state are visible with 90 day cells, the ongoing incident is listed, the private alert is
 * absent, every text has a contrast of at least 4.5:1, nothing fails or is blocked, and the page
 * is the same with JavaScript disabled. A screenshot goes to tests/artifacts/status.png.
 * Skipped when Chromium is not installed (.ci/run installs it).
 */
import type { Browser } from "puppeteer-core";
import { recordChecks } from "../src/uptime/store.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { findChromium, launchChromium, loopbackPage } from "./support/chromium.ts";
import { testDatabase } from "./support/database.ts";
import { startVigil, type VigilProcess } from "./support/process.ts";

const chromium = findChromium();
const ADMIN_KEY = "vgl_" + "s".repeat(40);
const ARTIFACTS = new URL("./artifacts/", import.meta.url);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Never evaluated by the process (disabled): the test sets their state. */
const condition = {
  capability: "data.compare",
  args: { value: 2, op: ">", threshold: 1 },
  path: "result",
  op: "==",
  threshold: true,
};

const ALERTS = [
  { name: "Public API", group: "Core", state: "ok", text: "Operational" },
  { name: "Checkout", group: "Core", state: "firing", text: "Down" },
  { name: "Search index", group: undefined, state: "pending", text: "Degraded" },
  { name: "Mail relay", group: "Edge", state: "error", text: "Unknown" },
] as const;
const PRIVATE_NAME = "Private payroll export";

// WCAG 2 contrast of every rendered text against its effective background, in the page (a
// string: the tests are type-checked without the DOM library).
const CONTRAST = `(() => {
  const parse = (c) => {
    const m = /rgba?\\(([^)]+)\\)/.exec(c);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const over = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a),
    g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a),
    a: 1,
  });
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let bg = { r: 255, g: 255, b: 255, a: 1 };
    for (const layer of layers.reverse()) bg = over(layer, bg);
    return bg;
  };
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n.textContent.trim();
    const el = n.parentElement;
    if (!text || !el || el.closest("svg")) continue; // SVG <title>s are tooltips, not drawn
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (style.visibility === "hidden" || box.width === 0 || box.height === 0) continue;
    const bg = background(el);
    const fg = over(parse(style.color), bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    out.push({ text: text.slice(0, 40), ratio: (hi + 0.05) / (lo + 0.05), color: style.color,
      background: "rgb(" + [bg.r, bg.g, bg.b].map(Math.round).join(", ") + ")" });
  }
  return out;
})()`;

interface Contrast {
  text: string;
  ratio: number;
  color: string;
  background: string;
}

interface Seen {
  text: string;
  cells: Record<string, { days: number; titled: number }>;
  states: Record<string, string>;
  ongoing: string;
  scripts: number;
}

const SEEN = (ids: string[]) =>
  `(() => {
  const cells = {}, states = {};
  for (const id of ${JSON.stringify(ids)}) {
    const li = document.querySelector('[data-alert-id="' + id + '"]');
    if (!li) continue;
    const days = li.querySelectorAll("svg.bar rect.day");
    cells[id] = { days: days.length,
      titled: [...days].filter((r) => r.querySelector("title")?.textContent.length > 8).length };
    states[id] = li.querySelector(".state-text")?.innerText ?? "";
  }
  return { text: document.body.innerText, cells, states,
    ongoing: document.getElementById("ongoing-incidents")?.innerText ?? "",
    scripts: document.querySelectorAll("script").length };
})()`;

Deno.test({
  name: chromium
    ? "status page: public alerts, states, bars and incidents in a browser, with or without JS"
    : "status page: in a browser (skipped: needs chromium)",
  ignore: !chromium,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const started = performance.now();
    await using db = await testDatabase();
    let vigil: VigilProcess | undefined;
    let browser: Browser | undefined;
    try {
      vigil = await startVigil({
        DATABASE_URL: db.url,
        ADMIN_API_KEY: ADMIN_KEY,
        STATUS_PAGE_TITLE: "Acme status",
        STATUS_PAGE_DESCRIPTION: "The services Acme runs for you",
      });
      const origin = vigil.url;
      const create = async (body: Record<string, unknown>) => {
        const res = await fetch(`${origin}/v1/alerts`, {
          method: "POST",
          headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
          body: JSON.stringify({ condition, enabled: false, ...body }),
        });
        const answer = await res.json();
        assertEquals(res.status, 201, JSON.stringify(answer));
        return answer.id as string;
      };

      const ids: string[] = [];
      for (const a of ALERTS) {
        ids.push(
          await create({
            name: a.name,
            public: true,
            severity: a.state === "firing" ? "critical" : "warning",
            ...(a.group ? { labels: { group: a.group } } : {}),
          }),
        );
      }
      const hidden = await create({ name: PRIVATE_NAME, labels: { group: "Core" } });

      // History: 60 days of checks for every alert (one bad day each), and the states.
      const now = Date.now();
      const startOfToday = Math.floor(now / DAY) * DAY;
      const results = [];
      for (const [i, id] of [...ids, hidden].entries()) {
        for (let d = 0; d < 60; d++) {
          const at = startOfToday - d * DAY + 30 * 60_000;
          for (let k = 0; k < 4; k++) {
            results.push({
              alert_id: id,
              at: new Date(Math.min(at + k * 60_000, now - 1000)),
              ok: !(d === 10 + i && k === 0),
              value: 1,
              duration_ms: 40 + 20 * i + 5 * k,
              error: null,
            });
          }
        }
        for (let h = 1; h <= 23; h++) {
          results.push({
            alert_id: id,
            at: new Date(now - h * HOUR),
            ok: true,
            value: 1,
            duration_ms: 60 + 10 * (h % 6),
            error: null,
          });
        }
      }
      await recordChecks(db.sql, results);
      for (const [i, a] of ALERTS.entries()) {
        await db.sql`update alerts set state = ${a.state} where id = ${ids[i]}`;
      }
      const checkout = ids[1];
      const episode = crypto.randomUUID();
      await db.sql`
        insert into alert_episodes (id, alert_id, user_id, started_at, notified)
        select ${episode}, id, user_id, ${new Date(now - 95 * 60_000)}, true
        from alerts where id = ${checkout}`;
      await db.sql`update alerts set episode_id = ${episode} where id = ${checkout}`;
      await db.sql`
        insert into alert_episodes (id, alert_id, user_id, started_at, ended_at, notified)
        select gen_random_uuid(), id, user_id, ${new Date(now - 3 * DAY)},
               ${new Date(now - 3 * DAY + 40 * 60_000)}, true
        from alerts where id = ${ids[0]}`;
      await db.sql`
        update alerts set state = 'firing' where id = ${hidden}`;

      browser = await launchChromium(chromium!);
      const { page, offsite, failed, errors } = await loopbackPage(browser, origin);
      await page.setViewport({ width: 1024, height: 800 });

      const check = async (label: string) => {
        const seen = await page.evaluate(SEEN([...ids, hidden])) as Seen;
        assert(seen.text.includes("Acme status"), `${label}: the title`);
        assert(seen.text.includes("The services Acme runs for you"), `${label}: description`);
        assert(seen.text.includes("Major outage"), `${label}: the overall state`);
        for (const [i, a] of ALERTS.entries()) {
          assert(seen.text.includes(a.name), `${label}: ${a.name} is shown`);
          assertEquals(seen.states[ids[i]], a.text, `${label}: ${a.name}'s state`);
          assertEquals(seen.cells[ids[i]], { days: 90, titled: 90 }, `${label}: ${a.name}'s bar`);
        }
        for (const group of ["Core", "Edge", "Services"]) {
          assert(seen.text.includes(group), `${label}: group ${group}`);
        }
        assert(seen.ongoing.includes("Checkout"), `${label}: the ongoing incident`);
        assert(/Down since .* UTC, for 1 h 3\d min/.test(seen.ongoing), seen.ongoing);
        assert(seen.text.includes("Public API") && seen.text.includes("lasted 40 min"));
        assert(!seen.text.includes(PRIVATE_NAME), `${label}: the private alert is absent`);
        assertEquals(seen.cells[hidden], undefined);
        assertEquals(seen.scripts, 0, "no script");

        const contrast = await page.evaluate(CONTRAST) as Contrast[];
        assert(contrast.length > 30, `${label}: ${contrast.length} texts measured`);
        const low = contrast.filter((c) => c.ratio < 4.5);
        assertEquals(low, [], `${label}: texts under 4.5:1`);
      };

      const response = await page.goto(`${origin}/status`, { waitUntil: "load" });
      assertEquals(response?.status(), 200);
      assertEquals(response?.headers()["content-type"], "text/html; charset=utf-8");
      await check("with JavaScript");
      assertEquals(await page.evaluate("window.__cspViolations"), [], "CSP violations");

      await Deno.mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({
        path: new URL("status.png", ARTIFACTS).pathname as `${string}.png`,
        fullPage: true,
      });

      await page.setJavaScriptEnabled(false);
      const again = await page.reload({ waitUntil: "load" });
      assertEquals(again?.status(), 200);
      await check("without JavaScript");

      assertEquals(offsite, [], "no request left loopback");
      assertEquals(failed, [], "failed requests");
      assertEquals(errors, [], "console errors");
    } finally {
      await browser?.close();
      await vigil?.stop();
    }
    const seconds = (performance.now() - started) / 1000;
    assert(seconds < 60, `took ${seconds.toFixed(1)} s`);
  },
});
