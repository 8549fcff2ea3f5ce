/**
 * The Slack and PagerDuty channels end to end: alerts configured through the API (secrets sealed
 * at rest, masked in every answer, the outbound policy checked), notifications written by the
 * outbox and sent by the real dispatcher to a fake Slack and a fake PagerDuty: the bodies, 5xx to
 * the DLQ and delivered by the retry, 4xx exhausted at once, a Slack timeout `uncertain` (never
 * sent twice) while a PagerDuty timeout is retried inside its window, a secret that does not
 * decrypt sending nothing, and the re-encryption at start-up.
 */
import { deliveryChannels } from "../src/alerts/channels.ts";
import { getAlert, PAGERDUTY_ROUTING_KEY, SLACK_WEBHOOK_URL } from "../src/alerts/store.ts";
import { enqueue } from "../src/delivery/outbox.ts";
import { retryDeliveries } from "../src/delivery/retry_job.ts";
import { DEFAULT_SCHEDULE, dueAfter } from "../src/delivery/schedule.ts";
import type { DeliveryPayload } from "../src/delivery/types.ts";
import { SLACK_COLORS } from "../src/delivery/channels/slack.ts";
import { reencryptSecrets } from "../src/security/reencrypt.ts";
import { generateSecretKey, Keyring, parseSecretKey, Secrets } from "../src/security/secrets.ts";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { type Json, testApp } from "./support/app.ts";
import { MINUTE } from "./support/clock.ts";
import { dbTest, type TestDatabase } from "./support/database.ts";
import { fakePagerDuty, fakeSlack, trustFakeTls } from "./support/fake_chat.ts";
import { alwaysMatches } from "./support/gauge.ts";

const ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF";
const NONE = { delivered: 0, failed: 0, exhausted: 0, uncertain: 0, pending: 0 };

/** An app whose Slack and PagerDuty are fakes, and a user with an alert on both. */
async function chatApp(db: TestDatabase, env: Record<string, string> = {}) {
  const slack = fakeSlack();
  const pagerduty = fakePagerDuty();
  const app = await testApp(db, {
    env: { PAGERDUTY_EVENTS_URL: pagerduty.url, WEBHOOK_TIMEOUT_MS: "300", ...env },
  });
  trustFakeTls(app.policy);
  const ann = await app.newUser("ann@example.com");
  const created = await app.request("POST", "/v1/alerts", {
    key: ann.key,
    body: {
      name: "checkout",
      condition: alwaysMatches,
      channels: {
        inapp: false,
        slack: { webhook_url: slack.webhookUrl },
        pagerduty: { routing_key: ROUTING_KEY },
      },
    },
  });
  assertEquals(created.status, 201, JSON.stringify(created.body));
  const alertId: string = created.body.id;
  const episode = crypto.randomUUID();

  /** A notification of the alert, as the lifecycle writes it. */
  const payloadOf = (kind: DeliveryPayload["kind"], extra: Partial<DeliveryPayload> = {}) =>
    ({
      type: ({
        firing: "alert.fired",
        repeat: "alert.repeat",
        resolved: "alert.resolved",
        error: "alert.error",
      } as const)[kind!],
      source: "rule",
      kind,
      severity: "critical",
      title: ({
        firing: "Firing: checkout",
        repeat: "Still firing: checkout",
        resolved: "Resolved: checkout",
        error: extra.recovery ? "Evaluating again: checkout" : "Cannot evaluate: checkout",
      } as const)[kind!],
      message: `checkout is ${kind}`,
      alert: { id: alertId, name: "checkout" },
      episode: { id: episode, started_at: app.clock.now().toISOString() },
      value: true,
      condition: alwaysMatches,
      fired_at: app.clock.now().toISOString(),
      ...extra,
    }) satisfies DeliveryPayload;

  /**
   * Writes the notification through the outbox and sends it with the real dispatcher (unless
   * `crash`: then the process that wrote it dies before sending; its lease is left to run out).
   */
  async function notify(payload: DeliveryPayload, options: { crash?: boolean } = {}) {
    const alert = (await getAlert(app.sql, alertId))!;
    const now = app.clock.now();
    const enqueued = await app.sql.begin((tx) =>
      enqueue(
        tx,
        {
          userId: alert.user_id,
          alertId,
          channels: deliveryChannels(alert, "ann@example.com"),
          payload,
          dedupKey: { alertId, kind: payload.kind, at: payload.fired_at, message: payload.message },
        },
        now,
        { serialized: false, leaseUntil: dueAfter(now, app.schedule.leaseMs) },
      )
    );
    const outcomes = options.crash ? [] : await app.dispatcher.deliver(
      enqueued.deliveries.filter((d) => d.status === "pending"),
    );
    const by = Object.fromEntries(outcomes.map((o) => [o.channel, o]));
    return { slack: by.slack, pagerduty: by.pagerduty };
  }

  const dlq = async (id: string) =>
    (await db.sql<{ state: string; retry_count: number; next_retry_at: Date | null }[]>`
      select state, retry_count, next_retry_at from alert_dlq where delivery_id = ${id}`)[0];
  const later = (ms: number) => {
    app.clock.set(new Date(app.clock.now().getTime() + ms));
    return retryDeliveries(app.dispatcher);
  };
  const close = async () => {
    await slack.close();
    await pagerduty.close();
  };
  return {
    ...app,
    slack,
    pagerduty,
    ann,
    alertId,
    episode,
    created,
    payloadOf,
    notify,
    dlq,
    later,
    [Symbol.asyncDispose]: close,
  };
}

/** Every place a secret could leak from, as one string. */
function secretsOf(app: Awaited<ReturnType<typeof chatApp>>): string[] {
  const token = app.slack.webhookUrl.split("/").pop()!;
  return [app.slack.webhookUrl, new URL(app.slack.webhookUrl).pathname, token, ROUTING_KEY];
}

function assertNoSecret(text: string, secrets: string[], where: string) {
  for (const secret of secrets) assert(!text.includes(secret), `${where} holds ${secret}`);
}

dbTest("slack and pagerduty: secrets sealed at rest, masked in every answer", async (t, db) => {
  await using app = await chatApp(db);
  const secrets = secretsOf(app);
  const last4 = app.slack.webhookUrl.slice(-4);
  const masked = {
    inapp: false,
    email: false,
    slack: { webhook_url: `https://pinned.test:${app.slack.port}/…${last4}` },
    pagerduty: { routing_key: "…CDEF" },
  };

  await t.step("the creation answer shows them masked, and is not cached", () => {
    assertEquals(app.created.body.channels, masked);
    assertEquals(app.created.headers.get("cache-control"), "no-store");
    assertNoSecret(JSON.stringify(app.created.body), secrets, "POST /v1/alerts");
  });

  await t.step("GET one, GET the list: masked", async () => {
    const one = await app.request("GET", `/v1/alerts/${app.alertId}`, { key: app.ann.key });
    const list = await app.request("GET", "/v1/alerts", { key: app.ann.key });
    const admin = await app.request("GET", "/v1/alerts");
    assertEquals(one.body.channels, masked);
    assertEquals(list.body.items[0].channels, masked);
    for (const [where, res] of [["GET one", one], ["GET list", list], ["admin", admin]] as const) {
      assertNoSecret(JSON.stringify(res.body), secrets, where);
    }
  });

  await t.step("the row holds them sealed, and they open to what was given", async () => {
    const [row] = await db.sql<{ text: string; channels: Json }[]>`
      select row_to_json(a)::text as text, channels from alerts a where id = ${app.alertId}`;
    assertNoSecret(row.text, secrets, "the alerts row");
    assertMatch(row.channels.slack.webhook_url, /^enc:v1:[0-9a-f]{8}:/);
    assertMatch(row.channels.pagerduty.routing_key, /^enc:v1:[0-9a-f]{8}:/);
    assertEquals(
      await app.secrets.open(row.channels.slack.webhook_url, SLACK_WEBHOOK_URL),
      app.slack.webhookUrl,
    );
    assertEquals(
      await app.secrets.open(row.channels.pagerduty.routing_key, PAGERDUTY_ROUTING_KEY),
      ROUTING_KEY,
    );
  });

  await t.step("PATCH: left out keeps the stored value; the masked form is refused", async () => {
    const [before] = await db.sql`select channels from alerts where id = ${app.alertId}`;
    const kept = await app.request("PATCH", `/v1/alerts/${app.alertId}`, {
      key: app.ann.key,
      body: { channels: { inapp: true, slack: {}, pagerduty: {} } },
    });
    assertEquals(kept.status, 200, JSON.stringify(kept.body));
    assertEquals(kept.body.channels, { ...masked, inapp: true });
    const [after] = await db.sql`select channels from alerts where id = ${app.alertId}`;
    assertEquals(after.channels.slack, before.channels.slack, "not even re-sealed");
    assertEquals(after.channels.pagerduty, before.channels.pagerduty);

    const roundTrip = await app.request("PATCH", `/v1/alerts/${app.alertId}`, {
      key: app.ann.key,
      body: { channels: masked },
    });
    assertEquals(roundTrip.status, 422);
    const paths = roundTrip.body.errors.map((e: { path: string }) => e.path).sort();
    assertEquals(paths, ["channels.pagerduty.routing_key", "channels.slack.webhook_url"]);
  });

  await t.step("the delivery history and the DLQ carry no secret", async () => {
    app.slack.respond({ status: 500, body: "rollup_error" });
    app.pagerduty.respond({ status: 500, body: "{}" });
    await app.notify(app.payloadOf("firing"));
    const history = await app.request("GET", `/v1/alerts/${app.alertId}/deliveries`, {
      key: app.ann.key,
    });
    assertEquals(
      history.body.items.map((d: { channel: string }) => d.channel).sort(),
      ["inapp", "pagerduty", "slack"],
    );
    assertNoSecret(JSON.stringify(history.body), secrets, "GET deliveries");
    assertNoSecret(JSON.stringify((await app.request("GET", "/v1/dlq")).body), secrets, "GET dlq");
    const [rows] = await db.sql<{ text: string }[]>`
      select coalesce(string_agg(row_to_json(d)::text, ''), '') as text from alert_deliveries d`;
    assertNoSecret(rows.text, secrets, "alert_deliveries");
  });
});

dbTest("slack and pagerduty: what the API accepts", async (t, db) => {
  const app = await testApp(db);
  const create = (channels: unknown) =>
    app.request("POST", "/v1/alerts", {
      body: { name: "x", condition: alwaysMatches, channels },
    });
  const errors = (res: Json) => res.body.errors?.map((e: { path: string }) => e.path);

  await t.step("the cloud metadata address is refused for the Slack URL (422)", async () => {
    const res = await create({ slack: { webhook_url: "https://169.254.169.254/services/a/b/c" } });
    assertEquals(res.status, 422);
    assertEquals(res.body.errors, [{
      path: "channels.slack.webhook_url",
      message: "refused 169.254.169.254: the cloud metadata address is never allowed",
    }]);
  });

  await t.step("https only; a 32-character routing key; both required when first set", async () => {
    const http = await create({ slack: { webhook_url: "http://hooks.slack.com/services/a" } });
    assertEquals([http.status, errors(http)], [422, ["channels.slack.webhook_url"]]);
    for (const key of ["short", "x".repeat(33), "R0UT1NGKEY0123456789abcdefABCD-F"]) {
      const bad = await create({ pagerduty: { routing_key: key } });
      assertEquals([bad.status, errors(bad)], [422, ["channels.pagerduty.routing_key"]]);
    }
    const missing = await create({ inapp: false, slack: {}, pagerduty: {} });
    assertEquals(missing.status, 422);
    assertEquals(errors(missing).sort(), [
      "channels.pagerduty.routing_key",
      "channels.slack.webhook_url",
    ]);
  });

  await t.step("either alone is a channel that is on", async () => {
    const res = await create({ inapp: false, pagerduty: { routing_key: ROUTING_KEY } });
    assertEquals(res.status, 201, JSON.stringify(res.body));
    assertEquals(res.body.channels.pagerduty, { routing_key: "…CDEF" });
  });
});

dbTest("slack and pagerduty: firing, repeat and resolved through the dispatcher", async (t, db) => {
  await using app = await chatApp(db);

  await t.step(
    "firing: a red Slack message and a PagerDuty trigger keyed by the episode",
    async () => {
      const sent = await app.notify(app.payloadOf("firing"));
      assertEquals([sent.slack.status, sent.pagerduty.status], ["delivered", "delivered"]);
      const [message] = app.slack.calls.map((c) => c.body);
      assertEquals(message.text, "Firing: checkout");
      assertEquals(message.attachments[0].color, SLACK_COLORS.critical);
      assertEquals(message.attachments[0].text, "checkout is firing");
      assertEquals(
        message.attachments[0].fields.find((f: { title: string }) => f.title === "Value").value,
        "true",
      );
      const [event] = app.pagerduty.calls.map((c) => c.body);
      assertEquals(
        [event.routing_key, event.event_action, event.dedup_key],
        [ROUTING_KEY, "trigger", app.episode],
      );
      assertEquals(event.payload.source, "vigil");
      assertEquals(event.payload.severity, "critical");
      assertEquals(event.payload.custom_details.alert, { id: app.alertId, name: "checkout" });
    },
  );

  await t.step("repeat: the same PagerDuty alert; resolved: green, and resolved", async () => {
    app.clock.advance(60 * MINUTE);
    await app.notify(app.payloadOf("repeat"));
    app.clock.advance(MINUTE);
    const sent = await app.notify(app.payloadOf("resolved", { severity: "critical" }));
    assertEquals([sent.slack.status, sent.pagerduty.status], ["delivered", "delivered"]);
    assertEquals(app.slack.texts(), [
      "Firing: checkout",
      "Still firing: checkout",
      "Resolved: checkout",
    ]);
    assertEquals(app.slack.calls[2].body.attachments[0].color, SLACK_COLORS.resolved);
    assertEquals(app.pagerduty.calls.map((c) => c.body.event_action), [
      "trigger",
      "trigger",
      "resolve",
    ]);
    assertEquals(app.pagerduty.calls[2].body, {
      routing_key: ROUTING_KEY,
      event_action: "resolve",
      dedup_key: app.episode,
    });
    assertEquals(app.pagerduty.alerts.get(app.episode), {
      open: false,
      triggers: 2,
      resolves: 1,
      opened: 1,
    });
  });

  await t.step("an evaluation error triggers <alert>:error; its recovery resolves it", async () => {
    app.clock.advance(MINUTE);
    await app.notify(app.payloadOf("error", { episode: undefined, message: "agent down" }));
    app.clock.advance(MINUTE);
    await app.notify(app.payloadOf("error", { episode: undefined, recovery: true }));
    const [error, recovery] = app.pagerduty.calls.slice(3).map((c) => c.body);
    assertEquals(
      [error.event_action, error.dedup_key, error.payload.severity],
      ["trigger", `${app.alertId}:error`, "error"],
    );
    assertEquals([recovery.event_action, recovery.dedup_key], ["resolve", `${app.alertId}:error`]);
    assertEquals(app.slack.texts().slice(3), [
      "Cannot evaluate: checkout",
      "Evaluating again: checkout",
    ]);
  });
});

dbTest("slack and pagerduty: 5xx goes to the DLQ and the retry delivers", async (t, db) => {
  await using app = await chatApp(db);
  app.slack.respond({ status: 503, body: "service_unavailable" });
  app.pagerduty.respond({ status: 502, body: "{}" });
  const sent = await app.notify(app.payloadOf("firing"));

  await t.step("both failed, due in 5 min", async () => {
    assertEquals([sent.slack.status, sent.pagerduty.status], ["failed", "failed"]);
    assertEquals(sent.slack.error, "Slack answered HTTP 503: service_unavailable");
    assertEquals(sent.pagerduty.error, "PagerDuty answered HTTP 502");
    const due = new Date(app.clock.now().getTime() + DEFAULT_SCHEDULE.backoffMs[0]);
    for (const id of [sent.slack.id, sent.pagerduty.id]) {
      const row = await app.dlq(id);
      assertEquals([row.state, row.retry_count, row.next_retry_at], ["pending", 0, due]);
    }
  });

  await t.step("the retry delivers both, once each", async () => {
    assertEquals((await app.later(DEFAULT_SCHEDULE.backoffMs[0] - 1)).retried, NONE);
    assertEquals((await app.later(1)).retried, { ...NONE, delivered: 2 });
    assertEquals([app.slack.calls.length, app.pagerduty.calls.length], [2, 2]);
    assertEquals([await app.dlq(sent.slack.id), await app.dlq(sent.pagerduty.id)], [
      undefined,
      undefined,
    ]);
    assertEquals(app.pagerduty.alerts.get(app.episode)?.opened, 1);
  });
});

dbTest("slack and pagerduty: 4xx is exhausted at once, never retried", async (_t, db) => {
  await using app = await chatApp(db);
  app.slack.respond({ status: 404, body: "channel_not_found" });
  app.pagerduty.respond({
    status: 400,
    body: JSON.stringify({ status: "invalid event", message: "Event object is invalid" }),
  });
  const sent = await app.notify(app.payloadOf("firing"));
  assertEquals([sent.slack.status, sent.pagerduty.status], ["exhausted", "exhausted"]);
  assertEquals(sent.slack.error, "Slack answered HTTP 404: channel_not_found");
  assertEquals(sent.pagerduty.error, "PagerDuty answered HTTP 400: Event object is invalid");
  assertEquals((await app.dlq(sent.slack.id)).state, "exhausted");
  assertEquals((await app.dlq(sent.pagerduty.id)).state, "exhausted");
  assertEquals((await app.later(30 * 24 * 60 * MINUTE)).retried, NONE);
  assertEquals([app.slack.calls.length, app.pagerduty.calls.length], [1, 1]);
});

dbTest(
  "slack and pagerduty: a Slack timeout is uncertain (not retried); PagerDuty's is retried",
  async (t, db) => {
    await using app = await chatApp(db);
    app.slack.respond({ hang: true });
    app.pagerduty.respond({ hang: true });
    const sent = await app.notify(app.payloadOf("firing"));

    await t.step("Slack: uncertain at once, for a human", async () => {
      assertEquals(sent.slack.status, "uncertain");
      assertMatch(sent.slack.error!, /^Slack: no answer within \d+ ms; an earlier attempt may/);
      assertEquals((await app.dlq(sent.slack.id)).state, "uncertain");
      const [d] = await db.sql`
        select status, maybe_sent from alert_deliveries where id = ${sent.slack.id}`;
      assertEquals([d.status, d.maybe_sent], ["uncertain", true]);
    });

    await t.step("PagerDuty: unknown, retried (its dedup_key folds a copy)", async () => {
      assertEquals(sent.pagerduty.status, "failed");
      assertEquals((await app.dlq(sent.pagerduty.id)).state, "pending");
      const retried = await app.later(DEFAULT_SCHEDULE.backoffMs[0]);
      assertEquals(retried.retried, { ...NONE, delivered: 1 });
      assertEquals(app.pagerduty.calls.length, 2);
      assertEquals(app.pagerduty.alerts.get(app.episode), {
        open: true,
        triggers: 2,
        resolves: 0,
        opened: 1,
      });
    });

    await t.step("Slack was called once, and stays so", async () => {
      assertEquals((await app.later(30 * 24 * 60 * MINUTE)).retried, NONE);
      assertEquals(app.slack.calls.length, 1);
    });
  },
);

dbTest(
  "slack and pagerduty: after a crash mid-send Slack is uncertain, PagerDuty re-sent",
  async (_t, db) => {
    await using app = await chatApp(db);
    await app.notify(app.payloadOf("firing"), { crash: true });
    // Its lease runs out: whatever the dead process did, Slack may have the message.
    app.clock.advance(DEFAULT_SCHEDULE.leaseMs);
    const swept = Object.fromEntries(
      (await app.dispatcher.sweepStale()).map((o) => [o.channel, o.status]),
    );
    assertEquals(swept, { slack: "uncertain", pagerduty: "delivered" });
    assertEquals([app.slack.calls.length, app.pagerduty.calls.length], [0, 1]);
  },
);

dbTest("slack and pagerduty: a secret that does not decrypt sends nothing", async (_t, db) => {
  await using app = await chatApp(db);
  // Sealed with a key this vigil does not have (a key lost in a rotation).
  const lost = await Keyring.create(parseSecretKey(generateSecretKey()));
  await db.sql`
    update alerts set channels = ${
    db.sql.json({
      inapp: false,
      email: false,
      slack: { webhook_url: await lost.seal(app.slack.webhookUrl, SLACK_WEBHOOK_URL) },
      pagerduty: { routing_key: await lost.seal(ROUTING_KEY, PAGERDUTY_ROUTING_KEY) },
    })
  } where id = ${app.alertId}`;
  const sent = await app.notify(app.payloadOf("firing"));
  assertEquals([sent.slack.status, sent.pagerduty.status], ["failed", "failed"]);
  assertMatch(sent.slack.error!, /^Slack: cannot decrypt the webhook URL: .*sealed with key/);
  assertMatch(sent.pagerduty.error!, /^PagerDuty: cannot decrypt the routing key: /);
  assertEquals([app.slack.calls.length, app.pagerduty.calls.length], [0, 0]);
});

dbTest("slack and pagerduty: the re-encryption at start-up covers both", async (t, db) => {
  const keyA = generateSecretKey();
  const keyB = generateSecretKey();
  await using app = await chatApp(db, { VIGIL_SECRET_KEY: keyA });
  // A second alert written in clear (a row from before encryption, or a replica of an older vigil).
  await db.sql`
    insert into alerts (user_id, name, condition, channels, next_eval_at, state_since,
                        created_at, updated_at)
    values (${app.ann.id}, 'legacy', ${db.sql.json(alwaysMatches)}, ${
    db.sql.json({
      inapp: false,
      email: false,
      slack: { webhook_url: app.slack.webhookUrl },
      pagerduty: { routing_key: ROUTING_KEY },
    })
  }, now(), now(), now(), now())`;
  const rotated = Secrets.of(await Keyring.create(parseSecretKey(keyB), [parseSecretKey(keyA)]));
  const idB = (await Keyring.create(parseSecretKey(keyB))).currentId;

  await t.step("every value is sealed again with the current key, once", async () => {
    const result = await reencryptSecrets(db.sql, rotated, undefined, 1);
    assertEquals(result.slackWebhookUrls, { resealed: 2, failed: 0, raced: 0 });
    assertEquals(result.pagerdutyRoutingKeys, { resealed: 2, failed: 0, raced: 0 });
    const again = await reencryptSecrets(db.sql, rotated);
    assertEquals(again.slackWebhookUrls.resealed + again.pagerdutyRoutingKeys.resealed, 0);
  });

  await t.step("with their hints, and opening to the same values", async () => {
    const rows = await db.sql<{ channels: Json; text: string }[]>`
      select channels, row_to_json(a)::text as text from alerts a order by name`;
    assertEquals(rows.length, 2);
    for (const { channels, text } of rows) {
      assertNoSecret(text, secretsOf(app), "an alerts row");
      assert(channels.slack.webhook_url.startsWith(`enc:v1:${idB}:`));
      assert(channels.pagerduty.routing_key.startsWith(`enc:v1:${idB}:`));
      assertEquals(channels.pagerduty.routing_key_hint, "…CDEF");
      assertEquals(
        channels.slack.webhook_url_hint,
        `https://pinned.test:${app.slack.port}/…${app.slack.webhookUrl.slice(-4)}`,
      );
      assertEquals(
        await rotated.open(channels.slack.webhook_url, SLACK_WEBHOOK_URL),
        app.slack.webhookUrl,
      );
      assertEquals(
        await rotated.open(channels.pagerduty.routing_key, PAGERDUTY_ROUTING_KEY),
        ROUTING_KEY,
      );
    }
  });
});

dbTest(
  "slack and pagerduty: POST /v1/alerts/:id/evaluate fires and resolves on both",
  async (t, db) => {
    await using app = await chatApp(db);
    const evaluate = () =>
      app.request("POST", `/v1/alerts/${app.alertId}/evaluate`, { key: app.ann.key, body: {} });

    await t.step("a match fires: one Slack message, one PagerDuty trigger", async () => {
      const fired = await evaluate();
      assertEquals(fired.status, 200, JSON.stringify(fired.body));
      const statuses = Object.fromEntries(
        fired.body.deliveries.map((
          d: { channel: string; status: string },
        ) => [d.channel, d.status]),
      );
      assertEquals(statuses, { slack: "delivered", pagerduty: "delivered" });
      assertEquals(app.slack.texts(), ["Firing: checkout"]);
      const [event] = app.pagerduty.calls.map((c) => c.body);
      assertEquals(event.event_action, "trigger");
      const [alert] = await db.sql`select episode_id from alerts where id = ${app.alertId}`;
      assertEquals(event.dedup_key, alert.episode_id, "the episode is PagerDuty's dedup_key");
    });

    await t.step("no match any more resolves: green in Slack, resolve in PagerDuty", async () => {
      const episode = app.pagerduty.calls[0].body.dedup_key;
      const patched = await app.request("PATCH", `/v1/alerts/${app.alertId}`, {
        key: app.ann.key,
        body: { condition: { ...alwaysMatches, threshold: false } },
      });
      assertEquals(patched.status, 200, JSON.stringify(patched.body));
      app.clock.advance(MINUTE);
      const resolved = await evaluate();
      assertEquals(resolved.status, 200, JSON.stringify(resolved.body));
      assertEquals(app.slack.calls.length, 2, JSON.stringify(resolved.body));
      assertEquals(app.slack.calls[1].body.attachments[0].color, SLACK_COLORS.resolved);
      assertEquals(app.pagerduty.calls[1].body, {
        routing_key: ROUTING_KEY,
        event_action: "resolve",
        dedup_key: episode,
      });
      assertEquals(app.pagerduty.alerts.get(episode)?.open, false);
    });
  },
);
