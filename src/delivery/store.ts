/** Reading and managing deliveries, their attempts and the dead-letter queue. */
import type { Queryable, Sql } from "../db/database.ts";
import type { Cursor } from "../http/pagination.ts";
import type { Channel, DeliveryPayload } from "./types.ts";

export const DELIVERY_STATUSES = [
  "pending",
  "delivered",
  "failed",
  "suppressed",
  "exhausted",
  "uncertain",
] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];
export const DLQ_STATES = ["pending", "exhausted", "uncertain"] as const;
export type DlqState = (typeof DLQ_STATES)[number];

/** Built with json_agg, so timestamps arrive as strings. */
export interface AttemptRow {
  attempt: number;
  at: string;
  outcome: "delivered" | "failed" | "unknown" | "exhausted" | "uncertain" | "discarded";
  error: string | null;
  provider_status: number | null;
  duration_ms: number;
  /** Recorded by a sender that had lost its lease: it changed nothing. */
  fenced: boolean;
}

export interface DeliveryRow {
  id: string;
  alert_id: string | null;
  user_id: string;
  channel: Channel;
  status: DeliveryStatus;
  /** Why a suppressed delivery was not sent: a duplicate of its content, or a silence. */
  suppressed_by: "content" | "silence" | null;
  attempts: number;
  last_error: string | null;
  maybe_sent: boolean;
  payload: DeliveryPayload;
  created_at: Date;
  delivered_at: Date | null;
  dlq: {
    id: string;
    state: DlqState;
    retry_count: number;
    next_retry_at: string | null;
  } | null;
  attempt_history: AttemptRow[];
}

export interface DlqRow {
  id: string;
  delivery_id: string;
  alert_id: string | null;
  user_id: string;
  channel: Channel;
  error_message: string;
  retry_count: number;
  next_retry_at: Date | null;
  last_retry_at: Date | null;
  state: DlqState;
  maybe_sent: boolean;
  created_at: Date;
}

/** What a user may see of a payload: not where a webhook goes (it may carry a token). */
export function publicPayload(payload: DeliveryPayload): Omit<DeliveryPayload, "webhook_url"> {
  const { webhook_url: _url, ...rest } = payload;
  return rest;
}

/** An alert's deliveries, newest first, with every attempt and the DLQ state. */
export async function deliveriesOfAlert(
  sql: Sql,
  alertId: string,
  limit: number,
  after?: Cursor,
): Promise<DeliveryRow[]> {
  return await sql<DeliveryRow[]>`
    select d.id, d.alert_id, d.user_id, d.channel, d.status, d.suppressed_by, d.attempts,
           d.last_error, d.maybe_sent, d.payload, d.created_at, d.delivered_at,
           (select json_build_object('id', q.id, 'state', q.state, 'retry_count', q.retry_count,
                                     'next_retry_at', q.next_retry_at)
              from alert_dlq q where q.delivery_id = d.id) as dlq,
           coalesce((select json_agg(json_build_object(
                        'attempt', a.attempt, 'at', a.at, 'outcome', a.outcome, 'error', a.error,
                        'provider_status', a.provider_status, 'duration_ms', a.duration_ms,
                        'fenced', a.fenced) order by a.id)
                     from delivery_attempts a where a.delivery_id = d.id), '[]') as attempt_history
    from alert_deliveries d
    where d.alert_id = ${alertId}
      ${after ? sql`and (d.created_at, d.id) < (${after.at}, ${after.id})` : sql``}
    order by d.created_at desc, d.id desc
    limit ${limit}`;
}

/** Delta rows past which `dlqCounts` folds them (a drain writes one per batch). */
const DLQ_COUNT_FOLD_ROWS = 64;

/**
 * DLQ rows by state, from the deltas the triggers of migration 013 keep (a read of a few rows,
 * however long the queue); once more than `foldRows` deltas have piled up they are folded into
 * one row per state, in one statement (the sums do not change: concurrent readers see the same
 * counts before and after, and two replicas folding at once fold each delta once).
 */
export async function dlqCounts(
  sql: Sql,
  foldRows = DLQ_COUNT_FOLD_ROWS,
): Promise<Record<DlqState, number>> {
  const rows = await sql<{ state: DlqState; n: number; deltas: number }[]>`
    select state, sum(n)::int as n, count(*)::int as deltas from alert_dlq_counts group by state`;
  const counts = { pending: 0, exhausted: 0, uncertain: 0 };
  for (const row of rows) counts[row.state] = row.n;
  if (rows.reduce((a, r) => a + r.deltas, 0) > foldRows) {
    await sql`
      with folded as (delete from alert_dlq_counts returning state, n)
      insert into alert_dlq_counts (state, n)
      select state, sum(n) from folded group by state having sum(n) <> 0`;
  }
  return counts;
}

const DLQ_COLUMNS = (sql: Queryable) =>
  sql`q.id, q.delivery_id, d.alert_id, d.user_id, d.channel, q.error_message, q.retry_count,
      q.next_retry_at, q.last_retry_at, q.state, d.maybe_sent, q.created_at`;

export async function listDlq(
  sql: Sql,
  filter: { state?: string; channel?: string },
  limit: number,
  after?: Cursor,
): Promise<DlqRow[]> {
  return await sql<DlqRow[]>`
    select ${DLQ_COLUMNS(sql)}
    from alert_dlq q join alert_deliveries d on d.id = q.delivery_id
    where true
      ${filter.state ? sql`and q.state = ${filter.state}` : sql``}
      ${filter.channel ? sql`and d.channel = ${filter.channel}` : sql``}
      ${after ? sql`and (q.created_at, q.id) < (${after.at}, ${after.id})` : sql``}
    order by q.created_at desc, q.id desc
    limit ${limit}`;
}

/**
 * Makes a DLQ row due now (retry count and history kept). A row whose retry is in flight is left
 * as it is (`busy`). Replaying an `uncertain` row is a person's decision to send again although
 * an earlier attempt may have arrived: that delivery is no longer marked as maybe sent.
 */
export async function replayDlq(
  sql: Sql,
  id: string,
  now: Date,
): Promise<DlqRow | "busy" | undefined> {
  return await sql.begin(async (tx) => {
    const [row] = await tx<{ delivery_id: string; state: DlqState; busy: boolean }[]>`
      select q.delivery_id, q.state, coalesce(d.lease_until > ${now}, false) as busy
      from alert_dlq q join alert_deliveries d on d.id = q.delivery_id
      where q.id = ${id}
      for update of q, d`;
    if (!row) return undefined;
    if (row.busy) return "busy";
    await tx`update alert_dlq set state = 'pending', next_retry_at = ${now} where id = ${id}`;
    // Only replaying an uncertain entry waives the idempotency window (that is its point); a
    // pending one whose earlier attempt may have arrived keeps the rule (found by the model test).
    await tx`
      update alert_deliveries
      set status = 'failed', maybe_sent = maybe_sent and ${row.state !== "uncertain"}
      where id = ${row.delivery_id}`;
    const [replayed] = await tx<DlqRow[]>`
      select ${DLQ_COLUMNS(tx)}
      from alert_dlq q join alert_deliveries d on d.id = q.delivery_id where q.id = ${id}`;
    return replayed;
  });
}

/** Removes a DLQ row for good: the delivery becomes `exhausted`, the reason is recorded. */
export async function discardDlq(
  sql: Sql,
  id: string,
  reason: string,
  now: Date,
): Promise<boolean> {
  return await sql.begin(async (tx) => {
    const [row] = await tx<{ delivery_id: string }[]>`
      delete from alert_dlq where id = ${id} returning delivery_id`;
    if (!row) return false;
    // A retry in flight loses its lease: its outcome will be recorded as fenced.
    const error = `discarded from the DLQ: ${reason}`;
    await tx`
      update alert_deliveries
      set status = 'exhausted', last_error = ${error}, lease_token = null, lease_until = null
      where id = ${row.delivery_id}`;
    await tx`
      insert into delivery_attempts (delivery_id, attempt, at, outcome, error)
      select id, attempts, ${now}, 'discarded', ${reason} from alert_deliveries where id = ${row.delivery_id}`;
    return true;
  });
}
