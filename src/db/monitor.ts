/**
 * What /metrics says about the database, measured in the background so that a scrape never
 * waits on it: every few seconds a ping (with a timeout) sets `vigil_database_up` and
 * `vigil_database_ping_seconds`, and values read from the database (the DLQ counts) are
 * refreshed and kept in memory, stamped with `vigil_database_last_read_timestamp_seconds`. While the
 * database is away the scrape still answers at once: up is 0 and the last counts age.
 */
import type { Logger } from "../observability/logger.ts";
import { DLQ_STATES, type DlqState } from "../delivery/store.ts";
import type { Metrics } from "../observability/metrics.ts";
import { withinMs } from "../util/timeout.ts";
import type { Sql } from "./database.ts";

export interface DatabaseMonitorDeps {
  sql: Sql;
  metrics: Metrics;
  logger: Logger;
  /** How long a ping or a read may take before the database counts as down. */
  timeoutMs: number;
  dlqCounts: () => Promise<Record<DlqState, number>>;
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
    const started = performance.now();
    try {
      await withinMs(sql`select 1`, timeoutMs, "ping");
      metrics.databasePing.set((performance.now() - started) / 1000);
      const counts = await withinMs(this.deps.dlqCounts(), timeoutMs, "DLQ counts");
      for (const state of DLQ_STATES) metrics.dlqEntries.set({ state }, counts[state]);
      this.deps.metrics.databaseLastRead.set(Date.now() / 1000);
      this.#set(true);
    } catch (error) {
      this.#set(false, error);
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
