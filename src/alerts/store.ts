/** Alerts in PostgreSQL. */
import type postgres from "postgres";
import type { Sql } from "../db/database.ts";
import type { Cursor } from "../http/pagination.ts";
import type { Secrets } from "../security/secrets.ts";
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

export type StoredChannels = Omit<Channels, "webhook"> & { webhook?: StoredWebhook | null };

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

export interface Alert {
  id: string;
  user_id: string;
  name: string;
  condition: Condition;
  channels: StoredChannels;
  interval_seconds: number;
  cooldown_seconds: number;
  enabled: boolean;
  last_fired_at: Date | null;
  last_evaluated_at: Date | null;
  next_eval_at: Date;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = (sql: Sql) =>
  sql`id, user_id, name, condition, channels, interval_seconds, cooldown_seconds, enabled,
      last_fired_at, last_evaluated_at, next_eval_at, created_at, updated_at`;

const json = (sql: Sql, value: unknown) => sql.json(value as postgres.JSONValue);

export async function insertAlert(
  sql: Sql,
  alert: Pick<
    Alert,
    | "user_id"
    | "name"
    | "condition"
    | "channels"
    | "interval_seconds"
    | "cooldown_seconds"
    | "enabled"
  >,
  now: Date,
): Promise<Alert> {
  const [row] = await sql<Alert[]>`
    insert into alerts (user_id, name, condition, channels, interval_seconds, cooldown_seconds,
                        enabled, next_eval_at, created_at, updated_at)
    values (${alert.user_id}, ${alert.name}, ${json(sql, alert.condition)}, ${
    json(sql, alert.channels)
  },
            ${alert.interval_seconds}, ${alert.cooldown_seconds}, ${alert.enabled}, ${now}, ${now}, ${now})
    returning ${COLUMNS(sql)}`;
  return row;
}

/**
 * Inserts an alert unless its user already has `max` (MAX_ALERTS_PER_USER): undefined then.
 * The user's row lock makes concurrent creates count one after the other.
 */
export async function insertAlertCapped(
  sql: Sql,
  alert: Parameters<typeof insertAlert>[1],
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
  const [row] = await sql<Alert[]>`
    select ${COLUMNS(sql)} from alerts
    where id = ${id} ${userId === undefined ? sql`` : sql`and user_id = ${userId}`}`;
  return row;
}

export async function listAlerts(
  sql: Sql,
  userId: string | undefined,
  limit: number,
  after?: Cursor,
) {
  return await sql<Alert[]>`
    select ${COLUMNS(sql)} from alerts
    where true
      ${userId === undefined ? sql`` : sql`and user_id = ${userId}`}
      ${after ? sql`and (created_at, id) < (${after.at}, ${after.id})` : sql``}
    order by created_at desc, id desc limit ${limit}`;
}

export async function updateAlert(
  sql: Sql,
  id: string,
  changes: Partial<
    Pick<
      Alert,
      "name" | "condition" | "channels" | "interval_seconds" | "cooldown_seconds" | "enabled"
    >
  >,
  now: Date,
): Promise<Alert | undefined> {
  const set = {
    ...changes,
    ...(changes.condition ? { condition: json(sql, changes.condition) } : {}),
    ...(changes.channels ? { channels: json(sql, changes.channels) } : {}),
    updated_at: now,
    // A changed rule is evaluated at the next tick.
    next_eval_at: now,
  };
  const [row] = await sql<Alert[]>`
    update alerts set ${sql(set as Record<string, unknown>, ...Object.keys(set))}
    where id = ${id} returning ${COLUMNS(sql)}`;
  return row;
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
  return await sql<Alert[]>`
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
    returning ${sql`a.id, a.user_id, a.name, a.condition, a.channels, a.interval_seconds,
      a.cooldown_seconds, a.enabled, a.last_fired_at, a.last_evaluated_at, a.next_eval_at,
      a.created_at, a.updated_at`}`;
}

// ---- re-encryption (src/security/reencrypt.ts) ----------------------------------------------

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
