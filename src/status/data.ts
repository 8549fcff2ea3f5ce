/**
 * The public status page's data: every alert marked `public`, grouped by its `group` label, with
 * its state, a 90-day uptime bar (daily rollups), a 24-hour latency sparkline (hourly rollups),
 * and the incidents (firing episodes) of public alerts. Read in one read-only snapshot with a
 * fixed number of statements, whatever the number of alerts; `routes.ts` caches the result.
 *
 * Nothing private leaves this module: of an alert, only its id, name, `group` label, state and
 * check figures are read into the result.
 */
import type { Config } from "../config.ts";
import type { Queryable, Sql } from "../db/database.ts";
import { percent, type Period, periods, startOfDay, startOfHour } from "../uptime/store.ts";
import {
  type AlertStatus,
  BAR_DAYS,
  type DayUptime,
  DEFAULT_GROUP,
  type HourLatency,
  type Incident,
  type OverallState,
  type PublicAlert,
  SPARK_HOURS,
  type StatusData,
} from "./schema.ts";

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** The page lists this many resolved incidents. */
export const RESOLVED_INCIDENTS = 10;

type AlertState = PublicAlert["state"];

/** How an alert's state reads on the page (always with an icon of its own shape too). */
export const STATUS_OF: Record<AlertState, { status: AlertStatus; text: string }> = {
  ok: { status: "operational", text: "Operational" },
  // Its checks match, but not yet `failure_threshold` times in a row.
  pending: { status: "degraded", text: "Degraded" },
  firing: { status: "down", text: "Down" },
  // Its checks cannot be evaluated: vigil does not know.
  error: { status: "unknown", text: "Unknown" },
};

export const OVERALL_TEXT: Record<OverallState, string> = {
  operational: "All systems operational",
  degraded: "Degraded performance",
  partial_outage: "Partial outage",
  major_outage: "Major outage",
};

/**
 * The overall state, from the states of the public alerts (the first rule that holds):
 * 1. a `critical` alert is firing → major outage;
 * 2. any alert is firing → partial outage;
 * 3. any alert is pending (failing, not yet confirmed) or in error (cannot be checked) → degraded;
 * 4. otherwise (every alert ok, or no public alert at all) → all systems operational.
 */
export function overallState(
  alerts: readonly { state: AlertState; severity: string }[],
): OverallState {
  if (alerts.some((a) => a.state === "firing" && a.severity === "critical")) return "major_outage";
  if (alerts.some((a) => a.state === "firing")) return "partial_outage";
  if (alerts.some((a) => a.state === "pending" || a.state === "error")) return "degraded";
  return "operational";
}

const round1 = (ms: number) => Math.round(ms * 10) / 10;
const seconds = (from: Date, to: Date) =>
  Math.max(0, Math.floor((to.getTime() - from.getTime()) / 1000));

interface AlertRow {
  id: string;
  name: string;
  group: string | null;
  state: AlertState;
  severity: string;
  state_since: Date;
}

interface EpisodeRow {
  alert_id: string;
  alert_name: string;
  group: string | null;
  started_at: Date;
  ended_at: Date | null;
}

const groupOf = (group: string | null) => group?.trim() || DEFAULT_GROUP;

/** The first day of the bar and the first hour of the sparkline, for `now`. */
const firstDay = (now: Date) => new Date(startOfDay(now).getTime() - (BAR_DAYS - 1) * DAY_MS);
const firstHour = (now: Date) => new Date(startOfHour(now).getTime() - (SPARK_HOURS - 1) * HOUR_MS);

/** The 90 UTC days ending today, oldest first; days without a rollup have no data. */
export function dayCells(rollups: readonly Period[], now: Date): DayUptime[] {
  const byStart = new Map(rollups.map((p) => [p.start.getTime(), p]));
  const first = firstDay(now).getTime();
  return Array.from({ length: BAR_DAYS }, (_, i) => {
    const start = first + i * DAY_MS;
    const p = byStart.get(start);
    return {
      date: new Date(start).toISOString().slice(0, 10),
      evaluations: p?.evaluations ?? 0,
      ok: p?.ok ?? 0,
      uptime_percent: p?.uptime_percent ?? null,
    };
  });
}

/** The 24 hours ending with the current one, oldest first, with their average latency. */
export function hourCells(rollups: readonly Period[], now: Date): HourLatency[] {
  const byStart = new Map(rollups.map((p) => [p.start.getTime(), p]));
  const first = firstHour(now).getTime();
  return Array.from({ length: SPARK_HOURS }, (_, i) => {
    const start = first + i * HOUR_MS;
    const p = byStart.get(start);
    return {
      start: new Date(start).toISOString(),
      evaluations: p?.evaluations ?? 0,
      latency_avg_ms: p?.evaluations ? round1(p.latency_sum_ms / p.evaluations) : null,
    };
  });
}

async function read(sql: Queryable, now: Date) {
  // Pipelined (two round trips): the alerts and their episodes, then the alerts' rollups.
  const [alerts, ongoing, resolved] = await Promise.all([
    sql<AlertRow[]>`
      select id, name, labels->>'group' as group, state, severity, state_since
      from alerts where public
      order by name, id`,
    // Episodes of public alerts only (Alertmanager's have no alert, so never show here).
    sql<EpisodeRow[]>`
      select e.alert_id, a.name as alert_name, a.labels->>'group' as group, e.started_at,
             e.ended_at
      from alert_episodes e join alerts a on a.id = e.alert_id
      where a.public and e.ended_at is null and e.started_at <= ${now}
      order by e.started_at desc, e.id desc`,
    sql<EpisodeRow[]>`
      select e.alert_id, a.name as alert_name, a.labels->>'group' as group, e.started_at,
             e.ended_at
      from alert_episodes e join alerts a on a.id = e.alert_id
      where a.public and e.ended_at is not null and e.ended_at <= ${now}
      order by e.ended_at desc, e.id desc
      limit ${RESOLVED_INCIDENTS}`,
  ]);
  const ids = alerts.map((a) => a.id);
  const [days, hours] = await Promise.all([
    periods(sql, ids, "day", firstDay(now)),
    periods(sql, ids, "hour", firstHour(now)),
  ]);
  return { alerts, days, hours, ongoing, resolved };
}

function incident(e: EpisodeRow, now: Date): Incident {
  return {
    alert_id: e.alert_id,
    alert_name: e.alert_name,
    group: groupOf(e.group),
    started_at: e.started_at.toISOString(),
    ended_at: e.ended_at?.toISOString() ?? null,
    duration_seconds: seconds(e.started_at, e.ended_at ?? now),
  };
}

/**
 * Everything the status page shows at `now`, as plain JSON-ready data (five statements in one
 * read-only snapshot, so the states, bars and incidents agree with each other).
 */
export async function statusData(
  sql: Sql,
  now: Date,
  config: Pick<Config, "STATUS_PAGE_TITLE" | "STATUS_PAGE_DESCRIPTION">,
): Promise<StatusData> {
  const rows = await sql.begin(
    "isolation level repeatable read read only",
    (tx) => read(tx, now),
  );

  const groups = new Map<string, PublicAlert[]>();
  for (const a of rows.alerts) {
    const days = dayCells(rows.days.get(a.id) ?? [], now);
    const hours = hourCells(rows.hours.get(a.id) ?? [], now);
    const evaluations = days.reduce((s, d) => s + d.evaluations, 0);
    const ok = days.reduce((s, d) => s + d.ok, 0);
    const measured = rows.hours.get(a.id) ?? [];
    const hourEvaluations = measured.reduce((s, p) => s + p.evaluations, 0);
    const latencySum = measured.reduce((s, p) => s + p.latency_sum_ms, 0);
    const { status, text } = STATUS_OF[a.state];
    const group = groupOf(a.group);
    const list = groups.get(group) ?? [];
    list.push({
      id: a.id,
      name: a.name,
      group,
      state: a.state,
      status,
      status_text: text,
      since: a.state_since.toISOString(),
      uptime_90d_percent: percent(ok, evaluations),
      days,
      latency_24h: hours,
      latency_24h_avg_ms: hourEvaluations ? round1(latencySum / hourEvaluations) : null,
    });
    groups.set(group, list);
  }

  const overall = overallState(rows.alerts);
  return {
    title: config.STATUS_PAGE_TITLE,
    description: config.STATUS_PAGE_DESCRIPTION ?? null,
    generated_at: now.toISOString(),
    overall: { state: overall, text: OVERALL_TEXT[overall] },
    groups: [...groups.entries()]
      .sort(([a], [b]) => a.localeCompare(b, "en"))
      .map(([name, alerts]) => ({ name, alerts })),
    incidents: {
      ongoing: rows.ongoing.map((e) => incident(e, now)),
      resolved: rows.resolved.map((e) => incident(e, now)),
    },
  };
}
