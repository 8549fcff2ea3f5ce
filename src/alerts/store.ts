/** Alerts in PostgreSQL. */
import type postgres from "postgres";
import type { Queryable, Sql } from "../db/database.ts";
import type { Cursor } from "../http/pagination.ts";
import type { Purpose, Secrets } from "../security/secrets.ts";
import { ALERT_STATES, type AlertState } from "./lifecycle.ts";
import type { Channels, Condition } from "./schema.ts";

/** What a webhook's signing secret is sealed for (src/security/secrets.ts). */
export const WEBHOOK_SECRET = "alerts.webhook.secret" as const;

/**
 * A webhook as stored: `secret` sealed (`enc:v1:…`; a plaintext in rows written before
 * encryption, until the re-encryption at start-up seals it) and `secret_hint`, its last four
 * characters, which is all the API shows after creation (so reads need no decryption).
 */
export interface StoredWebhook {
  url: string;
  secret: string;
  secret_hint?: string;
}

export type StoredChannels = Omit<Channels, "webhook" | "slack" | "pagerduty"> & {
  webhook?: StoredWebhook | null;
  slack?: StoredSlack | null;
  pagerduty?: StoredPagerDuty | null;
};

/** A webhook with a plaintext secret, as stored: the secret sealed, its hint beside it. */
export async function sealWebhook(
  secrets: Secrets,
  webhook: { url: string; secret: string },
): Promise<StoredWebhook> {
  return {
    url: webhook.url,
    secret: await secrets.seal(webhook.secret, WEBHOOK_SECRET),
    secret_hint: webhook.secret.slice(-4),
  };
}

// What a Slack webhook URL and a PagerDuty routing key are sealed for (src/security/secrets.ts).
export const SLACK_WEBHOOK_URL = "alerts.slack.webhook_url" as const;
export const PAGERDUTY_ROUTING_KEY = "alerts.pagerduty.routing_key" as const;

/**
 * Slack as stored: the incoming-webhook URL is the secret (whoever has it posts to the channel),
 * so `webhook_url` is sealed; `webhook_url_hint` (`https://hooks.slack.com/…abcd`) is all the API
 * shows of it.
 */
export interface StoredSlack {
  webhook_url: string;
  webhook_url_hint?: string;
}

/** PagerDuty as stored: the routing (integration) key sealed, `…abcd` beside it. */
export interface StoredPagerDuty {
  routing_key: string;
  routing_key_hint?: string;
}

/** What the API shows of a Slack webhook URL: its origin and last four characters. */
export function slackUrlHint(url: string): string {
  let origin = "";
  try {
    origin = new URL(url).origin;
  } catch {
    // not a URL: the last four characters only
  }
  return `${origin}/…${url.slice(-4)}`.replace(/^\//, "");
}

/** What the API shows of a routing key. */
export function routingKeyHint(key: string): string {
  return `…${key.slice(-4)}`;
}

export async function sealSlack(
  secrets: Secrets,
  slack: { webhook_url: string },
): Promise<StoredSlack> {
  return {
    webhook_url: await secrets.seal(slack.webhook_url, SLACK_WEBHOOK_URL),
    webhook_url_hint: slackUrlHint(slack.webhook_url),
  };
}

export async function sealPagerDuty(
  secrets: Secrets,
  pagerduty: { routing_key: string },
): Promise<StoredPagerDuty> {
  return {
    routing_key: await secrets.seal(pagerduty.routing_key, PAGERDUTY_ROUTING_KEY),
    routing_key_hint: routingKeyHint(pagerduty.routing_key),
  };
}

export type Severity = "critical" | "warning" | "info";

export interface Alert {
  id: string;
  user_id: string;
  name: string;
  condition: Condition;
  channels: StoredChannels;
  interval_seconds: number;
  /** While an episode fires, a reminder this often (0: none); `cooldown_seconds` in the API too. */
  repeat_interval_seconds: number;
  /**
   * Set explicitly or not (src/policies/routing.ts): when true the user's notification policy
   * for the alert's severity chooses among `channels` (what is configured), or gives the repeat
   * interval instead of `repeat_interval_seconds`.
   */
  channels_from_policy: boolean;
  repeat_interval_from_policy: boolean;
  enabled: boolean;
  /** The last firing or repeat that went out. */
  last_fired_at: Date | null;
  last_evaluated_at: Date | null;
  next_eval_at: Date;
  created_at: Date;
  updated_at: Date;
  // The lifecycle (lifecycle.ts), stored by the evaluator in the transaction that notifies.
  state: AlertState;
  state_since: Date;
  failure_threshold: number;
  success_threshold: number;
  error_threshold: number;
  notify_on_resolved: boolean;
  consecutive_failures: number;
  consecutive_successes: number;
  consecutive_errors: number;
  failing_since: Date | null;
  owed_notification: boolean;
  error_notified: boolean;
  labels: Record<string, string>;
  severity: Severity;
  /** On the public status page. */
  public: boolean;
  episode_id: string | null;
  /** The open episode, read with the alert. */
  episode: EpisodeRow | null;
}

export interface EpisodeRow {
  id: string;
  started_at: Date;
  notified: boolean;
  acknowledged_at: Date | null;
  acknowledged_by: string | null;
  ack_note: string | null;
}

/** What a client may set (the lifecycle columns are the evaluator's). */
export type AlertInput = Pick<
  Alert,
  | "user_id"
  | "name"
  | "condition"
  | "channels"
  | "interval_seconds"
  | "repeat_interval_seconds"
  | "channels_from_policy"
  | "repeat_interval_from_policy"
  | "enabled"
  | "failure_threshold"
  | "success_threshold"
  | "error_threshold"
  | "notify_on_resolved"
  | "labels"
  | "severity"
  | "public"
>;

/** An alert row with its open episode (columns `e_*`), as every read returns it. */
type AlertRow = Omit<Alert, "episode"> & {
  e_started_at: Date | null;
  e_notified: boolean | null;
  e_acknowledged_at: Date | null;
  e_acknowledged_by: string | null;
  e_ack_note: string | null;
};

const EPISODE_COLUMNS = (sql: Sql) =>
  sql`e.started_at as e_started_at, e.notified as e_notified,
      e.acknowledged_at as e_acknowledged_at, e.acknowledged_by as e_acknowledged_by,
      e.ack_note as e_ack_note`;

function toAlert(row: AlertRow): Alert {
  const {
    e_started_at,
    e_notified,
    e_acknowledged_at,
    e_acknowledged_by,
    e_ack_note,
    ...alert
  } = row;
  return {
    ...alert,
    episode: alert.episode_id && e_started_at
      ? {
        id: alert.episode_id,
        started_at: e_started_at,
        notified: e_notified ?? false,
        acknowledged_at: e_acknowledged_at,
        acknowledged_by: e_acknowledged_by,
        ack_note: e_ack_note,
      }
      : null,
  };
}

/** Alerts with their open episode, filtered by `where` (a fragment on `a`). */
async function selectAlerts(
  sql: Queryable,
  where: postgres.PendingQuery<postgres.Row[]>,
  tail = sql``,
): Promise<Alert[]> {
  const rows = await sql<AlertRow[]>`
    select a.*, ${EPISODE_COLUMNS(sql as Sql)}
    from alerts a left join alert_episodes e on e.id = a.episode_id
    where ${where} ${tail}`;
  return rows.map(toAlert);
}

const json = (sql: Sql, value: unknown) => sql.json(value as postgres.JSONValue);

export async function insertAlert(sql: Sql, alert: AlertInput, now: Date): Promise<Alert> {
  const [{ id }] = await sql<{ id: string }[]>`
    insert into alerts (user_id, name, condition, channels, interval_seconds,
                        repeat_interval_seconds, enabled, failure_threshold, success_threshold,
                        error_threshold, notify_on_resolved, labels, severity, next_eval_at,
                        state_since, created_at, updated_at, channels_from_policy,
                        repeat_interval_from_policy, public)
    values (${alert.user_id}, ${alert.name}, ${json(sql, alert.condition)},
            ${json(sql, alert.channels)}, ${alert.interval_seconds},
            ${alert.repeat_interval_seconds}, ${alert.enabled}, ${alert.failure_threshold},
            ${alert.success_threshold}, ${alert.error_threshold}, ${alert.notify_on_resolved},
            ${json(sql, alert.labels)}, ${alert.severity}, ${now}, ${now}, ${now}, ${now},
            ${alert.channels_from_policy}, ${alert.repeat_interval_from_policy}, ${alert.public})
    returning id`;
  return (await selectAlerts(sql, sql`a.id = ${id}`))[0];
}

/**
 * Inserts an alert unless its user already has `max` (MAX_ALERTS_PER_USER): undefined then.
 * The user's row lock makes concurrent creates count one after the other.
 */
export async function insertAlertCapped(
  sql: Sql,
  alert: AlertInput,
  now: Date,
  max: number,
): Promise<Alert | undefined> {
  return await sql.begin(async (tx) => {
    await tx`select 1 from users where id = ${alert.user_id} for no key update`;
    const [{ count }] = await tx<{ count: number }[]>`
      select count(*)::int as count from alerts where user_id = ${alert.user_id}`;
    if (count >= max) return undefined;
    return await insertAlert(tx as unknown as Sql, alert, now);
  });
}

/** An alert, if it exists and (unless `userId` is undefined) belongs to that user. */
export async function getAlert(sql: Sql, id: string, userId?: string): Promise<Alert | undefined> {
  const [alert] = await selectAlerts(
    sql,
    sql`a.id = ${id} ${userId === undefined ? sql`` : sql`and a.user_id = ${userId}`}`,
  );
  return alert;
}

export async function listAlerts(
  sql: Sql,
  userId: string | undefined,
  limit: number,
  after?: Cursor,
) {
  return await selectAlerts(
    sql,
    sql`true
      ${userId === undefined ? sql`` : sql`and a.user_id = ${userId}`}
      ${after ? sql`and (a.created_at, a.id) < (${after.at}, ${after.id})` : sql``}`,
    sql`order by a.created_at desc, a.id desc limit ${limit}`,
  );
}

export async function updateAlert(
  sql: Sql,
  id: string,
  changes: Partial<Omit<AlertInput, "user_id">>,
  now: Date,
): Promise<Alert | undefined> {
  const set = {
    ...changes,
    ...(changes.condition ? { condition: json(sql, changes.condition) } : {}),
    ...(changes.channels ? { channels: json(sql, changes.channels) } : {}),
    ...(changes.labels ? { labels: json(sql, changes.labels) } : {}),
    updated_at: now,
    // A changed rule is evaluated at the next tick.
    next_eval_at: now,
  };
  const rows = await sql`
    update alerts set ${sql(set as Record<string, unknown>, ...Object.keys(set))}
    where id = ${id} returning id`;
  return rows.length ? await getAlert(sql, id) : undefined;
}

export async function deleteAlert(sql: Sql, id: string, userId?: string): Promise<boolean> {
  const rows = await sql`
    delete from alerts where id = ${id} ${
    userId === undefined ? sql`` : sql`and user_id = ${userId}`
  }
    returning id`;
  return rows.length > 0;
}

/**
 * Claims up to `limit` due alerts (enabled, next_eval_at <= now) for this evaluator: their next
 * evaluation is scheduled at once, so another replica's claim skips them.
 */
export async function claimDueAlerts(sql: Sql, now: Date, limit: number): Promise<Alert[]> {
  const claimed = await sql<{ id: string }[]>`
    update alerts a
    set next_eval_at = ${now}::timestamptz + make_interval(secs => a.interval_seconds),
        last_evaluated_at = ${now}
    from (
      select id from alerts
      where enabled and next_eval_at <= ${now}
      order by next_eval_at limit ${limit}
      for update skip locked
    ) due
    where a.id = due.id
    returning a.id`;
  if (claimed.length === 0) return [];
  return await selectAlerts(sql, sql`a.id = any(${claimed.map((c) => c.id)}::uuid[])`);
}

// ---- re-encryption (src/security/reencrypt.ts) ----------------------------------------------

/** A sealed secret in `alerts.channels` besides the webhook's: where it is, and its hint. */
export interface ChannelSecret {
  name: string;
  path: readonly string[];
  hintPath: readonly string[];
  purpose: Purpose;
  hint: (plaintext: string) => string;
}

export const CHANNEL_SECRETS: readonly ChannelSecret[] = [
  {
    name: "Slack webhook URL",
    path: ["slack", "webhook_url"],
    hintPath: ["slack", "webhook_url_hint"],
    purpose: SLACK_WEBHOOK_URL,
    hint: slackUrlHint,
  },
  {
    name: "PagerDuty routing key",
    path: ["pagerduty", "routing_key"],
    hintPath: ["pagerduty", "routing_key_hint"],
    purpose: PAGERDUTY_ROUTING_KEY,
    hint: routingKeyHint,
  },
];

/** Up to `limit` values of one channel secret (after alert `after`) not starting with `prefix`. */
export async function channelSecretsNotSealedWith(
  sql: Sql,
  secret: ChannelSecret,
  prefix: string,
  after: string | null,
  limit: number,
): Promise<{ id: string; secret: string }[]> {
  const path = [...secret.path];
  return await sql<{ id: string; secret: string }[]>`
    select id, channels #>> ${path}::text[] as secret from alerts
    where channels #>> ${path}::text[] is not null
      and not starts_with(channels #>> ${path}::text[], ${prefix})
      ${after === null ? sql`` : sql`and id > ${after}`}
    order by id limit ${limit}`;
}

/** Replaces one channel secret by its re-sealed value (and hint), only if it is still `old`. */
export async function replaceChannelSecret(
  sql: Sql,
  secret: ChannelSecret,
  id: string,
  old: string,
  sealed: string,
  hint: string,
): Promise<boolean> {
  const path = [...secret.path];
  const rows = await sql`
    update alerts
    set channels = jsonb_set(
      jsonb_set(channels, ${path}::text[], to_jsonb(${sealed}::text)),
      ${[...secret.hintPath]}::text[], to_jsonb(${hint}::text))
    where id = ${id} and channels #>> ${path}::text[] = ${old}
    returning id`;
  return rows.length > 0;
}

/** Up to `limit` webhook secrets (after alert `after`, by id) not starting with `prefix`. */
export async function webhookSecretsNotSealedWith(
  sql: Sql,
  prefix: string,
  after: string | null,
  limit: number,
): Promise<{ id: string; secret: string }[]> {
  return await sql<{ id: string; secret: string }[]>`
    select id, channels -> 'webhook' ->> 'secret' as secret from alerts
    where channels -> 'webhook' ->> 'secret' is not null
      and not starts_with(channels -> 'webhook' ->> 'secret', ${prefix})
      ${after === null ? sql`` : sql`and id > ${after}`}
    order by id limit ${limit}`;
}

/**
 * Replaces a webhook secret by its re-sealed value, only if it is still `old`: a replica that
 * got there first, or a change through the API meanwhile, wins (false).
 */
export async function replaceWebhookSecret(
  sql: Sql,
  id: string,
  old: string,
  sealed: string,
  hint: string,
): Promise<boolean> {
  const rows = await sql`
    update alerts
    set channels = jsonb_set(
      jsonb_set(channels, '{webhook,secret}', to_jsonb(${sealed}::text)),
      '{webhook,secret_hint}', to_jsonb(${hint}::text))
    where id = ${id} and channels -> 'webhook' ->> 'secret' = ${old}
    returning id`;
  return rows.length > 0;
}

// ---- the lifecycle's history and acknowledgement ---------------------------------------------

export interface AlertEvent {
  id: string;
  episode_id: string | null;
  from: string;
  to: string;
  value: unknown;
  error: string | null;
  at: Date;
}

/** An alert's transitions, newest first (keyset on (at, id)). */
export async function listEvents(
  sql: Sql,
  alertId: string,
  limit: number,
  after?: Cursor,
): Promise<AlertEvent[]> {
  return await sql<AlertEvent[]>`
    select id, episode_id, from_state as "from", to_state as "to", value, error, at
    from alert_events
    where alert_id = ${alertId}
      ${after ? sql`and (at, id) < (${after.at}, ${after.id})` : sql``}
    order by at desc, id desc limit ${limit}`;
}

/**
 * Acknowledges (or, with `by` null, un-acknowledges) the alert's open episode: repeats stop until
 * it ends. False when no episode is open.
 */
export async function acknowledge(
  sql: Sql,
  alertId: string,
  ack: { by: string; note: string | null; at: Date } | null,
): Promise<boolean> {
  const rows = await sql`
    update alert_episodes e
    set acknowledged_at = ${ack?.at ?? null}, acknowledged_by = ${ack?.by ?? null},
        ack_note = ${ack?.note ?? null}
    from alerts a
    where a.id = ${alertId} and e.id = a.episode_id and e.ended_at is null
    returning e.id`;
  return rows.length > 0;
}

/** How many alerts are in each state (every state present, 0 when none). */
export async function alertStateCounts(sql: Sql): Promise<Record<AlertState, number>> {
  const rows = await sql<{ state: AlertState; n: number }[]>`
    select state, count(*)::int as n from alerts group by state`;
  const counts = Object.fromEntries(ALERT_STATES.map((s) => [s, 0])) as Record<AlertState, number>;
  for (const r of rows) counts[r.state] = r.n;
  return counts;
}
