/**
 * `write-secrets.sh env [.env]`: makes .env from .env.example with every secret generated (each
 * CHANGE_ME, VIGIL_SECRET_KEY, ADMIN_API_KEY), never replaces a value that is set, leaves the
 * rest of the file alone, and says where the admin key is; what it writes is what vigil accepts.
 * Runs the script with `sh`, as a person would on the host.
 */
import { parse } from "yaml";
import { loadConfig } from "../src/config.ts";
import { parseSecretKey } from "../src/security/secrets.ts";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";

const SCRIPT = new URL("../observability/compose/write-secrets.sh", import.meta.url).pathname;
const EXAMPLE = new URL("../.env.example", import.meta.url).pathname;
const COMPOSE = new URL("../compose.yaml", import.meta.url).pathname;

async function run(cwd: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("sh", {
    args: [SCRIPT, "env", ...args],
    cwd,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, text);
  return text;
}

const values = (text: string) =>
  Object.fromEntries(
    text.split("\n").filter((l) => /^[A-Z0-9_]+=/.test(l)).map((l) => {
      const i = l.indexOf("=");
      return [l.slice(0, i), l.slice(i + 1)];
    }),
  );

Deno.test("write-secrets.sh env: every secret once, from .env.example, never replaced", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "vigil-env-" });
  try {
    await Deno.copyFile(EXAMPLE, `${dir}/.env.example`);
    let first: Record<string, string> = {};
    await t.step("no .env: every placeholder generated, the admin key pointed at", async () => {
      const said = await run(dir);
      assertMatch(said, /your admin API key is ADMIN_API_KEY in \.env/);
      const text = await Deno.readTextFile(`${dir}/.env`);
      assert(!text.split("\n").some((l) => /^[A-Z_]+=CHANGE_ME/.test(l)), "no placeholder left");
      first = values(text);
      assertEquals(parseSecretKey(first.VIGIL_SECRET_KEY).length, 32);
      assertMatch(first.ADMIN_API_KEY, /^vgl_[0-9a-f]{48}$/);
      assertMatch(first.POSTGRES_PASSWORD, /^[0-9a-f]{48}$/, "hex: safe inside a URL");
      const example = values(await Deno.readTextFile(EXAMPLE));
      for (const [name, value] of Object.entries(example)) {
        if (!value.startsWith("CHANGE_ME")) assertEquals(first[name], value, `${name} as it was`);
      }
      if (Deno.build.os !== "windows") {
        assertEquals(Deno.statSync(`${dir}/.env`).mode! & 0o077, 0, "not readable by others");
      }
    });
    await t.step("what it wrote is what vigil accepts in production", () => {
      const config = loadConfig({
        VIGIL_ENV: "production",
        ADMIN_API_KEY: first.ADMIN_API_KEY,
        METRICS_TOKEN: first.METRICS_TOKEN,
        ALERTMANAGER_WEBHOOK_TOKEN: first.ALERTMANAGER_WEBHOOK_TOKEN,
        VIGIL_SECRET_KEY: first.VIGIL_SECRET_KEY,
      });
      assertEquals(config.ADMIN_API_KEY, first.ADMIN_API_KEY);
    });
    await t.step("run again: nothing replaced", async () => {
      assertMatch(await run(dir), /has every secret already; nothing changed/);
      assertEquals(values(await Deno.readTextFile(`${dir}/.env`)), first);
    });
    await t.step("a hand-made .env keeps its values and gets the missing keys", async () => {
      await Deno.writeTextFile(
        `${dir}/other.env`,
        "POSTGRES_PASSWORD=abc\nMETRICS_TOKEN=CHANGE_ME\n",
      );
      await run(dir, "other.env");
      const other = values(await Deno.readTextFile(`${dir}/other.env`));
      assertEquals(other.POSTGRES_PASSWORD, "abc");
      assertMatch(other.METRICS_TOKEN, /^[0-9a-f]{48}$/);
      assert(other.VIGIL_SECRET_KEY && other.VIGIL_SECRET_KEY !== first.VIGIL_SECRET_KEY);
      assertMatch(other.ADMIN_API_KEY, /^vgl_/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("compose.yaml: every service has memory and CPU limits", () => {
  const compose = parse(Deno.readTextFileSync(COMPOSE)) as {
    services: Record<string, { mem_limit?: string; cpus?: number }>;
  };
  for (const [name, service] of Object.entries(compose.services)) {
    assertMatch(String(service.mem_limit ?? ""), /^\d+[mg]$/, `${name}: mem_limit`);
    assert(typeof service.cpus === "number" && service.cpus > 0, `${name}: cpus`);
  }
});
