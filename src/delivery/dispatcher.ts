/**
 * Sends deliveries and records every attempt, in batches, under fenced leases.
 *
 * A sender holds a delivery through a lease: a token and an end time, taken at the moment of
 * sending. Every outcome is recorded only if the sender's token still holds, so a sender that
 * lost its lease (it was slow, or its process was presumed dead) records nothing over the new
 * owner's state; its attempt row is kept, marked `fenced`. A batch's sends run side by side and
 * must end inside the lease (each send gets what is left of it); a send that could not start in
 * time, or was cut off because the process is stopping, is released — leased to nobody — so the
 * next tick of any replica sends it at once.
 *
 * - First attempts (`deliver`): deliveries the outbox wrote leased to this process; the lease is
 *   renewed as sending starts.
 * - Abandoned deliveries (`sweepStale`): pending with an expired or released lease — and
 *   deliveries deferred to a time window (`not_before`, written leased to nobody) once due.
 * - Retries (`retryDue`): due DLQ rows, claimed with FOR UPDATE SKIP LOCKED.
 *
 * No claim takes a delivery before its `not_before`. A provider's idempotency window is counted
 * from when the delivery became due (`not_before`, else `created_at`): no attempt can precede it,
 * so a deferred email is not "past Resend's 24 h" merely because it waited for a window.
 *
 * Outcomes: delivered; a definite failure (an answer, a refused connection) goes to the DLQ on
 * the backoff schedule (exhausted after the last retry, or at once when permanent); an unknown
 * outcome (no answer) is retried the same way but only while the channel's idempotency window
 * covers the delivery's key — past it, the delivery is `uncertain`: kept for a human, never sent
 * again automatically. A batch's outcomes are written by one statement.
 */
import { context, type Span, SpanStatusCode, trace, type Tracer } from "@opentelemetry/api";
import type { Clock } from "../clock.ts";
import type { Sql } from "../db/database.ts";
import type { Drain } from "../jobs/drain.ts";
import type { Logger } from "../observability/logger.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { ErrorReporter } from "../observability/sentry.ts";
import { inSpan } from "../observability/tracing.ts";
import { mapPool } from "../util/pool.ts";
import {
  type DeliverySchedule,
  dueAfter,
  IDEMPOTENCY_WINDOW_MS,
  sendBudgetMs,
} from "./schedule.ts";
import type { Channel, Delivery, SendContext, Sender, SendResult } from "./types.ts";

/** Where a delivery stands after an attempt; `pending` means released for the next tick. */
export type DispatchStatus = "delivered" | "failed" | "exhausted" | "uncertain" | "pending";

export interface DispatchOutcome {
  id: string;
  channel: Channel;
  status: DispatchStatus;
  error?: string;
}

/** A delivery as the outbox wrote it: leased to the writer under this token. */
export type LeasedDelivery = Delivery & { lease_token: string };

export interface DispatcherDeps {
  sql: Sql;
  clock: Clock;
  metrics: Metrics;
  logger: Logger;
  senders: Record<Channel, Sender>;
  schedule: DeliverySchedule;
  drain: Drain;
  /** A `delivery.batch` span per batch, with a `delivery.send` child per delivery. */
  tracer?: Tracer;
  /** Sends in flight at once, for channels that send one at a time. */
  concurrency?: number;
  /** Rows claimed per batch by the retry job and the sweep. */
  batchSize?: number;
  /** One event per delivery this process made `exhausted` (Sentry, when configured). */
  errors?: ErrorReporter;
}

/** A delivery this process holds, with its DLQ row when it is a retry. */
interface Held {
  delivery: Delivery;
  token: string;
  /** When it became due (`not_before`, else `created_at`): its idempotency window starts then. */
  windowFrom: Date;
  retry?: { dlqId: string; retryCount: number };
}

/** Deliveries leased by one statement, and when (the shared clock): their lease ends from it. */
interface Batch {
  held: Held[];
  leasedAt: Date;
}

interface Attempt {
  result: SendResult;
  durationMs: number;
  /** The stop signal cut this send off: release it for the next process. */
  cutOff: boolean;
}

/** One row of the record statement (see #record). */
interface Decision {
  id: string;
  token: string;
  channel: Channel;
  status: DispatchStatus;
  /** The attempt row's outcome; null when nothing was sent. */
  outcome: "delivered" | "failed" | "unknown" | "exhausted" | "uncertain" | null;
  error: string | null;
  provider_status: number | null;
  duration_ms: number;
  maybe_sent: boolean;
  attempt: number;
  dlq: "none" | "delete" | "upsert";
  dlq_state: "pending" | "exhausted" | "uncertain" | null;
  retry_count: number;
  due: Date | null;
  /** A retry of a DLQ row (not a first attempt). */
  retried: boolean;
}

const CLAIMED_COLUMNS = (sql: Sql) =>
  sql`d.id, d.alert_id, d.user_id, d.channel, d.payload, d.attempts, d.created_at, d.maybe_sent,
      d.lease_token, coalesce(d.not_before, d.created_at) as window_from`;

type ClaimedRow = Delivery & { lease_token: string; window_from: Date };

/** A claimed row as held: the delivery, its token and when its idempotency window starts. */
const held = ({ lease_token, window_from, ...delivery }: ClaimedRow): Held => ({
  delivery,
  token: lease_token,
  windowFrom: window_from,
});

/** A delivery released unsent: no attempt is recorded, nor this error. */
const NOT_SENT: SendResult = { outcome: "not_sent", error: "released unsent" };

export class Dispatcher {
  readonly #concurrency: number;
  readonly #batchSize: number;

  constructor(private readonly deps: DispatcherDeps) {
    this.#concurrency = deps.concurrency ?? 16;
    this.#batchSize = deps.batchSize ?? 200;
  }

  /** First attempts of deliveries the outbox leased to this process. */
  async deliver(deliveries: LeasedDelivery[]): Promise<DispatchOutcome[]> {
    if (deliveries.length === 0) return [];
    const { sql, clock, schedule } = this.deps;
    // Renew the leases as sending starts: evaluating the rest of a batch may have taken a while.
    // A delivery whose lease was already taken over is the new owner's to send; one due later
    // (a time window) is nobody's yet.
    const now = clock.now();
    const renewed = await sql<{ id: string; window_from: Date }[]>`
      update alert_deliveries d set lease_until = ${dueAfter(now, schedule.leaseMs)}
      from jsonb_to_recordset(${
      sql.json(deliveries.map((d) => ({ id: d.id, token: d.lease_token })))
    }) as o(id uuid, token uuid)
      where d.id = o.id and d.lease_token = o.token and d.status = 'pending'
        and (d.not_before is null or d.not_before <= ${now})
      returning d.id, coalesce(d.not_before, d.created_at) as window_from`;
    const kept = new Map(renewed.map((r) => [r.id, r.window_from]));
    const mine = deliveries.filter((d) => kept.has(d.id)).map(({ lease_token, ...delivery }) => ({
      delivery,
      token: lease_token,
      windowFrom: kept.get(delivery.id)!,
    }));
    return await this.#sendAndRecord({ held: mine, leasedAt: now }, "first");
  }

  /**
   * Sends pending deliveries whose lease ran out (their sender died) or was released, and those
   * deferred to a time window once it has opened (never leased: not "maybe sent").
   */
  async sweepStale(): Promise<DispatchOutcome[]> {
    const outcomes: DispatchOutcome[] = [];
    const { sql, clock, schedule, drain } = this.deps;
    while (!drain.stopping) {
      const now = clock.now();
      // An expired lease may have died mid-send: from now on the provider may have it.
      const claimed = await sql<(ClaimedRow & { deferred: boolean })[]>`
        update alert_deliveries d
        set lease_token = gen_random_uuid(), lease_until = ${dueAfter(now, schedule.leaseMs)},
            maybe_sent = d.maybe_sent or d.lease_until is not null
        from (
          select id, lease_until from alert_deliveries
          where status = 'pending' and (lease_until is null or lease_until <= ${now})
            and (not_before is null or not_before <= ${now})
          order by created_at limit ${this.#batchSize}
          for update skip locked
        ) stale
        where d.id = stale.id
        returning ${CLAIMED_COLUMNS(sql)},
                  d.not_before is not null and d.attempts = 0 and stale.lease_until is null
                    as deferred`;
      if (claimed.length > 0) {
        const deferred = claimed.filter((c) => c.deferred).length;
        if (deferred > 0) {
          this.deps.logger.info("sending {count} deliveries whose time window has opened", {
            count: deferred,
          });
        }
        if (claimed.length > deferred) {
          this.deps.logger.warn("sending {count} abandoned or released pending deliveries", {
            count: claimed.length - deferred,
          });
        }
        outcomes.push(
          ...await this.#sendAndRecord(
            { held: claimed.map(({ deferred: _d, ...row }) => held(row)), leasedAt: now },
            "sweep",
          ),
        );
      }
      if (claimed.length < this.#batchSize) break;
    }
    return outcomes;
  }

  /**
   * Retries due DLQ rows in batches until none is due (or the process is stopping). One claim
   * runs ahead: the next batch is claimed while this one is sent and recorded, so the database
   * works on both at once. A batch claimed ahead that will not be sent (the process is stopping,
   * or recording this one failed) is released at once, due again with no retry used up.
   */
  async retryDue(): Promise<DispatchOutcome[]> {
    const { drain } = this.deps;
    const outcomes: DispatchOutcome[] = [];
    let next = drain.stopping ? undefined : this.#claimAhead();
    while (next) {
      const due = await next;
      next = due.held.length === this.#batchSize && !drain.stopping
        ? this.#claimAhead()
        : undefined;
      try {
        if (due.held.length > 0) outcomes.push(...await this.#sendAndRecord(due, "retry"));
      } catch (error) {
        if (next) await this.#releaseClaimed(next);
        throw error;
      }
      if (next && drain.stopping) {
        await this.#releaseClaimed(next);
        next = undefined;
      }
    }
    return outcomes;
  }

  /**
   * The next claim, started now and awaited later: a failure meanwhile (the database away) must
   * not be an unhandled rejection, which would end the process. Awaiting it still throws.
   */
  #claimAhead(): Promise<Batch> {
    const claim = this.#claimDue(this.deps.clock.now());
    claim.catch(() => {});
    return claim;
  }

  /** A claimed batch that was not sent: its leases given up, its DLQ rows due now. */
  async #releaseClaimed(claim: Promise<Batch>): Promise<void> {
    try {
      const { held } = await claim;
      const at = this.deps.clock.now();
      const notSent: Attempt = { result: NOT_SENT, durationMs: 0, cutOff: false };
      await this.#record(held.map((h) => this.#decide(h, notSent, at)), at);
    } catch (error) {
      // The database is away: the leases run out by themselves and the rows come due again.
      this.deps.logger.warn("could not release a batch claimed ahead: {error}", {
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  async #claimDue(now: Date): Promise<Batch> {
    const { sql, schedule } = this.deps;
    const until = dueAfter(now, schedule.leaseMs);
    // The DLQ row is pushed out by one lease while it is in flight: if this process dies, the
    // row is due again when the lease ends and the next owner fences this one out.
    // `= any(array(…))` on both sides: the planner then reads both tables by primary key; a join
    // with the picked rows made it hash-join whole-table scans (half the claim's time at 10k rows).
    const rows = await sql<(ClaimedRow & { dlq_id: string; retry_count: number })[]>`
      with due as (
        update alert_dlq q
        set next_retry_at = ${until}, last_retry_at = ${now}
        where q.id = any(array(
          select id from alert_dlq
          where state = 'pending' and next_retry_at <= ${now}
          order by next_retry_at limit ${this.#batchSize}
          for update skip locked
        ))
        returning q.id, q.delivery_id, q.retry_count
      )
      update alert_deliveries d
      set lease_token = gen_random_uuid(), lease_until = ${until},
          maybe_sent = d.maybe_sent or d.lease_until is not null
      from due
      where d.id = any(array(select delivery_id from due)) and d.id = due.delivery_id
      returning ${CLAIMED_COLUMNS(sql)}, due.id as dlq_id, due.retry_count`;
    return {
      held: rows.map(({ dlq_id, retry_count, ...row }) => ({
        ...held(row),
        retry: { dlqId: dlq_id, retryCount: retry_count },
      })),
      leasedAt: now,
    };
  }

  #sendAndRecord(batch: Batch, kind: "first" | "sweep" | "retry"): Promise<DispatchOutcome[]> {
    const { held } = batch;
    if (held.length === 0) return Promise.resolve([]);
    const { tracer } = this.deps;
    if (!tracer) return this.#sendAndRecordNow(batch);
    return inSpan(tracer, "delivery.batch", {
      attributes: { "delivery.batch.kind": kind, "delivery.batch.size": held.length },
    }, async (span) => {
      const outcomes = await this.#sendAndRecordNow(batch);
      for (const status of new Set(outcomes.map((o) => o.status))) {
        span.setAttribute(
          `delivery.batch.${status}`,
          outcomes.filter((o) => o.status === status).length,
        );
      }
      return outcomes;
    });
  }

  async #sendAndRecordNow({ held, leasedAt }: Batch): Promise<DispatchOutcome[]> {
    const startedAt = this.deps.clock.now();
    // Past its idempotency window a delivery that may have arrived is not sent again.
    const expired = (h: Held) =>
      h.delivery.maybe_sent &&
      startedAt.getTime() >= h.windowFrom.getTime() + IDEMPOTENCY_WINDOW_MS[h.delivery.channel];
    const attempts = await this.#sendAll(held.filter((h) => !expired(h)), leasedAt);
    const at = this.deps.clock.now();
    const decisions = held.map((h) => {
      const attempt = attempts.get(h.delivery.id);
      return attempt ? this.#decide(h, attempt, at) : this.#outOfWindow(h);
    });
    const exhausted = await this.#record(decisions, at);
    held.forEach((h, i) => {
      if (exhausted.has(h.delivery.id)) this.#reportExhausted(h.delivery, decisions[i]);
    });
    return decisions.map((d) => this.#report(d));
  }

  /** One event per exhausted delivery; never the payload (the recipient, the message). */
  #reportExhausted(delivery: Delivery, d: Decision): void {
    this.deps.errors?.captureMessage("delivery exhausted", {
      level: "error",
      fingerprint: ["delivery-exhausted", d.channel],
      tags: { channel: d.channel, delivery_id: d.id, alert_id: delivery.alert_id },
      extra: { attempts: d.attempt, retry_count: d.retry_count, error: d.error },
    });
  }

  /** Sends a batch: channels side by side, all inside one lease; results by delivery id. */
  async #sendAll(held: Held[], leasedAt: Date): Promise<Map<string, Attempt>> {
    const attempts = new Map<string, Attempt>();
    if (held.length === 0) return attempts;
    // The lease is judged by the clock the other replicas read: a process that stalled (a pause,
    // a frozen VM) past it must not start a send the lease no longer covers. It counts from the
    // batch's claim (a batch claimed ahead waited for the one before it).
    const leaseEnd = leasedAt.getTime() + sendBudgetMs(this.deps.schedule.leaseMs);
    const ctx: SendContext = {
      signal: this.deps.drain.signal,
      deadline: performance.now() + Math.max(0, leaseEnd - this.deps.clock.now().getTime()),
    };
    const tooLate = (): SendResult | undefined =>
      this.deps.clock.now().getTime() >= leaseEnd
        ? { outcome: "not_sent", error: "the lease ran out before this send started" }
        : undefined;
    const byChannel = new Map<Channel, Delivery[]>();
    for (const { delivery } of held) {
      const group = byChannel.get(delivery.channel);
      if (group) group.push(delivery);
      else byChannel.set(delivery.channel, [delivery]);
    }
    const noAnswer = (error: unknown): SendResult => ({
      outcome: "unknown",
      error: error instanceof Error ? error.message : String(error),
    });
    const keep = (delivery: Delivery, result: SendResult, durationMs: number, span?: Span) => {
      attempts.set(delivery.id, { result, durationMs, cutOff: ctx.signal.aborted });
      this.deps.metrics.deliveryDuration.observe({ channel: delivery.channel }, durationMs / 1000);
      if (span) endSendSpan(span, result);
    };
    const sendSpan = (delivery: Delivery) =>
      this.deps.tracer && trace.getActiveSpan()?.isRecording()
        ? this.deps.tracer.startSpan("delivery.send", {
          attributes: {
            "delivery.id": delivery.id,
            "delivery.channel": delivery.channel,
            "delivery.attempt": delivery.attempts + 1,
          },
        })
        : undefined;
    await Promise.all([...byChannel].map(async ([channel, group]) => {
      const sender = this.deps.senders[channel];
      if (sender.sendMany) {
        const started = performance.now();
        const spans = group.map(sendSpan); // one statement sends them all: spans side by side
        const late = tooLate();
        const results = late
          ? group.map(() => late)
          : await sender.sendMany(group, ctx).catch((e) => group.map(() => noAnswer(e)));
        const each = (performance.now() - started) / group.length;
        group.forEach((delivery, i) => keep(delivery, results[i], each, spans[i]));
        return;
      }
      await mapPool(group, this.#concurrency, async (delivery) => {
        const started = performance.now();
        const span = sendSpan(delivery);
        const send = () => tooLate() ?? sender.send(delivery, ctx).catch(noAnswer);
        // The channel's own client span (HTTP, Resend) is a child of this delivery's span.
        const result = span
          ? await context.with(trace.setSpan(context.active(), span), send)
          : await send();
        keep(delivery, result, performance.now() - started, span);
      });
    }));
    return attempts;
  }

  /** What an attempt means for its delivery: the next state and what to write. */
  #decide(h: Held, { result, durationMs, cutOff }: Attempt, at: Date): Decision {
    const { delivery, retry } = h;
    const base = {
      id: delivery.id,
      token: h.token,
      channel: delivery.channel,
      duration_ms: durationMs,
      attempt: delivery.attempts + 1,
      provider_status: "providerStatus" in result ? result.providerStatus ?? null : null,
      retry_count: retry?.retryCount ?? 0,
      retried: retry !== undefined,
    };
    if (result.outcome === "delivered") {
      return {
        ...base,
        status: "delivered",
        outcome: "delivered",
        error: null,
        maybe_sent: false,
        dlq: retry ? "delete" : "none",
        dlq_state: null,
        due: null,
      };
    }
    const maybeSent = delivery.maybe_sent || result.outcome === "unknown";
    // Not sent, or cut off by a stop: leased to nobody, due at once; no retry is used up.
    if (result.outcome === "not_sent" || cutOff) {
      return {
        ...base,
        status: retry ? "failed" : "pending",
        outcome: result.outcome === "not_sent" ? null : "unknown",
        error: result.outcome === "not_sent" ? null : result.error,
        maybe_sent: maybeSent,
        dlq: retry ? "upsert" : "none",
        dlq_state: retry ? "pending" : null,
        due: retry ? at : null,
      };
    }
    const retries = retry ? retry.retryCount + 1 : 0;
    const { backoffMs } = this.deps.schedule;
    const final = maybeSent ? "uncertain" : "exhausted";
    const failed = { ...base, error: result.error, maybe_sent: maybeSent, retry_count: retries };
    if ((result.outcome === "failed" && result.permanent) || retries >= backoffMs.length) {
      return {
        ...failed,
        status: final,
        outcome: final,
        dlq: "upsert",
        dlq_state: final,
        due: null,
      };
    }
    const retryAfter = result.outcome === "failed" ? result.retryAfterMs ?? 0 : 0;
    const due = dueAfter(at, Math.max(backoffMs[retries], retryAfter));
    const window = h.windowFrom.getTime() + IDEMPOTENCY_WINDOW_MS[delivery.channel];
    if (maybeSent && due.getTime() >= window) {
      return {
        ...failed,
        error: `${result.error}; an earlier attempt may have arrived and the next retry would ` +
          `fall outside the ${delivery.channel} idempotency window`,
        status: "uncertain",
        outcome: "uncertain",
        dlq: "upsert",
        dlq_state: "uncertain",
        due: null,
      };
    }
    return {
      ...failed,
      status: "failed",
      outcome: result.outcome,
      dlq: "upsert",
      dlq_state: "pending",
      due,
    };
  }

  /** A delivery that may have arrived, claimed after its idempotency window: for a human. */
  #outOfWindow(h: Held): Decision {
    return {
      id: h.delivery.id,
      token: h.token,
      channel: h.delivery.channel,
      status: "uncertain",
      outcome: null,
      error: `an earlier attempt may have arrived and the ${h.delivery.channel} idempotency ` +
        "window has passed: not sent again",
      provider_status: null,
      duration_ms: 0,
      maybe_sent: true,
      attempt: h.delivery.attempts,
      dlq: "upsert",
      dlq_state: "uncertain",
      retry_count: h.retry?.retryCount ?? 0,
      due: null,
      retried: h.retry !== undefined,
    };
  }

  /**
   * Records a batch in one statement. Only rows whose lease token still holds change the
   * delivery and its DLQ row; every attempt is kept, marked `fenced` when its sender had lost
   * the lease. Returns the ids of the deliveries it made `exhausted` (whose token held).
   */
  async #record(decisions: Decision[], at: Date): Promise<Set<string>> {
    const { sql } = this.deps;
    const rows = decisions.map(({ channel: _c, ...row }) => row);
    const upserted = await sql<{ delivery_id: string; state: string }[]>`
      with o as (
        select * from jsonb_to_recordset(${sql.json(rows as never)}) as o(
          id uuid, token uuid, status text, outcome text, error text, provider_status int,
          duration_ms float8, maybe_sent boolean, attempt int, dlq text, dlq_state text,
          retry_count int, due timestamptz, retried boolean)
      ), owned as (
        update alert_deliveries d
        set status = o.status, last_error = coalesce(o.error, d.last_error),
            attempts = d.attempts + (o.outcome is not null)::int,
            maybe_sent = d.maybe_sent or o.maybe_sent,
            lease_token = null, lease_until = null,
            delivered_at = case when o.status = 'delivered' then ${at}::timestamptz
                                else d.delivered_at end
        from o
        -- The id list lets the planner use the primary key (it cannot see into the JSON).
        where d.id = any(${decisions.map((d) => d.id)}::uuid[])
          and d.id = o.id and d.lease_token = o.token
        returning d.id, o.error, o.dlq, o.dlq_state, o.retry_count, o.due, o.retried
      ), attempts as (
        insert into delivery_attempts
          (delivery_id, attempt, at, outcome, error, provider_status, duration_ms, fenced)
        select o.id, o.attempt, ${at}, o.outcome, o.error, o.provider_status, o.duration_ms,
               owned.id is null
        from o left join owned on owned.id = o.id where o.outcome is not null
      ), removed as (
        delete from alert_dlq q using owned
        where owned.dlq = 'delete' and q.delivery_id = owned.id
      )
      insert into alert_dlq
        (delivery_id, error_message, retry_count, next_retry_at, last_retry_at, state, created_at)
      select owned.id,
             coalesce(owned.error,
                      (select error_message from alert_dlq where delivery_id = owned.id),
                      'not sent yet'),
             owned.retry_count, owned.due, case when owned.retried then ${at}::timestamptz end,
             owned.dlq_state, ${at}
      from owned
      where owned.dlq = 'upsert'
      on conflict (delivery_id) do update
      set error_message = excluded.error_message, retry_count = excluded.retry_count,
          next_retry_at = excluded.next_retry_at,
          last_retry_at = coalesce(excluded.last_retry_at, alert_dlq.last_retry_at),
          state = excluded.state
      returning delivery_id, state`;
    return new Set(upserted.filter((r) => r.state === "exhausted").map((r) => r.delivery_id));
  }

  #report(d: Decision): DispatchOutcome {
    const { metrics, logger } = this.deps;
    // An attempt whose outcome is unknown counts as such; a retry counts once it is final.
    const status = d.status === "failed" && d.outcome === "unknown" ? "unknown" : d.status;
    if (status !== "pending" && (!d.retried || !["failed", "unknown"].includes(status))) {
      metrics.deliveries.inc({ channel: d.channel, status });
    }
    if (d.retried && d.outcome !== null) {
      metrics.retryAttempts.inc({
        channel: d.channel,
        outcome: status === "pending" ? "unknown" : status,
      });
    }
    if (d.status !== "delivered" && d.error) {
      logger.warn("delivery {id} via {channel}: {status}: {error}", {
        id: d.id,
        channel: d.channel,
        status: d.status,
        error: d.error,
      });
    }
    return {
      id: d.id,
      channel: d.channel,
      status: d.status,
      ...(d.error ? { error: d.error } : {}),
    };
  }
}

function endSendSpan(span: Span, result: SendResult): void {
  span.setAttribute("delivery.outcome", result.outcome);
  const status = "providerStatus" in result ? result.providerStatus : undefined;
  if (status !== undefined) span.setAttribute("delivery.provider_status", status);
  if (result.outcome !== "delivered") {
    span.setStatus({ code: SpanStatusCode.ERROR, message: result.error });
  }
  span.end();
}
