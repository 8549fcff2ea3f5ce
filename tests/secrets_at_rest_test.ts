/**
 * Secrets at rest (src/security/secrets.ts): webhook signing secrets and agents' Authorization
 * headers are sealed in the database; they are opened only to sign or to call; a key that is not
 * configured fails that delivery or call (retried like any failure), never sends unsigned; and
 * rotation re-encrypts every row with the current key, race-free.
 */
import { Webhook } from "standardwebhooks";
import { replaceWebhookSecret } from "../src/alerts/store.ts";
import { reencryptSecrets } from "../src/security/reencrypt.ts";
import { generateSecretKey, Keyring, parseSecretKey, Secrets } from "../src/security/secrets.ts";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { testApp } from "./support/app.ts";
import { ManualClock, MINUTE } from "./support/clock.ts";
import { dbTest, type TestDatabase } from "./support/database.ts";
import { alwaysMatches } from "./support/gauge.ts";
import { serveLocal } from "./support/servers.ts";

const KEY_A = generateSecretKey();
const KEY_B = generateSecretKey();
const idOf = async (key: string) => (await Keyring.create(parseSecretKey(key))).currentId;

/** Every row of a table as text, to search for a plaintext. */
async function tableText(db: TestDatabase, table: string): Promise<string> {
  const rows = await db.sql<{ t: string }[]>`
    select row_to_json(r)::text as t from ${db.sql(table)} r`;
  return rows.map((r) => r.t).join("\n");
}

dbTest("secrets at rest: the database holds no plaintext secret", async (t, db) => {
  const app = await testApp(db, { env: { VIGIL_SECRET_KEY: KEY_A } });
  const given = "whsec_" + btoa("a secret the user chose, 32 byte");
  const token = "Bearer agent-token-0123456789abcdef";
  const withGiven = await app.request("POST", "/v1/alerts", {
    body: {
      name: "given",
      condition: alwaysMatches,
      channels: { inapp: false, webhook: { url: "http://127.0.0.1:9/in", secret: given } },
    },
  });
  const generated = await app.request("POST", "/v1/alerts", {
    body: {
      name: "generated",
      condition: alwaysMatches,
      channels: { inapp: false, webhook: { url: "http://127.0.0.1:9/in" } },
    },
  });
  const agent = await app.request("POST", "/v1/agents", {
    body: {
      name: "vault",
      url: "http://127.0.0.1:9/agent",
      capabilities: ["vault.ping"],
      authorization: token,
    },
  });
  assertEquals([withGiven.status, generated.status, agent.status], [201, 201, 201]);
  const generatedSecret: string = generated.body.channels.webhook.secret;

  await t.step("the creation answers show the secrets, as before", () => {
    assertEquals(withGiven.body.channels.webhook, { url: "http://127.0.0.1:9/in", secret: given });
    assertMatch(generatedSecret, /^whsec_[A-Za-z0-9+/]{43}=$/);
  });

  await t.step("the rows hold sealed values only", async () => {
    const keyId = await idOf(KEY_A);
    const rows = await db.sql<{ secret: string; hint: string }[]>`
      select channels -> 'webhook' ->> 'secret' as secret,
             channels -> 'webhook' ->> 'secret_hint' as hint
      from alerts order by name`;
    for (const row of rows) {
      assertMatch(row.secret, new RegExp(`^enc:v1:${keyId}:[A-Za-z0-9+/=]+$`));
    }
    assertEquals(rows.map((r) => r.hint), [generatedSecret.slice(-4), given.slice(-4)]);
    const [stored] = await db.sql`select authorization_header from agents where name = 'vault'`;
    assertMatch(stored.authorization_header, new RegExp(`^enc:v1:${keyId}:`));
    const text = [
      await tableText(db, "alerts"),
      await tableText(db, "agents"),
      await tableText(db, "alert_deliveries"),
    ].join("\n");
    for (const secret of [given, generatedSecret, token]) {
      assert(!text.includes(secret), "a plaintext secret is in the database");
      assert(
        !text.includes(secret.slice(6, 30)),
        "a part of a plaintext secret is in the database",
      );
    }
  });

  await t.step("reads show the same hint as before, without the stored value", async () => {
    const one = await app.request("GET", `/v1/alerts/${withGiven.body.id}`);
    assertEquals(one.body.channels.webhook, {
      url: "http://127.0.0.1:9/in",
      secret: `whsec_…${given.slice(-4)}`,
    });
    const list = await app.request("GET", "/v1/alerts");
    assert(!JSON.stringify(list.body).includes("enc:v1:"), "a sealed value is shown");
    assert(!JSON.stringify(list.body).includes("secret_hint"));
  });

  await t.step("changing the URL keeps the secret (the same sealed value)", async () => {
    const [before] = await db.sql`select channels from alerts where id = ${withGiven.body.id}`;
    const changed = await app.request("PATCH", `/v1/alerts/${withGiven.body.id}`, {
      body: { channels: { inapp: false, webhook: { url: "http://127.0.0.1:10/in" } } },
    });
    assertEquals(changed.body.channels.webhook.secret, `whsec_…${given.slice(-4)}`);
    const [after] = await db.sql`select channels from alerts where id = ${withGiven.body.id}`;
    assertEquals(after.channels.webhook.secret, before.channels.webhook.secret);
    assertEquals(
      await app.secrets.open(after.channels.webhook.secret, "alerts.webhook.secret"),
      given,
    );
  });
});

dbTest(
  "secrets at rest: signed with the opened secret; a wrong key fails, never unsigned",
  async (t, db) => {
    const clock = new ManualClock(new Date());
    const a = await testApp(db, { clock, env: { VIGIL_SECRET_KEY: KEY_A } });
    const received: { headers: Record<string, string>; body: string }[] = [];
    await using hook = serveLocal(async (req) => {
      received.push({ headers: Object.fromEntries(req.headers), body: await req.text() });
      return new Response(null, { status: 204 });
    });
    const agentCalls: (string | null)[] = [];
    await using agent = serveLocal((req) => {
      agentCalls.push(req.headers.get("authorization"));
      return Response.json({ ok: true });
    });
    const token = "Bearer vault-token-abcdef0123456789";
    const hooked = (name: string) =>
      a.request("POST", "/v1/alerts", {
        body: {
          name,
          condition: alwaysMatches,
          channels: { inapp: false, webhook: { url: hook.url } },
        },
      });
    const created = await hooked("hooked");
    // A second alert for the second process (the first one's message would be a duplicate).
    const other = await hooked("hooked too");
    const secret: string = created.body.channels.webhook.secret;
    const otherSecret: string = other.body.channels.webhook.secret;
    assertEquals(
      (await a.request("POST", "/v1/agents", {
        body: { name: "vault", url: agent.url, capabilities: ["vault.ping"], authorization: token },
      })).status,
      201,
    );

    await t.step(
      "with the key: signed with the alert's secret; the agent gets its header",
      async () => {
        const res = await a.request("POST", `/v1/alerts/${created.body.id}/evaluate`, { body: {} });
        assertEquals(res.body.deliveries[0].status, "delivered");
        new Webhook(secret).verify(received[0].body, received[0].headers);
        await a.remote.refresh(true); // the registration as stored: sealed
        assertEquals((await a.runtime.invoke("vault.ping", {})).value, { ok: true });
        assertEquals(agentCalls, [token]);
      },
    );

    // Another process whose VIGIL_SECRET_KEY is not the one the rows were sealed with.
    const b = await testApp(db, {
      clock,
      env: { VIGIL_SECRET_KEY: KEY_B },
      adminEmail: "admin-b@example.com",
    });
    let deliveryId = "";

    await t.step("a wrong key fails the delivery with a clear error; nothing is sent", async () => {
      clock.advance(MINUTE);
      const res = await b.request("POST", `/v1/alerts/${other.body.id}/evaluate`, { body: {} });
      const [d] = res.body.deliveries;
      deliveryId = d.id;
      assertEquals(d.status, "failed");
      assertMatch(
        d.error,
        new RegExp(
          `^webhook: cannot decrypt the signing secret: the stored value is sealed with key ${await idOf(
            KEY_A,
          )}, which is neither VIGIL_SECRET_KEY`,
        ),
      );
      assertEquals(received.length, 1, "nothing sent, signed or not");
      const [dlq] = await db.sql`select state from alert_dlq where delivery_id = ${d.id}`;
      assertEquals(dlq.state, "pending", "retried later, like any failure");
    });

    await t.step("a wrong key fails the agent call, not the agent's breaker", async () => {
      await b.remote.refresh(true);
      try {
        await b.runtime.invoke("vault.ping", {});
        throw new Error("expected the call to fail");
      } catch (error) {
        assertMatch((error as Error).message, /cannot decrypt the agent's Authorization header/);
      }
      assertEquals(agentCalls.length, 1, "the agent was not called");
      const info = b.runtime.list().find((x) => x.name === "vault")!;
      assertEquals(info.circuit_breaker.consecutive_failures, 0);
    });

    await t.step(
      "with the old key in VIGIL_SECRET_KEY_PREVIOUS the retry is delivered",
      async () => {
        const c = await testApp(db, {
          clock,
          env: { VIGIL_SECRET_KEY: KEY_B, VIGIL_SECRET_KEY_PREVIOUS: `${KEY_A}` },
          adminEmail: "admin-c@example.com",
        });
        clock.advance(6 * MINUTE);
        const outcomes = await c.dispatcher.retryDue();
        assertEquals(outcomes.map((o) => o.id), [deliveryId]);
        const [row] = await db.sql`select status from alert_deliveries where id = ${deliveryId}`;
        assertEquals(row.status, "delivered");
        assertEquals(received.length, 2);
        // The clock has moved past the verifier's tolerance: recompute the signature instead.
        const { headers, body } = received[1];
        const at = new Date(Number(headers["webhook-timestamp"]) * 1000);
        assertEquals(
          headers["webhook-signature"],
          new Webhook(otherSecret).sign(headers["webhook-id"], at, body),
        );
      },
    );
  },
);

dbTest("secrets at rest: rotation re-encrypts every row, in batches, race-free", async (t, db) => {
  const a = await testApp(db, { env: { VIGIL_SECRET_KEY: KEY_A } });
  const secrets: string[] = [];
  for (let i = 0; i < 5; i++) {
    const res = await a.request("POST", "/v1/alerts", {
      body: {
        name: `hook ${i}`,
        condition: alwaysMatches,
        channels: { inapp: true, webhook: { url: "http://127.0.0.1:9/in" } },
      },
    });
    secrets.push(res.body.channels.webhook.secret);
  }
  await a.request("POST", "/v1/alerts", { body: { name: "no hook", condition: alwaysMatches } });
  await a.request("POST", "/v1/agents", {
    body: {
      name: "sealed",
      url: "http://127.0.0.1:9/a",
      capabilities: ["sealed.ping"],
      authorization: "Bearer sealed-with-a",
    },
  });
  // Rows written before encryption existed: plaintext, no hint.
  const legacy = "whsec_" + btoa("a legacy plaintext secret 32 byt");
  const [owner] = await db.sql`select id from users limit 1`;
  await db.sql`
    insert into alerts (user_id, name, condition, channels, next_eval_at, created_at, updated_at)
    values (${owner.id}, 'legacy', ${db.sql.json(alwaysMatches)},
            ${
    db.sql.json({
      inapp: false,
      email: false,
      webhook: { url: "http://127.0.0.1:9/in", secret: legacy },
    })
  },
            now(), now(), now())`;
  await db.sql`
    insert into agents (name, url, capabilities, timeout_ms, authorization_header, created_at, updated_at)
    values ('legacy', 'http://127.0.0.1:9/l', ${
    db.sql.json([{ name: "legacy.ping", description: "" }])
  },
            1000, 'Bearer legacy-plaintext', now(), now())`;
  // A row sealed with a key nobody has any more: skipped, never loops.
  const lost = await Keyring.create(parseSecretKey(generateSecretKey()));
  await db.sql`
    insert into agents (name, url, capabilities, timeout_ms, authorization_header, created_at, updated_at)
    values ('lost', 'http://127.0.0.1:9/x', ${
    db.sql.json([{ name: "lost.ping", description: "" }])
  },
            1000, ${await lost.seal("Bearer lost", "agents.authorization")}, now(), now())`;

  const rotated = Secrets.of(await Keyring.create(parseSecretKey(KEY_B), [parseSecretKey(KEY_A)]));
  const onlyB = await Keyring.create(parseSecretKey(KEY_B));
  const keyB = await idOf(KEY_B);

  await t.step("two replicas at once: each row re-sealed exactly once", async () => {
    const [x, y] = await Promise.all([
      reencryptSecrets(db.sql, rotated, undefined, 2),
      reencryptSecrets(db.sql, rotated, undefined, 2),
    ]);
    assertEquals(x.webhookSecrets.resealed + y.webhookSecrets.resealed, 6);
    assertEquals(x.agentCredentials.resealed + y.agentCredentials.resealed, 2);
    assertEquals([x.agentCredentials.failed, y.agentCredentials.failed], [1, 1]);
  });

  await t.step("every row is sealed with the new key and opens with it alone", async () => {
    const rows = await db.sql<{ name: string; secret: string; hint: string }[]>`
      select name, channels -> 'webhook' ->> 'secret' as secret,
             channels -> 'webhook' ->> 'secret_hint' as hint
      from alerts where channels ? 'webhook' and channels -> 'webhook' <> 'null' order by name`;
    assertEquals(rows.length, 6);
    const opened = new Map<string, string>();
    for (const row of rows) {
      assert(row.secret.startsWith(`enc:v1:${keyB}:`), `${row.name}: ${row.secret.slice(0, 20)}`);
      const plain = await onlyB.open(row.secret, "alerts.webhook.secret");
      assertEquals(row.hint, plain.slice(-4));
      opened.set(row.name, plain);
    }
    assertEquals(opened.get("legacy"), legacy);
    assertEquals([0, 1, 2, 3, 4].map((i) => opened.get(`hook ${i}`)), secrets);
    const agents = await db.sql<{ name: string; authorization_header: string }[]>`
      select name, authorization_header from agents order by name`;
    const byName = Object.fromEntries(agents.map((r) => [r.name, r.authorization_header]));
    assertEquals(
      await onlyB.open(byName.legacy, "agents.authorization"),
      "Bearer legacy-plaintext",
    );
    assertEquals(await onlyB.open(byName.sealed, "agents.authorization"), "Bearer sealed-with-a");
    assert(
      byName.lost.startsWith(`enc:v1:${lost.currentId}:`),
      "the unopenable row is left as it is",
    );
    assert(!(await tableText(db, "alerts")).includes(legacy), "the legacy plaintext is gone");
    assert(!(await tableText(db, "agents")).includes("legacy-plaintext"));
  });

  await t.step("a second run has nothing to do", async () => {
    const again = await reencryptSecrets(db.sql, rotated);
    assertEquals(again.webhookSecrets, { resealed: 0, failed: 0, raced: 0 });
    assertEquals(again.agentCredentials, { resealed: 0, failed: 1, raced: 0 });
  });

  await t.step("the update checks the old value: a changed row is not overwritten", async () => {
    const [row] = await db.sql`select id, channels from alerts where name = 'hook 0'`;
    const stale = "enc:v1:00000000:stale";
    assertEquals(await replaceWebhookSecret(db.sql, row.id, stale, "enc:v1:x:y", "abcd"), false);
    const [same] = await db.sql`select channels from alerts where id = ${row.id}`;
    assertEquals(same.channels, row.channels);
  });
});
