/**
 * PagerDuty channel: an event to the Events API v2 (`POST PAGERDUTY_EVENTS_URL`, by default
 * https://events.pagerduty.com/v2/enqueue) with the alert's routing key (integration key).
 *
 * - firing and repeat `trigger`, resolved `resolve`, all with `dedup_key` = the episode id, so an
 *   episode is one PagerDuty alert (a repeat adds to it; the resolve closes it);
 * - an evaluation error triggers `<alert id>:error` with severity `error`, and its recovery (an
 *   `error` notification with `recovery: true`) resolves that key;
 * - severity: vigil's critical / warning / info are PagerDuty's.
 *
 * PagerDuty de-duplicates by `dedup_key`, so an attempt without an answer may be sent again: its
 * idempotency window is 24 h (schedule.ts). 2xx (202) is delivered; 400 (an invalid event) and
 * other 4xx are permanent; 429 and 5xx are retried, honouring `Retry-After` when there is one.
 *
 * The routing key is stored sealed in `alerts.channels.pagerduty`, read from the alert and opened
 * here at send time (a key that does not open fails the attempt and nothing is sent); it is never
 * written into an error. PAGERDUTY_EVENTS_URL is the operator's (not a user's) URL: it may be a
 * private relay, but it goes through `outboundFetch` all the same (metadata addresses refused,
 * DNS pinned, a client span).
 */
import type { OutboundPolicy } from "../../agents/outbound.ts";
import type { Sql } from "../../db/database.ts";
import { PAGERDUTY_ROUTING_KEY } from "../../alerts/store.ts";
import { alertSecret, type SecretField } from "./alert_secret.ts";
import type { Secrets } from "../../security/secrets.ts";
import {
  alertLink,
  type Answer,
  answerOutcome,
  isAnswer,
  isRecovery,
  kindOf,
  postJson,
  redact,
  severityOf,
} from "./slack.ts";
import type { Delivery, Sender, SendResult } from "../types.ts";

export type PagerDutySeverity = "critical" | "error" | "warning" | "info";

/** An Events API v2 alert event (the fields vigil sends). */
export interface PagerDutyEvent {
  routing_key: string;
  event_action: "trigger" | "resolve";
  dedup_key: string;
  client?: string;
  links?: { href: string; text: string }[];
  payload?: {
    summary: string;
    source: "vigil";
    severity: PagerDutySeverity;
    timestamp: string;
    custom_details: Record<string, unknown>;
  };
}

const cut = (text: string, max: number) => text.length > max ? `${text.slice(0, max - 1)}…` : text;

/**
 * The event of a delivery, or why there can be none (a resolve needs the key its trigger used:
 * an episode, or the alert of an error).
 */
export function pagerdutyEvent(
  delivery: Delivery,
  routingKey: string,
): PagerDutyEvent | { error: string } {
  const p = delivery.payload;
  const kind = kindOf(p);
  const resolve = kind === "resolved" || isRecovery(p);
  const dedupKey = kind === "error" ? (p.alert ? `${p.alert.id}:error` : undefined) : p.episode?.id;
  if (dedupKey === undefined && resolve) {
    return { error: "PagerDuty: nothing to resolve: the notification names no episode" };
  }
  // A trigger without an episode still gets a key of its own, so its retries de-duplicate.
  const event: PagerDutyEvent = {
    routing_key: routingKey,
    event_action: resolve ? "resolve" : "trigger",
    dedup_key: dedupKey ?? delivery.id,
  };
  if (resolve) return event;
  const link = alertLink(p);
  return {
    ...event,
    client: "vigil",
    ...(link ? { links: [{ href: link, text: "What the alert checks" }] } : {}),
    payload: {
      summary: cut(
        p.message && p.message !== p.title ? `${p.title} — ${p.message}` : p.title,
        1024,
      ),
      source: "vigil",
      severity: kind === "error" ? "error" : severityOf(p),
      timestamp: p.fired_at,
      custom_details: {
        kind,
        message: p.message,
        ...(p.value !== undefined ? { value: p.value } : {}),
        ...(p.alert ? { alert: p.alert } : {}),
        ...(p.episode ? { episode: p.episode } : {}),
        ...(p.labels && Object.keys(p.labels).length ? { labels: p.labels } : {}),
        delivery_id: delivery.id,
      },
    },
  };
}

/** PagerDuty's error answer: `{status, message, errors: [...]}`. */
function detailOf(text: string): string {
  try {
    const body = JSON.parse(text) as { message?: unknown; errors?: unknown };
    const errors = Array.isArray(body.errors) ? body.errors.map(String).join("; ") : "";
    const message = typeof body.message === "string" ? body.message : "";
    return [message, errors].filter(Boolean).join(": ");
  } catch {
    return text.trim();
  }
}

/** What an HTTP status from the Events API means. */
export function pagerdutyOutcome(answer: Answer, hide: readonly string[]): SendResult {
  return answerOutcome("PagerDuty", answer, redact(detailOf(answer.text).slice(0, 300), hide));
}

const ROUTING_KEY_FIELD: SecretField = {
  channel: "pagerduty",
  field: "routing_key",
  purpose: PAGERDUTY_ROUTING_KEY,
  label: "PagerDuty",
  secretName: "routing key",
};

export function pagerdutySender(
  sql: Sql,
  policy: OutboundPolicy,
  eventsUrl: string,
  timeoutMs: number,
  secrets: Secrets,
): Sender {
  const url = new URL(eventsUrl);
  // The operator's URL: a private relay is allowed; the metadata addresses never are.
  const operatorPolicy: OutboundPolicy = { ...policy, allowPrivate: true };
  return {
    channel: "pagerduty",
    status: () => ({ status: "up" }),
    async send(delivery, ctx): Promise<SendResult> {
      const opened = await alertSecret(sql, secrets, delivery, ROUTING_KEY_FIELD);
      if ("failure" in opened) return opened.failure;
      const routingKey = opened.value;
      const event = pagerdutyEvent(delivery, routingKey);
      if ("error" in event) return { outcome: "failed", permanent: true, error: event.error };
      const hide = [routingKey];
      const answer = await postJson(url, event, {
        name: "PagerDuty",
        timeoutMs,
        ctx,
        policy: operatorPolicy,
        hide,
      });
      return isAnswer(answer) ? pagerdutyOutcome(answer, hide) : answer;
    },
  };
}
