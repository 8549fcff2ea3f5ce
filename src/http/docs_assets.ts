/**
 * The interactive API reference at `/docs`: Swagger UI, served by vigil itself from the npm package
 * swagger-ui-dist (pinned in deno.json), so the page works without internet and never loads code
 * from elsewhere.
 *
 * - `GET /docs`: a page that references only `/docs/assets/…` and `/openapi.json`, with a strict
 *   Content-Security-Policy (same origin only: no inline script, no CDN).
 * - `GET /docs/assets/swagger-ui-<version>/<file>`: the package's files, read from disk on first
 *   use and kept in memory; `GET /docs/assets/vigil-docs.<hash>.{js,css}`: the page's own script
 *   and style. Every asset URL changes with its content, so assets are cached for a year
 *   (`immutable`); the page itself is revalidated (`no-cache`) to pick up new URLs.
 *
 * The package is found the way Node finds it (`require.resolve`), so it works with Deno's
 * `node_modules/` (`nodeModulesDir: "auto"`: `deno task dev`, `deno task start`, the compose image)
 * and with the global cache alike. The JSON import below puts the package in the module graph, so
 * `deno run` / `deno install` always fetch it.
 */
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { Hono } from "hono";
import swaggerUiPackage from "swagger-ui-dist/package.json" with { type: "json" };
import type { AppEnv } from "./env.ts";

const SPEC_URL = "/openapi.json";
const ASSETS = "/docs/assets";
const IMMUTABLE = "public, max-age=31536000, immutable";

/** The only files of the package that are served, with their content types. */
const PACKAGE_FILES: Record<string, string> = {
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
  "swagger-ui-bundle.js.map": "application/json; charset=utf-8",
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui.css.map": "application/json; charset=utf-8",
  "favicon-32x32.png": "image/png",
  "favicon-16x16.png": "image/png",
};

/** Same origin only. `data:` images: Swagger UI's CSS draws its icons as inline SVG data URLs. */
export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'self'",
].join("; ");

// Reads its settings from the page (no inline script needed). The validator badge would send the
// document to validator.swagger.io: off.
const INIT_JS = `"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
})();
`;

const STYLE_CSS = `.vigil-docs-header {
  max-width: 1460px;
  margin: 0 auto;
  padding: 16px 20px 0;
  box-sizing: border-box;
  font-family: sans-serif;
  font-size: 14px;
  color: #3b4151;
}
.vigil-docs-header a { color: #4990e2; }
`;

interface Asset {
  contentType: string;
  body: () => Promise<Uint8Array<ArrayBuffer>>;
}

/** Where swagger-ui-dist's files are on disk. */
export function swaggerUiDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve("swagger-ui-dist/package.json"));
}

function hashed(name: string, ext: string, text: string): [string, Asset] {
  const hash = createHash("sha256").update(text).digest("hex").slice(0, 12);
  const bytes = new TextEncoder().encode(text);
  const contentType = ext === "js" ? "text/javascript; charset=utf-8" : "text/css; charset=utf-8";
  return [`${ASSETS}/${name}.${hash}.${ext}`, { contentType, body: () => Promise.resolve(bytes) }];
}

function page(urls: { bundle: string; css: string; icon: string; init: string; style: string }) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vigil API</title>
<link rel="icon" type="image/png" sizes="32x32" href="${urls.icon}">
<link rel="stylesheet" href="${urls.css}">
<link rel="stylesheet" href="${urls.style}">
</head>
<body>
<header class="vigil-docs-header">
<p>vigil API reference (Swagger UI ${swaggerUiPackage.version}, served by vigil). OpenAPI document: <a href="${SPEC_URL}">${SPEC_URL}</a></p>
</header>
<div id="swagger-ui" data-spec-url="${SPEC_URL}"></div>
<noscript><p>The interactive reference needs JavaScript; the OpenAPI document is at <a href="${SPEC_URL}">${SPEC_URL}</a>.</p></noscript>
<script src="${urls.bundle}"></script>
<script src="${urls.init}"></script>
</body>
</html>
`;
}

/** `/docs` and its assets. */
export function docsRoutes(): Hono<AppEnv> {
  const dir = swaggerUiDir();
  const base = `${ASSETS}/swagger-ui-${swaggerUiPackage.version}`;
  const cache = new Map<string, Promise<Uint8Array<ArrayBuffer>>>();
  const assets = new Map<string, Asset>();
  for (const [file, contentType] of Object.entries(PACKAGE_FILES)) {
    assets.set(`${base}/${file}`, {
      contentType,
      body: () => {
        let bytes = cache.get(file);
        if (!bytes) {
          bytes = Deno.readFile(join(dir, file));
          // A failed read is not kept: the next request tries again.
          bytes.catch(() => cache.delete(file));
          cache.set(file, bytes);
        }
        return bytes;
      },
    });
  }
  const [init, initAsset] = hashed("vigil-docs", "js", INIT_JS);
  const [style, styleAsset] = hashed("vigil-docs", "css", STYLE_CSS);
  assets.set(init, initAsset);
  assets.set(style, styleAsset);
  const html = page({
    bundle: `${base}/swagger-ui-bundle.js`,
    css: `${base}/swagger-ui.css`,
    icon: `${base}/favicon-32x32.png`,
    init,
    style,
  });

  const app = new Hono<AppEnv>();
  app.get("/docs", (c) => {
    c.header("Content-Security-Policy", DOCS_CSP);
    c.header("Cache-Control", "no-cache");
    return c.html(html);
  });
  app.get(`${ASSETS}/*`, async (c) => {
    const asset = assets.get(c.req.path);
    if (!asset) return c.notFound();
    const body = await asset.body();
    c.header("Content-Type", asset.contentType);
    c.header("Cache-Control", IMMUTABLE);
    return c.body(body);
  });
  return app;
}
