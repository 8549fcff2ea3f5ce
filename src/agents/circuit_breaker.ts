/**
 * A circuit breaker per agent. CLOSED counts consecutive failures and opens at the threshold;
 * OPEN rejects every call until the cool-down has passed; then HALF_OPEN lets exactly one trial
 * call through: its success closes the breaker, its failure opens it again. Time comes from the
 * injected clock.
 */
import type { Clock } from "../clock.ts";
import type { BreakerState } from "../observability/metrics.ts";

export interface BreakerOptions {
  failureThreshold: number;
  openMs: number;
  clock: Clock;
  onStateChange?: (state: BreakerState) => void;
}

/** A permit to call: report the outcome with `success()` or `failure()`. */
export type Admission = { admitted: true } | { admitted: false; retryAt: Date };

export class CircuitBreaker {
  #state: BreakerState = "closed";
  #failures = 0;
  #openedAt = 0;
  #trialInFlight = false;

  constructor(private readonly options: BreakerOptions) {}

  get state(): BreakerState {
    return this.#state;
  }

  get consecutiveFailures(): number {
    return this.#failures;
  }

  /** When an open breaker will admit its next trial call. */
  get retryAt(): Date | undefined {
    return this.#state === "open" ? new Date(this.#openedAt + this.options.openMs) : undefined;
  }

  /** Asks to make a call now. */
  admit(): Admission {
    const now = this.options.clock.now().getTime();
    if (this.#state === "open") {
      if (now < this.#openedAt + this.options.openMs) {
        return { admitted: false, retryAt: new Date(this.#openedAt + this.options.openMs) };
      }
      this.#transition("half_open");
    }
    if (this.#state === "half_open") {
      if (this.#trialInFlight) return { admitted: false, retryAt: new Date(now) };
      this.#trialInFlight = true;
    }
    return { admitted: true };
  }

  success(): void {
    this.#failures = 0;
    this.#trialInFlight = false;
    if (this.#state !== "closed") this.#transition("closed");
  }

  failure(): void {
    this.#failures++;
    this.#trialInFlight = false;
    if (
      this.#state === "half_open" ||
      (this.#state === "closed" && this.#failures >= this.options.failureThreshold)
    ) {
      this.#openedAt = this.options.clock.now().getTime();
      this.#transition("open");
    }
  }

  #transition(state: BreakerState): void {
    this.#state = state;
    this.options.onStateChange?.(state);
  }
}
