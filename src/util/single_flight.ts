/**
 * A small in-memory cache for public endpoints (the status page, /sla/status), so that they cannot be used
 * to load the database and never waits on it once warm: a value is computed at most once per
 * `ttlMs` per key, concurrent requests share one computation (single flight), and an expired
 * value is still answered while its successor is computed in the background (stale while
 * revalidate), so only the very first request of a key waits. Time comes from the injected clock.
 *
 * When a computation fails (the database away) the last good value stays the answer — a status
 * page is most needed during an outage, and its data says when it was computed — and the next
 * attempt waits another `ttlMs`. Without a value yet the failure is the answer, and the next
 * request tries again.
 */
import type { Clock } from "../clock.ts";

interface Entry<T> {
  /** The last good value, and when it was computed (or last tried again). */
  value?: T;
  settledAt?: number;
  /** The computation running, shared by every caller that waits for it. */
  running?: Promise<T>;
}

export class SingleFlightCache<T> {
  readonly #entries = new Map<string, Entry<T>>();

  constructor(readonly clock: Clock, readonly ttlMs: number) {}

  get size(): number {
    return this.#entries.size;
  }

  get(key: string, compute: () => Promise<T>): Promise<T> {
    const now = this.clock.now().getTime();
    const entry = this.#entries.get(key);
    if (!entry) {
      this.#sweep(now);
      const fresh: Entry<T> = {};
      this.#entries.set(key, fresh);
      return this.#compute(key, fresh, compute);
    }
    if (entry.settledAt === undefined) return entry.running!; // the first computation
    if (now - entry.settledAt >= this.ttlMs && !entry.running) {
      // Answered stale below; a failure keeps the old value, so nothing awaits this one.
      this.#compute(key, entry, compute).catch(() => {});
    }
    return Promise.resolve(entry.value as T);
  }

  #compute(key: string, entry: Entry<T>, compute: () => Promise<T>): Promise<T> {
    entry.running = Promise.resolve().then(compute).then(
      (value) => {
        entry.value = value;
        entry.settledAt = this.clock.now().getTime();
        entry.running = undefined;
        return value;
      },
      (error) => {
        entry.running = undefined;
        if (entry.settledAt === undefined) {
          if (this.#entries.get(key) === entry) this.#entries.delete(key);
          throw error;
        }
        entry.settledAt = this.clock.now().getTime(); // try again a period later
        return entry.value as T;
      },
    );
    return entry.running;
  }

  /** Drops entries unused for an hour past their period, so that keys seen once go. */
  #sweep(now: number) {
    for (const [key, e] of this.#entries) {
      if (e.settledAt !== undefined && now - e.settledAt >= this.ttlMs + 3_600_000) {
        this.#entries.delete(key);
      }
    }
  }
}
