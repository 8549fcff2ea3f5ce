/**
 * The alert lifecycle as a pure state machine: what one evaluation does to an alert's state, and
 * which notifications it owes. The evaluator stores the result in the same transaction that
 * writes the notifications (evaluator.ts); nothing here touches the database or the clock.
 *
 * States: `ok`, `pending` (matching, fewer than `failure` times in a row), `firing` (an episode is
 * open), `error` (`error` evaluations in a row could not be made). An evaluation error counts
 * neither way: the match and success runs stay where they were.
 *
 * An episode opens at `pending → firing` and closes at `firing → ok` (after `success` non-matching
 * evaluations in a row). Entering `error` does not close it: vigil does not know the condition
 * stopped holding.
 *
 * Notifications, per episode: `firing` once; `repeat` every `repeatMs` while firing, unless
 * acknowledged; `resolved` at the end if `notifyOnResolved` and the episode was notified at all —
 * so the firing and resolved messages a user receives always alternate. A silence suppresses
 * `firing`, `repeat` and `error` (recorded as suppressed); a notification it held back is owed,
 * and sent once at the first evaluation after the silence while still firing. A resolved message
 * is never silenced: it closes what the user was told. `error` is sent on entering the error
 * state, and again (a recovery) on leaving it if the first one went out.
 */

export const ALERT_STATES = ["ok", "pending", "firing", "error"] as const;
export type AlertState = (typeof ALERT_STATES)[number];

/** Every transition `step` can make (the metrics start each at zero). */
export const ALERT_TRANSITIONS: readonly [AlertState, AlertState][] = [
  ["ok", "pending"],
  ["ok", "firing"],
  ["ok", "error"],
  ["pending", "ok"],
  ["pending", "firing"],
  ["pending", "error"],
  ["firing", "ok"],
  ["firing", "error"],
  ["error", "ok"],
  ["error", "pending"],
  ["error", "firing"],
];

export const NOTIFICATION_KINDS = ["firing", "resolved", "repeat", "error"] as const;
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

export interface Thresholds {
  /** Matching evaluations in a row before firing. */
  failure: number;
  /** Non-matching evaluations in a row before resolving. */
  success: number;
  /** Failed evaluations in a row before the `error` state. */
  error: number;
  repeatMs: number;
  notifyOnResolved: boolean;
}

export interface Episode {
  id: string;
  startedAt: Date;
  acknowledged: boolean;
  /** A firing (or a repeat) of it went out. */
  notified: boolean;
}

export interface Lifecycle {
  state: AlertState;
  since: Date;
  failures: number;
  successes: number;
  errors: number;
  /** When the current run of matching evaluations began (what "firing since" tells). */
  failingSince: Date | null;
  episode: Episode | null;
  /** The last firing or repeat that went out in this episode. */
  lastNotifiedAt: Date | null;
  /** A firing or repeat was held back by a silence: one goes out once it is over. */
  owed: boolean;
  /** The error notification of the current error state went out. */
  errorNotified: boolean;
}

export type Observation =
  | { kind: "match"; value: unknown }
  | { kind: "no_match"; value: unknown }
  | { kind: "error"; error: string };

export interface Notice {
  kind: NotificationKind;
  /** Recorded, not sent. */
  silenced: boolean;
  /** An `error` notice on leaving the error state. */
  recovery?: boolean;
}

export interface Transition {
  from: AlertState;
  to: AlertState;
}

export interface Step {
  next: Lifecycle;
  transitions: Transition[];
  notices: Notice[];
  /** The episode this evaluation opened, or closed. */
  opened?: Episode;
  closed?: Episode;
}

export function initialLifecycle(now: Date): Lifecycle {
  return {
    state: "ok",
    since: now,
    failures: 0,
    successes: 0,
    errors: 0,
    failingSince: null,
    episode: null,
    lastNotifiedAt: null,
    owed: false,
    errorNotified: false,
  };
}

export interface StepContext {
  now: Date;
  /** A silence matches the alert now. */
  silenced: boolean;
  /** The id of an episode this step opens. */
  newEpisodeId: () => string;
}

/** What one evaluation does to an alert. */
export function step(
  current: Lifecycle,
  observation: Observation,
  t: Thresholds,
  ctx: StepContext,
): Step {
  const { now, silenced } = ctx;
  const next: Lifecycle = {
    ...current,
    episode: current.episode ? { ...current.episode } : null,
  };
  const transitions: Transition[] = [];
  const notices: Notice[] = [];
  const result: Step = { next, transitions, notices };
  const moveTo = (to: AlertState) => {
    if (next.state === to) return;
    transitions.push({ from: next.state, to });
    next.state = to;
    next.since = now;
  };

  if (observation.kind === "error") {
    next.errors++;
    if (next.state !== "error" && next.errors >= t.error) {
      moveTo("error");
      next.errorNotified = !silenced;
      notices.push({ kind: "error", silenced });
    }
    return result;
  }

  // The condition could be evaluated: leave the error state, telling whoever heard of it.
  next.errors = 0;
  if (next.state === "error") {
    if (next.errorNotified) notices.push({ kind: "error", silenced: false, recovery: true });
    next.errorNotified = false;
  }
  const base: AlertState = next.state !== "error"
    ? next.state
    : next.episode
    ? "firing"
    : next.failures > 0
    ? "pending"
    : "ok";

  if (observation.kind === "match") {
    next.failures++;
    next.successes = 0;
    next.failingSince ??= now;
    if (base === "firing") {
      moveTo("firing");
      remind(next, t, ctx, notices);
    } else if (next.failures >= t.failure) {
      const episode: Episode = {
        id: ctx.newEpisodeId(),
        startedAt: now,
        acknowledged: false,
        notified: false,
      };
      next.episode = episode;
      next.lastNotifiedAt = null;
      next.owed = false;
      moveTo("firing");
      notify(next, "firing", ctx, notices);
      result.opened = episode;
    } else {
      moveTo("pending");
    }
    return result;
  }

  next.successes++;
  next.failures = 0;
  next.failingSince = null;
  if (base === "firing" && next.successes < t.success) {
    moveTo("firing");
    remind(next, t, ctx, notices);
    return result;
  }
  if (base === "firing") {
    const episode = next.episode!;
    if (episode.notified && t.notifyOnResolved) {
      notices.push({ kind: "resolved", silenced: false });
    }
    result.closed = episode;
    next.episode = null;
    next.lastNotifiedAt = null;
    next.owed = false;
  }
  moveTo("ok");
  return result;
}

/** A firing or repeat: sent, or held back (and owed) while silenced. */
function notify(
  next: Lifecycle,
  kind: "firing" | "repeat",
  { now, silenced }: StepContext,
  notices: Notice[],
): void {
  notices.push({ kind, silenced });
  if (silenced) {
    next.owed = true;
    return;
  }
  next.episode!.notified = true;
  next.lastNotifiedAt = now;
  next.owed = false;
}

/** While an episode goes on: what a silence held back, or a repeat when one is due. */
function remind(next: Lifecycle, t: Thresholds, ctx: StepContext, notices: Notice[]): void {
  const episode = next.episode!;
  if (episode.acknowledged) return;
  const kind = episode.notified ? "repeat" : "firing";
  if (next.owed) {
    // Held back once already: recorded then, sent once the silence is over.
    if (!ctx.silenced) notify(next, kind, ctx, notices);
    return;
  }
  const due = next.lastNotifiedAt !== null &&
    ctx.now.getTime() - next.lastNotifiedAt.getTime() >= t.repeatMs;
  if (due) notify(next, kind, ctx, notices);
}
