/**
 * `POST /v1/alertmanager/webhook`: Prometheus Alertmanager's webhook receiver. Each alert
 * (firing or resolved) becomes deliveries to the users listed in ALERTMANAGER_RECIPIENTS, each in
 * an episode (opened by firing, closed by resolved, keyed by fingerprint) —
 * in-app and email for `severity=critical`, in-app otherwise — through the same outbox and DLQ
 * as alert rules, de-duplicated on fingerprint + status + startsAt. Authenticated by the shared
 * ALERTMANAGER_WEBHOOK_TOKEN, not by an API key. Its body limit is ALERTMANAGER_MAX_BODY_BYTES,
 * not the API's 1 MiB: Alertmanager drops a group answered 413.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import type { Clock } from "../clock.ts";
import type { Config } from "../config.ts";
import type { Sql, TransactionSql } from "../db/database.ts";
import type { Dispatcher } from "../delivery/dispatcher.ts";
import { contentHash, type DeliveryIntent, enqueue, type Enqueued } from "../delivery/outbox.ts";
import { type DeliverySchedule, dueAfter } from "../delivery/schedule.ts";
import { bearerToken } from "../http/bearer.ts";
import { limitBody } from "../http/body_limit.ts";
import type { AppEnv } from "../http/env.ts";
import { guardInputs } from "../http/json_guard.ts";
import { createRouter, json, jsonBody, problems } from "../http/openapi.ts";
import { Problem } from "../http/problem.ts";
import type { Logger } from "../observability/logger.ts";
import type { Metrics } from "../observability/metrics.ts";
import { sameHash } from "../users/keys.ts";
import { formatDuration } from "../util/duration.ts";

const Labels = z.record(z.string(), z.string());

const AlertSchema = z.looseObject({
  status: z.enum(["firing", "resolved"]),
  labels: Labels,
  annotations: Labels.default({}),
  startsAt: z.iso.datetime({ offset: true }),
  endsAt: z.string().optional(),
  generatorURL: z.string().optional(),
  fingerprint: z.string().min(1),
});

export const AlertmanagerPayload = z.looseObject({
  version: z.literal("4"),
  groupKey: z.string(),
  truncatedAlerts: z.number().int().optional(),
  status: z.enum(["firing", "resolved"]),
  receiver: z.string(),
  groupLabels: Labels,
  commonLabels: Labels,
  commonAnnotations: Labels,
  externalURL: z.string(),
  alerts: z.array(AlertSchema).min(1, "at least one alert"),
}).openapi("AlertmanagerWebhook");

type AmAlert = z.output<typeof AlertSchema>;

export interface AlertmanagerDeps {
  sql: Sql;
  clock: Clock;
  metrics: Metrics;
  logger: Logger;
  dispatcher: Dispatcher;
  schedule: DeliverySchedule;
  token: string | undefined;
  recipients: string[];
  /** ALERTMANAGER_MAX_BODY_BYTES. */
  maxBodyBytes: number;
  config: Pick<Config, "MAX_JSON_DEPTH">;
}

/** Under the `/v1` router; the app's 1 MiB limit skips exactly this path. */
export const ALERTMANAGER_WEBHOOK_PATH = "/alertmanager/webhook";

function intentFor(alert: AmAlert, user: { id: string; email: string }): DeliveryIntent {
  const name = alert.labels.alertname ?? "alert";
  const state = alert.status.toUpperCase();
  const summary = alert.annotations.summary ?? name;
  const description = alert.annotations.description;
  const critical = alert.labels.severity === "critical";
  return {
    userId: user.id,
    alertId: null,
    channels: critical
      ? [{ channel: "inapp" }, { channel: "email", extra: { recipient: user.email } }]
      : [{ channel: "inapp" }],
    payload: {
      type: alert.status === "firing" ? "alertmanager.firing" : "alertmanager.resolved",
      source: "alertmanager",
      title: `[${state}] ${name}`,
      message: description ? `${summary} — ${description}` : summary,
      alert: null,
      labels: alert.labels,
      fired_at: alert.startsAt,
    },
    dedupKey: {
      source: "alertmanager",
      fingerprint: alert.fingerprint,
      status: alert.status,
      starts_at: alert.startsAt,
      user_id: user.id,
    },
  };
}

interface AmEpisode {
  id: string;
  started_at: Date;
  /** This notification opened it (a firing), or closed it (a resolved). */
  changed: boolean;
}

/**
 * The lifecycle of an Alertmanager alert, per recipient, keyed by its fingerprint: `firing` opens
 * an episode or continues the open one, `resolved` closes it. The database allows one open
 * episode per fingerprint and user, whatever two notifications do at once.
 */
async function episodeOf(
  tx: TransactionSql,
  alert: AmAlert,
  userId: string,
  now: Date,
): Promise<AmEpisode | undefined> {
  if (alert.status === "resolved") {
    const ended = alert.endsAt && !Number.isNaN(Date.parse(alert.endsAt))
      ? new Date(alert.endsAt)
      : now;
    const [closed] = await tx<{ id: string; started_at: Date }[]>`
      update alert_episodes set ended_at = ${ended}
      where fingerprint = ${alert.fingerprint} and user_id = ${userId} and ended_at is null
      returning id, started_at`;
    return closed ? { ...closed, changed: true } : undefined;
  }
  const [open] = await tx<{ id: string; started_at: Date }[]>`
    select id, started_at from alert_episodes
    where fingerprint = ${alert.fingerprint} and user_id = ${userId} and ended_at is null`;
  if (open) return { ...open, changed: false };
  const [opened] = await tx<{ id: string; started_at: Date }[]>`
    insert into alert_episodes (id, fingerprint, user_id, started_at, notified)
    values (${crypto.randomUUID()}, ${alert.fingerprint}, ${userId}, ${new Date(alert.startsAt)},
            true)
    on conflict (fingerprint, user_id) where ended_at is null and fingerprint is not null
    do nothing
    returning id, started_at`;
  return opened ? { ...opened, changed: true } : undefined;
}

/** The intent, told which notification of its episode it is. */
function withEpisode(
  intent: DeliveryIntent,
  alert: AmAlert,
  episode: AmEpisode | undefined,
  now: Date,
): DeliveryIntent {
  const kind = alert.status === "resolved" ? "resolved" : episode?.changed ? "firing" : "repeat";
  if (!episode) return { ...intent, payload: { ...intent.payload, kind } };
  const started = episode.started_at;
  const ended = alert.status === "resolved" ? now : undefined;
  const lasted = ended
    ? ` Started ${started.toISOString()}, ended ${ended.toISOString()}, lasted ${
      formatDuration(ended.getTime() - started.getTime())
    }.`
    : "";
  return {
    ...intent,
    payload: {
      ...intent.payload,
      kind,
      message: intent.payload.message + lasted,
      episode: {
        id: episode.id,
        started_at: started.toISOString(),
        ...(ended
          ? {
            ended_at: ended.toISOString(),
            duration_seconds: Math.round((ended.getTime() - started.getTime()) / 1000),
          }
          : {}),
      },
    },
  };
}

export function alertmanagerRoutes(deps: AlertmanagerDeps) {
  const app = createRouter();
  // Checked before the body is validated: strangers learn nothing about the payload format.
  const requireToken: MiddlewareHandler<AppEnv> = async (c, next) => {
    if (!deps.token) {
      throw new Problem(503, "The Alertmanager receiver is off: set ALERTMANAGER_WEBHOOK_TOKEN.");
    }
    const given = bearerToken(c.req.header("authorization")) ?? "";
    if (!sameHash(given, deps.token)) {
      throw Problem.unauthorized("Send the Alertmanager webhook token.");
    }
    await next();
  };
  app.openapi(
    createRoute({
      method: "post",
      path: ALERTMANAGER_WEBHOOK_PATH,
      tags: ["alerts"],
      summary: "Alertmanager webhook receiver",
      description: "Needs `Authorization: Bearer <ALERTMANAGER_WEBHOOK_TOKEN>`.",
      security: [{ bearerAuth: [] }],
      // The token first: a stranger's body is never read.
      // Then the app's input limits (depth, text PostgreSQL cannot store), which skip this route.
      middleware: [
        requireToken,
        limitBody(deps.maxBodyBytes),
        guardInputs(deps.config.MAX_JSON_DEPTH),
      ] as const,
      request: jsonBody(AlertmanagerPayload),
      responses: {
        200: json(
          z.object({
            alerts: z.number().int(),
            recipients: z.number().int(),
            delivered: z.number().int(),
            suppressed: z.number().int(),
            failed: z.number().int(),
          }),
          "Accepted",
        ),
        ...problems(400, 401, 422, 503),
        413: { ...problems(413)[413], description: "Body larger than ALERTMANAGER_MAX_BODY_BYTES" },
      },
    }),
    async (c) => {
      const body = c.req.valid("json");
      // Over its webhook's max_alerts, Alertmanager sends only a count of the rest.
      if (body.truncatedAlerts) {
        deps.logger.warn("Alertmanager left out {truncated} alerts of group {group_key}", {
          truncated: body.truncatedAlerts,
          group_key: body.groupKey,
        });
      }
      const named = deps.recipients.length === 0
        ? []
        : await deps.sql<{ id: string; email: string }[]>`
        select id, email from users where lower(email) = any(${
          deps.recipients.map((e) => e.toLowerCase())
        }::text[])`;
      if (named.length < deps.recipients.length) {
        deps.logger.warn("some ALERTMANAGER_RECIPIENTS are not users: {missing}", {
          missing: deps.recipients.filter((e) =>
            !named.some((u) => u.email.toLowerCase() === e.toLowerCase())
          ),
        });
      }
      // Nobody named can be reached: the admins get it rather than nobody (never a silent drop).
      const users = named.length > 0 ? named : await deps.sql<{ id: string; email: string }[]>`
        select distinct u.id, u.email from users u join api_keys k on k.user_id = u.id
        where k.role = 'admin' and k.revoked_at is null`;
      const outcome = named.length > 0 ? "recipients" : users.length > 0 ? "admins" : "dropped";
      deps.metrics.alertmanagerAlerts.inc({ outcome }, body.alerts.length);
      if (outcome !== "recipients") {
        deps.logger[outcome === "dropped" ? "error" : "warn"](
          "no ALERTMANAGER_RECIPIENTS user to notify: {count} alerts went to {outcome}",
          { count: body.alerts.length, outcome },
        );
      }
      const now = deps.clock.now();
      // One transaction for the whole notification: all of it is accepted, or none. Intents
      // are written in the order of their content hash, so that two concurrent notifications
      // take their locks in the same order (no deadlock).
      const intents = body.alerts
        .flatMap((alert, index) => users.map((user) => ({ index, intent: intentFor(alert, user) })))
        .map((i) => ({ ...i, hash: contentHash(i.intent.dedupKey) }))
        .sort((a, b) => a.hash.localeCompare(b.hash));
      const perAlert: Enqueued["deliveries"][] = body.alerts.map(() => []);
      const leaseUntil = dueAfter(now, deps.schedule.leaseMs);
      await deps.sql.begin(async (tx) => {
        for (const { index, intent } of intents) {
          const alert = body.alerts[index];
          const episode = await episodeOf(tx, alert, intent.userId, now);
          perAlert[index].push(
            ...(await enqueue(tx, withEpisode(intent, alert, episode, now), now, {
              serialized: false,
              leaseUntil,
            })).deliveries,
          );
        }
      });
      const enqueued = perAlert.flat();
      const suppressed = enqueued.filter((d) => d.status === "suppressed");
      for (const d of suppressed) {
        deps.metrics.deliveries.inc({ channel: d.channel, status: "suppressed" });
      }
      const pending = enqueued.filter((d) => d.status === "pending");
      deps.metrics.alertsFired.inc(
        perAlert.filter((ds) => ds.some((d) => d.status === "pending")).length,
      );
      const sent = await deps.dispatcher.deliver(pending);
      return c.json({
        alerts: body.alerts.length,
        recipients: users.length,
        delivered: sent.filter((s) => s.status === "delivered").length,
        suppressed: suppressed.length,
        failed: sent.filter((s) => s.status !== "delivered").length,
      }, 200);
    },
  );
  return app;
}
