/**
 * Evaluating an alert: run its condition (a pattern run, recorded like any other, or a capability
 * call), read the value at its path, compare it with the threshold — then apply the observation
 * to the alert's lifecycle (lifecycle.ts) in one transaction under the alert's row lock: the new
 * state and counters, the episode opened or closed, one event per transition, and the
 * notifications it owes written to the outbox (or recorded as silenced). Replicas evaluating the
 * same alert take turns on the lock, and the database allows one open episode per alert. The
 * notifications are sent right after the commit.
 *
 * The user's notification policy (src/policies/) is read in that transaction: it gives the
 * channels and the repeat interval unless the alert sets its own, and a notification decided
 * outside its severity's time window is written due at the window's next opening (the sweep
 * sends it then). A repeat falling due while one of its episode still waits is folded into it.
 */
import { compare } from "../agents/builtin/data.ts";
import type { RemoteAgents } from "../agents/remote.ts";
import type { AgentRuntime } from "../agents/runtime.ts";
import type { Clock } from "../clock.ts";
import type { Sql, TransactionSql } from "../db/database.ts";
import type { Dispatcher, DispatchStatus } from "../delivery/dispatcher.ts";
import { enqueue, type Enqueued } from "../delivery/outbox.ts";
import { type DeliverySchedule, dueAfter } from "../delivery/schedule.ts";
import type { Channel, DeliveryPayload } from "../delivery/types.ts";
import type { Logger } from "../observability/logger.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { PatternService } from "../patterns/service.ts";
import { formatDuration } from "../util/duration.ts";
import { getPath } from "../util/json.ts";
import type { Policy } from "../policies/schema.ts";
import { deferredUntil, policyChannels, repeatIntervalSeconds } from "../policies/routing.ts";
import { policyFrom } from "../policies/store.ts";
import { activeSilences } from "../silences/store.ts";
import { matchingSilence } from "../silences/matchers.ts";
import { deliveryChannels } from "./channels.ts";
import {
  type AlertState,
  type Lifecycle,
  type Notice,
  type NotificationKind,
  type Observation,
  type Step,
  step,
  type Thresholds,
  type Transition,
} from "./lifecycle.ts";
import type { Alert, EpisodeRow } from "./store.ts";
import { type CheckResult, recordChecks } from "../uptime/store.ts";
import { GroupWriter } from "../db/group_writer.ts";

export interface DeliverySummary {
  id: string;
  channel: Channel;
  status: "pending" | "suppressed" | DispatchStatus;
  error?: string;
}

export type SuppressedBy =
  | "pending"
  | "repeat_interval"
  | "acknowledged"
  | "silence"
  | "content"
  /** A repeat folded into the one of its episode still waiting for the time window. */
  | "window";

export interface Evaluation {
  value: unknown;
  matched: boolean;
  /** How long the check took. */
  duration_ms: number;
  /** The alert's state after this evaluation (unchanged by a dry run). */
  state: AlertState;
  transitions: Transition[];
  /** Notifications written now, by kind (sent, or recorded as silenced). */
  notifications: { kind: NotificationKind; silenced: boolean }[];
  /** A firing or repeat notification went out. */
  fired: boolean;
  /** Why a match notified nobody now. */
  suppressed_by?: SuppressedBy;
  /** Outside the severity's time window: the notifications written are due then. */
  deferred_until?: Date;
  episode_id: string | null;
  deliveries: DeliverySummary[];
  error?: string;
}

/** What applying one observation decided and wrote, before anything is sent. */
export interface Applied {
  step: Step;
  fired: boolean;
  suppressed_by?: SuppressedBy;
  /** The notifications written wait for the severity's time window until then. */
  deferred_until?: Date;
  deliveries: Enqueued["deliveries"];
}

/** The row apply() reads under the lock. */
type LockedRow = Omit<Alert, "episode"> & { email: string; user_policy: unknown };

export interface Checked {
  value: unknown;
  matched: boolean;
  error?: string;
  duration_ms: number;
}

/** An evaluation as a check result of its alert's uptime history. */
export function checkResultOf(alert: Alert, checked: Checked, at: Date): CheckResult {
  return {
    alert_id: alert.id,
    at,
    ok: checked.error === undefined && !checked.matched,
    value: typeof checked.value === "number" ? checked.value : null,
    duration_ms: checked.duration_ms,
    error: checked.error ?? null,
  };
}

export interface EvaluatorDeps {
  sql: Sql;
  clock: Clock;
  metrics: Metrics;
  logger: Logger;
  patterns: PatternService;
  runtime: AgentRuntime;
  remote: RemoteAgents;
  dispatcher: Dispatcher;
  schedule: DeliverySchedule;
}

const summary = (d: Enqueued["deliveries"][number]): DeliverySummary => ({
  id: d.id,
  channel: d.channel,
  status: d.status,
});

export class AlertEvaluator {
  /**
   * Check results go through a group writer: the job's batches and concurrent evaluate-now
   * calls share statements (each record here is one caller's results).
   */
  readonly #checks: GroupWriter<CheckResult[]>;

  constructor(private readonly deps: EvaluatorDeps) {
    this.#checks = new GroupWriter({
      writeBatch: (batches) => recordChecks(deps.sql, batches.flat()),
      maxBatch: 20,
      concurrency: 2,
    });
  }

  /** Evaluates now and applies the result (unless a dry run); sends what it owes at once. */
  async evaluate(alert: Alert, now: Date, options: { dryRun?: boolean } = {}): Promise<Evaluation> {
    const checked = await this.check(alert);
    if (options.dryRun) {
      return {
        ...checked,
        state: alert.state,
        transitions: [],
        notifications: [],
        fired: false,
        episode_id: alert.episode_id,
        deliveries: [],
      };
    }
    const applied = await this.apply(alert, checked, now);
    // The check result is written beside the sends, not before them (record never throws).
    const [sent] = await Promise.all([
      this.deps.dispatcher.deliver(
        applied.deliveries.filter((d) => d.status === "pending" && !d.not_before),
      ),
      this.record([checkResultOf(alert, checked, now)]),
    ]);
    const byId = new Map(sent.map((s) => [s.id, s]));
    return {
      ...checked,
      state: applied.step.next.state,
      transitions: applied.step.transitions,
      notifications: applied.step.notices.map(({ kind, silenced }) => ({ kind, silenced })),
      fired: applied.fired,
      ...(applied.suppressed_by ? { suppressed_by: applied.suppressed_by } : {}),
      ...(applied.deferred_until ? { deferred_until: applied.deferred_until } : {}),
      episode_id: applied.step.next.episode?.id ?? applied.step.closed?.id ?? null,
      deliveries: applied.deliveries.map((d) => byId.get(d.id) ?? summary(d)),
    };
  }

  /**
   * Runs the condition: its value and whether it matches, or why it could not be evaluated, and
   * how long that took (the check's latency in its uptime history).
   */
  async check(alert: Alert): Promise<Checked> {
    const started = performance.now();
    const took = () => Math.round((performance.now() - started) * 100) / 100;
    try {
      const value = await this.#conditionValue(alert);
      const matched = compare(value, alert.condition.op, alert.condition.threshold);
      this.deps.metrics.alertEvaluations.inc({ result: matched ? "matched" : "not_matched" });
      return { value, matched, duration_ms: took() };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.deps.metrics.alertEvaluations.inc({ result: "error" });
      this.deps.logger.warn("alert {alert_id} could not be evaluated: {error}", {
        alert_id: alert.id,
        error: message,
      });
      return { value: null, matched: false, error: message, duration_ms: took() };
    }
  }

  /**
   * Writes check results to the uptime history. Never throws: a result that cannot be written
   * (the database away) is a gap in the history, logged and counted
   * (check_result_write_failures_total), never a reason to fail the evaluation it records.
   */
  async record(results: CheckResult[]): Promise<void> {
    if (results.length === 0) return;
    try {
      await this.#checks.write(results);
    } catch (error) {
      this.deps.metrics.checkResultWriteFailures.inc(results.length);
      this.deps.logger.error("{count} check results could not be written: {error}", {
        count: results.length,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  /** The value the condition's path points at; throws when it cannot be obtained. */
  async #conditionValue(alert: Alert): Promise<unknown> {
    const c = alert.condition;
    let result: unknown;
    if (c.pattern_id !== undefined) {
      const run = await this.deps.patterns.run(c.pattern_id, c.inputs ?? {}, {
        userId: alert.user_id,
      });
      if (run.status === "error") throw new Error(`pattern ${c.pattern_id} failed: ${run.error}`);
      result = run.outputs;
    } else {
      await this.deps.remote.refresh(); // the capability may be a remote agent's
      result = (await this.deps.runtime.invoke(c.capability!, c.args ?? {})).value;
    }
    const { found, value } = getPath(result, c.path);
    if (!found) throw new Error(`the result has nothing at path "${c.path}"`);
    return value;
  }

  /**
   * Applies an evaluation's outcome to the alert in one transaction: locks the alert row (its
   * state is read again under the lock: another replica or request may have moved it), steps
   * the lifecycle, stores it, and writes the notifications to the outbox, leased to this process.
   * Sending is the caller's next step. A no-op (ok, and still not matching) writes nothing.
   */
  async apply(
    alert: Alert,
    checked: Pick<Checked, "value" | "matched" | "error">,
    now: Date,
  ): Promise<Applied> {
    const observation: Observation = checked.error !== undefined
      ? { kind: "error", error: checked.error }
      : checked.matched
      ? { kind: "match", value: checked.value }
      : { kind: "no_match", value: checked.value };
    if (
      observation.kind === "no_match" && alert.state === "ok" && alert.consecutive_failures === 0 &&
      alert.consecutive_errors === 0
    ) {
      // Nothing changes but a success count that only matters while firing.
      return {
        step: step(lifecycleOf(alert), observation, thresholdsOf(alert), quiet(now)),
        fired: false,
        deliveries: [],
      };
    }

    const applied = await this.deps.sql.begin(async (tx) => {
      // The row lock, with its user's address and policy; then the open episode and the user's
      // active silences, each by a statement of its own: a join would see the snapshot from before
      // the wait for the lock (an episode another replica opened meanwhile would be missing). The
      // three are pipelined (one round trip): the server runs them in order, the reads after the
      // lock is held, each with a snapshot of its own.
      const [[row], [episode], silences] = await Promise.all([
        tx<LockedRow[]>`
          select a.*, u.email, p.policy as user_policy
          from alerts a
          join users u on u.id = a.user_id
          left join notification_policies p on p.user_id = a.user_id
          where a.id = ${alert.id}
          for update of a`,
        tx<EpisodeRow[]>`
          select id, started_at, notified, acknowledged_at, acknowledged_by, ack_note
          from alert_episodes
          where id = (select episode_id from alerts where id = ${alert.id})`,
        activeSilences(tx, alert.user_id, now),
      ]);
      if (!row) return undefined; // deleted meanwhile
      const { user_policy, ...alertRow } = row;
      const current: Alert = { ...alertRow, episode: episode ?? null };
      const silenced = matchingSilence(silences, current) !== undefined;
      const policy = policyFrom(user_policy);
      const result = step(lifecycleOf(current), observation, thresholdsOf(current, policy), {
        now,
        silenced,
        newEpisodeId: () => crypto.randomUUID(),
      });
      // Outside the severity's window the notifications are due at its next opening, and the
      // repeat interval counts from then: no repeat falls due while they wait.
      const notBefore = result.notices.length > 0
        ? deferredUntil(policy, current.severity, now)
        : null;
      if (notBefore && result.next.lastNotifiedAt?.getTime() === now.getTime()) {
        result.next.lastNotifiedAt = notBefore;
      }
      // Sent at once; the outbox's statements below are pipelined behind it.
      const stored = store(tx, current, result, observation, now);
      stored.catch(() => {}); // awaited below: its error, not the aborted statements after it

      const deliveries: Enqueued["deliveries"] = [];
      let contentSuppressed = false;
      let folded = false;
      const channels = policyChannels(current, deliveryChannels(current, row.email), policy);
      try {
        for (const notice of result.notices) {
          const payload = notificationPayload(current, result, notice, observation, now);
          if (
            notBefore && !notice.silenced && notice.kind === "repeat" &&
            await waitingForWindow(tx, current.id, payload.episode?.id ?? null, now)
          ) {
            // Not stacked (a replica's clock behind, a changed policy): the waiting one goes out.
            folded = true;
            continue;
          }
          const enqueued = await enqueue(
            tx,
            {
              userId: current.user_id,
              alertId: current.id,
              channels,
              payload,
              dedupKey: {
                alert_id: current.id,
                episode_id: payload.episode?.id ?? null,
                kind: notice.kind,
                message: payload.message,
              },
            },
            now,
            {
              serialized: true,
              leaseUntil: dueAfter(this.deps.clock.now(), this.deps.schedule.leaseMs),
              silenced: notice.silenced,
              notBefore,
            },
          );
          if (enqueued.suppressed && !notice.silenced) contentSuppressed = true;
          deliveries.push(...enqueued.deliveries);
        }
      } catch (error) {
        await stored;
        throw error;
      }
      await stored;
      const deferred = deliveries.some((d) => d.not_before) ? notBefore ?? undefined : undefined;
      return { result, deliveries, contentSuppressed, folded, silenced, deferred };
    });
    if (!applied) {
      return {
        step: step(lifecycleOf(alert), observation, thresholdsOf(alert), quiet(now)),
        fired: false,
        deliveries: [],
      };
    }

    const { result, deliveries } = applied;
    const { metrics } = this.deps;
    for (const t of result.transitions) metrics.alertTransitions.inc({ from: t.from, to: t.to });
    for (const n of result.notices) {
      if (n.silenced) metrics.silencedNotifications.inc();
      else metrics.alertNotifications.inc({ kind: n.kind });
    }
    for (const d of deliveries.filter((d) => d.status === "suppressed")) {
      metrics.deliveries.inc({ channel: d.channel, status: "suppressed" });
    }
    const sent = result.notices.filter((n) =>
      !n.silenced && (n.kind === "firing" || n.kind === "repeat")
    );
    const fired = sent.length > 0 && !applied.contentSuppressed && !applied.folded;
    if (fired) metrics.alertsFired.inc();
    return {
      step: result,
      fired,
      suppressed_by: observation.kind === "match" && !fired
        ? applied.folded ? "window" : whyNot(result, applied.silenced, applied.contentSuppressed)
        : undefined,
      ...(applied.deferred ? { deferred_until: applied.deferred } : {}),
      deliveries,
    };
  }
}

const quiet = (now: Date) => ({ now, silenced: false, newEpisodeId: () => crypto.randomUUID() });

/** Why a match sent nothing now. */
function whyNot(result: Step, silenced: boolean, content: boolean): SuppressedBy {
  if (content) return "content";
  if (result.next.state === "pending") return "pending";
  if (silenced && result.notices.some((n) => n.silenced)) return "silence";
  if (result.next.episode?.acknowledged) return "acknowledged";
  return silenced ? "silence" : "repeat_interval";
}

/** A firing or repeat of this episode, written outside the time window, not due yet. */
async function waitingForWindow(
  tx: TransactionSql,
  alertId: string,
  episodeId: string | null,
  now: Date,
): Promise<boolean> {
  if (episodeId === null) return false;
  const [row] = await tx<{ waiting: boolean }[]>`
    select exists (
      select 1 from alert_deliveries
      where alert_id = ${alertId} and status = 'pending' and not_before > ${now}
        and payload ->> 'kind' in ('firing', 'repeat')
        and payload -> 'episode' ->> 'id' = ${episodeId}
    ) as waiting`;
  return row.waiting;
}

/** The lifecycle's thresholds; the repeat interval is the policy's unless the alert sets one. */
export function thresholdsOf(alert: Alert, policy?: Policy): Thresholds {
  const repeatSeconds = policy
    ? repeatIntervalSeconds(alert, policy)
    : alert.repeat_interval_seconds;
  return {
    failure: alert.failure_threshold,
    success: alert.success_threshold,
    error: alert.error_threshold,
    // 0: no repeats.
    repeatMs: repeatSeconds > 0 ? repeatSeconds * 1000 : Number.POSITIVE_INFINITY,
    notifyOnResolved: alert.notify_on_resolved,
  };
}

export function lifecycleOf(alert: Alert): Lifecycle {
  return {
    state: alert.state,
    since: alert.state_since,
    failures: alert.consecutive_failures,
    successes: alert.consecutive_successes,
    errors: alert.consecutive_errors,
    failingSince: alert.failing_since,
    episode: alert.episode
      ? {
        id: alert.episode.id,
        startedAt: alert.episode.started_at,
        acknowledged: alert.episode.acknowledged_at !== null,
        notified: alert.episode.notified,
      }
      : null,
    lastNotifiedAt: alert.episode ? alert.last_fired_at : null,
    owed: alert.owed_notification,
    errorNotified: alert.error_notified,
  };
}

/**
 * Writes what a step decided in one statement: the alert's lifecycle columns, the episode it
 * opened, notified or closed, and one event per transition. (The new episode's row is there for
 * the foreign keys: they are checked at the end of the statement.)
 */
async function store(
  tx: TransactionSql,
  alert: Alert,
  result: Step,
  observation: Observation,
  now: Date,
): Promise<void> {
  const { next, opened, closed } = result;
  const episodeId = next.episode?.id ?? closed?.id ?? null;
  const notified = next.episode?.notified ?? closed?.notified ?? false;
  const touchEpisode = !opened && episodeId !== null &&
    (closed !== undefined || notified !== (alert.episode?.notified ?? false));
  const transitions = result.transitions.map((t) => ({ from_state: t.from, to_state: t.to }));
  const value = observation.kind === "error" ? null : observation.value;
  const error = observation.kind === "error" ? observation.error : null;
  await tx`
    with opened as (
      insert into alert_episodes (id, alert_id, user_id, started_at, notified)
      select ${opened?.id ?? null}::uuid, ${alert.id}, ${alert.user_id},
             ${opened?.startedAt ?? null}::timestamptz, ${notified}
      where ${opened !== undefined}
      returning id
    ), touched as (
      update alert_episodes
      set notified = ${notified},
          ended_at = case when ${closed !== undefined} then ${now}::timestamptz else ended_at end
      where id = ${episodeId}::uuid and ${touchEpisode}
      returning id
    ), events as (
      insert into alert_events (alert_id, episode_id, from_state, to_state, value, error, at)
      select ${alert.id}, ${episodeId}::uuid, t.from_state, t.to_state,
             ${tx.json(value as never)}::jsonb, ${error}, ${now}
      from jsonb_to_recordset(${tx.json(transitions as never)}) as t(from_state text, to_state text)
      returning id
    )
    update alerts set
      state = ${next.state}, state_since = ${next.since},
      consecutive_failures = ${next.failures}, consecutive_successes = ${next.successes},
      consecutive_errors = ${next.errors}, failing_since = ${next.failingSince},
      owed_notification = ${next.owed}, error_notified = ${next.errorNotified},
      episode_id = ${next.episode?.id ?? null},
      last_fired_at = ${next.lastNotifiedAt ?? alert.last_fired_at}
    where id = ${alert.id}`;
}

function describe(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** The message one notice sends. */
function notificationPayload(
  alert: Alert,
  result: Step,
  notice: Notice,
  observation: Observation,
  now: Date,
): DeliveryPayload {
  const c = alert.condition;
  const episode = result.next.episode ?? result.closed ?? null;
  const what = `${c.path || "value"}`;
  const reading = observation.kind === "error"
    ? ""
    : `${what} is ${describe(observation.value)} (${c.op} ${describe(c.threshold)})`;
  const started = episode?.startedAt;
  const since = result.next.failingSince ?? started;
  const base = {
    source: "rule" as const,
    kind: notice.kind,
    alert: { id: alert.id, name: alert.name },
    severity: alert.severity,
    labels: alert.labels,
    condition: c,
    fired_at: now.toISOString(),
    ...(observation.kind === "error" ? {} : { value: observation.value }),
  };
  const episodeInfo = episode && started
    ? {
      episode: {
        id: episode.id,
        started_at: started.toISOString(),
        ...(notice.kind === "resolved"
          ? {
            ended_at: now.toISOString(),
            duration_seconds: Math.round((now.getTime() - started.getTime()) / 1000),
          }
          : {}),
      },
    }
    : {};
  switch (notice.kind) {
    case "firing":
      return {
        ...base,
        ...episodeInfo,
        type: "alert.fired",
        title: `Firing: ${alert.name}`,
        message: `${alert.name}: ${reading}; failing since ${since?.toISOString()}` +
          (since && now.getTime() - since.getTime() >= 60_000
            ? ` (${formatDuration(now.getTime() - since.getTime())})`
            : ""),
      };
    case "repeat":
      return {
        ...base,
        ...episodeInfo,
        type: "alert.repeat",
        title: `Still firing: ${alert.name}`,
        message: `${alert.name}: ${reading}; firing since ${started?.toISOString()} (${
          formatDuration(now.getTime() - (started?.getTime() ?? now.getTime()))
        })`,
      };
    case "resolved":
      return {
        ...base,
        ...episodeInfo,
        type: "alert.resolved",
        title: `Resolved: ${alert.name}`,
        message:
          `${alert.name} is back to normal: ${reading}. Started ${started?.toISOString()}, ` +
          `ended ${now.toISOString()}, lasted ${
            formatDuration(now.getTime() - (started?.getTime() ?? now.getTime()))
          }.`,
      };
    case "error":
      return notice.recovery
        ? {
          ...base,
          ...episodeInfo,
          type: "alert.error",
          recovery: true,
          title: `Evaluating again: ${alert.name}`,
          message: `${alert.name} can be evaluated again: ${reading}.`,
        }
        : {
          ...base,
          ...episodeInfo,
          type: "alert.error",
          title: `Cannot evaluate: ${alert.name}`,
          message: `${alert.name} cannot be evaluated since ${result.next.since.toISOString()}: ${
            observation.kind === "error" ? observation.error : ""
          }`,
        };
  }
}
