/** Deliveries: one message to one user through one channel, sent at least once, recorded exactly. */

export const CHANNELS = ["inapp", "email", "webhook", "slack", "pagerduty"] as const;
export type Channel = (typeof CHANNELS)[number];

/** What every channel sends; stored with the delivery, so a retry sends the same thing. */
export interface DeliveryPayload {
  type:
    | "alert.fired"
    | "alert.repeat"
    | "alert.resolved"
    | "alert.error"
    | "alertmanager.firing"
    | "alertmanager.resolved";
  source: "rule" | "alertmanager";
  /** Which notification of the lifecycle (src/alerts/lifecycle.ts) this is. */
  kind?: "firing" | "resolved" | "repeat" | "error";
  title: string;
  message: string;
  alert: { id: string; name: string } | null;
  severity?: "critical" | "warning" | "info";
  /** The episode it belongs to: PagerDuty's dedup_key, "since when" and "for how long". */
  episode?: { id: string; started_at: string; ended_at?: string; duration_seconds?: number };
  /** An `error` notification that says evaluation works again. */
  recovery?: boolean;
  value?: unknown;
  condition?: unknown;
  labels?: Record<string, string>;
  fired_at: string;
  /** Email channel: where it goes (the user's address when it fired). */
  recipient?: string;
  /** Webhook channel: where it goes; the signing secret is read from the alert when sending. */
  webhook_url?: string;
}

export interface Delivery {
  id: string;
  alert_id: string | null;
  user_id: string;
  channel: Channel;
  payload: DeliveryPayload;
  /** Attempts recorded so far. */
  attempts: number;
  created_at: Date;
  /** An earlier attempt ended without a definite answer: the provider may have it. */
  maybe_sent: boolean;
}

/**
 * How one send ended. Only an answer is definite: `failed` means the provider said no (or the
 * connection was refused), `unknown` means the request may have arrived (a timeout after it was
 * written, a connection lost mid-send), `not_sent` means it never left (no time was left in the
 * lease, or the process is stopping) and is no attempt at all.
 */
export type SendResult =
  | { outcome: "delivered"; providerStatus?: number }
  | {
    outcome: "failed";
    /** A permanent failure (bad address, rejected payload) is not retried. */
    permanent: boolean;
    error: string;
    providerStatus?: number;
    /** The provider asked us to wait at least this long (429 retry-after). */
    retryAfterMs?: number;
  }
  | { outcome: "unknown"; error: string }
  | { outcome: "not_sent"; error: string };

/** What a send may use: the stop signal of the process and the end of the sender's lease. */
export interface SendContext {
  /** Aborted when the process must stop now (shutdown deadline): cut the send short. */
  signal: AbortSignal;
  /** `performance.now()` by which the send must be over, so its outcome lands inside the lease. */
  deadline: number;
}

/** Milliseconds a send may take: its channel's timeout, or less if the lease ends sooner. */
export function timeLeft(ctx: SendContext, channelTimeoutMs: number): number {
  return Math.min(channelTimeoutMs, Math.floor(ctx.deadline - performance.now()));
}

export interface SenderStatus {
  status: "up" | "unavailable";
  detail?: string;
}

export interface Sender {
  channel: Channel;
  send(delivery: Delivery, ctx: SendContext): Promise<SendResult>;
  /** Channels that can send many at once (one database write for in-app) say so here. */
  sendMany?(deliveries: Delivery[], ctx: SendContext): Promise<SendResult[]>;
  status(): SenderStatus;
}
