/**
 * Webhook channel: a POST of the alert JSON, signed the Standard Webhooks way (`webhook-id` =
 * the delivery id, `webhook-timestamp`, `webhook-signature` = `v1,` + base64 HMAC-SHA256 of
 * `id.timestamp.body` with the alert's secret). 2xx is success; refused targets are permanent; an
 * answered error or a refused connection is a definite failure; no answer (a timeout, a connection
 * lost after the request was written) is an unknown outcome. Receivers de-duplicate by
 * `webhook-id`, which every attempt of a delivery repeats (README: the webhook contract).
 *
 * The secret is stored sealed (README: secrets at rest) and opened here, just before signing; a
 * secret that does not open (a key missing from VIGIL_SECRET_KEY / VIGIL_SECRET_KEY_PREVIOUS)
 * fails the attempt — retried, then dead-lettered, like any failure — and nothing is sent.
 */
import { Webhook } from "standardwebhooks";
import { outboundFetch, type OutboundPolicy } from "../../agents/outbound.ts";
import { CallerError } from "../../agents/types.ts";
import type { Clock } from "../../clock.ts";
import type { Sql } from "../../db/database.ts";
import { WEBHOOK_SECRET } from "../../alerts/store.ts";
import type { Secrets } from "../../security/secrets.ts";
import { retryAfterMs } from "./email.ts";
import { alertSecret, type SecretField } from "./alert_secret.ts";
import { type Delivery, type Sender, type SendResult, timeLeft } from "../types.ts";

/** fetch's cause when the connection was never made (refused, unreachable): nothing was sent. */
const NOT_CONNECTED = /client error \(Connect\)/;

const SIGNING_SECRET: SecretField = {
  channel: "webhook",
  field: "secret",
  purpose: WEBHOOK_SECRET,
  label: "webhook",
  secretName: "signing secret",
};

/** The JSON body a webhook receives. */
export function webhookBody(delivery: Delivery): string {
  const { recipient: _r, webhook_url: _u, ...payload } = delivery.payload;
  return JSON.stringify({ delivery_id: delivery.id, ...payload });
}

export function signWebhook(secret: string, id: string, at: Date, body: string) {
  return {
    "webhook-id": id,
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": new Webhook(secret).sign(id, at, body),
  };
}

export function webhookSender(
  sql: Sql,
  clock: Clock,
  policy: OutboundPolicy,
  timeoutMs: number,
  secrets: Secrets,
): Sender {
  return {
    channel: "webhook",
    status: () => ({ status: "up" }),
    async send(delivery, ctx): Promise<SendResult> {
      const url = delivery.payload.webhook_url;
      if (!url) {
        return { outcome: "failed", permanent: true, error: "the alert or its webhook is gone" };
      }
      const opened = await alertSecret(sql, secrets, delivery, SIGNING_SECRET);
      if ("failure" in opened) return opened.failure;
      const secret = opened.value;
      const timeout = timeLeft(ctx, timeoutMs);
      if (timeout <= 0) return { outcome: "not_sent", error: "no time left in this batch" };
      const body = webhookBody(delivery);
      try {
        const res = await outboundFetch(new URL(url), {
          method: "POST",
          headers: {
            "content-type": "application/json",
            ...signWebhook(secret, delivery.id, clock.now(), body),
          },
          body,
          signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(timeout)]),
        }, policy);
        await res.body?.cancel();
        if (res.ok) return { outcome: "delivered", providerStatus: res.status };
        return {
          outcome: "failed",
          permanent: false,
          error: `webhook answered HTTP ${res.status}`,
          providerStatus: res.status,
          retryAfterMs: res.status === 429
            ? retryAfterMs(res.headers.get("retry-after"))
            : undefined,
        };
      } catch (error) {
        if (error instanceof CallerError) {
          return { outcome: "failed", permanent: true, error: `webhook: ${error.message}` };
        }
        const cause = String((error as Error).cause ?? "");
        if (NOT_CONNECTED.test(cause)) {
          return { outcome: "failed", permanent: false, error: `webhook: ${cause}` };
        }
        const why = ctx.signal.aborted
          ? "cut off: vigil is stopping"
          : error instanceof DOMException && error.name === "TimeoutError"
          ? `no answer within ${timeout} ms`
          : cause || (error as Error).message;
        return { outcome: "unknown", error: `webhook: ${why}` };
      }
    },
  };
}
