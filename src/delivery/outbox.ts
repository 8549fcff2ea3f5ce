/**
 * The outbox. Delivery intents are written in the caller's transaction (the one that decided to
 * send: an alert's cooldown claim, an Alertmanager notification), so that nothing accepted is
 * lost if the process dies before sending. They are written already leased to this process for
 * their first attempt (a token per delivery, see dispatcher.ts); if it dies, the lease runs out
 * and the retry job sends them.
 *
 * Content de-duplication happens here: an intent whose hash matches a delivery of the last 24 h
 * that was delivered or is still being delivered (pending, failed and waiting for its retry,
 * uncertain) is recorded as `suppressed`; so identical messages collapse into one copy, and into
 * one DLQ entry while their channel is down.
 *
 * An intent may be due later (`notBefore`, a notification policy's time window): it is written
 * leased to nobody with that due time, never sent before it (the dispatcher checks it at every
 * claim), and sent by the retry job's sweep once due. Having no lease, it is never mistaken for an
 * abandoned send (it is not "maybe sent"), and its idempotency window starts when it is due.
 */
import type { TransactionSql } from "../db/database.ts";
import { sha256Hex } from "../util/hash.ts";
import { canonicalJson } from "../util/json.ts";
import type { LeasedDelivery } from "./dispatcher.ts";
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
  suppressed: boolean;
  /**
   * Every row written; the pending ones are this process's to send, unless due later
   * (`not_before`): those are the sweep's, once due.
   */
  deliveries: (LeasedDelivery & { status: "pending" | "suppressed"; not_before?: Date })[];
}

export function contentHash(dedupKey: unknown): string {
  return sha256Hex(canonicalJson(dedupKey));
}

/**
 * Writes an intent. Two intents with the same content must not both pass the duplicate check:
 * callers that already hold a lock serializing them (an alert's row, locked by its cooldown
 * claim) pass `serialized: true`; otherwise a transaction-scoped advisory lock on the hash does.
 */
export async function enqueue(
  tx: TransactionSql,
  intent: DeliveryIntent,
  now: Date,
  options: {
    serialized: boolean;
    leaseUntil: Date;
    /** Record the intent without sending it (a silence): listed in the history, never sent. */
    silenced?: boolean;
    /** Not to be sent before this time (null or not after `now`: at once). */
    notBefore?: Date | null;
  },
): Promise<Enqueued> {
  if (intent.channels.length === 0) return { suppressed: false, deliveries: [] };
  const hash = contentHash(intent.dedupKey);
  if (options.silenced) return await recordSilenced(tx, intent, hash, now);
  if (!options.serialized) await tx`select pg_advisory_xact_lock(hashtextextended(${hash}, 0))`;
  const since = new Date(now.getTime() - DEDUP_WINDOW_MS);
  const rows = rowsOf(intent);
  const notBefore = options.notBefore && options.notBefore.getTime() > now.getTime()
    ? options.notBefore
    : null;
  // Due later: leased to nobody until then.
  const leaseUntil = notBefore ? null : options.leaseUntil;
  // The duplicate check is part of the insert: a statement that starts once the lock (or the
  // caller's row lock) is held, so its snapshot includes what a concurrent writer committed.
  const inserted = await tx<{ id: string; status: "pending" | "suppressed" }[]>`
    with duplicate as (
      select exists (
        select 1 from alert_deliveries
        where content_hash = ${hash} and status in ('pending', 'delivered', 'failed', 'uncertain')
          and created_at > ${since}
      ) as found
    )
    insert into alert_deliveries (id, alert_id, user_id, channel, content_hash, payload, status,
                                  suppressed_by, lease_token, lease_until, created_at, not_before)
    select r.id, ${intent.alertId}::uuid, ${intent.userId}::uuid, r.channel, ${hash}, r.payload,
           case when duplicate.found then 'suppressed' else 'pending' end,
           case when duplicate.found then 'content' end,
           case when duplicate.found or ${leaseUntil}::timestamptz is null then null
                else r.token end,
           case when duplicate.found then null else ${leaseUntil}::timestamptz end,
           ${now}, case when duplicate.found then null else ${notBefore}::timestamptz end
    from duplicate, jsonb_to_recordset(${
    tx.json(rows as never)
  }) as r(id uuid, token uuid, channel text, payload jsonb)
    returning id, status`;
  const written = enqueued(intent, rows, inserted[0].status, now);
  if (notBefore && !written.suppressed) {
    for (const d of written.deliveries) d.not_before = notBefore;
  }
  return written;
}

/** Rows written as suppressed by a silence: in the history ("why was I not notified"), unsent. */
async function recordSilenced(
  tx: TransactionSql,
  intent: DeliveryIntent,
  hash: string,
  now: Date,
): Promise<Enqueued> {
  const rows = rowsOf(intent);
  await tx`
    insert into alert_deliveries (id, alert_id, user_id, channel, content_hash, payload, status,
                                  suppressed_by, created_at)
    select r.id, ${intent.alertId}::uuid, ${intent.userId}::uuid, r.channel, ${hash}, r.payload,
           'suppressed', 'silence', ${now}
    from jsonb_to_recordset(${tx.json(rows as never)}) as r(id uuid, channel text, payload jsonb)`;
  return enqueued(intent, rows, "suppressed", now);
}

function rowsOf(intent: DeliveryIntent) {
  return intent.channels.map(({ channel, extra }) => ({
    id: crypto.randomUUID(),
    token: crypto.randomUUID(),
    channel,
    payload: { ...intent.payload, ...extra } as DeliveryPayload,
  }));
}

function enqueued(
  intent: DeliveryIntent,
  rows: ReturnType<typeof rowsOf>,
  status: "pending" | "suppressed",
  now: Date,
): Enqueued {
  return {
    suppressed: status === "suppressed",
    deliveries: rows.map((r) => ({
      id: r.id,
      alert_id: intent.alertId,
      user_id: intent.userId,
      channel: r.channel,
      payload: r.payload,
      attempts: 0,
      created_at: now,
      maybe_sent: false,
      lease_token: r.token,
      status,
    })),
  };
}
