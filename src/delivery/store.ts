/** Reading and managing deliveries, their attempts and the dead-letter queue. */
import type { Sql } from "../db/database.ts";
import type { Cursor } from "../http/pagination.ts";
import type { Channel, DeliveryPayload } from "./types.ts";

export type DeliveryStatus = "pending" | "delivered" | "failed" | "suppressed" | "exhausted";

/** Built with json_agg, so timestamps arrive as strings. */
export interface AttemptRow {
  attempt: number;
  at: string;
  outcome: "delivered" | "failed" | "exhausted" | "discarded";
  error: string | null;
  provider_status: number | null;
  duration_ms: number;
}

export interface DeliveryRow {
  id: string;
  alert_id: string | null;
  user_id: string;
  channel: Channel;
  status: DeliveryStatus;
  attempts: number;
  last_error: string | null;
  payload: DeliveryPayload;
  created_at: Date;
  delivered_at: Date | null;
  dlq: {
    id: string;
    state: "pending" | "exhausted";
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
  state: "pending" | "exhausted";
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
    select d.id, d.alert_id, d.user_id, d.channel, d.status, d.attempts, d.last_error, d.payload,
           d.created_at, d.delivered_at,
           (select json_build_object('id', q.id, 'state', q.state, 'retry_count', q.retry_count,
                                     'next_retry_at', q.next_retry_at)
              from alert_dlq q where q.delivery_id = d.id) as dlq,
           coalesce((select json_agg(json_build_object(
                        'attempt', a.attempt, 'at', a.at, 'outcome', a.outcome, 'error', a.error,
                        'provider_status', a.provider_status, 'duration_ms', a.duration_ms) order by a.id)
                     from delivery_attempts a where a.delivery_id = d.id), '[]') as attempt_history
    from alert_deliveries d
    where d.alert_id = ${alertId}
      ${after ? sql`and (d.created_at, d.id) < (${after.at}, ${after.id})` : sql``}
    order by d.created_at desc, d.id desc
    limit ${limit}`;
}

export async function dlqCounts(sql: Sql): Promise<Record<"pending" | "exhausted", number>> {
  const rows = await sql<{ state: "pending" | "exhausted"; n: number }[]>`
    select state, count(*)::int as n from alert_dlq group by state`;
  const counts = { pending: 0, exhausted: 0 };
  for (const row of rows) counts[row.state] = row.n;
  return counts;
}

export async function listDlq(
  sql: Sql,
  filter: { state?: string; channel?: string },
  limit: number,
  after?: Cursor,
): Promise<DlqRow[]> {
  return await sql<DlqRow[]>`
    select q.id, q.delivery_id, d.alert_id, d.user_id, d.channel, q.error_message, q.retry_count,
           q.next_retry_at, q.last_retry_at, q.state, q.created_at
    from alert_dlq q join alert_deliveries d on d.id = q.delivery_id
    where true
      ${filter.state ? sql`and q.state = ${filter.state}` : sql``}
      ${filter.channel ? sql`and d.channel = ${filter.channel}` : sql``}
      ${after ? sql`and (q.created_at, q.id) < (${after.at}, ${after.id})` : sql``}
    order by q.created_at desc, q.id desc
    limit ${limit}`;
}

/** Makes a DLQ row due now (retry count and history kept); false if there is no such row. */
export async function replayDlq(sql: Sql, id: string, now: Date): Promise<DlqRow | undefined> {
  return await sql.begin(async (tx) => {
    const [row] = await tx<{ delivery_id: string }[]>`
      update alert_dlq set state = 'pending', next_retry_at = ${now}
      where id = ${id} returning delivery_id`;
    if (!row) return undefined;
    await tx`update alert_deliveries set status = 'failed' where id = ${row.delivery_id}`;
    const [replayed] = await tx<DlqRow[]>`
      select q.id, q.delivery_id, d.alert_id, d.user_id, d.channel, q.error_message, q.retry_count,
             q.next_retry_at, q.last_retry_at, q.state, q.created_at
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
    const error = `discarded from the DLQ: ${reason}`;
    await tx`
      update alert_deliveries set status = 'exhausted', last_error = ${error}
      where id = ${row.delivery_id}`;
    await tx`
      insert into delivery_attempts (delivery_id, attempt, at, outcome, error)
      select id, attempts, ${now}, 'discarded', ${reason} from alert_deliveries where id = ${row.delivery_id}`;
    return true;
  });
}
