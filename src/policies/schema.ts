/**
 * A user's notification policy: for each severity, which of an alert's channels to use, how often
 * to repeat while an episode fires, and optionally a time window (days of the week, hours from–to,
 * an IANA time zone) outside which that severity's notifications wait until it opens.
 *
 * `PUT` replaces the policy: a severity left out takes its default; a severity given must say
 * all three (`window: null` for "any time"). A window without `time_zone` is in the policy's.
 */
import { z } from "@hono/zod-openapi";
import { type Channel, CHANNELS } from "../delivery/types.ts";

export const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;
export type Day = (typeof DAYS)[number];

const MAX_REPEAT_SECONDS = 30 * 86_400;

/**
 * The canonical name of an IANA time zone (`europe/berlin` → `Europe/Berlin`), or undefined when
 * there is no such zone. `Intl.DateTimeFormat` throws on unknown names; it also takes UTC offsets
 * (`+01:00`), which are not zones (they have no daylight saving time rules), so those are refused.
 */
export function canonicalTimeZone(name: string): string | undefined {
  if (name.length === 0 || name.length > 64 || /^[+\-−]/.test(name.trim())) return undefined;
  try {
    const zone = new Intl.DateTimeFormat("en-US", { timeZone: name }).resolvedOptions().timeZone;
    return /^[+\-]/.test(zone) ? undefined : zone;
  } catch {
    return undefined;
  }
}

export const TimeZoneSchema = z.string().transform((name, ctx) => {
  const zone = canonicalTimeZone(name);
  if (zone === undefined) {
    ctx.addIssue({
      code: "custom",
      message: `"${name.slice(0, 64)}" is not an IANA time zone (such as Europe/Berlin or UTC)`,
    });
    return z.NEVER;
  }
  return zone;
}).openapi({ type: "string", example: "Europe/Berlin", description: "An IANA time zone" });

const FROM = /^([01]\d|2[0-3]):[0-5]\d$/;
const TO = /^(([01]\d|2[0-3]):[0-5]\d|24:00)$/;

/** Minutes after local midnight of "HH:MM" ("24:00": 1440). */
export function minutesOf(hhmm: string): number {
  const [h, m] = hhmm.split(":").map(Number);
  return h * 60 + m;
}

const unique = <T>(values: T[]) => new Set(values).size === values.length;
const isObject = (payload: { value: unknown }) =>
  typeof payload.value === "object" && payload.value !== null;

export const WindowInputSchema = z.object({
  days: z.array(z.enum(DAYS)).min(1, "name at least one day").max(7)
    .refine(unique, "each day at most once").openapi({
      example: ["mon", "tue", "wed", "thu", "fri"],
    }),
  from: z.string().regex(FROM, "must be HH:MM, from 00:00 to 23:59").openapi({ example: "09:00" }),
  to: z.string().regex(TO, "must be HH:MM, from 00:01 to 24:00").openapi({
    example: "17:00",
    description: "Exclusive; after `from` (a window lies within one day; 24:00 is midnight)",
  }),
  time_zone: TimeZoneSchema.optional().openapi({
    description: "Where the hours are read (default: the policy's time_zone)",
  }),
}).strict().check(z.superRefine((w, ctx) => {
  if (
    typeof w.from === "string" && FROM.test(w.from) && typeof w.to === "string" &&
    TO.test(w.to) && minutesOf(w.to) <= minutesOf(w.from)
  ) {
    ctx.addIssue({
      code: "custom",
      path: ["to"],
      message: "must be after from (a window lies within one day; 24:00 is midnight)",
    });
  }
  // Runs whatever else is wrong, so that a 422 lists every problem at once.
}, { when: isObject }));

export type WindowInput = z.output<typeof WindowInputSchema>;

export const ChannelChoiceSchema = z.union([
  z.literal("all"),
  z.array(z.enum(CHANNELS)).min(1, 'name at least one channel (or "all")').max(CHANNELS.length)
    .refine(unique, "each channel at most once"),
]).openapi({
  description: '"all" the alert\'s channels, or those of the list the alert has configured ' +
    "(when it has none of them: in-app)",
  example: ["inapp", "pagerduty"],
});

export type ChannelChoice = "all" | Channel[];

export const SeverityPolicySchema = z.object({
  channels: ChannelChoiceSchema,
  repeat_interval_seconds: z.number().int().min(0).max(MAX_REPEAT_SECONDS).openapi({
    description: "While an episode fires, a reminder this often (0: none)",
  }),
  window: WindowInputSchema.nullable().openapi({
    description: "When this severity may notify; outside it, notifications wait until it opens " +
      "(null: any time)",
  }),
}).strict();

export type SeverityPolicy = z.output<typeof SeverityPolicySchema>;

export interface Policy {
  time_zone: string;
  critical: SeverityPolicy;
  warning: SeverityPolicy;
  info: SeverityPolicy;
}

const WEEKDAYS: Day[] = ["mon", "tue", "wed", "thu", "fri"];

/** Like the seeds' Alertmanager routes: critical pages at once, info waits for business hours. */
export const DEFAULT_POLICY: Policy = {
  time_zone: "UTC",
  critical: { channels: "all", repeat_interval_seconds: 30 * 60, window: null },
  warning: { channels: "all", repeat_interval_seconds: 2 * 3600, window: null },
  info: {
    channels: "all",
    repeat_interval_seconds: 12 * 3600,
    window: { days: WEEKDAYS, from: "09:00", to: "17:00" },
  },
};

export const PolicyInputSchema = z.object({
  time_zone: TimeZoneSchema.optional().openapi({
    description: "Your time zone: windows without their own are read in it (default UTC)",
  }),
  critical: SeverityPolicySchema.optional(),
  warning: SeverityPolicySchema.optional(),
  info: SeverityPolicySchema.optional(),
}).strict().transform((input): Policy => ({
  time_zone: input.time_zone ?? DEFAULT_POLICY.time_zone,
  critical: input.critical ?? DEFAULT_POLICY.critical,
  warning: input.warning ?? DEFAULT_POLICY.warning,
  info: input.info ?? DEFAULT_POLICY.info,
})).openapi("NotificationPolicyInput", {
  description: "A severity left out takes its default; one given says all of its fields",
});

const WindowSchema = z.object({
  days: z.array(z.enum(DAYS)),
  from: z.string(),
  to: z.string(),
  time_zone: z.string().optional(),
});

export const PolicySchema = z.object({
  time_zone: z.string(),
  critical: SeverityPolicySchema.extend({ window: WindowSchema.nullable() }),
  warning: SeverityPolicySchema.extend({ window: WindowSchema.nullable() }),
  info: SeverityPolicySchema.extend({ window: WindowSchema.nullable() }),
});
