/**
 * Issue 12: `/docs` works without internet. vigil runs as a process; a headless Chromium (Debian's
 * `chromium`, driven by puppeteer-core) that can reach loopback only opens `/docs` and must show
 * vigil's operations, with every request answered by vigil itself and none blocked by the page's
 * Content-Security-Policy. Skipped when Chromium is not installed (.ci/run installs it).
 */
import type { Browser } from "puppeteer-core";
import { assert, assertEquals } from "./support/assert.ts";
import { findChromium, launchChromium, loopbackPage } from "./support/chromium.ts";
import { testDatabase } from "./support/database.ts";
import { startVigil, type VigilProcess } from "./support/process.ts";

const chromium = findChromium();

interface OpenApiDoc {
  paths: Record<string, Record<string, { summary?: string }>>;
}

Deno.test({
  name: chromium
    ? "docs: /docs renders vigil's operations in a browser with no internet"
    : "docs: /docs renders vigil's operations in a browser (skipped: needs chromium)",
  ignore: !chromium,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const started = performance.now();
    await using db = await testDatabase();
    let vigil: VigilProcess | undefined;
    let browser: Browser | undefined;
    try {
      vigil = await startVigil({ DATABASE_URL: db.url });
      const origin = vigil.url;
      const doc = await (await fetch(`${origin}/openapi.json`)).json() as OpenApiDoc;
      const operations = Object.values(doc.paths).flatMap((item) => Object.values(item));

      browser = await launchChromium(chromium!);
      const { page, seen, offsite, failed, errors } = await loopbackPage(browser, origin);
      const assets: { url: string; status: number; type: string; cache: string }[] = [];
      page.on("response", (r) => {
        if (!r.url().startsWith(`${origin}/docs/assets/`)) return;
        const h = r.headers();
        assets.push({
          url: r.url(),
          status: r.status(),
          type: h["content-type"] ?? "",
          cache: h["cache-control"] ?? "",
        });
      });

      const response = await page.goto(`${origin}/docs`, { waitUntil: "load" });
      assertEquals(response?.status(), 200);
      const csp = response?.headers()["content-security-policy"] ?? "";
      assert(csp.includes("script-src 'self'") && !csp.includes("unsafe"), `CSP: ${csp}`);
      // Every operation gets a block (one per tag it has). On a blank page, say why.
      await page.waitForFunction(
        `document.querySelectorAll(".opblock").length >= ${operations.length}`,
        { timeout: 10_000 },
      ).catch(async (error) => {
        const csp = await page.evaluate("window.__cspViolations").catch(() => "?");
        throw new Error(
          `Swagger UI did not render ${operations.length} operations: ${error}\n` +
            JSON.stringify({ offsite, failed, errors, csp }, null, 2),
        );
      });

      const text = await page.evaluate("document.body.innerText") as string;
      for (const path of ["/v1/alerts", "/v1/patterns/{id}/run", "/v1/silences", "/health/ready"]) {
        assert(text.includes(path), `${path} is on the page`);
      }
      const alerts = doc.paths["/v1/alerts"];
      for (const summary of [alerts.get.summary, alerts.post.summary]) {
        assert(summary && text.includes(summary), `summary ${JSON.stringify(summary)} is shown`);
      }

      const specLinks = await page.evaluate(
        `[...document.querySelectorAll('a[href="/openapi.json"]')]
        .filter((a) => a.offsetParent !== null && a.textContent.includes("/openapi.json")).length`,
      );
      assert((specLinks as number) >= 1, "a visible link to /openapi.json");

      assertEquals(offsite, [], "no request left loopback");
      assert(seen.includes(`${origin}/openapi.json`), "the document was loaded from vigil");
      assert(
        seen.some((u) => u.startsWith(`${origin}/docs/assets/`) && u.endsWith(".js")),
        "the UI's script came from vigil",
      );
      assertEquals(failed, [], "failed requests");
      const types: Record<string, RegExp> = {
        js: /^text\/javascript/,
        css: /^text\/css/,
        png: /^image\/png$/,
      };
      assert(assets.length >= 4, `assets: ${JSON.stringify(assets)}`);
      for (const a of assets) {
        assertEquals(a.status, 200, a.url);
        assert(types[a.url.split(".").pop()!]?.test(a.type), `${a.url}: ${a.type}`);
        assertEquals(a.cache, "public, max-age=31536000, immutable", a.url);
      }
      assertEquals(
        await page.evaluate("window.__cspViolations"),
        [],
        "CSP violations",
      );
      assertEquals(errors, [], "page errors");
    } finally {
      await browser?.close();
      await vigil?.stop();
    }
    const seconds = (performance.now() - started) / 1000;
    assert(seconds < 30, `took ${seconds.toFixed(1)} s`);
  },
});
