/**
 * The outbox. Delivery intents are written in the caller's transaction (the one that decided to
 * send: an alert's cooldown claim, an Alertmanager notification), so that nothing accepted is
 * lost if the process dies before sending. Content de-duplication happens here: an intent whose
 * hash matches a pending or delivered delivery of the last 24 h is recorded as `suppressed`.
 */
import type { TransactionSql } from "../db/database.ts";
import { canonicalJson, sha256Hex } from "../util/json.ts";
import type { Channel, DeliveryPayload } from "./types.ts";

export const DEDUP_WINDOW_MS = 24 * 60 * 60 * 1000;

export interface DeliveryIntent {
  userId: string;
  alertId: string | null;
  /** The channels to deliver on, each with what it alone needs (address, URL). */
  channels: { channel: Channel; extra?: Partial<DeliveryPayload> }[];
  payload: DeliveryPayload;
  /** What makes two intents "the same message" (hashed with SHA-256 of its canonical JSON). */
  dedupKey: unknown;
}

export interface Enqueued {
  id: string;
  channel: Channel;
  status: "pending" | "suppressed";
}

export async function contentHash(dedupKey: unknown): Promise<string> {
  return await sha256Hex(canonicalJson(dedupKey));
}

export async function enqueue(
  tx: TransactionSql,
  intent: DeliveryIntent,
  now: Date,
): Promise<{ suppressed: boolean; deliveries: Enqueued[] }> {
  const hash = await contentHash(intent.dedupKey);
  // Serializes concurrent intents with the same content, so that the check below sees the other.
  await tx`select pg_advisory_xact_lock(hashtextextended(${hash}, 0))`;
  const since = new Date(now.getTime() - DEDUP_WINDOW_MS);
  const [duplicate] = await tx`
    select 1 from alert_deliveries
    where content_hash = ${hash} and status in ('pending', 'delivered') and created_at > ${since}
    limit 1`;
  const status = duplicate ? "suppressed" : "pending";
  const rows = intent.channels.map(({ channel, extra }) => ({
    id: crypto.randomUUID(),
    alert_id: intent.alertId,
    user_id: intent.userId,
    channel,
    content_hash: hash,
    payload: { ...intent.payload, ...extra } as Record<string, unknown>,
    status,
    created_at: now,
  }));
  if (rows.length === 0) return { suppressed: Boolean(duplicate), deliveries: [] };
  await tx`
    insert into alert_deliveries ${
    tx(
      rows as never,
      "id",
      "alert_id",
      "user_id",
      "channel",
      "content_hash",
      "payload",
      "status",
      "created_at",
    )
  }`;
  return {
    suppressed: Boolean(duplicate),
    deliveries: rows.map((r) => ({ id: r.id, channel: r.channel, status })),
  };
}
