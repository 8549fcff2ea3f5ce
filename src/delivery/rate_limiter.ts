/**
 * A client-side rate limit (one slot every 1/rate seconds, no bursts beyond one): callers await
 * their slot in arrival order. Time and sleeping are injected so that tests need not wait.
 */
export interface RateLimiterOptions {
  perSecond: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export class RateLimiter {
  #next = 0;
  readonly #interval: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(options: RateLimiterOptions) {
    this.#interval = 1000 / options.perSecond;
    this.#now = options.now ?? (() => performance.now());
    this.#sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** Resolves when the caller may go; reserves the slot at once, so callers never collide. */
  async acquire(): Promise<void> {
    const now = this.#now();
    const slot = Math.max(now, this.#next);
    this.#next = slot + this.#interval;
    if (slot > now) await this.#sleep(slot - now);
  }
}
