/**
 * Slack channel: a message posted to the alert's incoming webhook (Slack's documented payload:
 * `text` — the title — plus one attachment with `color`, `title`, `title_link` (what the alert
 * checks, when it names a URL), `text` (the message) and `fields` (severity, value, since, how
 * long)), coloured by severity — critical red, warning amber, info blue — and green when it is
 * resolved (or when evaluation works again after an error).
 *
 * The webhook URL is the secret (whoever has it can post to the channel): it is stored sealed in
 * `alerts.channels.slack` (README: secrets at rest), read from the alert and opened here, at send
 * time, and never written into an error, a log line or the delivery's payload. A URL that does not
 * open fails the attempt (retried, then dead-lettered) and nothing is sent. The request goes
 * through `outboundFetch`, so the outbound address policy and DNS pinning apply at every send.
 *
 * Slack's incoming webhooks have no idempotency key: a send without an answer (a timeout after
 * the request was written, a connection lost mid-send) may have been posted, and is never sent
 * again automatically — its idempotency window is 0 (schedule.ts), so the dispatcher makes it
 * `uncertain`. An answer is definite: 2xx is delivered; 429 waits for `Retry-After`; other 4xx
 * (400 invalid_payload, 403 action_prohibited, 404 channel_not_found, 410 channel_is_archived)
 * are permanent; 5xx and refused connections are retried.
 */
import { outboundFetch, type OutboundPolicy, readLimited } from "../../agents/outbound.ts";
import { CallerError } from "../../agents/types.ts";
import type { Sql } from "../../db/database.ts";
import { SLACK_WEBHOOK_URL } from "../../alerts/store.ts";
import { formatDuration } from "../../util/duration.ts";
import { alertSecret, type SecretField } from "./alert_secret.ts";
import type { Secrets } from "../../security/secrets.ts";
import { retryAfterMs } from "./email.ts";
import {
  type DeliveryPayload,
  type SendContext,
  type Sender,
  type SendResult,
  timeLeft,
} from "../types.ts";

// ---- what a notification is --------------------------------------------------------------------

export type NotificationKind = NonNullable<DeliveryPayload["kind"]>;
export type Severity = NonNullable<DeliveryPayload["severity"]>;

const SEVERITIES: readonly string[] = ["critical", "warning", "info"];

/** The lifecycle notification a payload is (payloads written before `kind` say it by `type`). */
export function kindOf(payload: DeliveryPayload): NotificationKind {
  if (payload.kind) return payload.kind;
  switch (payload.type) {
    case "alert.repeat":
      return "repeat";
    case "alert.resolved":
    case "alertmanager.resolved":
      return "resolved";
    case "alert.error":
      return "error";
    default:
      return "firing";
  }
}

/** An `error` notification sent on leaving the error state: evaluation works again. */
export function isRecovery(payload: DeliveryPayload): boolean {
  return kindOf(payload) === "error" && payload.recovery === true;
}

export function severityOf(payload: DeliveryPayload): Severity {
  if (payload.severity) return payload.severity;
  const label = payload.labels?.severity;
  return label && SEVERITIES.includes(label) ? label as Severity : "warning";
}

/** The value as text, cut to `max` characters. */
export function valueText(value: unknown, max = 500): string | undefined {
  if (value === undefined) return undefined;
  const text = typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * A link for the message, if the payload has one: the http(s) URL the alert's condition checks
 * (`inputs.url` of a pattern, `args.url` of a capability such as `http.check`).
 */
export function alertLink(payload: DeliveryPayload): string | undefined {
  const condition = payload.condition as
    | { inputs?: Record<string, unknown>; args?: Record<string, unknown> }
    | undefined;
  const url = condition?.inputs?.url ?? condition?.args?.url;
  if (typeof url !== "string" || !/^https?:\/\//i.test(url)) return undefined;
  try {
    return new URL(url).href;
  } catch {
    return undefined;
  }
}

// ---- the Slack message ---------------------------------------------------------------------------

export const SLACK_COLORS = {
  critical: "#d0021b",
  warning: "#f2a900",
  info: "#1d9bd1",
  resolved: "#2eb67d",
} as const;

/** What `slackMessage` posts (Slack's incoming-webhook payload, the parts vigil uses). */
export interface SlackMessage {
  text: string;
  attachments: {
    color: string;
    fallback: string;
    title: string;
    title_link?: string;
    text: string;
    fields: { title: string; value: string; short: boolean }[];
    footer: string;
    ts: number;
  }[];
}

/** Slack's control characters in text (its documented escaping): &, < and >. */
export function slackEscape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

const cut = (text: string, max: number) => text.length > max ? `${text.slice(0, max - 1)}…` : text;

export function slackMessage(payload: DeliveryPayload): SlackMessage {
  const kind = kindOf(payload);
  const severity = severityOf(payload);
  const good = kind === "resolved" || isRecovery(payload);
  const fields: SlackMessage["attachments"][number]["fields"] = [
    { title: "Severity", value: severity, short: true },
  ];
  const value = valueText(payload.value);
  if (value !== undefined) fields.push({ title: "Value", value: slackEscape(value), short: true });
  if (payload.episode) {
    fields.push({ title: "Since", value: payload.episode.started_at, short: true });
    if (payload.episode.duration_seconds !== undefined) {
      fields.push({
        title: kind === "resolved" ? "Lasted" : "For",
        value: formatDuration(payload.episode.duration_seconds * 1000),
        short: true,
      });
    }
  }
  if (payload.alert) {
    fields.push({ title: "Alert", value: slackEscape(payload.alert.name), short: true });
  }
  // The title says what happened ("Firing: …", "Resolved: …"); the colour how bad it is.
  const text = slackEscape(cut(payload.title, 250));
  const link = alertLink(payload);
  const at = Date.parse(payload.fired_at);
  return {
    text,
    attachments: [{
      color: good ? SLACK_COLORS.resolved : SLACK_COLORS[severity],
      fallback: text,
      title: text,
      ...(link ? { title_link: link } : {}),
      text: slackEscape(cut(payload.message, 3000)),
      fields,
      footer: "vigil",
      ts: Number.isNaN(at) ? 0 : Math.floor(at / 1000),
    }],
  };
}

// ---- sending -------------------------------------------------------------------------------------

/** fetch's cause when the connection was never made (refused, unreachable): nothing was sent. */
const NOT_CONNECTED = /client error \(Connect\)/;

/** `text` with every secret in `hide` (and its URL-encoded form) replaced by "…". */
export function redact(text: string, hide: readonly string[]): string {
  let out = text;
  for (const secret of hide) {
    if (secret.length < 4) continue;
    out = out.replaceAll(secret, "…").replaceAll(encodeURI(secret), "…");
  }
  return out;
}

export interface PostOptions {
  /** The provider's name in errors ("Slack", "PagerDuty"). */
  name: string;
  timeoutMs: number;
  ctx: SendContext;
  policy: OutboundPolicy;
  /** Never written into an error: the secrets of this request. */
  hide: readonly string[];
}

/** An answer: its status, headers and (up to 64 KiB of) body. */
export interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

/**
 * POSTs JSON through the outbound policy. An answer is returned as it is, for the channel to
 * judge; what is not an answer is a SendResult: refused by the policy (permanent), a refused
 * connection (a definite failure: nothing was sent), no time left (`not_sent`), or no answer
 * (`unknown`: it may have arrived).
 */
export async function postJson(
  url: URL,
  body: unknown,
  options: PostOptions,
): Promise<Answer | SendResult> {
  const { name, ctx, hide } = options;
  const timeout = timeLeft(ctx, options.timeoutMs);
  if (timeout <= 0) return { outcome: "not_sent", error: "no time left in this batch" };
  try {
    const res = await outboundFetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(timeout)]),
    }, options.policy);
    // The status is the answer; a body that cannot be read does not change it.
    const text = await readLimited(res, 64 * 1024).catch(() => "");
    return { status: res.status, headers: res.headers, text };
  } catch (error) {
    if (error instanceof CallerError) {
      // A name that does not resolve now may resolve later; a refused address will not change.
      const permanent = !error.message.startsWith("cannot resolve host");
      return { outcome: "failed", permanent, error: redact(`${name}: ${error.message}`, hide) };
    }
    const cause = String((error as Error).cause ?? "");
    if (NOT_CONNECTED.test(cause)) {
      return { outcome: "failed", permanent: false, error: redact(`${name}: ${cause}`, hide) };
    }
    const why = ctx.signal.aborted
      ? "cut off: vigil is stopping"
      : error instanceof DOMException && error.name === "TimeoutError"
      ? `no answer within ${timeout} ms`
      : cause || (error as Error).message;
    return { outcome: "unknown", error: redact(`${name}: ${why}`, hide) };
  }
}

export function isAnswer(result: Answer | SendResult): result is Answer {
  return "status" in result && !("outcome" in result);
}

/**
 * What an HTTP answer from a chat or paging API means: 2xx delivered; 429 retried after its
 * Retry-After; any other 4xx permanent (the payload, the webhook or its channel is wrong: asking
 * again will not change it; 408 is a proxy's timeout, not the provider's no); else retried.
 */
export function answerOutcome(provider: string, answer: Answer, detail: string): SendResult {
  const { status } = answer;
  if (status >= 200 && status < 300) return { outcome: "delivered", providerStatus: status };
  const error = `${provider} answered HTTP ${status}${detail ? `: ${detail}` : ""}`;
  if (status === 429) {
    return {
      outcome: "failed",
      permanent: false,
      error,
      providerStatus: status,
      retryAfterMs: retryAfterMs(answer.headers.get("retry-after")),
    };
  }
  const permanent = status >= 400 && status < 500 && status !== 408;
  return { outcome: "failed", permanent, error, providerStatus: status };
}

/** What an HTTP status from Slack means. */
export function slackOutcome(answer: Answer, hide: readonly string[]): SendResult {
  return answerOutcome("Slack", answer, redact(answer.text.trim().slice(0, 200), hide));
}

const WEBHOOK_URL_FIELD: SecretField = {
  channel: "slack",
  field: "webhook_url",
  purpose: SLACK_WEBHOOK_URL,
  label: "Slack",
  secretName: "webhook URL",
};

export function slackSender(
  sql: Sql,
  policy: OutboundPolicy,
  timeoutMs: number,
  secrets: Secrets,
): Sender {
  return {
    channel: "slack",
    status: () => ({ status: "up" }),
    async send(delivery, ctx): Promise<SendResult> {
      const opened = await alertSecret(sql, secrets, delivery, WEBHOOK_URL_FIELD);
      if ("failure" in opened) return opened.failure;
      const secret = opened.value;
      let url: URL;
      try {
        url = new URL(secret);
      } catch {
        return {
          outcome: "failed",
          permanent: true,
          error: "Slack: the stored webhook URL is not a URL",
        };
      }
      // The whole URL, its path, and its last segment (the token of hooks.slack.com URLs).
      const token = url.pathname.split("/").pop() ?? "";
      const hide = [secret, url.href, url.pathname + url.search, token.length >= 8 ? token : ""];
      const answer = await postJson(url, slackMessage(delivery.payload), {
        name: "Slack",
        timeoutMs,
        ctx,
        policy,
        hide,
      });
      return isAnswer(answer) ? slackOutcome(answer, hide) : answer;
    },
  };
}
