/** `/v1/alerts`: a user's alert rules, evaluating them on demand, and their delivery history. */
import { createRoute, z } from "@hono/zod-openapi";
import { assertOutboundAllowed, type OutboundPolicy } from "../agents/outbound.ts";
import type { RemoteAgents } from "../agents/remote.ts";
import type { AgentRuntime } from "../agents/runtime.ts";
import { CallerError } from "../agents/types.ts";
import type { Clock } from "../clock.ts";
import type { Config } from "../config.ts";
import type { Sql } from "../db/database.ts";
import {
  deliveriesOfAlert,
  DELIVERY_STATUSES,
  DLQ_STATES,
  publicPayload,
} from "../delivery/store.ts";
import { CHANNELS } from "../delivery/types.ts";
import type { Principal } from "../http/env.ts";
import { ownerScope, targetUser } from "../users/auth.ts";
import {
  bearerAuth,
  createRouter,
  json,
  jsonBody,
  problems,
  Timestamp,
  UuidParam,
} from "../http/openapi.ts";
import { decodeCursor, page, pageOf, PageQuery } from "../http/pagination.ts";
import { type FieldError, fieldErrors, Problem } from "../http/problem.ts";
import { inputsSchema } from "../patterns/definition.ts";
import { isSealed, type Secrets } from "../security/secrets.ts";
import { getPattern } from "../patterns/store.ts";
import type { AlertEvaluator } from "./evaluator.ts";
import { ALERT_STATES, type AlertState, NOTIFICATION_KINDS } from "./lifecycle.ts";
import {
  ChannelsSchema,
  type Condition,
  ConditionSchema,
  CreateAlertSchema,
  newWebhookSecret,
  PatchAlertSchema,
  SEVERITIES,
} from "./schema.ts";
import {
  acknowledge,
  type Alert,
  deleteAlert,
  getAlert,
  insertAlertCapped,
  listAlerts,
  listEvents,
  routingKeyHint,
  sealPagerDuty,
  sealSlack,
  sealWebhook,
  slackUrlHint,
  type StoredChannels,
  updateAlert,
} from "./store.ts";

const EpisodeSchema = z.object({
  id: z.uuid(),
  started_at: Timestamp,
  acknowledged_at: Timestamp.nullable(),
  acknowledged_by: z.uuid().nullable(),
  ack_note: z.string().nullable(),
}).openapi("Episode");

const AlertSchema = z.object({
  id: z.uuid(),
  user_id: z.uuid(),
  name: z.string(),
  condition: ConditionSchema,
  channels: ChannelsSchema,
  interval_seconds: z.number().int(),
  repeat_interval_seconds: z.number().int(),
  channels_from_policy: z.boolean().openapi({
    description: "Your notification policy chooses, by severity, among the configured channels",
  }),
  repeat_interval_from_policy: z.boolean().openapi({
    description: "Your notification policy gives the repeat interval (repeat_interval_seconds " +
      "is kept for when this is false)",
  }),
  enabled: z.boolean(),
  failure_threshold: z.number().int(),
  success_threshold: z.number().int(),
  error_threshold: z.number().int(),
  notify_on_resolved: z.boolean(),
  labels: z.record(z.string(), z.string()),
  severity: z.enum(SEVERITIES),
  public: z.boolean(),
  state: z.enum(ALERT_STATES).openapi({
    description: "`pending`: matching, fewer times in a row than failure_threshold; `firing`: an " +
      "episode is open; `error`: error_threshold evaluations in a row could not be made",
  }),
  state_since: Timestamp,
  failing_since: Timestamp.nullable().openapi({
    description: "When the current run of matching evaluations began",
  }),
  counts: z.object({
    consecutive_failures: z.number().int(),
    consecutive_successes: z.number().int(),
    consecutive_errors: z.number().int(),
  }),
  episode: EpisodeSchema.nullable().openapi({ description: "The open episode, if any" }),
  last_fired_at: Timestamp.nullable(),
  last_evaluated_at: Timestamp.nullable(),
  next_eval_at: Timestamp,
  created_at: Timestamp,
  updated_at: Timestamp,
}).openapi("Alert");

/** An alert as answered: its lifecycle's bookkeeping stays inside. */
function publicAlert(alert: Alert): z.output<typeof AlertSchema> {
  const {
    consecutive_failures,
    consecutive_successes,
    consecutive_errors,
    owed_notification: _owed,
    error_notified: _told,
    episode_id: _e,
    episode,
    channels,
    ...rest
  } = alert;
  return {
    ...rest,
    channels: channels as z.output<typeof ChannelsSchema>,
    counts: { consecutive_failures, consecutive_successes, consecutive_errors },
    episode: episode
      ? {
        id: episode.id,
        started_at: episode.started_at,
        acknowledged_at: episode.acknowledged_at,
        acknowledged_by: episode.acknowledged_by,
        ack_note: episode.ack_note,
      }
      : null,
  };
}

const DeliverySummarySchema = z.object({
  id: z.uuid(),
  channel: z.enum(CHANNELS),
  status: z.enum(DELIVERY_STATUSES).openapi({
    description: "`pending`: not sent yet (it goes out at the next tick); `failed`: waiting in " +
      "the DLQ for its retry; `uncertain`: may have arrived, needs a person",
  }),
  error: z.string().optional(),
});

const EvaluationSchema = z.object({
  value: z.unknown(),
  matched: z.boolean(),
  duration_ms: z.number().openapi({ description: "How long the check took (its uptime latency)" }),
  state: z.enum(ALERT_STATES),
  transitions: z.array(z.object({ from: z.enum(ALERT_STATES), to: z.enum(ALERT_STATES) })),
  notifications: z.array(z.object({ kind: z.enum(NOTIFICATION_KINDS), silenced: z.boolean() })),
  fired: z.boolean().openapi({ description: "A firing or repeat notification went out" }),
  suppressed_by: z.enum([
    "pending",
    "repeat_interval",
    "acknowledged",
    "silence",
    "content",
    "window",
  ])
    .optional().openapi({
      description: "Why a match notified nobody now (`window`: a repeat folded into the one " +
        "already waiting for the severity's time window)",
    }),
  deferred_until: Timestamp.optional().openapi({
    description: "Outside the severity's time window: the notifications are due then",
  }),
  episode_id: z.uuid().nullable(),
  deliveries: z.array(DeliverySummarySchema),
  error: z.string().optional().openapi({ description: "Why the condition could not be evaluated" }),
}).openapi("Evaluation");

const DeliverySchema = z.object({
  id: z.uuid(),
  alert_id: z.uuid().nullable(),
  channel: z.enum(CHANNELS),
  status: z.enum(DELIVERY_STATUSES),
  suppressed_by: z.enum(["content", "silence"]).nullable().openapi({
    description: "Why a suppressed delivery was not sent",
  }),
  attempts: z.number().int(),
  last_error: z.string().nullable(),
  maybe_sent: z.boolean().openapi({
    description: "An attempt ended without an answer: the provider may have it",
  }),
  payload: z.record(z.string(), z.unknown()),
  created_at: Timestamp,
  delivered_at: Timestamp.nullable(),
  dlq: z.object({
    id: z.uuid(),
    state: z.enum(DLQ_STATES),
    retry_count: z.number().int(),
    next_retry_at: z.string().nullable(),
  }).nullable(),
  attempt_history: z.array(z.object({
    attempt: z.number().int(),
    at: z.string(),
    outcome: z.enum(["delivered", "failed", "unknown", "exhausted", "uncertain", "discarded"]),
    error: z.string().nullable(),
    provider_status: z.number().int().nullable(),
    duration_ms: z.number(),
    fenced: z.boolean().openapi({
      description: "Recorded by a sender that had lost its lease (it changed nothing)",
    }),
  })),
}).openapi("Delivery");

export interface AlertsDeps {
  sql: Sql;
  clock: Clock;
  runtime: AgentRuntime;
  remote: RemoteAgents;
  policy: OutboundPolicy;
  evaluator: AlertEvaluator;
  /** Seals webhook secrets before they are stored. */
  secrets: Secrets;
  config: Pick<Config, "MAX_ALERTS_PER_USER">;
}

export function alertsRoutes(deps: AlertsDeps) {
  const { sql, clock, evaluator } = deps;
  const app = createRouter();

  /** Checks what the schema cannot: the pattern or capability exists and accepts the arguments. */
  async function semanticErrors(condition?: Condition, channels?: z.output<typeof ChannelsSchema>) {
    const errors: FieldError[] = [];
    if (condition?.pattern_id !== undefined) {
      const pattern = await getPattern(sql, condition.pattern_id);
      if (!pattern) {
        errors.push({
          path: "condition.pattern_id",
          message: `there is no pattern ${condition.pattern_id}`,
        });
      } else {
        const parsed = inputsSchema(pattern.definition).safeParse(condition.inputs ?? {});
        if (!parsed.success) errors.push(...fieldErrors(parsed.error, ["condition", "inputs"]));
      }
    } else if (condition?.capability !== undefined) {
      await deps.remote.refresh();
      const resolved = deps.runtime.resolve(condition.capability);
      if (!resolved) {
        errors.push({
          path: "condition.capability",
          message: `unknown capability "${condition.capability}"`,
        });
      } else {
        const parsed = resolved.capability.args.safeParse(condition.args ?? {});
        if (!parsed.success) errors.push(...fieldErrors(parsed.error, ["condition", "args"]));
      }
    }
    if (channels?.webhook) {
      try {
        await assertOutboundAllowed(new URL(channels.webhook.url), deps.policy);
      } catch (error) {
        if (!(error instanceof CallerError)) throw error;
        errors.push({ path: "channels.webhook.url", message: error.message });
      }
    }
    if (channels?.slack?.webhook_url) {
      try {
        await assertOutboundAllowed(new URL(channels.slack.webhook_url), deps.policy);
      } catch (error) {
        if (!(error instanceof CallerError)) throw error;
        errors.push({ path: "channels.slack.webhook_url", message: error.message });
      }
    }
    if (errors.length) throw Problem.invalid(errors);
  }

  /**
   * The channels to store: a webhook keeps the secret given, else the one it had (changing the
   * URL does not rotate it), else a new one — which `generated` says must be shown once. A new
   * secret is sealed before it is stored; `plaintext` is it, for the answer that shows it.
   */
  async function withSecret(
    channels: z.output<typeof ChannelsSchema>,
    previous?: StoredChannels,
  ): Promise<{ channels: StoredChannels; plaintext?: string; generated: boolean }> {
    const { webhook, slack, pagerduty, ...others } = channels;
    const rest = { ...others, ...await chatSecrets(slack, pagerduty, previous) };
    if (!webhook) return { channels: rest, generated: false };
    const kept = webhook.secret === undefined ? previous?.webhook : undefined;
    if (kept && isSealed(kept.secret)) {
      return { channels: { ...rest, webhook: { ...kept, url: webhook.url } }, generated: false };
    }
    // A secret kept from a row written before encryption is sealed now.
    const secret = webhook.secret ?? kept?.secret ?? newWebhookSecret();
    return {
      channels: { ...rest, webhook: await sealWebhook(deps.secrets, { url: webhook.url, secret }) },
      plaintext: secret,
      generated: webhook.secret === undefined && kept === undefined,
    };
  }

  /**
   * Slack's webhook URL and PagerDuty's routing key, as stored: the value given, sealed; left
   * out, the stored one (sealed now if a row kept it in clear); left out with none stored, a 422.
   */
  async function chatSecrets(
    slack: z.output<typeof ChannelsSchema>["slack"],
    pagerduty: z.output<typeof ChannelsSchema>["pagerduty"],
    previous?: StoredChannels,
  ): Promise<Pick<StoredChannels, "slack" | "pagerduty">> {
    const out: Pick<StoredChannels, "slack" | "pagerduty"> = {};
    const errors: FieldError[] = [];
    if (slack) {
      const kept = slack.webhook_url === undefined ? previous?.slack : undefined;
      const webhook_url = slack.webhook_url ?? kept?.webhook_url;
      if (kept && isSealed(kept.webhook_url)) out.slack = kept;
      else if (webhook_url) out.slack = await sealSlack(deps.secrets, { webhook_url });
      else errors.push({ path: "channels.slack.webhook_url", message: "is required" });
    }
    if (pagerduty) {
      const kept = pagerduty.routing_key === undefined ? previous?.pagerduty : undefined;
      const routing_key = pagerduty.routing_key ?? kept?.routing_key;
      if (kept && isSealed(kept.routing_key)) out.pagerduty = kept;
      else if (routing_key) out.pagerduty = await sealPagerDuty(deps.secrets, { routing_key });
      else errors.push({ path: "channels.pagerduty.routing_key", message: "is required" });
    }
    if (errors.length) throw Problem.invalid(errors);
    return out;
  }

  /**
   * Slack's webhook URL and PagerDuty's routing key are write-only: readers see a hint stored
   * beside the sealed value (`https://hooks.slack.com/…abcd`, `…abcd`), never the value.
   */
  function maskedChat(alert: Alert): Alert {
    const { slack, pagerduty } = alert.channels;
    if (!slack && !pagerduty) return alert;
    const hint = (value: string, stored: string | undefined, of: (v: string) => string) =>
      stored ?? (isSealed(value) ? "…" : of(value));
    return {
      ...alert,
      channels: {
        ...alert.channels,
        ...(slack
          ? {
            slack: { webhook_url: hint(slack.webhook_url, slack.webhook_url_hint, slackUrlHint) },
          }
          : {}),
        ...(pagerduty
          ? {
            pagerduty: {
              routing_key: hint(pagerduty.routing_key, pagerduty.routing_key_hint, routingKeyHint),
            },
          }
          : {}),
      },
    };
  }

  /**
   * Webhook secrets are write-only: after creation, readers see a hint such as `whsec_…a1b2`,
   * stored beside the sealed secret (no decryption on reads).
   */
  function masked(alert: Alert): Alert {
    const webhook = alert.channels.webhook;
    if (!webhook) return maskedChat(alert);
    const last4 = webhook.secret_hint ?? (isSealed(webhook.secret) ? "" : webhook.secret.slice(-4));
    return withWebhookSecret(alert, `whsec_…${last4}`);
  }

  /** The alert as answered, its webhook showing `secret` (the plaintext, or its hint). */
  function withWebhookSecret(alert: Alert, secret: string): Alert {
    const webhook = alert.channels.webhook;
    const out = maskedChat(alert);
    if (!webhook) return out;
    return { ...out, channels: { ...out.channels, webhook: { url: webhook.url, secret } } };
  }

  async function ownAlert(id: string, p: Principal) {
    const alert = await getAlert(sql, id, ownerScope(p));
    if (!alert) throw Problem.notFound(`You have no alert ${id}.`);
    return alert;
  }

  app.openapi(
    createRoute({
      method: "post",
      path: "/alerts",
      tags: ["alerts"],
      summary: "Create an alert",
      description:
        "The condition names a pattern (with inputs) or a capability (with args); both are " +
        "checked on write, and a 422 lists every problem.",
      security: bearerAuth,
      request: jsonBody(CreateAlertSchema),
      responses: { 201: json(AlertSchema, "Created"), ...problems(400, 401, 403, 409, 422) },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const p = c.get("principal");
      const userId = await targetUser(sql, p, body.user_id, "alerts");
      await semanticErrors(body.condition, body.channels);
      const { user_id: _u, channels, ...rest } = body;
      const max = deps.config.MAX_ALERTS_PER_USER;
      const stored = await withSecret(channels);
      const fields = { ...rest, user_id: userId, channels: stored.channels };
      const alert = await insertAlertCapped(sql, fields, clock.now(), max);
      if (!alert) {
        throw Problem.conflict(
          `The user already has ${max} alerts, the most allowed (MAX_ALERTS_PER_USER); delete one first.`,
        );
      }
      // The only answer that shows the webhook secret: not to be cached anywhere.
      c.header("Cache-Control", "no-store");
      return c.json(
        publicAlert(stored.plaintext ? withWebhookSecret(alert, stored.plaintext) : masked(alert)),
        201,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/alerts",
      tags: ["alerts"],
      summary: "Your alerts, newest first (admins: everyone's, or one user's)",
      security: bearerAuth,
      request: {
        query: PageQuery.extend({
          user_id: z.uuid().optional().openapi({ param: { name: "user_id", in: "query" } }),
        }),
      },
      responses: {
        200: json(
          pageOf(AlertSchema),
          "A page",
        ),
        ...problems(401, 403, 422),
      },
    }),
    async (c) => {
      const { limit, cursor, user_id } = c.req.valid("query");
      const p = c.get("principal");
      if (user_id !== undefined && p.role !== "admin" && user_id !== p.userId) {
        throw Problem.forbidden("Only admins list other users' alerts.");
      }
      const scope = p.role === "admin" ? user_id : p.userId;
      const rows = await listAlerts(sql, scope, limit + 1, decodeCursor(cursor));
      return c.json(
        page(rows.map((a) => publicAlert(masked(a))), limit, (a) => [a.created_at, a.id]),
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/alerts/{id}",
      tags: ["alerts"],
      summary: "Read an alert",
      security: bearerAuth,
      request: { params: UuidParam },
      responses: { 200: json(AlertSchema, "The alert"), ...problems(401, 404, 422) },
    }),
    async (c) =>
      c.json(publicAlert(masked(await ownAlert(c.req.valid("param").id, c.get("principal")))), 200),
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/alerts/{id}",
      tags: ["alerts"],
      summary: "Change an alert (it is evaluated again at the next tick)",
      security: bearerAuth,
      request: { params: UuidParam, ...jsonBody(PatchAlertSchema) },
      responses: { 200: json(AlertSchema, "The changed alert"), ...problems(400, 401, 404, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const body = c.req.valid("json");
      const before = await ownAlert(id, c.get("principal"));
      await semanticErrors(body.condition, body.channels);
      const { channels, ...rest } = body;
      const stored = channels ? await withSecret(channels, before.channels) : undefined;
      const changes = stored ? { ...rest, channels: stored.channels } : rest;
      const alert = (await updateAlert(sql, id, changes, clock.now()))!;
      if (!stored?.generated) return c.json(publicAlert(masked(alert)), 200);
      c.header("Cache-Control", "no-store"); // a new secret, shown this once
      return c.json(publicAlert(withWebhookSecret(alert, stored.plaintext!)), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/alerts/{id}",
      tags: ["alerts"],
      summary: "Delete an alert (its delivery history is kept)",
      security: bearerAuth,
      request: { params: UuidParam },
      responses: { 204: { description: "Deleted" }, ...problems(401, 404, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      if (!await deleteAlert(sql, id, ownerScope(c.get("principal")))) {
        throw Problem.notFound(`You have no alert ${id}.`);
      }
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/alerts/{id}/evaluate",
      tags: ["alerts"],
      summary: "Evaluate an alert now (and fire it if it matches, unless dry_run)",
      security: bearerAuth,
      request: {
        params: UuidParam,
        body: {
          required: false,
          content: {
            "application/json": {
              schema: z.object({ dry_run: z.boolean().default(false) }).strict(),
            },
          },
        },
      },
      responses: { 200: json(EvaluationSchema, "What happened"), ...problems(400, 401, 404, 422) },
    }),
    async (c) => {
      const alert = await ownAlert(c.req.valid("param").id, c.get("principal"));
      const { dry_run } = c.req.valid("json") as { dry_run?: boolean };
      return c.json(
        await evaluator.evaluate(alert, clock.now(), { dryRun: dry_run ?? false }),
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/alerts/{id}/deliveries",
      tags: ["alerts"],
      summary: "Why was I (not) notified? Every delivery of an alert, with each attempt and error",
      security: bearerAuth,
      request: { params: UuidParam, query: PageQuery },
      responses: {
        200: json(
          pageOf(DeliverySchema),
          "A page",
        ),
        ...problems(401, 404, 422),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { limit, cursor } = c.req.valid("query");
      await ownAlert(id, c.get("principal"));
      const rows = await deliveriesOfAlert(sql, id, limit + 1, decodeCursor(cursor));
      const items = rows.map(({ user_id: _u, payload, ...d }) => ({
        ...d,
        payload: publicPayload(payload),
      }));
      return c.json(page(items, limit, (d) => [d.created_at, d.id]), 200);
    },
  );

  const EventSchema = z.object({
    id: z.uuid(),
    episode_id: z.uuid().nullable(),
    from: z.enum(ALERT_STATES),
    to: z.enum(ALERT_STATES),
    value: z.unknown().openapi({ description: "The value that made the transition" }),
    error: z.string().nullable(),
    at: Timestamp,
  }).openapi("AlertEvent");

  app.openapi(
    createRoute({
      method: "get",
      path: "/alerts/{id}/events",
      tags: ["alerts"],
      summary: "The alert's state transitions, newest first",
      security: bearerAuth,
      request: { params: UuidParam, query: PageQuery },
      responses: { 200: json(pageOf(EventSchema), "A page"), ...problems(401, 404, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { limit, cursor } = c.req.valid("query");
      await ownAlert(id, c.get("principal"));
      const rows = await listEvents(sql, id, limit + 1, decodeCursor(cursor));
      return c.json(
        page(
          rows.map((e) => ({ ...e, from: e.from as AlertState, to: e.to as AlertState })),
          limit,
          (e) => [e.at, e.id],
        ),
        200,
      );
    },
  );

  const AckBody = z.object({
    note: z.string().trim().min(1).max(1000).optional().openapi({
      description: "What you are doing about it",
    }),
  }).strict();

  app.openapi(
    createRoute({
      method: "post",
      path: "/alerts/{id}/ack",
      tags: ["alerts"],
      summary: "Acknowledge the firing episode: no repeats until it ends",
      security: bearerAuth,
      request: {
        params: UuidParam,
        body: { required: false, content: { "application/json": { schema: AckBody } } },
      },
      responses: { 200: json(AlertSchema, "The alert"), ...problems(400, 401, 404, 409, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { note } = (c.req.valid("json") ?? {}) as { note?: string };
      const p = c.get("principal");
      await ownAlert(id, p);
      const done = await acknowledge(sql, id, {
        by: p.userId,
        note: note ?? null,
        at: clock.now(),
      });
      if (!done) {
        throw Problem.conflict(`Alert ${id} is not firing: there is nothing to acknowledge.`);
      }
      return c.json(publicAlert(masked((await getAlert(sql, id))!)), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/alerts/{id}/ack",
      tags: ["alerts"],
      summary: "Take the acknowledgement back: repeats resume",
      security: bearerAuth,
      request: { params: UuidParam },
      responses: { 200: json(AlertSchema, "The alert"), ...problems(401, 404, 409, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      await ownAlert(id, c.get("principal"));
      if (!await acknowledge(sql, id, null)) {
        throw Problem.conflict(`Alert ${id} is not firing: there is no acknowledgement.`);
      }
      return c.json(publicAlert(masked((await getAlert(sql, id))!)), 200);
    },
  );

  return app;
}
