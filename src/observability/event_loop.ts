/**
 * Event-loop lag, measured the simple way that works under Deno (node:perf_hooks'
 * monitorEventLoopDelay is a stub there: it reports ~0 while the loop is blocked): a timer asks
 * to run every `intervalMs` and records how late it ran. A request that blocks the loop for
 * 300 ms shows up as one 0.3 s observation.
 */
import type { Metrics } from "./metrics.ts";

export class EventLoopLag {
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly metrics: Metrics, private readonly intervalMs = 100) {}

  start(): void {
    let expected = performance.now() + this.intervalMs;
    const tick = () => {
      const now = performance.now();
      this.metrics.eventLoopLag.observe(Math.max(0, now - expected) / 1000);
      expected = now + this.intervalMs;
      this.#timer = setTimeout(tick, this.intervalMs);
      Deno.unrefTimer(this.#timer); // never what keeps the process alive
    };
    this.#timer = setTimeout(tick, this.intervalMs);
    Deno.unrefTimer(this.#timer);
  }

  stop(): void {
    clearTimeout(this.#timer);
  }
}
