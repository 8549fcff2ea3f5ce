/**
 * A graceful stop for background work. On SIGTERM the process stops claiming new work
 * (`stopping`), waits for the work in flight (`track`) to finish and be recorded, and at the
 * deadline aborts `signal`: sends still running are cut off and left leased to nobody, so the
 * next process takes them over at once.
 */
export class Drain {
  #stopping = false;
  readonly #cut = new AbortController();
  readonly #running = new Set<Promise<unknown>>();

  /** True once a stop began: claim nothing new. */
  get stopping(): boolean {
    return this.#stopping;
  }

  /** Aborted when in-flight sends must end now. */
  get signal(): AbortSignal {
    return this.#cut.signal;
  }

  /** Work in flight, waited for by `stop`. */
  track<T>(work: Promise<T>): Promise<T> {
    this.#running.add(work);
    const forget = () => this.#running.delete(work);
    work.then(forget, forget);
    return work;
  }

  get inFlight(): number {
    return this.#running.size;
  }

  /**
   * Stops: waits up to `waitMs` for tracked work, then cuts the rest off and gives it up to
   * `recordMs` more to record what happened. Resolves true if everything ended.
   */
  async stop(waitMs: number, recordMs: number): Promise<boolean> {
    this.#stopping = true;
    if (await this.#settled(waitMs)) return true;
    this.#cut.abort(new DOMException("vigil is stopping", "AbortError"));
    return await this.#settled(recordMs);
  }

  async #settled(ms: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(resolve, ms, false)));
    const all = Promise.allSettled([...this.#running]).then(() => true);
    try {
      return await Promise.race([all, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
