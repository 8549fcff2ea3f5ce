/**
 * vigil as a process and its key for secrets at rest: production refuses to start without
 * VIGIL_SECRET_KEY (one line naming it), a bad key is one line too, and development generates
 * DATA_DIR/secret.key on its first start and reuses it.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { spawnVigil, startVigil } from "./support/process.ts";

async function refused(env: Record<string, string>): Promise<string> {
  const { child, stderr, stdoutDone } = spawnVigil(env);
  const status = await child.status;
  await stdoutDone;
  assertEquals(status.code, 1);
  return stderr().trim();
}

Deno.test("start-up: production without VIGIL_SECRET_KEY refuses, in one line", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "vigil-nokey-" });
  try {
    assertEquals(
      await refused({ VIGIL_ENV: "production", DATA_DIR: dataDir }),
      "vigil: invalid configuration: VIGIL_SECRET_KEY must be set in production (32 bytes, base64 or hex: openssl rand -base64 32)",
    );
    assertEquals([...Deno.readDirSync(dataDir)], [], "no key generated, no database opened");
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("start-up: a VIGIL_SECRET_KEY that is not 32 bytes is one line", async () => {
  assertEquals(
    await refused({ VIGIL_SECRET_KEY: "CHANGE_ME_openssl_rand_base64_32" }),
    'vigil: invalid configuration: VIGIL_SECRET_KEY must be 32 bytes in base64 or hex (openssl rand -base64 32) (got "***")',
  );
});

Deno.test({
  name: "start-up: development generates DATA_DIR/secret.key once, 0600, and says so",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "vigil-devkey-" });
    try {
      await using vigil = await startVigil({ VIGIL_ENV: "development", DATA_DIR: dataDir });
      const line = await vigil.waitForLog((l) =>
        typeof l.msg === "string" && l.msg.startsWith("generated a development secret key")
      );
      assertEquals(line.path, `${dataDir}/secret.key`);
      assertMatch(String(line.key_id), /^[0-9a-f]{8}$/);
      const key = Deno.readTextFileSync(`${dataDir}/secret.key`).trim();
      assert(!vigil.logs.some((l) => JSON.stringify(l).includes(key)), "the key is not logged");
      assertEquals(Deno.statSync(`${dataDir}/secret.key`).mode! & 0o777, 0o600);
      assertEquals(await vigil.stop("SIGTERM"), 0);
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
