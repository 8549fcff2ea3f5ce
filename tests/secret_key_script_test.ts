/**
 * `write-secrets.sh vigil-key [.env]`: generates VIGIL_SECRET_KEY into .env once (from
 * .env.example when .env is missing), never replaces a key that is set, and leaves the rest of
 * the file alone. Runs the script with `sh`, as a person would on the host.
 */
import { parseSecretKey } from "../src/security/secrets.ts";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";

const SCRIPT = new URL("../observability/compose/write-secrets.sh", import.meta.url).pathname;
const EXAMPLE = new URL("../.env.example", import.meta.url).pathname;

async function run(cwd: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("sh", {
    args: [SCRIPT, "vigil-key", ...args],
    cwd,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, text);
  return text;
}

const keyIn = (text: string) => {
  const lines = text.split("\n").filter((l) => l.startsWith("VIGIL_SECRET_KEY="));
  assertEquals(lines.length, 1, "one VIGIL_SECRET_KEY line");
  return lines[0].slice("VIGIL_SECRET_KEY=".length);
};

Deno.test("write-secrets.sh vigil-key: a key once, from .env.example, never replaced", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "vigil-key-" });
  try {
    await Deno.copyFile(EXAMPLE, `${dir}/.env.example`);
    let key = "";
    await t.step("no .env: copied from .env.example, the placeholder replaced", async () => {
      assertMatch(await run(dir), /wrote a new VIGIL_SECRET_KEY to \.env/);
      const text = await Deno.readTextFile(`${dir}/.env`);
      key = keyIn(text);
      assertEquals(parseSecretKey(key).length, 32);
      const example = await Deno.readTextFile(EXAMPLE);
      assertEquals(
        text.replace(`VIGIL_SECRET_KEY=${key}`, ""),
        example.replace(/^VIGIL_SECRET_KEY=.*$/m, ""),
        "everything else as in .env.example",
      );
      if (Deno.build.os !== "windows") {
        assertEquals(Deno.statSync(`${dir}/.env`).mode! & 0o077, 0, "not readable by others");
      }
    });
    await t.step("run again: the key is kept", async () => {
      assertMatch(await run(dir), /already sets VIGIL_SECRET_KEY; kept/);
      assertEquals(keyIn(await Deno.readTextFile(`${dir}/.env`)), key);
    });
    await t.step("an .env without the variable gets it appended", async () => {
      await Deno.writeTextFile(`${dir}/other.env`, "POSTGRES_PASSWORD=abc\n");
      await run(dir, "other.env");
      const text = await Deno.readTextFile(`${dir}/other.env`);
      assert(text.startsWith("POSTGRES_PASSWORD=abc\n"));
      assert(keyIn(text) !== key, "a new key each time one is generated");
      assertEquals(parseSecretKey(keyIn(text)).length, 32);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
