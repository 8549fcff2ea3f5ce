/**
 * When deliveries are retried, how long a sender holds one, and how long a provider remembers an
 * idempotency key. The schedule comes from configuration (DELIVERY_BACKOFF,
 * DELIVERY_LEASE_SECONDS); the defaults are the seed's.
 */
import type { Channel } from "./types.ts";

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export interface DeliverySchedule {
  /** Wait before retry n+1 (index 0: from the first failure to the first retry). */
  backoffMs: readonly number[];
  /** How long a sender holds a delivery; another sender may take it over after that. */
  leaseMs: number;
}

export const DEFAULT_BACKOFF = "5m,30m,2h,12h,24h";
export const DEFAULT_SCHEDULE: DeliverySchedule = {
  backoffMs: [5 * MINUTE, 30 * MINUTE, 2 * HOUR, 12 * HOUR, 24 * HOUR],
  leaseMs: 2 * MINUTE,
};

/**
 * How long after a delivery was created its key still de-duplicates at the provider. A delivery
 * whose earlier attempt may have arrived is re-sent only inside this window: Resend keeps keys
 * for 24 h; webhook receivers must keep `webhook-id`s for 72 h (the documented contract);
 * in-app notifications are unique by delivery id in our own database, forever. Slack's incoming
 * webhooks take no key at all (0: a send without an answer is `uncertain`, never re-sent);
 * PagerDuty folds events with one `dedup_key` (the episode) into one alert (24 h).
 */
export const IDEMPOTENCY_WINDOW_MS: Record<Channel, number> = {
  inapp: Infinity,
  email: 24 * HOUR,
  webhook: 72 * HOUR,
  slack: 0,
  pagerduty: 24 * HOUR,
};

/** The longest a provider's `Retry-After` (or any computed delay) may push a retry out. */
export const MAX_DELAY_MS = DAY;

/** Time kept at the end of a lease for recording the outcomes of its sends. */
export function recordMarginMs(leaseMs: number): number {
  return Math.min(10 * SECOND, Math.floor(leaseMs / 4));
}

/** How long the sends of one leased batch may take. */
export function sendBudgetMs(leaseMs: number): number {
  return leaseMs - recordMarginMs(leaseMs);
}

/** `at` + `delayMs`, the delay clamped to [0, MAX_DELAY_MS]: never an invalid date. */
export function dueAfter(at: Date, delayMs: number): Date {
  // Infinity is as late as allowed; NaN is no delay at all.
  const delay = Number.isNaN(delayMs) ? 0 : Math.min(Math.max(delayMs, 0), MAX_DELAY_MS);
  return new Date(at.getTime() + delay);
}

const UNITS: Record<string, number> = { ms: 1, s: SECOND, m: MINUTE, h: HOUR, d: DAY };

/** Parses "5m,30m,2h" into milliseconds; throws an Error saying what is wrong. */
export function parseDurations(text: string): number[] {
  const parts = text.split(",").map((p) => p.trim());
  return parts.map((part) => {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(part);
    if (!match) throw new Error(`"${part}" is not a duration such as 30s, 5m or 2h`);
    return Math.round(Number(match[1]) * UNITS[match[2]]);
  });
}
