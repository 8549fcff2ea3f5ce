/**
 * Every time decision in vigil (cooldowns, backoff, breaker cool-downs, retention) reads the time
 * from an injected Clock, so tests move time instead of sleeping.
 */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
