import { PAGERDUTY_ROUTING_KEY } from "../../alerts/store.ts";
import type { Sql } from "../../db/database.ts";
import { Keyring, Secrets } from "../../security/secrets.ts";
import { assert, assertEquals, assertMatch } from "../../../tests/support/assert.ts";
import { deliveryOf, fakePagerDuty, payloadOf } from "../../../tests/support/fake_chat.ts";
import type { SendContext } from "../types.ts";
import { pagerdutyEvent, pagerdutySender } from "./pagerduty.ts";

const KEY = "R0UT1NGKEY0123456789abcdefABCDEF";
const EPISODE = "a7c5b1f2-3d4e-4f60-8a9b-0c1d2e3f4a5b";
const ALERT_ID = "6f1c1c56-0c55-4d1e-9a57-6d8f0b3f8a11";

const pd = (overrides: Parameters<typeof payloadOf>[0] = {}) =>
  deliveryOf(payloadOf(overrides), "pagerduty");

Deno.test("pagerduty event: firing triggers the episode's dedup_key with the alert's details", () => {
  const delivery = pd();
  assertEquals(pagerdutyEvent(delivery, KEY), {
    routing_key: KEY,
    event_action: "trigger",
    dedup_key: EPISODE,
    client: "vigil",
    links: [{ href: "https://shop.example/health", text: "What the alert checks" }],
    payload: {
      summary: "Firing: checkout is slow — p95 is 1.8 s (> 1)",
      source: "vigil",
      severity: "critical",
      timestamp: "2026-03-01T10:02:00.000Z",
      custom_details: {
        kind: "firing",
        message: "p95 is 1.8 s (> 1)",
        value: 1.8,
        alert: { id: ALERT_ID, name: "checkout is slow" },
        episode: { id: EPISODE, started_at: "2026-03-01T10:00:00.000Z" },
        delivery_id: delivery.id,
      },
    },
  });
});

Deno.test("pagerduty event: repeat triggers the same key, resolved resolves it (no payload)", () => {
  const repeat = pagerdutyEvent(pd({ kind: "repeat", type: "alert.repeat" }), KEY);
  assert(!("error" in repeat));
  assertEquals([repeat.event_action, repeat.dedup_key], ["trigger", EPISODE]);
  assertEquals(pagerdutyEvent(pd({ kind: "resolved", type: "alert.resolved" }), KEY), {
    routing_key: KEY,
    event_action: "resolve",
    dedup_key: EPISODE,
  });
});

Deno.test("pagerduty event: severities map; an error triggers <alert>:error, its recovery resolves", () => {
  const severity = (s: "critical" | "warning" | "info") => {
    const event = pagerdutyEvent(pd({ severity: s }), KEY);
    return "error" in event ? event.error : event.payload?.severity;
  };
  assertEquals([severity("critical"), severity("warning"), severity("info")], [
    "critical",
    "warning",
    "info",
  ]);
  const error = pagerdutyEvent(
    pd({ kind: "error", type: "alert.error", episode: undefined, severity: "info" }),
    KEY,
  );
  assert(!("error" in error));
  assertEquals(
    [error.event_action, error.dedup_key, error.payload?.severity],
    ["trigger", `${ALERT_ID}:error`, "error"],
  );
  assertEquals(
    pagerdutyEvent(pd({ kind: "error", type: "alert.error", recovery: true }), KEY),
    { routing_key: KEY, event_action: "resolve", dedup_key: `${ALERT_ID}:error` },
  );
});

Deno.test("pagerduty event: without an episode a trigger gets its own key, a resolve none", () => {
  const delivery = pd({ episode: undefined });
  const trigger = pagerdutyEvent(delivery, KEY);
  assert(!("error" in trigger));
  assertEquals(trigger.dedup_key, delivery.id, "retries of one delivery still de-duplicate");
  assertEquals(pagerdutyEvent(pd({ kind: "resolved", episode: undefined }), KEY), {
    error: "PagerDuty: nothing to resolve: the notification names no episode",
  });
  const long = pagerdutyEvent(pd({ message: "x".repeat(2000) }), KEY);
  assert(!("error" in long) && long.payload!.summary.length === 1024);
});

// ---- the sender, against a fake PagerDuty -----------------------------------------------------

const ctx = (): SendContext => ({
  signal: new AbortController().signal,
  deadline: performance.now() + 60_000,
});

async function sender(url: string, key: string | null = KEY, timeoutMs = 2000) {
  const secrets = Secrets.of(await Keyring.create(crypto.getRandomValues(new Uint8Array(32))));
  const sealed = key === null ? null : await secrets.seal(key, PAGERDUTY_ROUTING_KEY);
  const sql = (() => Promise.resolve(sealed === null ? [] : [{ sealed }])) as unknown as Sql;
  // A production policy: PAGERDUTY_EVENTS_URL is the operator's, so a private relay still works.
  return pagerdutySender(sql, { allowPrivate: false }, url, timeoutMs, secrets);
}

Deno.test("pagerduty sender: 202 is delivered; trigger, repeat and resolve fold into one alert", async () => {
  await using fake = fakePagerDuty();
  const send = await sender(fake.url);
  for (const kind of ["firing", "repeat", "resolved"] as const) {
    assertEquals(await send.send(pd({ kind }), ctx()), {
      outcome: "delivered",
      providerStatus: 202,
    });
  }
  assertEquals(fake.calls.map((c) => c.body.event_action), ["trigger", "trigger", "resolve"]);
  assertEquals(fake.alerts.get(EPISODE), { open: false, triggers: 2, resolves: 1, opened: 1 });
});

Deno.test("pagerduty sender: 400 is permanent, 429 and 5xx are retried; no key in errors", async () => {
  await using fake = fakePagerDuty();
  const invalid = await sender(fake.url, "short");
  const refused = await invalid.send(pd(), ctx());
  assertEquals(refused, {
    outcome: "failed",
    permanent: true,
    error: "PagerDuty answered HTTP 400: Event object is invalid: Length of 'routing_key' is " +
      "incorrect (should be 32 characters)",
    providerStatus: 400,
  });
  const send = await sender(fake.url);
  fake.respond({ status: 400, body: JSON.stringify({ message: `bad ${KEY}` }) });
  const echoed = await send.send(pd(), ctx());
  assert(echoed.outcome === "failed" && echoed.permanent && !echoed.error.includes(KEY));
  fake.respond({ status: 429, retryAfter: "60" });
  const limited = await send.send(pd(), ctx());
  assert(limited.outcome === "failed" && !limited.permanent, JSON.stringify(limited));
  assertEquals(limited.retryAfterMs, 60_000);
  fake.respond({ status: 503, body: "{}" });
  const down = await send.send(pd(), ctx());
  assertEquals(down, {
    outcome: "failed",
    permanent: false,
    error: "PagerDuty answered HTTP 503",
    providerStatus: 503,
  });
});

Deno.test("pagerduty sender: no answer is unknown; an undecryptable key sends nothing", async () => {
  await using fake = fakePagerDuty();
  fake.respond({ hang: true });
  const hung = await (await sender(fake.url, KEY, 200)).send(pd(), ctx());
  assertEquals(hung, { outcome: "unknown", error: "PagerDuty: no answer within 200 ms" });
  const calls = fake.calls.length;
  const other = Secrets.of(await Keyring.create(crypto.getRandomValues(new Uint8Array(32))));
  const foreign = await other.seal(KEY, PAGERDUTY_ROUTING_KEY);
  const sql = (() => Promise.resolve([{ sealed: foreign }])) as unknown as Sql;
  const mine = Secrets.of(await Keyring.create(crypto.getRandomValues(new Uint8Array(32))));
  const result = await pagerdutySender(sql, { allowPrivate: true }, fake.url, 2000, mine).send(
    pd(),
    ctx(),
  );
  assert(result.outcome === "failed" && !result.permanent);
  assertMatch(result.error, /^PagerDuty: cannot decrypt the routing key: /);
  assertEquals(fake.calls.length, calls, "nothing was sent");
  const gone = await (await sender(fake.url, null)).send(pd(), ctx());
  assertEquals(gone, {
    outcome: "failed",
    permanent: true,
    error: "the alert or its PagerDuty channel is gone",
  });
});
