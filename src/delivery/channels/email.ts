/**
 * Email channel through Resend. Every attempt of a delivery carries the delivery id as its
 * idempotency key, so a retry after an ambiguous failure never sends twice while Resend remembers
 * the key (24 h). An answer is definite: 429 waits for retry-after; 400/401/403/422 are permanent;
 * other errors are retried. No answer (a timeout, a network error: the SDK does not tell a refused
 * connection from a lost one) is an unknown outcome: Resend may have the email.
 * Without RESEND_API_KEY, development writes each email as a log line and other environments
 * report the channel unavailable (its deliveries fail into the DLQ until it is configured).
 */
import { SpanKind, trace, type Tracer } from "@opentelemetry/api";
import { Resend } from "resend";
import type { Config } from "../../config.ts";
import type { Logger } from "../../observability/logger.ts";
import { inSpan, recordError } from "../../observability/tracing.ts";
import { RateLimiter } from "../rate_limiter.ts";
import { type Delivery, type Sender, type SendResult, timeLeft } from "../types.ts";

const PERMANENT = new Set([400, 401, 403, 422]);

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function renderEmail(delivery: Delivery) {
  const p = delivery.payload;
  const lines = [p.message, "", `Fired at: ${p.fired_at}`];
  if (p.alert) lines.push(`Alert: ${p.alert.name} (${p.alert.id})`);
  if (p.value !== undefined) lines.push(`Value: ${JSON.stringify(p.value)}`);
  const text = lines.join("\n");
  const html = `<h2>${escapeHtml(p.title)}</h2>` +
    lines.map((l) => (l ? `<p>${escapeHtml(l)}</p>` : "")).join("");
  return { subject: p.title, text, html };
}

/**
 * Parses `retry-after` (seconds or an HTTP date) into milliseconds. The receiver controls it:
 * the due time it leads to is clamped where every due time is (`dueAfter`).
 */
export function retryAfterMs(
  value: string | undefined | null,
  now = Date.now(),
): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - now;
  return Number.isNaN(ms) ? undefined : ms;
}

export function emailSender(
  config: Pick<
    Config,
    | "RESEND_API_KEY"
    | "RESEND_BASE_URL"
    | "RESEND_RATE_PER_SECOND"
    | "RESEND_TIMEOUT_MS"
    | "ALERT_EMAIL_FROM"
    | "VIGIL_ENV"
  >,
  logger: Logger,
  tracer?: Tracer,
): Sender {
  if (!config.RESEND_API_KEY) {
    if (config.VIGIL_ENV === "development") {
      return {
        channel: "email",
        status: () => ({ status: "up", detail: "development: emails are written to the log" }),
        send(delivery) {
          const email = renderEmail(delivery);
          logger.info("email (log transport) to {to}: {subject}", {
            to: delivery.payload.recipient,
            subject: email.subject,
            text: email.text,
            idempotency_key: delivery.id,
          });
          return Promise.resolve({ outcome: "delivered" });
        },
      };
    }
    const detail = "RESEND_API_KEY is not set";
    return {
      channel: "email",
      status: () => ({ status: "unavailable", detail }),
      send: () =>
        Promise.resolve({
          outcome: "failed",
          permanent: false,
          error: `email is unavailable: ${detail}`,
        }),
    };
  }

  const resend = new Resend(
    config.RESEND_API_KEY,
    config.RESEND_BASE_URL ? { baseUrl: config.RESEND_BASE_URL } : {},
  );
  const limiter = new RateLimiter({ perSecond: config.RESEND_RATE_PER_SECOND });
  const api = new URL(
    "emails",
    (config.RESEND_BASE_URL ?? "https://api.resend.com").replace(/\/?$/, "/"),
  );
  const apiAttributes = {
    "http.request.method": "POST",
    "server.address": api.hostname,
    "server.port": Number(api.port || (api.protocol === "https:" ? 443 : 80)),
    "url.full": api.href,
    "peer.service": "resend",
  };
  return {
    channel: "email",
    status: () => ({ status: "up" }),
    async send(delivery, ctx): Promise<SendResult> {
      const to = delivery.payload.recipient;
      if (!to) {
        return {
          outcome: "failed",
          permanent: true,
          error: "the delivery has no recipient address",
        };
      }
      // Start only with a whole timeout left in the lease: a later slot waits for the next batch.
      if (!await limiter.acquire(ctx.deadline - config.RESEND_TIMEOUT_MS, ctx.signal)) {
        return { outcome: "not_sent", error: "no rate-limit slot left in this batch" };
      }
      const timeoutMs = timeLeft(ctx, config.RESEND_TIMEOUT_MS);
      const send = () =>
        resend.emails.send(
          { from: config.ALERT_EMAIL_FROM, to, ...renderEmail(delivery) },
          {
            idempotencyKey: delivery.id,
            signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(timeoutMs)]),
          },
        );
      const { data, error, headers } = tracer && trace.getActiveSpan()?.isRecording()
        ? await inSpan(
          tracer,
          "POST",
          { kind: SpanKind.CLIENT, attributes: apiAttributes },
          async (span) => {
            const answer = await send();
            const status = answer.data ? 200 : answer.error?.statusCode;
            if (status) span.setAttribute("http.response.status_code", status);
            if (answer.error) recordError(span, new Error(answer.error.message));
            return answer;
          },
        )
        : await send();
      if (data && !error) return { outcome: "delivered", providerStatus: 200 };
      const status = error?.statusCode ?? undefined;
      if (status === undefined) {
        const why = ctx.signal.aborted
          ? "cut off: vigil is stopping"
          : `no answer within ${timeoutMs} ms`;
        return { outcome: "unknown", error: `Resend: ${why} (${error?.message ?? "no answer"})` };
      }
      return {
        outcome: "failed",
        permanent: PERMANENT.has(status),
        error: `Resend ${status}: ${error?.message ?? "no message"}`,
        providerStatus: status,
        retryAfterMs: status === 429 ? retryAfterMs(headers?.["retry-after"]) : undefined,
      };
    },
  };
}
