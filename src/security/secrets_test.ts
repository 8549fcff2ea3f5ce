import { assert, assertEquals, assertMatch, assertThrows } from "../../tests/support/assert.ts";
import { ConfigError, loadConfig } from "../config.ts";
import {
  DEV_KEY_FILE,
  generateSecretKey,
  Keyring,
  parseSecretKey,
  resolveKeys,
  SecretError,
  Secrets,
} from "./secrets.ts";

const keyA = parseSecretKey(generateSecretKey());
const keyB = parseSecretKey(generateSecretKey());

async function rejects(promise: Promise<unknown>, pattern: RegExp): Promise<SecretError> {
  try {
    await promise;
  } catch (error) {
    assert(error instanceof SecretError, `expected a SecretError, got ${error}`);
    assertMatch(error.message, pattern);
    return error;
  }
  throw new Error("expected a SecretError");
}

Deno.test("secrets: a sealed value is versioned, names its key, and opens again", async () => {
  const ring = await Keyring.create(keyA);
  const secret = "whsec_" + btoa("a webhook secret of 32 bytes....");
  const sealed = await ring.seal(secret, "alerts.webhook.secret");
  assertMatch(sealed, new RegExp(`^enc:v1:${ring.currentId}:[A-Za-z0-9+/]+=*$`));
  assertMatch(ring.currentId, /^[0-9a-f]{8}$/);
  assert(!sealed.includes(secret));
  assert(ring.isCurrent(sealed));
  assertEquals(await ring.open(sealed, "alerts.webhook.secret"), secret);
  // A fresh IV every time: the same secret never seals to the same text.
  assert(sealed !== await ring.seal(secret, "alerts.webhook.secret"));
  assertEquals(await ring.open("", "agents.authorization"), "", "legacy empty string");
  assertEquals(
    await ring.open(await ring.seal("", "agents.authorization"), "agents.authorization"),
    "",
  );
});

Deno.test("secrets: a plaintext written before encryption reads as it is", async () => {
  const ring = await Keyring.create(keyA);
  assertEquals(await ring.open("Bearer legacy", "agents.authorization"), "Bearer legacy");
  assert(!ring.isCurrent("Bearer legacy"));
});

Deno.test("secrets: tampering is detected", async (t) => {
  const ring = await Keyring.create(keyA);
  const sealed = await ring.seal("Bearer s3cret", "agents.authorization");
  const [head, body] = [sealed.slice(0, sealed.lastIndexOf(":") + 1), sealed.split(":")[3]];
  await t.step("a flipped ciphertext bit", async () => {
    const bytes = Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
    bytes[14] ^= 1;
    const flipped = head + btoa(String.fromCharCode(...bytes));
    await rejects(ring.open(flipped, "agents.authorization"), /altered/);
  });
  await t.step("a truncated value", async () => {
    await rejects(ring.open(head + btoa("short"), "agents.authorization"), /damaged/);
    await rejects(ring.open(head + "%%%", "agents.authorization"), /damaged/);
  });
  await t.step("a value moved to another field", async () => {
    await rejects(ring.open(sealed, "alerts.webhook.secret"), /another field/);
  });
  await t.step("an unknown format version", async () => {
    await rejects(
      ring.open(sealed.replace("enc:v1:", "enc:v9:"), "agents.authorization"),
      /not an enc:v1 value/,
    );
  });
  await t.step("a relabelled key id", async () => {
    const other = await Keyring.create(keyB, [keyA]);
    const relabelled = sealed.replace(ring.currentId, other.currentId);
    await rejects(other.open(relabelled, "agents.authorization"), /altered/);
  });
});

Deno.test("secrets: a value of a key that is not configured fails with a clear error", async () => {
  const a = await Keyring.create(keyA);
  const b = await Keyring.create(keyB);
  const sealed = await a.seal("Bearer s3cret", "agents.authorization");
  const error = await rejects(b.open(sealed, "agents.authorization"), /sealed with key/);
  assertEquals(
    error.message,
    `the stored value is sealed with key ${a.currentId}, which is neither VIGIL_SECRET_KEY (${b.currentId}) nor in VIGIL_SECRET_KEY_PREVIOUS`,
  );
  assert(!error.message.includes("s3cret"));
});

Deno.test("secrets: rotation — a previous key still opens; the current one seals", async () => {
  const old = await Keyring.create(keyA);
  const sealedOld = await old.seal("x", "agents.authorization");
  const rotated = await Keyring.create(keyB, [keyA]);
  assertEquals(await rotated.open(sealedOld, "agents.authorization"), "x");
  assert(!rotated.isCurrent(sealedOld));
  const sealedNew = await rotated.seal("x", "agents.authorization");
  assert(rotated.isCurrent(sealedNew));
  assert(sealedNew.startsWith(`enc:v1:${rotated.currentId}:`));
  // The same key listed twice (current and previous) is harmless.
  const same = await Keyring.create(keyA, [keyA]);
  assertEquals(await same.open(sealedOld, "agents.authorization"), "x");
});

Deno.test("config: VIGIL_SECRET_KEY is 32 bytes of base64 or hex; errors are one line", () => {
  const hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
  assertEquals(loadConfig({ VIGIL_SECRET_KEY: hex }).VIGIL_SECRET_KEY?.length, 32);
  const b64 = btoa(String.fromCharCode(...new Uint8Array(32).fill(250)));
  assertEquals(
    loadConfig({ VIGIL_SECRET_KEY: b64 }).VIGIL_SECRET_KEY,
    new Uint8Array(32).fill(250),
  );
  const url = b64.replaceAll("+", "-").replaceAll("/", "_").replace("=", "");
  assertEquals(
    loadConfig({ VIGIL_SECRET_KEY: url }).VIGIL_SECRET_KEY,
    new Uint8Array(32).fill(250),
  );
  assertEquals(
    loadConfig({ VIGIL_SECRET_KEY_PREVIOUS: `${hex}, ${b64}` }).VIGIL_SECRET_KEY_PREVIOUS?.length,
    2,
  );
  for (const bad of ["CHANGE_ME", hex.slice(2), btoa("16 bytes only!!!"), "x".repeat(44)]) {
    const error = assertThrows(() => loadConfig({ VIGIL_SECRET_KEY: bad }), ConfigError);
    assertEquals(
      error.message,
      'invalid configuration: VIGIL_SECRET_KEY must be 32 bytes in base64 or hex (openssl rand -base64 32) (got "***")',
    );
  }
  const error = assertThrows(
    () => loadConfig({ VIGIL_SECRET_KEY_PREVIOUS: `${hex},nope` }),
    ConfigError,
  );
  assertMatch(
    error.message,
    /^invalid configuration: VIGIL_SECRET_KEY_PREVIOUS item 2 must be 32 bytes.*\(got "\*\*\*"\)$/,
  );
});

Deno.test("secrets: production without VIGIL_SECRET_KEY refuses, naming the variable", async () => {
  const config = loadConfig({ VIGIL_ENV: "production" });
  try {
    await resolveKeys(config);
    throw new Error("expected a ConfigError");
  } catch (error) {
    assert(error instanceof ConfigError);
    assertMatch(
      error.message,
      /^invalid configuration: VIGIL_SECRET_KEY must be set in production/,
    );
    assert(!error.message.includes("\n"));
  }
  const lazy = Secrets.fromConfig(config);
  try {
    await lazy.seal("x", "agents.authorization");
    throw new Error("expected a ConfigError");
  } catch (error) {
    assert(error instanceof ConfigError, "a service built without the key fails where it is used");
  }
});

Deno.test("secrets: VIGIL_SECRET_KEY wins over the development key file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const hex = [...keyA].map((b) => b.toString(16).padStart(2, "0")).join("");
    const config = loadConfig({ VIGIL_ENV: "development", DATA_DIR: dir, VIGIL_SECRET_KEY: hex });
    const resolved = await resolveKeys(config);
    assertEquals(resolved.source, { kind: "env" });
    assertEquals(resolved.keyring.currentId, (await Keyring.create(keyA)).currentId);
    assertEquals([...Deno.readDirSync(dir)], [], "no key file");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("secrets: development generates DATA_DIR/secret.key once (0600) and reuses it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = loadConfig({ VIGIL_ENV: "development", DATA_DIR: `${dir}/data` });
    // Processes starting together agree on one key.
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => resolveKeys(config)));
    const ids = new Set([a, b, c].map((r) => r.keyring.currentId));
    assertEquals(ids.size, 1);
    assertEquals([a, b, c].filter((r) => r.source.kind === "file" && r.source.created).length, 1);
    const path = `${dir}/data/${DEV_KEY_FILE}`;
    if (Deno.build.os !== "windows") assertEquals(Deno.statSync(path).mode! & 0o777, 0o600);
    assertEquals(parseSecretKey(Deno.readTextFileSync(path)).length, 32);
    assertEquals(
      [...Deno.readDirSync(`${dir}/data`)].map((e) => e.name),
      [DEV_KEY_FILE],
      "no temporary file left",
    );
    const again = await resolveKeys(config);
    assertEquals(again.source, { kind: "file", path, created: false });
    assertEquals(again.keyring.currentId, a.keyring.currentId);
    const sealed = await a.keyring.seal("kept", "agents.authorization");
    assertEquals(await again.keyring.open(sealed, "agents.authorization"), "kept");

    Deno.writeTextFileSync(path, "garbage\n");
    try {
      await resolveKeys(config);
      throw new Error("expected a ConfigError");
    } catch (error) {
      assert(error instanceof ConfigError);
      assertEquals(
        error.message,
        `invalid configuration: ${path} is not a 32-byte key (base64 or hex): restore it, or set VIGIL_SECRET_KEY`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
