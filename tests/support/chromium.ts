import puppeteer, { type Browser, type Page } from "puppeteer-core";

/** Debian's `chromium` for the browser tests (puppeteer-core): `CHROMIUM_PATH`, or on PATH. */
export function findChromium(): string | undefined {
  const override = Deno.env.get("CHROMIUM_PATH");
  if (override) return override;
  for (const name of ["chromium", "chromium-browser"]) {
    for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
      try {
        if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
      } catch { /* not here */ }
    }
  }
  return undefined;
}

/**
 * Headless Chromium that can reach loopback only: no name but 127.0.0.1 resolves, below the
 * pages' own request interception.
 */
export function launchChromium(executablePath: string): Promise<Browser> {
  return puppeteer.launch({
    executablePath,
    headless: true,
    timeout: 15_000,
    args: [
      "--no-sandbox", // we run as root
      "--disable-dev-shm-usage",
      "--disable-gpu",
      "--no-first-run",
      "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ],
  });
}

/**
 * Collects a page's script errors and console errors into `errors`, and records its CSP
 * violations in `window.__cspViolations` (read them with page.evaluate).
 */
async function watchPage(page: Page, errors: string[]): Promise<void> {
  page.on("pageerror", (error) => errors.push(String(error)));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  // In the page (strings: the tests are type-checked without the DOM library).
  await page.evaluateOnNewDocument(`
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
    });
  `);
}

/** A page whose requests may reach `origin` (and `data:` URLs) only, and what it did. */
export interface LoopbackPage {
  page: Page;
  /** Every URL the page asked for. */
  seen: string[];
  /** URLs elsewhere, refused as if offline. */
  offsite: string[];
  failed: string[];
  /** Script and console errors (watchPage). */
  errors: string[];
}

/** A new page of `browser` that may only reach `origin`, watched by watchPage. */
export async function loopbackPage(browser: Browser, origin: string): Promise<LoopbackPage> {
  const page = await browser.newPage();
  page.setDefaultTimeout(15_000);
  const watched: LoopbackPage = { page, seen: [], offsite: [], failed: [], errors: [] };
  await page.setRequestInterception(true);
  page.on("request", (request) => {
    const url = request.url();
    watched.seen.push(url);
    if (url.startsWith(`${origin}/`) || url.startsWith("data:")) {
      void request.continue();
    } else {
      watched.offsite.push(url);
      void request.abort("internetdisconnected");
    }
  });
  page.on("requestfailed", (request) => watched.failed.push(request.url()));
  await watchPage(page, watched.errors);
  return watched;
}
