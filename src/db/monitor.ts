/**
 * What /metrics says about the database, measured in the background so that a scrape never
 * waits on it: every few seconds a ping (with a timeout) sets `vigil_database_up` and
 * `vigil_database_ping_seconds`, and values read from the database (the DLQ counts) are
 * refreshed and kept in memory, stamped with `vigil_database_last_read_timestamp_seconds`. While the
 * database is away the scrape still answers at once: up is 0 and the last counts age.
 *
 * Every replica reads them every 5 s, so each read must cost the same however long the queue
 * is: the DLQ counts come from the deltas its triggers keep (migration 013, `dlqCounts`), not
 * from counting the queue (a sequential scan: ~80 ms of a database core at 300,000 rows).
 */
import type { Logger } from "../observability/logger.ts";
import { DLQ_STATES, type DlqState } from "../delivery/store.ts";
import type { Metrics } from "../observability/metrics.ts";
import { withinMs } from "../util/timeout.ts";
import type { Sql } from "./database.ts";
import type { PoolStats } from "./pool_stats.ts";
import type { PublicCheck } from "../uptime/store.ts";

export interface DatabaseMonitorDeps {
  sql: Sql;
  metrics: Metrics;
  logger: Logger;
  /** How long a ping or a read may take before the database counts as down. */
  timeoutMs: number;
  dlqCounts: () => Promise<Record<DlqState, number>>;
  /** Alerts by lifecycle state (alerts_by_state). */
  alertStates?: () => Promise<Record<string, number>>;
  pool?: PoolStats;
  poolMax: number;
  /** Public alerts' state and uptime (check_up, check_uptime_ratio). */
  publicChecks?: () => Promise<PublicCheck[]>;
}

/**
 * This replica's connections by state, as PostgreSQL sees them: those with our application_name
 * (unique per replica, database.ts). The monitor's own connection counts as idle: it is busy only
 * because it is asking.
 */
async function connectionStates(sql: Sql): Promise<{ in_use: number; idle: number }> {
  const [row] = await sql<{ in_use: number; idle: number }[]>`
    select
      count(*) filter (where state <> 'idle' and pid <> pg_backend_pid())::int as in_use,
      count(*) filter (where state = 'idle' or pid = pg_backend_pid())::int as idle
    from pg_stat_activity
    where application_name = current_setting('application_name')`;
  return row;
}

export class DatabaseMonitor {
  #up: boolean | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #running: Promise<void> | undefined;

  constructor(private readonly deps: DatabaseMonitorDeps) {}

  /** One measurement; concurrent callers share it. Never throws. */
  refresh(): Promise<void> {
    return this.#running ??= this.#measure().finally(() => (this.#running = undefined));
  }

  async #measure(): Promise<void> {
    const { sql, metrics, timeoutMs } = this.deps;
    if (this.deps.pool) metrics.databaseTransactionsWaiting.set(this.deps.pool.waiting());
    metrics.databasePoolMax.set(this.deps.poolMax);
    const started = performance.now();
    try {
      await withinMs(sql`select 1`, timeoutMs, "ping");
      metrics.databasePing.set((performance.now() - started) / 1000);
      const counts = await withinMs(this.deps.dlqCounts(), timeoutMs, "DLQ counts");
      for (const state of DLQ_STATES) metrics.dlqEntries.set({ state }, counts[state]);
      if (this.deps.alertStates) {
        const states = await withinMs(this.deps.alertStates(), timeoutMs, "alert states");
        for (const [state, n] of Object.entries(states)) metrics.alertsByState.set({ state }, n);
      }
      if (this.deps.publicChecks) {
        const checks = await withinMs(this.deps.publicChecks(), timeoutMs, "public checks");
        // Reset and set in one turn: a scrape sees the old or the new set, and a deleted (or no
        // longer public) alert's series goes.
        metrics.checkUp.reset();
        metrics.checkUptime.reset();
        for (const c of checks) {
          const labels = { alert_id: c.id, name: c.name, group: c.group };
          metrics.checkUp.set(labels, c.state === "firing" ? 0 : 1);
          if (c.uptime_24h !== null) {
            metrics.checkUptime.set({ ...labels, window: "24h" }, c.uptime_24h);
          }
          if (c.uptime_30d !== null) {
            metrics.checkUptime.set({ ...labels, window: "30d" }, c.uptime_30d);
          }
        }
      }
      this.deps.metrics.databaseLastRead.set(Date.now() / 1000);
      this.#set(true);
      await this.#connections();
    } catch (error) {
      this.#set(false, error);
    }
  }

  async #connections(): Promise<void> {
    try {
      const states = await withinMs(connectionStates(this.deps.sql), this.deps.timeoutMs, "pool");
      for (const [state, n] of Object.entries(states)) {
        this.deps.metrics.databaseConnections.set({ state }, n);
      }
    } catch {
      // The embedded database has no pg_stat_activity worth reading; the ping said it is up.
    }
  }

  #set(up: boolean, error?: unknown): void {
    this.deps.metrics.databaseUp.set(up ? 1 : 0);
    if (this.#up !== up) {
      if (up) this.deps.logger.info("the database answers");
      else {
        this.deps.logger.error("the database does not answer: {error}", {
          error: error instanceof Error ? error.message : String(error),
        });
      }
    }
    this.#up = up;
  }

  /** Measures now and every `intervalMs` until stopped. */
  start(intervalMs = 5000): void {
    void this.refresh();
    this.#timer = setInterval(() => void this.refresh(), intervalMs);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
