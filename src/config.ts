/**
 * The whole environment of vigil, parsed by one zod schema. Nothing else in the code reads
 * `Deno.env`: every module receives the `Config` it needs.
 */
import { z } from "zod";

const bool = z
  .enum(["true", "false", "1", "0", "yes", "no"], { error: "must be true or false" })
  .transform((v) => v === "true" || v === "1" || v === "yes");

const int = (min: number, max: number) =>
  z.coerce.number({ error: "must be a number" }).int("must be a whole number")
    .min(min, `must be at least ${min}`).max(max, `must be at most ${max}`);

const url = z.url({ error: "must be an absolute http(s) URL" }).refine(
  (v) => /^https?:\/\//.test(v),
  "must be an absolute http(s) URL",
);

const emailList = z.string().transform((v, ctx) => {
  const emails = v.split(",").map((s) => s.trim()).filter(Boolean);
  for (const email of emails) {
    if (!z.email().safeParse(email).success) {
      ctx.addIssue({ code: "custom", message: `"${email}" is not an email address` });
    }
  }
  return emails;
});

const EnvSchema = z.object({
  VIGIL_ENV: z.enum(["development", "test", "production"]).default("production"),
  PORT: int(0, 65535).default(8000),
  HOST: z.string().min(1).default("127.0.0.1"),
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// connection URL")
    .optional(),
  DATA_DIR: z.string().min(1).default(".data"),
  DB_POOL_SIZE: int(1, 100).default(10),
  LOG_LEVEL: z.enum(["debug", "info", "warning", "error"]).default("info"),
  ADMIN_API_KEY: z.string().regex(
    /^vgl_[A-Za-z0-9_-]{32,}$/,
    "must be vgl_ followed by at least 32 characters",
  ).optional(),
  METRICS_TOKEN: z.string().min(16, "must be at least 16 characters").optional(),
  SHUTDOWN_TIMEOUT_MS: int(0, 120_000).default(10_000),
  AUTH_CACHE_SECONDS: int(0, 3600).default(10),

  OTEL_EXPORTER_OTLP_ENDPOINT: url.optional(),
  OTEL_SERVICE_NAME: z.string().min(1).default("vigil"),
  OTEL_TRACES_SAMPLER_ARG: z.coerce.number({ error: "must be a number" }).min(0).max(1).default(1),

  CB_FAILURE_THRESHOLD: int(1, 1000).default(5),
  CB_OPEN_SECONDS: int(1, 86_400).default(60),
  ALLOW_PRIVATE_TARGETS: bool.optional(),
  PROMETHEUS_URL: url.optional(),
  PATTERNS_DIR: z.string().min(1).default("patterns"),
  PATTERN_RUN_RETENTION_DAYS: int(1, 3650).default(7),

  RESEND_API_KEY: z.string().min(1).optional(),
  RESEND_BASE_URL: url.optional(),
  RESEND_TIMEOUT_MS: int(100, 120_000).default(10_000),
  RESEND_RATE_PER_SECOND: z.coerce.number({ error: "must be a number" }).positive().max(1000)
    .default(2),
  ALERT_EMAIL_FROM: z.string().min(3).default("vigil <alerts@vigil.local>"),
  ALERTMANAGER_WEBHOOK_TOKEN: z.string().min(16, "must be at least 16 characters").optional(),
  ALERTMANAGER_RECIPIENTS: emailList.optional(),
});

export type Env = z.input<typeof EnvSchema>;
type Parsed = z.output<typeof EnvSchema>;

export type Config = Omit<Parsed, "ALLOW_PRIVATE_TARGETS" | "ALERTMANAGER_RECIPIENTS"> & {
  /** Loopback and private addresses may be called by checks, webhooks and remote agents. */
  ALLOW_PRIVATE_TARGETS: boolean;
  ALERTMANAGER_RECIPIENTS: string[];
};

export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * Parses an environment; throws a ConfigError whose message is one line naming the variable.
 * An empty variable counts as unset (compose files pass `FOO=` for "not configured").
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const set = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ""),
  );
  const result = EnvSchema.safeParse(set);
  if (!result.success) {
    const issue = result.error.issues[0];
    const name = String(issue.path[0] ?? "environment");
    const got = env[name];
    const shown = got === undefined
      ? ""
      : ` (got ${JSON.stringify(secretLike(name) ? "***" : got)})`;
    throw new ConfigError(`invalid configuration: ${name} ${issue.message}${shown}`);
  }
  const parsed = result.data;
  return {
    ...parsed,
    ALLOW_PRIVATE_TARGETS: parsed.ALLOW_PRIVATE_TARGETS ?? parsed.VIGIL_ENV !== "production",
    ALERTMANAGER_RECIPIENTS: parsed.ALERTMANAGER_RECIPIENTS ?? [],
  };
}

function secretLike(name: string): boolean {
  return /KEY|TOKEN|SECRET|PASSWORD|DATABASE_URL/.test(name);
}
