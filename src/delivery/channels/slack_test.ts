import type { OutboundPolicy } from "../../agents/outbound.ts";
import { SLACK_WEBHOOK_URL } from "../../alerts/store.ts";
import type { Sql } from "../../db/database.ts";
import { Keyring, Secrets } from "../../security/secrets.ts";
import { assert, assertEquals, assertMatch } from "../../../tests/support/assert.ts";
import {
  deliveryOf,
  fakeSlack,
  payloadOf,
  trustFakeTls,
} from "../../../tests/support/fake_chat.ts";
import type { DeliveryPayload, SendContext } from "../types.ts";
import { alertLink, kindOf, redact, SLACK_COLORS, slackMessage, slackSender } from "./slack.ts";

Deno.test("slack message: firing, with title, severity colour, value, link and episode", () => {
  const message = slackMessage(payloadOf());
  assertEquals(message.text, "Firing: checkout is slow");
  const [a] = message.attachments;
  assertEquals(a.color, SLACK_COLORS.critical);
  assertEquals(a.title, "Firing: checkout is slow");
  assertEquals(a.title_link, "https://shop.example/health");
  assertEquals(a.text, "p95 is 1.8 s (&gt; 1)");
  assertEquals(a.fields, [
    { title: "Severity", value: "critical", short: true },
    { title: "Value", value: "1.8", short: true },
    { title: "Since", value: "2026-03-01T10:00:00.000Z", short: true },
    { title: "Alert", value: "checkout is slow", short: true },
  ]);
  assertEquals(a.ts, Date.parse("2026-03-01T10:02:00.000Z") / 1000);
});

Deno.test("slack message: warning amber, info blue, resolved and recovered green", () => {
  const color = (p: Partial<DeliveryPayload>) => slackMessage(payloadOf(p)).attachments[0].color;
  assertEquals(color({ severity: "warning" }), SLACK_COLORS.warning);
  assertEquals(color({ severity: "info" }), SLACK_COLORS.info);
  assertEquals(color({ kind: "repeat", type: "alert.repeat" }), SLACK_COLORS.critical);
  assertEquals(color({ kind: "resolved", type: "alert.resolved" }), SLACK_COLORS.resolved);
  assertEquals(color({ kind: "error", type: "alert.error" }), SLACK_COLORS.critical);
  assertEquals(
    color({ kind: "error", type: "alert.error", recovery: true }),
    SLACK_COLORS.resolved,
  );
  assertEquals(new Set(Object.values(SLACK_COLORS)).size, 4, "four distinct colours");
});

Deno.test("slack message: the title says what happened; resolved says how long it lasted", () => {
  const text = (p: Partial<DeliveryPayload>) => slackMessage(payloadOf(p)).text;
  assertEquals(text({ kind: "repeat", title: "Still firing: checkout" }), "Still firing: checkout");
  const resolved = slackMessage(payloadOf({
    kind: "resolved",
    title: "Resolved: checkout is slow",
    episode: {
      id: "e",
      started_at: "2026-03-01T10:00:00.000Z",
      ended_at: "2026-03-01T11:02:03.000Z",
      duration_seconds: 3723,
    },
  }));
  assertEquals(resolved.text, "Resolved: checkout is slow");
  assert(
    resolved.attachments[0].fields.some((f) => f.title === "Lasted" && f.value === "1 h 2 min"),
    JSON.stringify(resolved.attachments[0].fields),
  );
  // Payloads without `kind` (written before the lifecycle) say it by their type.
  assertEquals(kindOf(payloadOf({ kind: undefined, type: "alert.resolved" })), "resolved");
  assertEquals(kindOf(payloadOf({ kind: undefined, type: "alert.fired" })), "firing");
});

Deno.test("slack message: text is escaped, long values are cut, no link without a URL", () => {
  const message = slackMessage(payloadOf({
    title: "a <b> & c",
    message: "<!channel> wake up",
    value: { body: "x".repeat(1000) },
    condition: { capability: "data.compare", args: { value: 2 } },
  }));
  const [a] = message.attachments;
  assertEquals(message.text, "a &lt;b&gt; &amp; c");
  assertEquals(a.text, "&lt;!channel&gt; wake up", "no mention can be injected");
  assertEquals(a.title_link, undefined);
  const value = a.fields.find((f) => f.title === "Value")!.value;
  assert(value.length <= 500 && value.endsWith("…"), value);
  assertEquals(
    alertLink(payloadOf({ condition: { args: { url: "javascript:alert(1)" } } })),
    undefined,
  );
  assertEquals(
    alertLink(payloadOf({ condition: { pattern_id: "p", inputs: { url: "http://a.example/x" } } })),
    "http://a.example/x",
  );
});

Deno.test("slack: redact removes a secret and its URL-encoded form", () => {
  assertEquals(redact("url (https://h/services/a b) x", ["https://h/services/a b"]), "url (…) x");
  assertEquals(redact("at /services/a%20b", ["/services/a b"]), "at …");
});

// ---- the sender, against a fake Slack --------------------------------------------------------

const ctx = (): SendContext => ({
  signal: new AbortController().signal,
  deadline: performance.now() + 60_000,
});

async function sender(stored: string | null, timeoutMs = 2000) {
  const secrets = Secrets.of(await Keyring.create(crypto.getRandomValues(new Uint8Array(32))));
  const policy: OutboundPolicy = trustFakeTls({ allowPrivate: true });
  const sealed = stored === null ? null : await secrets.seal(stored, SLACK_WEBHOOK_URL);
  // The sender reads one row: the alert's sealed webhook URL.
  const sql = (() => Promise.resolve(sealed === null ? [] : [{ sealed }])) as unknown as Sql;
  return { send: slackSender(sql, policy, timeoutMs, secrets), secrets, policy };
}

Deno.test("slack sender: 200 ok is delivered; the body is the rendered message", async () => {
  await using slack = fakeSlack();
  const { send } = await sender(slack.webhookUrl);
  const delivery = deliveryOf(payloadOf());
  assertEquals(await send.send(delivery, ctx()), { outcome: "delivered", providerStatus: 200 });
  assertEquals(slack.calls.length, 1);
  assertEquals(slack.calls[0].headers.get("content-type"), "application/json");
  assertEquals(slack.calls[0].body, JSON.parse(JSON.stringify(slackMessage(delivery.payload))));
});

Deno.test("slack sender: 4xx is permanent, 429 waits, 5xx is retried; no URL in errors", async () => {
  await using slack = fakeSlack();
  const { send } = await sender(slack.webhookUrl);
  const delivery = deliveryOf(payloadOf());
  const token = slack.webhookUrl.split("/").pop()!;
  for (
    const [status, body] of [[400, "invalid_payload"], [403, "action_prohibited"], [
      404,
      "channel_not_found",
    ], [410, "channel_is_archived"]] as const
  ) {
    slack.respond({ status, body: `${body} ${token}` });
    const result = await send.send(delivery, ctx());
    assertEquals(result, {
      outcome: "failed",
      permanent: true,
      error: `Slack answered HTTP ${status}: ${body} …`,
      providerStatus: status,
    });
  }
  slack.respond({ status: 429, body: "rate_limited", retryAfter: "30" });
  assertEquals(await send.send(delivery, ctx()), {
    outcome: "failed",
    permanent: false,
    error: "Slack answered HTTP 429: rate_limited",
    providerStatus: 429,
    retryAfterMs: 30_000,
  });
  slack.respond({ status: 500, body: "rollup_error" });
  const failed = await send.send(delivery, ctx());
  assertEquals([failed.outcome, "permanent" in failed && failed.permanent], ["failed", false]);
});

Deno.test("slack sender: no answer is unknown, a refused connection a failure", async () => {
  await using slack = fakeSlack();
  const { send } = await sender(slack.webhookUrl, 200);
  slack.respond({ hang: true });
  const hung = await send.send(deliveryOf(payloadOf()), ctx());
  assertEquals(hung, { outcome: "unknown", error: "Slack: no answer within 200 ms" });
  await slack.close();
  const down = await send.send(deliveryOf(payloadOf()), ctx());
  assertEquals(down.outcome, "failed");
  assert(down.outcome === "failed" && !down.permanent);
  assertMatch(down.error, /^Slack: .*client error \(Connect\)/);
  assert(!down.error.includes("/services/"), down.error);
});

Deno.test("slack sender: a URL that does not decrypt, or no Slack at all: nothing is sent", async () => {
  await using slack = fakeSlack();
  const { send: gone } = await sender(null);
  assertEquals(await gone.send(deliveryOf(payloadOf()), ctx()), {
    outcome: "failed",
    permanent: true,
    error: "the alert or its Slack channel is gone",
  });
  // Sealed under a key this keyring does not have.
  const other = Secrets.of(await Keyring.create(crypto.getRandomValues(new Uint8Array(32))));
  const foreign = await other.seal(slack.webhookUrl, SLACK_WEBHOOK_URL);
  const { secrets, policy } = await sender(null);
  const sql = (() => Promise.resolve([{ sealed: foreign }])) as unknown as Sql;
  const result = await slackSender(sql, policy, 2000, secrets).send(
    deliveryOf(payloadOf()),
    ctx(),
  );
  assertEquals(result.outcome, "failed");
  assertMatch(
    (result as { error: string }).error,
    /^Slack: cannot decrypt the webhook URL: the stored value is sealed with key/,
  );
  assertEquals(slack.calls.length, 0);
});

Deno.test("slack sender: the outbound policy applies at send time", async () => {
  const secrets = Secrets.of(await Keyring.create(crypto.getRandomValues(new Uint8Array(32))));
  const sealed = await secrets.seal("https://169.254.169.254/services/x", SLACK_WEBHOOK_URL);
  const sql = (() => Promise.resolve([{ sealed }])) as unknown as Sql;
  const result = await slackSender(sql, { allowPrivate: true }, 2000, secrets).send(
    deliveryOf(payloadOf()),
    ctx(),
  );
  assertEquals(result, {
    outcome: "failed",
    permanent: true,
    error: "Slack: refused 169.254.169.254: the cloud metadata address is never allowed",
  });
});
