/**
 * What the public status page shows, as `GET /status.json` answers it and `/status` renders it.
 * Only what may be public: an alert's id (for its badge), name, `group` label, state and uptime;
 * never its condition, value, threshold, URLs, other labels, severity or owner.
 */
import { z } from "@hono/zod-openapi";

/** How many UTC days the uptime bar covers (today and the 89 before). */
export const BAR_DAYS = 90;
/** How many hours the latency sparkline covers (this one and the 23 before). */
export const SPARK_HOURS = 24;
/** Alerts without a `group` label are shown in this group. */
export const DEFAULT_GROUP = "Services";

export const ALERT_STATUSES = ["operational", "degraded", "down", "unknown"] as const;
export type AlertStatus = typeof ALERT_STATUSES[number];

export const OVERALL_STATES = [
  "operational",
  "degraded",
  "partial_outage",
  "major_outage",
] as const;
export type OverallState = typeof OVERALL_STATES[number];

const Iso = z.string().openapi({ format: "date-time" });

const DaySchema = z.object({
  date: z.string().openapi({ description: "The UTC day (YYYY-MM-DD)", example: "2026-01-01" }),
  evaluations: z.number().int(),
  ok: z.number().int(),
  uptime_percent: z.number().nullable().openapi({ description: "null: no data that day" }),
});

const HourSchema = z.object({
  start: Iso,
  evaluations: z.number().int(),
  latency_avg_ms: z.number().nullable().openapi({ description: "null: no data that hour" }),
});

const PublicAlertSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  group: z.string(),
  state: z.enum(["ok", "pending", "firing", "error"]),
  status: z.enum(ALERT_STATUSES),
  status_text: z.string().openapi({ example: "Operational" }),
  since: Iso.openapi({ description: "When the alert entered its state" }),
  uptime_90d_percent: z.number().nullable(),
  days: z.array(DaySchema).openapi({ description: `${BAR_DAYS} UTC days, oldest first` }),
  latency_24h: z.array(HourSchema).openapi({
    description: `${SPARK_HOURS} hours, oldest first: average check latency per hour`,
  }),
  latency_24h_avg_ms: z.number().nullable(),
});

const IncidentSchema = z.object({
  alert_id: z.uuid(),
  alert_name: z.string(),
  group: z.string(),
  started_at: Iso,
  ended_at: Iso.nullable().openapi({ description: "null: ongoing" }),
  duration_seconds: z.number().int(),
});

export const StatusDataSchema = z.object({
  title: z.string(),
  description: z.string().nullable(),
  generated_at: Iso,
  overall: z.object({
    state: z.enum(OVERALL_STATES),
    text: z.string().openapi({ example: "All systems operational" }),
  }),
  groups: z.array(z.object({ name: z.string(), alerts: z.array(PublicAlertSchema) })),
  incidents: z.object({
    ongoing: z.array(IncidentSchema).openapi({ description: "Most recent first" }),
    resolved: z.array(IncidentSchema).openapi({
      description: "The last 10, most recently ended first",
    }),
  }),
}).openapi("StatusPage");

export type StatusData = z.output<typeof StatusDataSchema>;
export type PublicAlert = StatusData["groups"][number]["alerts"][number];
export type Incident = StatusData["incidents"]["ongoing"][number];
export type DayUptime = PublicAlert["days"][number];
export type HourLatency = PublicAlert["latency_24h"][number];
