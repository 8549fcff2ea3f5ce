/**
 * How far this replica's clock is from the database's. Leases, due times and cooldowns are
 * written with each replica's own clock and compared by the others, so a replica whose clock is
 * minutes off would take over deliveries still in flight elsewhere. Measured at start-up and
 * every minute (the `clock.skew` job), exported as `vigil_clock_skew_seconds`; above 1 s it is
 * logged, above 30 s this replica refuses to claim work until its clock is fixed.
 */
import type { Clock } from "../clock.ts";
import type { Sql } from "../db/database.ts";
import type { Logger } from "../observability/logger.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { Job } from "./scheduler.ts";

export const WARN_SKEW_MS = 1000;
export const REFUSE_SKEW_MS = 30_000;

export class ClockSkew {
  #skewMs = 0;

  constructor(
    private readonly deps: { sql: Sql; clock: Clock; metrics: Metrics; logger: Logger },
  ) {}

  /**
   * Database time minus local time, in ms (positive: this clock is behind); the local time is
   * taken halfway through the round trip.
   */
  async measure(): Promise<number> {
    const before = this.deps.clock.now().getTime();
    const [row] = await this.deps.sql<{ ms: number }[]>`
      select (extract(epoch from clock_timestamp()) * 1000)::float8 as ms`;
    const after = this.deps.clock.now().getTime();
    const skew = row.ms - (before + after) / 2;
    const wasOff = Math.abs(this.#skewMs) > WARN_SKEW_MS;
    this.#skewMs = skew;
    this.deps.metrics.clockSkew.set(skew / 1000);
    if (Math.abs(skew) > WARN_SKEW_MS) {
      this.deps.logger.warn(
        Math.abs(skew) > REFUSE_SKEW_MS
          ? "this replica's clock is {seconds} s off the database's: it claims no work until fixed"
          : "this replica's clock is {seconds} s off the database's (leases compare clocks)",
        { seconds: Math.round(skew / 100) / 10 },
      );
    } else if (wasOff) {
      this.deps.logger.info("this replica's clock agrees with the database's again");
    }
    return skew;
  }

  /** Throws when the skew is too large for claims to be safe. */
  assertCanClaim(): void {
    if (Math.abs(this.#skewMs) > REFUSE_SKEW_MS) {
      throw new Error(
        `refusing to claim work: this replica's clock is ${
          Math.round(this.#skewMs / 1000)
        } s off the database's`,
      );
    }
  }
}

export function clockSkewJob(skew: ClockSkew): Job {
  return { name: "clock.skew", schedule: "* * * * *", run: () => skew.measure() };
}
