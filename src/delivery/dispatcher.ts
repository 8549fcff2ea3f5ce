/**
 * Sends deliveries and records every attempt.
 *
 * - First attempts (`dispatch`): right after the outbox commit. A delivery is leased before it is
 *   sent, so a second sender skips it; success → `delivered`; failure → `failed` plus a DLQ row
 *   due in 5 min (or `exhausted` at once for a permanent error), in one transaction.
 * - Stale pending deliveries (`sweepStale`): the sender died between commit and send; once the
 *   delivery is 2 min old and unleased, it is sent like a first attempt.
 * - Retries (`retryDue`): due DLQ rows are claimed with FOR UPDATE SKIP LOCKED and leased; success
 *   deletes the DLQ row; failure schedules the next retry after 5 min, 30 min, 2 h, 12 h, 24 h,
 *   and the 5th failed retry leaves the row `exhausted` (kept, and replayable by hand).
 *
 * Every attempt of a delivery carries the delivery id as the provider's idempotency key.
 */
import type { Clock } from "../clock.ts";
import type { Sql } from "../db/database.ts";
import type { Logger } from "../observability/logger.ts";
import type { Metrics } from "../observability/metrics.ts";
import { mapPool } from "../util/pool.ts";
import type { Channel, Delivery, Sender, SendResult } from "./types.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
/** Wait before retry n (index 0: the first failure → first retry). */
export const BACKOFF_MS = [5 * MINUTE, 30 * MINUTE, 2 * HOUR, 12 * HOUR, 24 * HOUR] as const;
export const MAX_RETRIES = BACKOFF_MS.length;
/** How long a sender holds a delivery; another sender takes it over after that. */
export const LEASE_MS = 2 * MINUTE;
/** A pending delivery older than this, and not leased, was abandoned by its sender. */
export const STALE_PENDING_MS = 2 * MINUTE;

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
  /** Sends in flight at once. */
  concurrency?: number;
}

interface Attempt {
  delivery: Delivery;
  result: SendResult;
  durationMs: number;
}

const after = (now: Date, ms: number) => new Date(now.getTime() + ms);

export class Dispatcher {
  readonly #concurrency: number;

  constructor(private readonly deps: DispatcherDeps) {
    this.#concurrency = deps.concurrency ?? 16;
  }

  /** First attempt for pending deliveries (those another sender holds are skipped). */
  async dispatch(ids: string[]): Promise<DispatchOutcome[]> {
    if (ids.length === 0) return [];
    const now = this.deps.clock.now();
    const claimed = await this.deps.sql<Delivery[]>`
      update alert_deliveries
      set attempts = attempts + 1, lease_until = ${after(now, LEASE_MS)}
      where id = any(${ids}::uuid[]) and status = 'pending'
        and (lease_until is null or lease_until <= ${now})
      returning id, alert_id, user_id, channel, payload, attempts`;
    return await this.#sendFirst(claimed);
  }

  /** Sends pending deliveries that their sender abandoned; returns how many. */
  async sweepStale(now: Date, batchSize = 100): Promise<DispatchOutcome[]> {
    const outcomes: DispatchOutcome[] = [];
    while (true) {
      const claimed = await this.deps.sql<Delivery[]>`
        update alert_deliveries d
        set attempts = d.attempts + 1, lease_until = ${after(now, LEASE_MS)}
        from (
          select id from alert_deliveries
          where status = 'pending' and created_at <= ${after(now, -STALE_PENDING_MS)}
            and (lease_until is null or lease_until <= ${now})
          order by created_at limit ${batchSize}
          for update skip locked
        ) stale
        where d.id = stale.id
        returning d.id, d.alert_id, d.user_id, d.channel, d.payload, d.attempts`;
      if (claimed.length > 0) {
        this.deps.logger.warn("re-sending {count} abandoned pending deliveries", {
          count: claimed.length,
        });
      }
      outcomes.push(...await this.#sendFirst(claimed));
      if (claimed.length < batchSize) return outcomes;
    }
  }

  /** Retries due DLQ rows in batches until none is due; returns the outcomes. */
  async retryDue(now: Date, batchSize = 100): Promise<DispatchOutcome[]> {
    const outcomes: DispatchOutcome[] = [];
    while (true) {
      const batch = await this.#claimDue(now, batchSize);
      const attempts = await mapPool(batch, this.#concurrency, (row) => this.#send(row.delivery));
      for (const [i, attempt] of attempts.entries()) {
        outcomes.push(await this.#recordRetry(batch[i].dlqId, batch[i].retryCount, attempt, now));
      }
      if (batch.length < batchSize) return outcomes;
    }
  }

  async #claimDue(now: Date, batchSize: number) {
    return await this.deps.sql.begin(async (tx) => {
      const rows = await tx<{ id: string; delivery_id: string; retry_count: number }[]>`
        update alert_dlq q
        set next_retry_at = ${after(now, LEASE_MS)}, last_retry_at = ${now}
        from (
          select id from alert_dlq
          where state = 'pending' and next_retry_at <= ${now}
          order by next_retry_at limit ${batchSize}
          for update skip locked
        ) due
        where q.id = due.id
        returning q.id, q.delivery_id, q.retry_count`;
      if (rows.length === 0) return [];
      const deliveries = await tx<Delivery[]>`
        update alert_deliveries set attempts = attempts + 1
        where id = any(${rows.map((r) => r.delivery_id)}::uuid[])
        returning id, alert_id, user_id, channel, payload, attempts`;
      const byId = new Map(deliveries.map((d) => [d.id, d]));
      return rows.map((r) => ({
        dlqId: r.id,
        retryCount: r.retry_count,
        delivery: byId.get(r.delivery_id)!,
      }));
    });
  }

  async #sendFirst(claimed: Delivery[]): Promise<DispatchOutcome[]> {
    return await mapPool(claimed, this.#concurrency, async (delivery) => {
      const attempt = await this.#send(delivery);
      return await this.#recordFirst(attempt);
    });
  }

  async #send(delivery: Delivery): Promise<Attempt> {
    const started = performance.now();
    let result: SendResult;
    try {
      result = await this.deps.senders[delivery.channel].send(
        delivery,
        AbortSignal.timeout(LEASE_MS / 2),
      );
    } catch (error) {
      result = { ok: false, permanent: false, error: (error as Error).message ?? String(error) };
    }
    const durationMs = performance.now() - started;
    this.deps.metrics.deliveryDuration.observe({ channel: delivery.channel }, durationMs / 1000);
    return { delivery, result, durationMs };
  }

  async #recordFirst({ delivery, result, durationMs }: Attempt): Promise<DispatchOutcome> {
    const now = this.deps.clock.now();
    const status: DispatchStatus = result.ok
      ? "delivered"
      : result.permanent
      ? "exhausted"
      : "failed";
    await this.deps.sql.begin(async (tx) => {
      await tx`
        insert into delivery_attempts (delivery_id, attempt, at, outcome, error, provider_status, duration_ms)
        values (${delivery.id}, ${delivery.attempts}, ${now}, ${status},
                ${result.ok ? null : result.error}, ${
        result.providerStatus ?? null
      }, ${durationMs})`;
      if (result.ok) {
        await tx`
          update alert_deliveries
          set status = 'delivered', delivered_at = ${now}, lease_until = null, last_error = null
          where id = ${delivery.id}`;
        return;
      }
      await tx`
        update alert_deliveries set status = ${status}, last_error = ${result.error}, lease_until = null
        where id = ${delivery.id}`;
      const due = status === "failed"
        ? after(now, Math.max(BACKOFF_MS[0], result.retryAfterMs ?? 0))
        : null;
      await tx`
        insert into alert_dlq (delivery_id, error_message, retry_count, next_retry_at, state, created_at)
        values (${delivery.id}, ${result.error}, 0, ${due}, ${
        status === "failed" ? "pending" : "exhausted"
      }, ${now})
        on conflict (delivery_id) do nothing`;
    });
    this.deps.metrics.deliveries.inc({ channel: delivery.channel, status });
    if (!result.ok) {
      this.deps.logger.warn("delivery {id} via {channel} failed: {error}", {
        id: delivery.id,
        channel: delivery.channel,
        error: result.error,
        permanent: result.permanent,
      });
    }
    return {
      id: delivery.id,
      channel: delivery.channel,
      status,
      ...(result.ok ? {} : { error: result.error }),
    };
  }

  async #recordRetry(
    dlqId: string,
    retryCount: number,
    attempt: Attempt,
    now: Date,
  ): Promise<DispatchOutcome> {
    const { delivery, result, durationMs } = attempt;
    const retries = retryCount + 1;
    const status: DispatchStatus = result.ok
      ? "delivered"
      : result.permanent || retries >= MAX_RETRIES
      ? "exhausted"
      : "failed";
    await this.deps.sql.begin(async (tx) => {
      await tx`
        insert into delivery_attempts (delivery_id, attempt, at, outcome, error, provider_status, duration_ms)
        values (${delivery.id}, ${delivery.attempts}, ${now}, ${status},
                ${result.ok ? null : result.error}, ${
        result.providerStatus ?? null
      }, ${durationMs})`;
      if (result.ok) {
        await tx`delete from alert_dlq where id = ${dlqId}`;
        await tx`
          update alert_deliveries set status = 'delivered', delivered_at = ${now}, last_error = null
          where id = ${delivery.id}`;
        return;
      }
      const due = status === "failed"
        ? after(now, Math.max(BACKOFF_MS[retries], result.retryAfterMs ?? 0))
        : null;
      await tx`
        update alert_dlq
        set retry_count = ${retries}, error_message = ${result.error}, next_retry_at = ${due},
            state = ${status === "failed" ? "pending" : "exhausted"}
        where id = ${dlqId}`;
      await tx`
        update alert_deliveries set status = ${status}, last_error = ${result.error}
        where id = ${delivery.id}`;
    });
    this.deps.metrics.retryAttempts.inc({ channel: delivery.channel, outcome: status });
    if (status !== "failed") {
      this.deps.metrics.deliveries.inc({ channel: delivery.channel, status });
    }
    return {
      id: delivery.id,
      channel: delivery.channel,
      status,
      ...(result.ok ? {} : { error: result.error }),
    };
  }
}
