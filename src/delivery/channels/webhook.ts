/**
 * Webhook channel: a POST of the alert JSON, signed the Standard Webhooks way (`webhook-id` =
 * the delivery id, `webhook-timestamp`, `webhook-signature` = `v1,` + base64 HMAC-SHA256 of
 * `id.timestamp.body` with the alert's secret). 2xx is success; refused targets are permanent.
 */
import { Webhook } from "standardwebhooks";
import { outboundFetch, type OutboundPolicy } from "../../agents/outbound.ts";
import { CallerError } from "../../agents/types.ts";
import type { Clock } from "../../clock.ts";
import type { Sql } from "../../db/database.ts";
import { retryAfterMs } from "./email.ts";
import type { Delivery, Sender, SendResult } from "../types.ts";

const TIMEOUT_MS = 10_000;

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

export function webhookSender(sql: Sql, clock: Clock, policy: OutboundPolicy): Sender {
  return {
    channel: "webhook",
    status: () => ({ status: "up" }),
    async send(delivery, signal): Promise<SendResult> {
      const url = delivery.payload.webhook_url;
      const [alert] = delivery.alert_id
        ? await sql<{ secret: string | null }[]>`
            select channels -> 'webhook' ->> 'secret' as secret from alerts where id = ${delivery.alert_id}`
        : [];
      if (!url || !alert?.secret) {
        return { ok: false, permanent: true, error: "the alert or its webhook is gone" };
      }
      const body = webhookBody(delivery);
      try {
        const res = await outboundFetch(new URL(url), {
          method: "POST",
          headers: {
            "content-type": "application/json",
            ...signWebhook(alert.secret, delivery.id, clock.now(), body),
          },
          body,
          signal: AbortSignal.any([signal, AbortSignal.timeout(TIMEOUT_MS)]),
        }, policy);
        await res.body?.cancel();
        if (res.ok) return { ok: true, providerStatus: res.status };
        return {
          ok: false,
          permanent: false,
          error: `webhook answered HTTP ${res.status}`,
          providerStatus: res.status,
          retryAfterMs: res.status === 429
            ? retryAfterMs(res.headers.get("retry-after"))
            : undefined,
        };
      } catch (error) {
        const message = error instanceof DOMException && error.name === "TimeoutError"
          ? `no answer within ${TIMEOUT_MS} ms`
          : (error as Error).message;
        return { ok: false, permanent: error instanceof CallerError, error: `webhook: ${message}` };
      }
    },
  };
}
