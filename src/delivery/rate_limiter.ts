/**
 * A client-side rate limit (one slot every 1/rate seconds, no bursts beyond one): callers await
 * their slot in arrival order. A caller says by when it must start: a slot later than that is not
 * taken (the send is left for the next batch instead of going out with no time left), and a
 * caller whose signal aborts stops waiting. Time and sleeping are injected so that tests need not
 * wait.
 */
export interface RateLimiterOptions {
  perSecond: number;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

export class RateLimiter {
  #next = 0;
  readonly #interval: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;

  constructor(options: RateLimiterOptions) {
    this.#interval = 1000 / options.perSecond;
    this.#now = options.now ?? (() => performance.now());
    this.#sleep = options.sleep ?? abortableSleep;
  }

  /**
   * Resolves true when the caller may go; false if its slot would come after `latestStart` (no
   * slot is taken) or its signal aborted while it waited. Slots are reserved at once, so callers
   * never collide.
   */
  async acquire(latestStart = Infinity, signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return false;
    const now = this.#now();
    const slot = Math.max(now, this.#next);
    if (slot > latestStart) return false;
    this.#next = slot + this.#interval;
    if (slot > now) await this.#sleep(slot - now, signal);
    return !signal?.aborted;
  }
}
