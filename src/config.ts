/**
 * The whole environment of vigil, parsed by one zod schema. Nothing else in the code reads
 * `Deno.env`: every module receives the `Config` it needs.
 */
import { z } from "zod";
import { DEFAULT_BACKOFF, parseDurations, sendBudgetMs } from "./delivery/schedule.ts";

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

/** "5m,30m,2h": 1 to 10 delays of 1 s to 7 days each. */
const durationList = z.string().transform((v, ctx) => {
  try {
    const delays = parseDurations(v);
    if (delays.length > 10) throw new Error("must list at most 10 delays");
    const bad = delays.find((ms) => ms < 1000 || ms > 7 * 86_400_000);
    if (bad !== undefined) throw new Error("must list delays between 1s and 7d");
    return delays;
  } catch (error) {
    ctx.addIssue({ code: "custom", message: (error as Error).message });
    return z.NEVER;
  }
});

/** A share from 0 to 1 (a sampling rate). */
const ratio = z.coerce.number({ error: "must be a number from 0 to 1" })
  .min(0, "must be a number from 0 to 1").max(1, "must be a number from 0 to 1");

/** A percentage strictly between 0 and 100. */
const percentTarget = (fallback: number) =>
  z.coerce.number({ error: "must be a percentage" }).gt(0, "must be above 0")
    .lt(100, "must be below 100").default(fallback);

const emailList = z.string().transform((v, ctx) => {
  const emails = v.split(",").map((s) => s.trim()).filter(Boolean);
  for (const email of emails) {
    if (!z.email().safeParse(email).success) {
      ctx.addIssue({ code: "custom", message: `"${email}" is not an email address` });
    }
  }
  return emails;
});

/** 32 bytes from base64 (standard or URL-safe, padded or not) or hex; throws otherwise. */
export function parseSecretKey(text: string): Uint8Array {
  const s = text.trim();
  let bytes: Uint8Array | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(s)) {
    bytes = new Uint8Array(s.match(/../g)!.map((h) => parseInt(h, 16)));
  } else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(s)) {
    try {
      const raw = atob(s.replaceAll("-", "+").replaceAll("_", "/"));
      bytes = Uint8Array.from(raw, (c) => c.charCodeAt(0));
    } catch {
      bytes = undefined;
    }
  }
  if (bytes?.length !== 32) {
    throw new Error("must be 32 bytes in base64 or hex (openssl rand -base64 32)");
  }
  return bytes;
}

/** A key for secrets at rest (src/security/secrets.ts). */
const secretKey = z.string().transform((v, ctx) => {
  try {
    return parseSecretKey(v);
  } catch (error) {
    ctx.addIssue({ code: "custom", message: (error as Error).message });
    return z.NEVER;
  }
});

/** Comma-separated keys, each as VIGIL_SECRET_KEY; the error names the position only. */
const secretKeyList = z.string().transform((v, ctx) => {
  const keys: Uint8Array[] = [];
  for (const [i, item] of v.split(",").map((s) => s.trim()).filter(Boolean).entries()) {
    try {
      keys.push(parseSecretKey(item));
    } catch (error) {
      ctx.addIssue({ code: "custom", message: `item ${i + 1} ${(error as Error).message}` });
      return z.NEVER;
    }
  }
  return keys;
});

const EnvSchema = z.object({
  VIGIL_ENV: z.enum(["development", "test", "production"]).default("production"),
  PORT: int(0, 65535).default(8000),
  HOST: z.string().min(1).default("127.0.0.1"),
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// connection URL")
    .optional(),
  DATA_DIR: z.string().min(1).default(".data"),
  DB_POOL_SIZE: int(1, 100).default(10),
  // How long vigil waits for the database (connecting, a ping) before it counts as unavailable.
  DB_TIMEOUT_MS: int(500, 120_000).default(5000),
  // "warn" is what every log line says of itself ("level":"warn"): both are accepted.
  LOG_LEVEL: z.preprocess(
    (v) => (v === "warn" ? "warning" : v),
    z.enum(["debug", "info", "warning", "error"], {
      error: "must be debug, info, warn (or warning) or error",
    }),
  ).default("info"),
  ADMIN_API_KEY: z.string().regex(
    /^vgl_[A-Za-z0-9_-]{32,}$/,
    "must be vgl_ followed by at least 32 characters",
  ).optional(),
  METRICS_TOKEN: z.string().min(16, "must be at least 16 characters").optional(),
  METRICS_PUBLIC: bool.optional(),
  // Long enough for one send of every channel (they go out side by side) and its record.
  SHUTDOWN_TIMEOUT_MS: int(1000, 600_000).default(30_000),
  AUTH_CACHE_SECONDS: int(0, 3600).default(10),
  RATE_LIMIT_PER_MINUTE: int(1, 100_000_000).default(1200),
  AUTH_FAILURES_PER_MINUTE: int(1, 100_000).default(30),

  OTEL_EXPORTER_OTLP_ENDPOINT: url.optional(),
  OTEL_SERVICE_NAME: z.string().min(1).default("vigil"),
  // The OpenTelemetry SDK's standard sampler names; the ratio applies to the *traceidratio ones.
  OTEL_TRACES_SAMPLER: z.enum([
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
  ]).default("parentbased_traceidratio"),
  // Defaults to 1 (every trace) outside production and 0.1 in production (the seed's 100 % / 10 %).
  OTEL_TRACES_SAMPLER_ARG: ratio.optional(),
  // Error tracking (optional): without a DSN, @sentry/deno is never loaded (README).
  SENTRY_DSN: url.optional(),
  SENTRY_TRACES_SAMPLE_RATE: ratio.default(0),
  // Defaults to VIGIL_ENV.
  SENTRY_ENVIRONMENT: z.string().min(1).max(64).optional(),

  CB_FAILURE_THRESHOLD: int(1, 1000).default(5),
  CB_OPEN_SECONDS: int(1, 86_400).default(60),
  ALLOW_PRIVATE_TARGETS: bool.optional(),
  PROMETHEUS_URL: url.optional(),
  PATTERNS_DIR: z.string().min(1).default("patterns"),
  PATTERN_RUN_RETENTION_DAYS: int(1, 3650).default(7),
  // Input and run limits (issue 15): a hostile body or pattern gets a 4xx or an error run.
  MAX_JSON_DEPTH: int(2, 1000).default(32),
  PATTERN_MAX_RENDER_BYTES: int(1024, 256 * 1024 * 1024).default(1024 * 1024),
  PATTERN_RUN_TIMEOUT_MS: int(10, 3_600_000).default(120_000),
  PATTERN_MAX_RESULT_BYTES: int(1024, 256 * 1024 * 1024).default(1024 * 1024),
  MAX_ALERTS_PER_USER: int(1, 1_000_000).default(1000),
  MAX_PATTERNS: int(1, 1_000_000).default(10_000),

  RESEND_API_KEY: z.string().min(1).optional(),
  RESEND_BASE_URL: url.optional(),
  RESEND_TIMEOUT_MS: int(10, 120_000).default(10_000),
  WEBHOOK_TIMEOUT_MS: int(10, 120_000).default(10_000),
  // PagerDuty Events API v2 (the channel `pagerduty`); tests point it at a local fake.
  PAGERDUTY_EVENTS_URL: url.default("https://events.pagerduty.com/v2/enqueue"),
  DELIVERY_BACKOFF: durationList.prefault(DEFAULT_BACKOFF),
  DELIVERY_LEASE_SECONDS: int(2, 3600).default(120),
  DELIVERY_BATCH_SIZE: int(1, 1000).default(200),
  RESEND_RATE_PER_SECOND: z.coerce.number({ error: "must be a number" }).positive().max(1000)
    .default(2),
  ALERT_EMAIL_FROM: z.string().min(3).default("vigil <alerts@vigil.local>"),
  ALERTMANAGER_WEBHOOK_TOKEN: z.string().min(16, "must be at least 16 characters").optional(),
  ALERTMANAGER_RECIPIENTS: emailList.optional(),
  // Alertmanager drops a group answered 413, so its receiver takes more than the API's 1 MiB.
  ALERTMANAGER_MAX_BODY_BYTES: int(1024 * 1024, 256 * 1024 * 1024).default(32 * 1024 * 1024),
  DELIVERY_RETENTION_DAYS: int(1, 3650).default(30),
  // Uptime, SLA and the status page (issue 11).
  CHECK_RESULT_RETENTION_DAYS: int(1, 3650).default(14),
  SLA_PUBLIC: bool.default(true),
  SLA_AVAILABILITY_TARGET: percentTarget(99.5),
  SLA_ERROR_RATE_TARGET: percentTarget(1),
  SLA_P95_MS: int(1, 600_000).default(1000),
  STATUS_PAGE_TITLE: z.string().trim().min(1).max(200).default("vigil status"),
  STATUS_PAGE_DESCRIPTION: z.string().trim().max(1000).optional(),
  // Secrets at rest: the key that seals, and older keys that still open (README).
  VIGIL_SECRET_KEY: secretKey.optional(),
  VIGIL_SECRET_KEY_PREVIOUS: secretKeyList.optional(),
});

export type Env = z.input<typeof EnvSchema>;
type Parsed = z.output<typeof EnvSchema>;

export type Config =
  & Omit<
    Parsed,
    | "ALLOW_PRIVATE_TARGETS"
    | "ALERTMANAGER_RECIPIENTS"
    | "METRICS_PUBLIC"
    | "OTEL_TRACES_SAMPLER_ARG"
  >
  & {
    /** Fraction of traces sampled: 1 outside production, 0.1 in production by default. */
    OTEL_TRACES_SAMPLER_ARG: number;
    /** /metrics answers without METRICS_TOKEN (the default outside production). */
    METRICS_PUBLIC: boolean;
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
  // A lease must outlast one send of every channel, or every slow send would be taken over.
  const longestSend = Math.max(parsed.RESEND_TIMEOUT_MS, parsed.WEBHOOK_TIMEOUT_MS);
  if (sendBudgetMs(parsed.DELIVERY_LEASE_SECONDS * 1000) < longestSend) {
    throw new ConfigError(
      `invalid configuration: DELIVERY_LEASE_SECONDS must leave room for one send of ${longestSend} ms (RESEND_TIMEOUT_MS, WEBHOOK_TIMEOUT_MS) plus its record (got ${
        JSON.stringify(env.DELIVERY_LEASE_SECONDS ?? "120")
      })`,
    );
  }
  return {
    ...parsed,
    ALLOW_PRIVATE_TARGETS: parsed.ALLOW_PRIVATE_TARGETS ?? parsed.VIGIL_ENV !== "production",
    METRICS_PUBLIC: parsed.METRICS_PUBLIC ?? parsed.VIGIL_ENV !== "production",
    OTEL_TRACES_SAMPLER_ARG: parsed.OTEL_TRACES_SAMPLER_ARG ??
      (parsed.VIGIL_ENV === "production" ? 0.1 : 1),
    ALERTMANAGER_RECIPIENTS: parsed.ALERTMANAGER_RECIPIENTS ?? [],
  };
}

function secretLike(name: string): boolean {
  return /KEY|TOKEN|SECRET|PASSWORD|DATABASE_URL/.test(name);
}
