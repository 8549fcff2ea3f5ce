/**
 * A circuit breaker per agent, as a state machine with generations. CLOSED counts consecutive
 * failures and opens at the threshold; OPEN rejects every call until the cool-down has passed;
 * then HALF_OPEN lets one trial call through at a time: its success closes the breaker, its
 * failure opens it again. Time comes from the injected clock.
 *
 * Every admitted call gets a permit stamped with the current generation, and every transition
 * starts a new one. Only a permit of the current generation can move the breaker, so a call
 * admitted before the last transition cannot re-open, close or un-jam it later. A permit settles
 * once: `success()`, `failure()`, or `release()` for an outcome that says nothing about the
 * agent (a caller error), which frees the half-open trial slot without deciding anything.
 */
import type { Clock } from "../clock.ts";
import type { BreakerState } from "../observability/metrics.ts";

export interface BreakerOptions {
  failureThreshold: number;
  openMs: number;
  clock: Clock;
  /** Called at every transition (not at construction). */
  onStateChange?: (state: BreakerState) => void;
}

/** The right to make one call. Only the first of its methods called has an effect. */
export interface Permit {
  /** The generation the call was admitted in. */
  readonly generation: number;
  success(): void;
  failure(): void;
  /** Neither success nor failure: the call says nothing about the agent's health. */
  release(): void;
}

export type Admission =
  | { admitted: true; permit: Permit }
  | { admitted: false; retryAt: Date };

type Outcome = "success" | "failure" | "release";

export class CircuitBreaker {
  #state: BreakerState = "closed";
  #generation = 0;
  #failures = 0;
  #openedAt = 0;
  /** A half-open trial of the current generation is out. */
  #trialOut = false;

  constructor(private readonly options: BreakerOptions) {}

  get state(): BreakerState {
    return this.#state;
  }

  /** Starts at 0; one more at every transition. */
  get generation(): number {
    return this.#generation;
  }

  get consecutiveFailures(): number {
    return this.#failures;
  }

  /** When an open breaker will admit its next trial call. */
  get retryAt(): Date | undefined {
    return this.#state === "open" ? new Date(this.#openedAt + this.options.openMs) : undefined;
  }

  /** Asks to make a call now; an admitted call must settle its permit. */
  admit(): Admission {
    const now = this.options.clock.now().getTime();
    if (this.#state === "open") {
      const retryAt = this.#openedAt + this.options.openMs;
      if (now < retryAt) return { admitted: false, retryAt: new Date(retryAt) };
      this.#transition("half_open");
    }
    if (this.#state === "half_open") {
      if (this.#trialOut) return { admitted: false, retryAt: new Date(now) };
      this.#trialOut = true;
    }
    return { admitted: true, permit: this.#permit() };
  }

  #permit(): Permit {
    const generation = this.#generation;
    let settled = false;
    const settle = (outcome: Outcome) => () => {
      if (settled) return;
      settled = true;
      // A call admitted before the last transition says nothing about the current state.
      if (generation === this.#generation) this.#settle(outcome);
    };
    return {
      generation,
      success: settle("success"),
      failure: settle("failure"),
      release: settle("release"),
    };
  }

  #settle(outcome: Outcome): void {
    // A current permit is never of an OPEN generation: admit() leaves OPEN before it admits.
    if (outcome === "release") {
      this.#trialOut = false; // in HALF_OPEN, the slot is free for the next trial
    } else if (outcome === "success") {
      this.#failures = 0;
      if (this.#state === "half_open") this.#transition("closed");
    } else if (outcome === "failure") {
      this.#failures++;
      if (this.#state === "half_open" || this.#failures >= this.options.failureThreshold) {
        this.#openedAt = this.options.clock.now().getTime();
        this.#transition("open");
      }
    }
  }

  #transition(state: BreakerState): void {
    this.#state = state;
    this.#generation++;
    this.#trialOut = false; // any trial out belongs to the previous generation now
    this.options.onStateChange?.(state);
  }
}
