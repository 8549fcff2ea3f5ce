/** Alerts, episodes and check history for the status page's tests. */
import type { Sql } from "../db/database.ts";
import { insertAlert, type Severity } from "../alerts/store.ts";
import { recordChecks } from "../uptime/store.ts";
import { createUser } from "../users/store.ts";

/** What must never reach the public page: the condition's URL and a private label. */
export const SECRET_URL = "https://internal.example.com/secret-health-path";
export const SECRET_LABEL = "team-secret-label";

export async function owner(sql: Sql, now: Date, email = "owner@example.com") {
  const { user } = await createUser(sql, { email, name: "Owner", role: "user", now });
  return user.id;
}

export interface AlertSpec {
  name: string;
  public?: boolean;
  group?: string;
  state?: "ok" | "pending" | "firing" | "error";
  severity?: Severity;
}

/** An alert with a condition naming SECRET_URL; `state` set as the evaluator would. */
export async function makeAlert(sql: Sql, userId: string, spec: AlertSpec, now: Date) {
  const alert = await insertAlert(sql, {
    user_id: userId,
    name: spec.name,
    condition: {
      capability: "http.check",
      args: { url: SECRET_URL },
      path: "status",
      op: "!=",
      threshold: 200,
    },
    channels: { inapp: true, email: false },
    interval_seconds: 60,
    repeat_interval_seconds: 3600,
    channels_from_policy: false,
    repeat_interval_from_policy: false,
    enabled: true,
    failure_threshold: 1,
    success_threshold: 1,
    error_threshold: 3,
    notify_on_resolved: true,
    labels: {
      team: SECRET_LABEL,
      ...(spec.group === undefined ? {} : { group: spec.group }),
    },
    severity: spec.severity ?? "warning",
    public: spec.public ?? true,
  }, now);
  if (spec.state && spec.state !== "ok") {
    await sql`update alerts set state = ${spec.state}, state_since = ${now} where id = ${alert.id}`;
  }
  return alert.id;
}

/** An open (firing) episode since `startedAt`; the alert fires. */
export async function openEpisode(sql: Sql, alertId: string, startedAt: Date) {
  const id = crypto.randomUUID();
  await sql`
    insert into alert_episodes (id, alert_id, user_id, started_at, notified)
    select ${id}, id, user_id, ${startedAt}, true from alerts where id = ${alertId}`;
  await sql`
    update alerts set state = 'firing', state_since = ${startedAt}, episode_id = ${id}
    where id = ${alertId}`;
  return id;
}

export async function closedEpisode(sql: Sql, alertId: string, startedAt: Date, endedAt: Date) {
  const id = crypto.randomUUID();
  await sql`
    insert into alert_episodes (id, alert_id, user_id, started_at, ended_at, notified)
    select ${id}, id, user_id, ${startedAt}, ${endedAt}, true from alerts where id = ${alertId}`;
  return id;
}

/** `count` evaluations of an alert at `at` (a second apart), `failures` of them failed. */
export async function checks(
  sql: Sql,
  alertId: string,
  at: Date,
  count: number,
  failures = 0,
  durationMs = 100,
) {
  await recordChecks(
    sql,
    Array.from({ length: count }, (_, i) => ({
      alert_id: alertId,
      at: new Date(at.getTime() + i * 1000),
      ok: i >= failures,
      value: 200,
      duration_ms: durationMs,
      error: null,
    })),
  );
}
