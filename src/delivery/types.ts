/** Deliveries: one message to one user through one channel, sent at least once, recorded exactly. */

export const CHANNELS = ["inapp", "email", "webhook"] as const;
export type Channel = (typeof CHANNELS)[number];

/** What every channel sends; stored with the delivery, so a retry sends the same thing. */
export interface DeliveryPayload {
  type: "alert.fired" | "alertmanager.firing" | "alertmanager.resolved";
  source: "rule" | "alertmanager";
  title: string;
  message: string;
  alert: { id: string; name: string } | null;
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
  attempts: number;
}

export type SendResult =
  | { ok: true; providerStatus?: number }
  | {
    ok: false;
    /** A permanent failure (bad address, rejected payload) is not retried. */
    permanent: boolean;
    error: string;
    providerStatus?: number;
    /** The provider asked us to wait at least this long (429 retry-after). */
    retryAfterMs?: number;
  };

export interface SenderStatus {
  status: "up" | "unavailable";
  detail?: string;
}

export interface Sender {
  channel: Channel;
  send(delivery: Delivery, signal: AbortSignal): Promise<SendResult>;
  /** Channels that can send many at once (one database write for in-app) say so here. */
  sendMany?(deliveries: Delivery[], signal: AbortSignal): Promise<SendResult[]>;
  status(): SenderStatus;
}
