/**
 * Sends deliveries and records every attempt, in batches.
 *
 * - First attempts (`deliver`): deliveries the outbox wrote leased to this process. Success →
 *   `delivered`; failure → `failed` plus a DLQ row due in 5 min (`exhausted` at once for a
 *   permanent error).
 * - Abandoned deliveries (`sweepStale`): pending for 2 min with an expired lease — the sender
 *   died between commit and send — are leased again and sent like first attempts.
 * - Retries (`retryDue`): due DLQ rows are claimed with FOR UPDATE SKIP LOCKED and leased;
 *   success deletes the row; failure schedules the next retry after 5 min, 30 min, 2 h, 12 h,
 *   24 h, and the 5th failed retry leaves it `exhausted` (kept, and replayable by hand).
 *
 * A batch's outcomes are written by one statement (attempts, delivery status, DLQ), so a batch
 * is recorded entirely or not at all; channels that can (in-app) send a batch in one write.
 * Every attempt of a delivery carries the delivery id as the provider's idempotency key.
 */
import type { Clock } from "../clock.ts";
import type { Sql } from "../db/database.ts";
import type { Logger } from "../observability/logger.ts";
import type { Metrics } from "../observability/metrics.ts";
import { mapPool } from "../util/pool.ts";
import { BACKOFF_MS, LEASE_MS, MAX_RETRIES, STALE_PENDING_MS } from "./schedule.ts";
import type { Channel, Delivery, Sender, SendResult } from "./types.ts";

export type DispatchStatus = "delivered" | "failed" | "exhausted";

export interface DispatchOutcome {
  id: string;
  channel: Channel;
  status: DispatchStatus;
  error?: string;
}

export interface DispatcherDeps {
  sql: Sql;
  clock: Clock;
  metrics: Metrics;
  logger: Logger;
  senders: Record<Channel, Sender>;
  /** Sends in flight at once, for channels that send one at a time. */
  concurrency?: number;
  /** Rows claimed per batch by the retry job and the sweep. */
  batchSize?: number;
}

interface Attempt {
  delivery: Delivery;
  result: SendResult;
  durationMs: number;
}

/** A claimed DLQ row with its delivery. */
interface DueRetry {
  dlqId: string;
  retryCount: number;
  delivery: Delivery;
}

const after = (now: Date, ms: number) => new Date(now.getTime() + ms);
const errorOf = (r: SendResult) => (r.ok ? null : r.error);

export class Dispatcher {
  readonly #concurrency: number;
  readonly #batchSize: number;

  constructor(private readonly deps: DispatcherDeps) {
    this.#concurrency = deps.concurrency ?? 16;
    this.#batchSize = deps.batchSize ?? 200;
  }

  /** First attempts of deliveries this process holds the lease on. */
  async deliver(deliveries: Delivery[]): Promise<DispatchOutcome[]> {
    if (deliveries.length === 0) return [];
    const attempts = await this.#sendAll(deliveries);
    return await this.#recordFirst(attempts, this.deps.clock.now());
  }

  /** Sends pending deliveries that their sender abandoned. */
  async sweepStale(now: Date): Promise<DispatchOutcome[]> {
    const outcomes: DispatchOutcome[] = [];
    while (true) {
      const claimed = await this.deps.sql<Delivery[]>`
        update alert_deliveries d
        set attempts = d.attempts + 1, lease_until = ${after(now, LEASE_MS)}
        from (
          select id from alert_deliveries
          where status = 'pending' and created_at <= ${after(now, -STALE_PENDING_MS)}
            and (lease_until is null or lease_until <= ${now})
          order by created_at limit ${this.#batchSize}
          for update skip locked
        ) stale
        where d.id = stale.id
        returning d.id, d.alert_id, d.user_id, d.channel, d.payload, d.attempts`;
      if (claimed.length > 0) {
        this.deps.logger.warn("re-sending {count} abandoned pending deliveries", {
          count: claimed.length,
        });
        outcomes.push(...await this.#recordFirst(await this.#sendAll(claimed), now));
      }
      if (claimed.length < this.#batchSize) return outcomes;
    }
  }

  /** Retries due DLQ rows in batches until none is due. */
  async retryDue(now: Date): Promise<DispatchOutcome[]> {
    const outcomes: DispatchOutcome[] = [];
    while (true) {
      const due = await this.#claimDue(now);
      if (due.length > 0) {
        const attempts = await this.#sendAll(due.map((d) => d.delivery));
        outcomes.push(...await this.#recordRetries(due, attempts, now));
      }
      if (due.length < this.#batchSize) return outcomes;
    }
  }

  async #claimDue(now: Date): Promise<DueRetry[]> {
    const rows = await this.deps.sql<(Delivery & { dlq_id: string; retry_count: number })[]>`
      with due as (
        update alert_dlq q
        set next_retry_at = ${after(now, LEASE_MS)}, last_retry_at = ${now}
        from (
          select id from alert_dlq
          where state = 'pending' and next_retry_at <= ${now}
          order by next_retry_at limit ${this.#batchSize}
          for update skip locked
        ) picked
        where q.id = picked.id
        returning q.id, q.delivery_id, q.retry_count
      )
      update alert_deliveries d set attempts = d.attempts + 1
      from due where d.id = due.delivery_id
      returning d.id, d.alert_id, d.user_id, d.channel, d.payload, d.attempts,
                due.id as dlq_id, due.retry_count`;
    return rows.map(({ dlq_id, retry_count, ...delivery }) => ({
      dlqId: dlq_id,
      retryCount: retry_count,
      delivery,
    }));
  }

  /** Sends a batch, by channel: at once where the channel can, else with bounded concurrency. */
  async #sendAll(deliveries: Delivery[]): Promise<Attempt[]> {
    const byChannel = new Map<Channel, Delivery[]>();
    for (const d of deliveries) {
      const group = byChannel.get(d.channel);
      if (group) group.push(d);
      else byChannel.set(d.channel, [d]);
    }
    const attempts: Attempt[] = [];
    for (const [channel, group] of byChannel) {
      const sender = this.deps.senders[channel];
      const signal = AbortSignal.timeout(LEASE_MS / 2);
      if (sender.sendMany) {
        const started = performance.now();
        const results = await sender.sendMany(group, signal).catch((error) =>
          group.map((): SendResult => ({
            ok: false,
            permanent: false,
            error: (error as Error).message,
          }))
        );
        const durationMs = (performance.now() - started) / group.length;
        group.forEach((delivery, i) => attempts.push({ delivery, result: results[i], durationMs }));
      } else {
        attempts.push(
          ...await mapPool(group, this.#concurrency, async (delivery) => {
            const started = performance.now();
            const result = await sender.send(delivery, signal).catch((error): SendResult => ({
              ok: false,
              permanent: false,
              error: (error as Error).message,
            }));
            return { delivery, result, durationMs: performance.now() - started };
          }),
        );
      }
    }
    for (const a of attempts) {
      this.deps.metrics.deliveryDuration.observe(
        { channel: a.delivery.channel },
        a.durationMs / 1000,
      );
    }
    return attempts;
  }

  /** Records first attempts: delivery status, the attempt, and a DLQ row for each failure. */
  async #recordFirst(attempts: Attempt[], now: Date): Promise<DispatchOutcome[]> {
    const rows = attempts.map(({ delivery, result, durationMs }) => {
      const status: DispatchStatus = result.ok
        ? "delivered"
        : result.permanent
        ? "exhausted"
        : "failed";
      return {
        id: delivery.id,
        attempt: delivery.attempts,
        status,
        error: errorOf(result),
        provider_status: result.providerStatus ?? null,
        duration_ms: durationMs,
        due: status === "failed"
          ? after(now, Math.max(BACKOFF_MS[0], result.ok ? 0 : result.retryAfterMs ?? 0))
          : null,
      };
    });
    await this.deps.sql`
      with o as (
        select * from jsonb_to_recordset(${this.deps.sql.json(rows as never)})
          as o(id uuid, attempt int, status text, error text, provider_status int, duration_ms float8, due timestamptz)
      ), updated as (
        update alert_deliveries d
        set status = o.status, last_error = o.error, lease_until = null,
            delivered_at = case when o.status = 'delivered' then ${now}::timestamptz else d.delivered_at end
        from o where d.id = o.id
      ), attempts as (
        insert into delivery_attempts (delivery_id, attempt, at, outcome, error, provider_status, duration_ms)
        select o.id, o.attempt, ${now}, o.status, o.error, o.provider_status, o.duration_ms from o
      )
      insert into alert_dlq (delivery_id, error_message, retry_count, next_retry_at, state, created_at)
      select o.id, o.error, 0, o.due, case when o.status = 'failed' then 'pending' else 'exhausted' end, ${now}
      from o where o.status <> 'delivered'
      on conflict (delivery_id) do nothing`;
    return rows.map((row, i) => {
      const { delivery, result } = attempts[i];
      this.deps.metrics.deliveries.inc({ channel: delivery.channel, status: row.status });
      if (!result.ok) {
        this.deps.logger.warn("delivery {id} via {channel} failed: {error}", {
          id: delivery.id,
          channel: delivery.channel,
          error: result.error,
          permanent: result.permanent,
        });
      }
      return this.#outcome(delivery, row.status, result);
    });
  }

  /** Records retries: delete the DLQ row on success, else schedule the next or give up. */
  async #recordRetries(
    due: DueRetry[],
    attempts: Attempt[],
    now: Date,
  ): Promise<DispatchOutcome[]> {
    const rows = attempts.map(({ delivery, result, durationMs }, i) => {
      const retries = due[i].retryCount + 1;
      const status: DispatchStatus = result.ok
        ? "delivered"
        : result.permanent || retries >= MAX_RETRIES
        ? "exhausted"
        : "failed";
      return {
        dlq_id: due[i].dlqId,
        id: delivery.id,
        attempt: delivery.attempts,
        retries,
        status,
        error: errorOf(result),
        provider_status: result.providerStatus ?? null,
        duration_ms: durationMs,
        due: status === "failed"
          ? after(now, Math.max(BACKOFF_MS[retries], result.ok ? 0 : result.retryAfterMs ?? 0))
          : null,
      };
    });
    await this.deps.sql`
      with o as (
        select * from jsonb_to_recordset(${this.deps.sql.json(rows as never)})
          as o(dlq_id uuid, id uuid, attempt int, retries int, status text, error text,
               provider_status int, duration_ms float8, due timestamptz)
      ), removed as (
        delete from alert_dlq q using o where q.id = o.dlq_id and o.status = 'delivered'
      ), rescheduled as (
        update alert_dlq q
        set retry_count = o.retries, error_message = o.error, next_retry_at = o.due,
            state = case when o.status = 'failed' then 'pending' else 'exhausted' end
        from o where q.id = o.dlq_id and o.status <> 'delivered'
      ), updated as (
        update alert_deliveries d
        set status = o.status, last_error = o.error,
            delivered_at = case when o.status = 'delivered' then ${now}::timestamptz else d.delivered_at end
        from o where d.id = o.id
      )
      insert into delivery_attempts (delivery_id, attempt, at, outcome, error, provider_status, duration_ms)
      select o.id, o.attempt, ${now}, o.status, o.error, o.provider_status, o.duration_ms from o`;
    return rows.map((row, i) => {
      const { delivery, result } = attempts[i];
      this.deps.metrics.retryAttempts.inc({ channel: delivery.channel, outcome: row.status });
      if (row.status !== "failed") {
        this.deps.metrics.deliveries.inc({ channel: delivery.channel, status: row.status });
      }
      return this.#outcome(delivery, row.status, result);
    });
  }

  #outcome(delivery: Delivery, status: DispatchStatus, result: SendResult): DispatchOutcome {
    return {
      id: delivery.id,
      channel: delivery.channel,
      status,
      ...(result.ok ? {} : { error: result.error }),
    };
  }
}
