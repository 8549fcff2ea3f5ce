/**
 * /sla/status: availability (non-5xx ÷ all API requests), error rate (5xx ÷ all) and p95 latency
 * over 1 h, 24 h, 7 d and 30 d, each against its target (SLA_AVAILABILITY_TARGET,
 * SLA_ERROR_RATE_TARGET, SLA_P95_MS), with the error budget left and the burn rate — from the
 * traffic every replica flushes to `sla_traffic` (traffic.ts). 1 h and 24 h are read from
 * minutes, 7 d and 30 d from whole hours (the current one included). The SLIs are the ones the
 * Prometheus SLO rules compute from http_requests_total and http_request_duration_seconds, with
 * the same bucket bounds: both agree on the same traffic (tests/sla_prometheus_test.ts).
 *
 * A burn rate of 1 spends exactly the window's budget by its end; the budget is counted in
 * requests and shown in minutes as the share of the window it allows to be bad.
 */
import type { Clock } from "../clock.ts";
import type { Config } from "../config.ts";
import type { Queryable } from "../db/database.ts";
import { HTTP_BUCKETS } from "../observability/metrics.ts";
import { emptyCounts, quantile } from "../util/histogram.ts";
import { SingleFlightCache } from "../util/single_flight.ts";

export const SLA_WINDOWS = ["1h", "24h", "7d", "30d"] as const;
export type SlaWindow = typeof SLA_WINDOWS[number];

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const WINDOW_MS: Record<SlaWindow, number> = {
  "1h": HOUR_MS,
  "24h": 24 * HOUR_MS,
  "7d": 7 * 24 * HOUR_MS,
  "30d": 30 * 24 * HOUR_MS,
};
/** The latency objective: 95 % of requests within SLA_P95_MS, so 5 % may be slower. */
const LATENCY_BUDGET = 0.05;

export type Targets = Pick<
  Config,
  "SLA_AVAILABILITY_TARGET" | "SLA_ERROR_RATE_TARGET" | "SLA_P95_MS"
>;

export interface Budget {
  /** Of the window's budget, what is left (negative: overspent). null: no traffic. */
  remaining_percent: number | null;
  remaining_minutes: number | null;
  /** Bad share ÷ allowed bad share: 1 spends the budget exactly by the window's end. */
  burn_rate: number | null;
}

export interface Objective {
  target: number;
  /** null: no traffic in the window (nothing to meet or breach). */
  met: boolean | null;
  error_budget: Budget;
}

export interface WindowStatus {
  window: SlaWindow;
  from: Date;
  to: Date;
  requests: number;
  errors: number;
  /** Every objective met (null without traffic). */
  met: boolean | null;
  availability: Objective & { percent: number | null };
  error_rate: Objective & { percent: number | null };
  latency: Objective & {
    p95_ms: number | null;
    /** Share of requests within the target. */
    within_target_percent: number | null;
  };
}

export interface WindowTotals {
  requests: number;
  errors: number;
  buckets: number[];
}

/** Where a window starts: minutes for 1 h and 24 h, whole hours for 7 d and 30 d. */
export function windowStart(
  window: SlaWindow,
  now: Date,
): { period: "minute" | "hour"; from: Date } {
  const back = now.getTime() - WINDOW_MS[window];
  return window === "1h" || window === "24h"
    ? { period: "minute", from: new Date(Math.floor(back / MINUTE_MS) * MINUTE_MS + MINUTE_MS) }
    : { period: "hour", from: new Date(Math.floor(back / HOUR_MS) * HOUR_MS) };
}

/** The requests slower than `seconds`, by linear interpolation inside its bucket. */
export function slowerThan(seconds: number, buckets: readonly number[]): number {
  let slower = 0;
  for (let i = 0; i < buckets.length; i++) {
    const lo = i === 0 ? 0 : HTTP_BUCKETS[i - 1];
    const hi = i < HTTP_BUCKETS.length ? HTTP_BUCKETS[i] : Number.POSITIVE_INFINITY;
    const n = Number(buckets[i]);
    if (lo >= seconds) slower += n;
    else if (hi > seconds && Number.isFinite(hi)) slower += n * ((hi - seconds) / (hi - lo));
  }
  return slower;
}

const round = (x: number, digits = 4) => Math.round(x * 10 ** digits) / 10 ** digits;

function budget(badShare: number | null, allowed: number, windowMs: number): Budget {
  if (badShare === null) {
    return { remaining_percent: null, remaining_minutes: null, burn_rate: null };
  }
  return {
    remaining_percent: round((1 - badShare / allowed) * 100, 2),
    remaining_minutes: round((windowMs / MINUTE_MS) * (allowed - badShare), 2),
    burn_rate: round(badShare / allowed, 3),
  };
}

/** A window's status from its totals (pure: tests and the agreement test use it). */
export function windowStatus(
  window: SlaWindow,
  totals: WindowTotals,
  targets: Targets,
  now: Date,
): WindowStatus {
  const { requests, errors, buckets } = totals;
  const errorShare = requests ? errors / requests : null;
  const p95 = quantile(0.95, HTTP_BUCKETS, buckets);
  const targetSeconds = targets.SLA_P95_MS / 1000;
  const slowShare = requests ? Math.min(1, slowerThan(targetSeconds, buckets) / requests) : null;
  const allowedUnavailable = 1 - targets.SLA_AVAILABILITY_TARGET / 100;
  const allowedErrors = targets.SLA_ERROR_RATE_TARGET / 100;
  const windowMs = WINDOW_MS[window];
  const availability = {
    percent: errorShare === null ? null : round((1 - errorShare) * 100),
    target: targets.SLA_AVAILABILITY_TARGET,
    met: errorShare === null ? null : errorShare <= allowedUnavailable,
    error_budget: budget(errorShare, allowedUnavailable, windowMs),
  };
  const errorRate = {
    percent: errorShare === null ? null : round(errorShare * 100),
    target: targets.SLA_ERROR_RATE_TARGET,
    met: errorShare === null ? null : errorShare <= allowedErrors,
    error_budget: budget(errorShare, allowedErrors, windowMs),
  };
  const latency = {
    p95_ms: p95 === null ? null : round(p95 * 1000, 2),
    within_target_percent: slowShare === null ? null : round((1 - slowShare) * 100),
    target: targets.SLA_P95_MS,
    met: p95 === null ? null : p95 <= targetSeconds,
    error_budget: budget(slowShare, LATENCY_BUDGET, windowMs),
  };
  return {
    window,
    from: windowStart(window, now).from,
    to: now,
    requests,
    errors,
    met: requests ? availability.met! && errorRate.met! && latency.met! : null,
    availability,
    error_rate: errorRate,
    latency,
  };
}

/** Every window's totals in one query: requests, 5xx and duration bucket counts. */
export async function windowTotals(
  sql: Queryable,
  now: Date,
): Promise<Record<SlaWindow, WindowTotals>> {
  const starts = Object.fromEntries(SLA_WINDOWS.map((w) => [w, windowStart(w, now)])) as Record<
    SlaWindow,
    { period: string; from: Date }
  >;
  const rows = await sql<{ name: SlaWindow; i: number; n: number; errors: number | null }[]>`
    select w.name, u.i::int as i, sum(u.n)::float8 as n,
           (sum(t.errors) filter (where u.i = 1))::float8 as errors
    from (values
      ('1h', ${starts["1h"].period}, ${starts["1h"].from}::timestamptz),
      ('24h', ${starts["24h"].period}, ${starts["24h"].from}::timestamptz),
      ('7d', ${starts["7d"].period}, ${starts["7d"].from}::timestamptz),
      ('30d', ${starts["30d"].period}, ${starts["30d"].from}::timestamptz)
    ) as w(name, period, since)
    join sla_traffic t on t.period = w.period and t.bucket >= w.since and t.bucket <= ${now}
    cross join lateral unnest(t.duration_buckets) with ordinality as u(n, i)
    group by w.name, u.i`;
  const totals = Object.fromEntries(
    SLA_WINDOWS.map((w) => [w, { requests: 0, errors: 0, buckets: emptyCounts(HTTP_BUCKETS) }]),
  ) as Record<SlaWindow, WindowTotals>;
  for (const r of rows) {
    const t = totals[r.name];
    t.buckets[r.i - 1] = r.n;
    t.requests += r.n;
    if (r.errors !== null) t.errors = r.errors;
  }
  return totals;
}

export interface SlaStatus {
  generated_at: Date;
  targets: { availability_percent: number; error_rate_percent: number; p95_ms: number };
  windows: WindowStatus[];
}

/**
 * /sla/status, computed at most every CACHE_MS (src/util/single_flight.ts: concurrent callers
 * share one computation, an expired answer is served while the next is computed, the last good
 * one while the database is away): it is public by default and reads up to 30 days of aggregates.
 */
export class SlaReport {
  static readonly CACHE_MS = 10_000;
  readonly #cache: SingleFlightCache<SlaStatus>;

  constructor(private readonly deps: { sql: Queryable; clock: Clock; targets: Targets }) {
    this.#cache = new SingleFlightCache(deps.clock, SlaReport.CACHE_MS);
  }

  status(): Promise<SlaStatus> {
    return this.#cache.get("sla", () => this.#compute(this.deps.clock.now()));
  }

  async window(window: SlaWindow): Promise<WindowStatus> {
    return (await this.status()).windows.find((w) => w.window === window)!;
  }

  async #compute(now: Date): Promise<SlaStatus> {
    const { targets } = this.deps;
    const totals = await windowTotals(this.deps.sql, now);
    return {
      generated_at: now,
      targets: {
        availability_percent: targets.SLA_AVAILABILITY_TARGET,
        error_rate_percent: targets.SLA_ERROR_RATE_TARGET,
        p95_ms: targets.SLA_P95_MS,
      },
      windows: SLA_WINDOWS.map((w) => windowStatus(w, totals[w], targets, now)),
    };
  }
}
