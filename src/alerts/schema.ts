/**
 * An alert: a condition (a pattern or a capability, a path into its result, an operator and a
 * threshold), how often to evaluate it, the cooldown between firings, and the channels.
 */
import { z } from "@hono/zod-openapi";
import { OPERATORS } from "../agents/builtin/data.ts";
import { PatternIdSchema } from "../patterns/definition.ts";

const PATH = /^([A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*)?$/;
const Scalar = z.union([z.number(), z.string(), z.boolean(), z.null()]);

export const ConditionSchema = z.object({
  pattern_id: PatternIdSchema.optional().openapi({
    description: "Run this pattern…",
    example: "service-health",
  }),
  inputs: z.record(z.string(), z.unknown()).optional().openapi({
    description: "…with these inputs",
  }),
  capability: z.string().min(1).max(100).optional().openapi({
    description: "Or call this capability…",
  }),
  args: z.record(z.string(), z.unknown()).optional().openapi({
    description: "…with these arguments",
  }),
  path: z.string().max(500).regex(PATH, "must be a dotted path such as up or series.0.value")
    .openapi({
      description:
        "Where the value is: in a pattern's outputs, or in a capability's result ('' = all of it)",
      example: "up",
    }),
  op: z.enum(OPERATORS),
  threshold: Scalar.openapi({ example: false }),
}).strict().check(z.superRefine((c, ctx) => {
  if ((c.pattern_id === undefined) === (c.capability === undefined)) {
    ctx.addIssue({
      code: "custom",
      path: [],
      message: "needs exactly one of pattern_id or capability",
    });
  }
  if (c.pattern_id !== undefined && c.args !== undefined) {
    ctx.addIssue({ code: "custom", path: ["args"], message: "a pattern takes inputs, not args" });
  }
  if (c.capability !== undefined && c.inputs !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["inputs"],
      message: "a capability takes args, not inputs",
    });
  }
  if ([">", ">=", "<", "<="].includes(c.op) && typeof c.threshold !== "number") {
    ctx.addIssue({ code: "custom", path: ["threshold"], message: `must be a number for ${c.op}` });
  }
  // Run even when other fields are wrong, so that a 422 lists every problem at once.
}, { when: (payload) => typeof payload.value === "object" && payload.value !== null }))
  .openapi("AlertCondition");

export type Condition = z.output<typeof ConditionSchema>;

export const WebhookSchema = z.object({
  url: z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }),
  secret: z.string().regex(
    /^whsec_[A-Za-z0-9+/]{32,}={0,2}$/,
    "must be whsec_ followed by base64 (24+ bytes)",
  )
    .optional().openapi({
      description: "Standard Webhooks signing secret; generated when omitted",
    }),
}).strict();

/** What GET shows of a stored secret ("…abcd"): never a value to store. */
const notMasked = (v: string) => !v.includes("…") && !v.includes("%E2%80%A6");
const KEEP = "leave it out to keep the stored one";

export const SlackSchema = z.object({
  webhook_url: z.url({ protocol: /^https$/, error: "must be an https URL" }).max(2048)
    .refine(notMasked, `is the masked form shown by GET, not a URL: ${KEEP}`)
    .optional().openapi({
      description: "Slack incoming-webhook URL (https://hooks.slack.com/services/…), a secret: " +
        `stored encrypted, shown masked; required when Slack is first set, ${KEEP}`,
    }),
}).strict();

export const PagerDutySchema = z.object({
  routing_key: z.string().regex(
    /^[A-Za-z0-9]{32}$/,
    `must be the 32-character integration key of an Events API v2 integration (${KEEP})`,
  ).optional().openapi({
    description: "Events API v2 integration (routing) key, a secret: stored encrypted, shown " +
      `masked; required when PagerDuty is first set, ${KEEP}`,
  }),
}).strict();

export const ChannelsSchema = z.object({
  inapp: z.boolean().default(true),
  email: z.boolean().default(false),
  webhook: WebhookSchema.nullable().optional(),
  slack: SlackSchema.nullable().optional(),
  pagerduty: PagerDutySchema.nullable().optional(),
}).strict().refine(
  (c) => c.inapp || c.email || c.webhook || c.slack || c.pagerduty,
  "at least one channel must be on",
).openapi("AlertChannels");

export type Channels = {
  inapp: boolean;
  email: boolean;
  webhook?: { url: string; secret: string } | null;
  slack?: { webhook_url?: string } | null;
  pagerduty?: { routing_key?: string } | null;
};

const LABEL_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,99}$/;

export const LabelsSchema = z.record(
  z.string().regex(LABEL_NAME, "label names are [A-Za-z_][A-Za-z0-9_]*, at most 100 characters"),
  z.string().max(256, "label values are at most 256 characters"),
).refine((l) => Object.keys(l).length <= 20, "at most 20 labels").openapi({
  description: 'For silences and routing, e.g. {"service": "checkout", "team": "web"}',
});

export const SEVERITIES = ["critical", "warning", "info"] as const;
const threshold = (what: string) => z.number().int().min(1).max(100).openapi({ description: what });

export const AlertFields = {
  name: z.string().trim().min(1, "must not be empty").max(200),
  condition: ConditionSchema,
  channels: ChannelsSchema,
  interval_seconds: z.number().int().min(60, "must be at least 60").max(86_400),
  repeat_interval_seconds: z.number().int().min(0).max(30 * 86_400).openapi({
    description: "While an episode fires (and is not acknowledged), a reminder this often; " +
      "0: none. `cooldown_seconds` is accepted as an alias",
  }),
  enabled: z.boolean(),
  failure_threshold: threshold("Matching evaluations in a row before it fires"),
  success_threshold: threshold("Non-matching evaluations in a row before it resolves"),
  error_threshold: threshold("Evaluations in a row that fail before the `error` state"),
  notify_on_resolved: z.boolean().openapi({ description: "Send a resolved message" }),
  labels: LabelsSchema,
  severity: z.enum(SEVERITIES),
  public: z.boolean().openapi({
    description: "Shown on the public status page (/status): its name, state and uptime " +
      "(never its condition, value or URL); grouped by its `group` label",
  }),
};

/** `cooldown_seconds`, the name before the lifecycle, still means the repeat interval. */
const withCooldownAlias = <
  T extends { repeat_interval_seconds?: number; cooldown_seconds?: number },
>(
  body: T,
  ctx: z.RefinementCtx,
) => {
  const { cooldown_seconds, repeat_interval_seconds } = body;
  if (
    cooldown_seconds !== undefined && repeat_interval_seconds !== undefined &&
    cooldown_seconds !== repeat_interval_seconds
  ) {
    ctx.addIssue({
      code: "custom",
      path: ["cooldown_seconds"],
      message: "is the old name of repeat_interval_seconds: give one of them",
    });
  }
};
// Run even when other fields are wrong, so that a 422 lists every problem at once.
const isObject = (payload: { value: unknown }) =>
  typeof payload.value === "object" && payload.value !== null;
const cooldownAlias = AlertFields.repeat_interval_seconds.optional().openapi({
  description: "Deprecated alias of repeat_interval_seconds",
});

/**
 * Whether the user's notification policy (src/policies/) chooses the channels (among those
 * configured in `channels`) and gives the repeat interval. Left out: true for what the request
 * does not set (a create without `channels`, a create without a repeat interval), false for what
 * it sets; a PATCH that sets `channels` or a repeat interval makes that explicit.
 */
const PolicyFlags = {
  channels_from_policy: z.boolean().optional().openapi({
    description: "The notification policy chooses, by severity, among the configured channels " +
      "(default: true when `channels` is left out)",
  }),
  repeat_interval_from_policy: z.boolean().optional().openapi({
    description: "The notification policy gives the repeat interval, by severity (default: " +
      "true when no repeat interval is given)",
  }),
};

/** A repeat interval given and `repeat_interval_from_policy: true` say different things. */
const withPolicyFlags = <
  T extends {
    repeat_interval_seconds?: number;
    cooldown_seconds?: number;
    repeat_interval_from_policy?: boolean;
  },
>(
  body: T,
  ctx: z.RefinementCtx,
) => {
  const given = body.repeat_interval_seconds ?? body.cooldown_seconds;
  if (body.repeat_interval_from_policy === true && given !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["repeat_interval_from_policy"],
      message: "the policy's repeat interval and repeat_interval_seconds: give one of them",
    });
  }
};

const DEFAULT_CHANNELS = { inapp: true, email: false };

export const CreateAlertSchema = z.object({
  ...AlertFields,
  channels: ChannelsSchema.optional().openapi({
    description: 'Default {"inapp": true}, chosen among by the notification policy',
  }),
  interval_seconds: AlertFields.interval_seconds.default(60),
  repeat_interval_seconds: AlertFields.repeat_interval_seconds.optional(),
  cooldown_seconds: cooldownAlias,
  enabled: AlertFields.enabled.default(true),
  failure_threshold: AlertFields.failure_threshold.default(1),
  success_threshold: AlertFields.success_threshold.default(1),
  error_threshold: AlertFields.error_threshold.default(3),
  notify_on_resolved: AlertFields.notify_on_resolved.default(true),
  labels: LabelsSchema.default({}),
  severity: AlertFields.severity.default("warning"),
  public: AlertFields.public.default(false),
  user_id: z.uuid().optional().openapi({ description: "Admins only: create it for this user" }),
  ...PolicyFlags,
}).strict().check(
  z.superRefine(withCooldownAlias, { when: isObject }),
  z.superRefine(withPolicyFlags, { when: isObject }),
).transform(({ cooldown_seconds, ...rest }) => {
  const repeat = rest.repeat_interval_seconds ?? cooldown_seconds;
  return {
    ...rest,
    channels: rest.channels ?? DEFAULT_CHANNELS,
    repeat_interval_seconds: repeat ?? 86_400,
    channels_from_policy: rest.channels_from_policy ?? rest.channels === undefined,
    repeat_interval_from_policy: rest.repeat_interval_from_policy ?? repeat === undefined,
  };
}).openapi("CreateAlert");

export const PatchAlertSchema = z.object({
  ...AlertFields,
  cooldown_seconds: cooldownAlias,
  ...PolicyFlags,
})
  .partial().strict().check(
    z.superRefine(withCooldownAlias, { when: isObject }),
    z.superRefine(withPolicyFlags, { when: isObject }),
  ).transform(({ cooldown_seconds, ...rest }) => {
    const repeat = rest.repeat_interval_seconds ?? cooldown_seconds;
    return {
      ...rest,
      ...(repeat === undefined ? {} : { repeat_interval_seconds: repeat }),
      // Setting channels or a repeat interval makes it the alert's own (unless said otherwise).
      ...(rest.channels === undefined || rest.channels_from_policy !== undefined
        ? {}
        : { channels_from_policy: false }),
      ...(repeat === undefined || rest.repeat_interval_from_policy !== undefined
        ? {}
        : { repeat_interval_from_policy: false }),
    };
  }).openapi("PatchAlert");

export function newWebhookSecret(): string {
  return "whsec_" + btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
}
