/**
 * Evaluating an alert: run its condition (a pattern run, recorded like any other, or a capability
 * call), read the value at its path, compare it with the threshold. A match fires the alert in
 * one transaction — check the cooldown, de-duplicate by content, write the delivery intents and
 * claim the cooldown (only if something is sent: a suppressed firing does not extend it) — and
 * the intents are sent right after the commit.
 */
import { compare } from "../agents/builtin/data.ts";
import type { RemoteAgents } from "../agents/remote.ts";
import type { AgentRuntime } from "../agents/runtime.ts";
import type { Clock } from "../clock.ts";
import type { Sql } from "../db/database.ts";
import type { Dispatcher, DispatchStatus } from "../delivery/dispatcher.ts";
import { type DeliveryIntent, enqueue, type Enqueued } from "../delivery/outbox.ts";
import { type DeliverySchedule, dueAfter } from "../delivery/schedule.ts";
import type { Channel, DeliveryPayload } from "../delivery/types.ts";
import type { Logger } from "../observability/logger.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { PatternService } from "../patterns/service.ts";
import { getPath } from "../util/json.ts";
import type { Alert } from "./store.ts";

export interface DeliverySummary {
  id: string;
  channel: Channel;
  status: "pending" | "suppressed" | DispatchStatus;
  error?: string;
}

export interface Evaluation {
  value: unknown;
  matched: boolean;
  fired: boolean;
  suppressed_by?: "cooldown" | "content";
  deliveries: DeliverySummary[];
  error?: string;
}

/** A firing: what was decided and written, before anything is sent. */
export interface Firing {
  fired: boolean;
  suppressed_by?: "cooldown" | "content";
  deliveries: Enqueued["deliveries"];
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

function describe(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

const summary = (d: Enqueued["deliveries"][number]): DeliverySummary => ({
  id: d.id,
  channel: d.channel,
  status: d.status,
});

export class AlertEvaluator {
  constructor(private readonly deps: EvaluatorDeps) {}

  /** Evaluates now; on a match fires (unless a dry run) and sends at once. */
  async evaluate(alert: Alert, now: Date, options: { dryRun?: boolean } = {}): Promise<Evaluation> {
    const checked = await this.check(alert);
    if (!checked.matched || options.dryRun) return { ...checked, fired: false, deliveries: [] };
    const firing = await this.fire(alert, checked.value, now);
    const sent = await this.deps.dispatcher.deliver(
      firing.deliveries.filter((d) => d.status === "pending"),
    );
    const byId = new Map(sent.map((s) => [s.id, s]));
    return {
      ...checked,
      fired: firing.fired,
      ...(firing.suppressed_by ? { suppressed_by: firing.suppressed_by } : {}),
      deliveries: firing.deliveries.map((d) => byId.get(d.id) ?? summary(d)),
    };
  }

  /** Runs the condition: its value and whether it matches, or why it could not be evaluated. */
  async check(alert: Alert): Promise<{ value: unknown; matched: boolean; error?: string }> {
    try {
      const value = await this.#conditionValue(alert);
      const matched = compare(value, alert.condition.op, alert.condition.threshold);
      this.deps.metrics.alertEvaluations.inc({ result: matched ? "matched" : "not_matched" });
      return { value, matched };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.deps.metrics.alertEvaluations.inc({ result: "error" });
      this.deps.logger.warn("alert {alert_id} could not be evaluated: {error}", {
        alert_id: alert.id,
        error: message,
      });
      return { value: null, matched: false, error: message };
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
   * Fires a matched alert in one transaction: claims the cooldown, de-duplicates by content and
   * writes the delivery intents, leased to this process. Sending is the caller's next step.
   */
  async fire(alert: Alert, value: unknown, now: Date): Promise<Firing> {
    const c = alert.condition;
    const message = `${alert.name}: ${c.path || "value"} is ${describe(value)} (${c.op} ${
      describe(c.threshold)
    })`;
    const outcome = await this.deps.sql.begin(async (tx) => {
      // The row lock serializes concurrent firings of this alert (also for the content check
      // below); the cooldown is only checked here and claimed once something will be sent.
      const [alertRow] = await tx<{ email: string; cooled: boolean }[]>`
        select (select email from users where users.id = alerts.user_id) as email,
               (last_fired_at is null
                or last_fired_at <= ${now}::timestamptz - make_interval(secs => cooldown_seconds))
                 as cooled
        from alerts where id = ${alert.id}
        for update`;
      if (!alertRow?.cooled) return undefined;
      const payload: DeliveryPayload = {
        type: "alert.fired",
        source: "rule",
        title: `Alert: ${alert.name}`,
        message,
        alert: { id: alert.id, name: alert.name },
        value,
        condition: c,
        fired_at: now.toISOString(),
      };
      const channels: DeliveryIntent["channels"] = [];
      if (alert.channels.inapp) channels.push({ channel: "inapp" });
      if (alert.channels.email) {
        channels.push({ channel: "email", extra: { recipient: alertRow.email } });
      }
      if (alert.channels.webhook) {
        channels.push({ channel: "webhook", extra: { webhook_url: alert.channels.webhook.url } });
      }
      const enqueued = await enqueue(
        tx,
        {
          userId: alert.user_id,
          alertId: alert.id,
          channels,
          payload,
          dedupKey: { alert_id: alert.id, user_id: alert.user_id, condition: c, message },
        },
        now,
        {
          serialized: true,
          leaseUntil: dueAfter(this.deps.clock.now(), this.deps.schedule.leaseMs),
        },
      );
      if (!enqueued.suppressed) {
        await tx`update alerts set last_fired_at = ${now} where id = ${alert.id}`;
      }
      return enqueued;
    });

    if (!outcome) return { fired: false, suppressed_by: "cooldown", deliveries: [] };
    if (outcome.suppressed) {
      for (const d of outcome.deliveries) {
        this.deps.metrics.deliveries.inc({ channel: d.channel, status: "suppressed" });
      }
      return { fired: false, suppressed_by: "content", deliveries: outcome.deliveries };
    }
    this.deps.metrics.alertsFired.inc();
    return { fired: true, deliveries: outcome.deliveries };
  }
}
