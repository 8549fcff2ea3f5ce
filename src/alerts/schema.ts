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

export const ChannelsSchema = z.object({
  inapp: z.boolean().default(true),
  email: z.boolean().default(false),
  webhook: WebhookSchema.nullable().optional(),
}).strict().refine((c) => c.inapp || c.email || c.webhook, "at least one channel must be on")
  .openapi("AlertChannels");

export type Channels = {
  inapp: boolean;
  email: boolean;
  webhook?: { url: string; secret: string } | null;
};

export const AlertFields = {
  name: z.string().trim().min(1, "must not be empty").max(200),
  condition: ConditionSchema,
  channels: ChannelsSchema,
  interval_seconds: z.number().int().min(60, "must be at least 60").max(86_400),
  cooldown_seconds: z.number().int().min(0).max(30 * 86_400),
  enabled: z.boolean(),
};

export const CreateAlertSchema = z.object({
  ...AlertFields,
  channels: ChannelsSchema.default({ inapp: true, email: false }),
  interval_seconds: AlertFields.interval_seconds.default(60),
  cooldown_seconds: AlertFields.cooldown_seconds.default(86_400),
  enabled: AlertFields.enabled.default(true),
  user_id: z.uuid().optional().openapi({ description: "Admins only: create it for this user" }),
}).strict().openapi("CreateAlert");

export const PatchAlertSchema = z.object(AlertFields).partial().strict().openapi("PatchAlert");

export function newWebhookSecret(): string {
  return "whsec_" + btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
}
