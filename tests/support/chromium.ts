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
