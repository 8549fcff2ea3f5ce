/**
 * Fake Slack (incoming webhooks) and fake PagerDuty (Events API v2) on 127.0.0.1, for driving
 * vigil's real senders. Each records every request and answers with the next scripted behaviour
 * (default: accept); both check what they receive the way the real services do, so a malformed
 * message is answered as they would answer it (Slack 400 `invalid_payload`, PagerDuty 400
 * `invalid event`).
 *
 * Slack URLs must be https: the fake Slack serves TLS for `pinned.test` with the test-only
 * certificate of src/agents/testdata; `trustFakeTls` makes an outbound policy trust it and
 * resolve that name to 127.0.0.1.
 */
import { lookup } from "node:dns/promises";
import type { OutboundPolicy } from "../../src/agents/outbound.ts";
import type { Delivery, DeliveryPayload } from "../../src/delivery/types.ts";

export type ChatBehaviour =
  | { ok: true }
  | { status: number; body?: string; retryAfter?: string }
  | { hang: true };

export interface ChatCall {
  path: string;
  headers: Headers;
  // deno-lint-ignore no-explicit-any
  body: any;
}

const testdata = new URL("../../src/agents/testdata/", import.meta.url);
export const FAKE_TLS = {
  ca: Deno.readTextFileSync(new URL("ca.pem", testdata)),
  cert: Deno.readTextFileSync(new URL("pinned.test.pem", testdata)),
  key: Deno.readTextFileSync(new URL("pinned.test.key", testdata)),
  host: "pinned.test",
};

/** Makes `policy` trust the fakes' certificate and resolve `pinned.test` to 127.0.0.1. */
export function trustFakeTls(policy: OutboundPolicy): OutboundPolicy {
  return Object.assign(policy, {
    caCerts: [FAKE_TLS.ca],
    resolve: async (host: string) =>
      host === FAKE_TLS.host
        ? ["127.0.0.1"]
        : (await lookup(host, { all: true })).map((a) => a.address),
  });
}

interface Scripted {
  calls: ChatCall[];
  script: ChatBehaviour[];
  hanging: (() => void)[];
}

/** Records the call and plays the next behaviour; `accept` answers the ones that pass. */
async function play(
  state: Scripted,
  req: Request,
  accept: (call: ChatCall) => Response,
): Promise<Response> {
  const text = await req.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  const call = { path: new URL(req.url).pathname, headers: new Headers(req.headers), body };
  state.calls.push(call);
  const behaviour = state.script.shift() ?? { ok: true };
  if ("hang" in behaviour) {
    // Takes the message in, then never answers in time (the answer is lost: the worst case for
    // a retry). Released when the fake closes.
    await accept(call).body?.cancel();
    await new Promise<void>((resolve) => state.hanging.push(resolve));
    return new Response(null, { status: 504 });
  }
  if ("ok" in behaviour) return accept(call);
  return new Response(behaviour.body ?? `HTTP ${behaviour.status}`, {
    status: behaviour.status,
    headers: behaviour.retryAfter ? { "retry-after": behaviour.retryAfter } : {},
  });
}

function controls(state: Scripted, close: () => Promise<void>) {
  return {
    calls: state.calls,
    /** Queues how the next calls are answered. */
    respond(...behaviours: ChatBehaviour[]) {
      state.script.push(...behaviours);
    },
    async close() {
      for (const release of state.hanging.splice(0)) release();
      await close();
    },
    async [Symbol.asyncDispose]() {
      for (const release of state.hanging.splice(0)) release();
      await close();
    },
  };
}

/** Slack: `POST /services/T…/B…/<token>` (only the webhook's own path is a webhook). */
export function fakeSlack() {
  const state: Scripted = { calls: [], script: [], hanging: [] };
  const token = crypto.randomUUID().replaceAll("-", "").slice(0, 24);
  const path = `/services/T0VIGIL01/B0VIGIL02/${token}`;
  const slackText = (status: number, text: string) =>
    new Response(text, { status, headers: { "content-type": "text/plain" } });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert: FAKE_TLS.cert, key: FAKE_TLS.key, onListen: () => {} },
    (req) =>
      play(state, req, (call) => {
        if (req.method !== "POST") return slackText(405, "invalid_method");
        if (call.path !== path) return slackText(404, "no_service");
        const body = call.body;
        if (typeof body !== "object" || body === null) return slackText(400, "invalid_payload");
        if (!body.text && !body.blocks && !body.attachments) return slackText(400, "no_text");
        return slackText(200, "ok");
      }),
  );
  const port = server.addr.port;
  return {
    ...controls(state, () => server.shutdown()),
    port,
    /** The incoming-webhook URL (a secret, for real Slack). */
    webhookUrl: `https://${FAKE_TLS.host}:${port}${path}`,
    /** What the received messages said (their `text`). */
    texts: () => state.calls.map((c) => c.body?.text as string),
  };
}

export interface PagerDutyAlert {
  open: boolean;
  triggers: number;
  resolves: number;
  /** Times an alert was opened under this key (a trigger after a resolve opens a new one). */
  opened: number;
}

const SEVERITY = new Set(["critical", "error", "warning", "info"]);

/** Why PagerDuty would refuse an event (its 400 `errors`), or none. */
// deno-lint-ignore no-explicit-any
function invalidEvent(event: any): string[] {
  if (typeof event !== "object" || event === null) return ["Event object is not JSON"];
  const errors: string[] = [];
  if (typeof event.routing_key !== "string" || event.routing_key.length !== 32) {
    errors.push("Length of 'routing_key' is incorrect (should be 32 characters)");
  }
  if (!["trigger", "acknowledge", "resolve"].includes(event.event_action)) {
    errors.push("'event_action' is invalid (must be one of: trigger, acknowledge, resolve)");
  }
  if (event.dedup_key !== undefined && String(event.dedup_key).length > 255) {
    errors.push("'dedup_key' is too long");
  }
  if (event.event_action === "trigger") {
    const p = event.payload;
    if (typeof p?.summary !== "string" || !p.summary) errors.push("'payload.summary' is missing");
    else if (p.summary.length > 1024) errors.push("'payload.summary' is too long");
    if (typeof p?.source !== "string" || !p.source) errors.push("'payload.source' is missing");
    if (!SEVERITY.has(p?.severity)) errors.push("'payload.severity' is invalid");
  } else if (typeof event.dedup_key !== "string") {
    errors.push("'dedup_key' is required for acknowledge and resolve");
  }
  return errors;
}

/** PagerDuty: `POST /v2/enqueue`, folding events by `dedup_key` into alerts as PagerDuty does. */
export function fakePagerDuty() {
  const state: Scripted = { calls: [], script: [], hanging: [] };
  const alerts = new Map<string, PagerDutyAlert>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) =>
      play(state, req, (call) => {
        if (req.method !== "POST" || call.path !== "/v2/enqueue") {
          return Response.json({ status: "not found" }, { status: 404 });
        }
        const errors = invalidEvent(call.body);
        if (errors.length) {
          return Response.json(
            { status: "invalid event", message: "Event object is invalid", errors },
            { status: 400 },
          );
        }
        const event = call.body;
        const key: string = event.dedup_key ?? crypto.randomUUID();
        const alert = alerts.get(key) ?? { open: false, triggers: 0, resolves: 0, opened: 0 };
        alerts.set(key, alert);
        if (event.event_action === "trigger") {
          alert.triggers++;
          if (!alert.open) alert.opened++;
          alert.open = true;
        } else if (event.event_action === "resolve" && alert.open) {
          alert.resolves++;
          alert.open = false;
        }
        return Response.json(
          { status: "success", message: "Event processed", dedup_key: key },
          { status: 202 },
        );
      }),
  );
  return {
    ...controls(state, () => server.shutdown()),
    url: `http://127.0.0.1:${server.addr.port}/v2/enqueue`,
    alerts,
  };
}

// ---- payloads to send ------------------------------------------------------------------------

/** An alert notification as the lifecycle writes it (what the senders render). */
const ALERT = { id: "6f1c1c56-0c55-4d1e-9a57-6d8f0b3f8a11", name: "checkout is slow" };

export function payloadOf(overrides: Partial<DeliveryPayload> = {}): DeliveryPayload {
  return {
    type: "alert.fired",
    source: "rule",
    kind: "firing",
    severity: "critical",
    title: `Firing: ${ALERT.name}`,
    message: "p95 is 1.8 s (> 1)",
    alert: ALERT,
    episode: { id: "a7c5b1f2-3d4e-4f60-8a9b-0c1d2e3f4a5b", started_at: "2026-03-01T10:00:00.000Z" },
    value: 1.8,
    condition: { capability: "http.check", args: { url: "https://shop.example/health" } },
    fired_at: "2026-03-01T10:02:00.000Z",
    ...overrides,
  };
}

export function deliveryOf(payload: DeliveryPayload, channel: Delivery["channel"] = "slack") {
  return {
    id: crypto.randomUUID(),
    alert_id: payload.alert?.id ?? null,
    user_id: crypto.randomUUID(),
    channel,
    payload,
    attempts: 0,
    created_at: new Date(),
    maybe_sent: false,
  } satisfies Delivery;
}
