/**
 * Optional error tracking with Sentry (`@sentry/deno`), behind a small interface.
 *
 * Without `SENTRY_DSN` the reporter is `noopReporter` and `@sentry/deno` is never imported: the
 * module is loaded by a dynamic `import()` only when a DSN is set, so it costs nothing otherwise.
 * The rest of vigil calls `ErrorReporter` only: 5xx answers (src/http/errors.ts), failed job runs
 * (src/jobs/scheduler.ts) and exhausted deliveries (src/delivery/dispatcher.ts).
 *
 * The SDK is set up minimally: no default integrations (they patch `Deno.serve`, `fetch`,
 * `console`, `Deno.cron`, add global error handlers or read source files), no OpenTelemetry
 * set-up of its own (vigil has its own tracer provider), `sendDefaultPii: false`, and every event
 * and breadcrumb passes `scrubEvent` before it leaves: Authorization headers, cookies, API keys
 * (`vgl_…`), webhook secrets (`whsec_…`), credentials in URLs and email addresses are replaced,
 * wherever they are in the event.
 */
import { trace } from "@opentelemetry/api";
import type * as SentrySdk from "@sentry/deno";
import type { Config } from "../config.ts";
import { VERSION } from "./metrics.ts";
import { sampledTraceId } from "./tracing.ts";

/** What an event says besides the error: tags are searchable, extra is for reading. */
export interface ReportContext {
  /** request_id, route, job, channel, delivery_id, … (null and undefined are left out). */
  tags?: Record<string, string | number | boolean | null | undefined>;
  extra?: Record<string, unknown>;
  level?: "fatal" | "error" | "warning" | "info";
  /** Events with the same fingerprint are one issue. */
  fingerprint?: string[];
  /** What the event happened in: `GET /v1/alerts/:id`, `cron alerts.retry`. */
  transaction?: string;
  /** The HTTP request (headers are scrubbed like everything else). */
  request?: { method: string; url: string; headers?: Record<string, string> };
}

export interface ErrorReporter {
  /** False for the no-op reporter (no DSN). */
  readonly enabled: boolean;
  captureException(error: unknown, context?: ReportContext): void;
  captureMessage(message: string, context?: ReportContext): void;
  /** Sends what is queued, waiting at most `timeoutMs`; true if everything went. */
  flush(timeoutMs?: number): Promise<boolean>;
}

/** The reporter without a DSN: does nothing, costs nothing. */
export const noopReporter: ErrorReporter = Object.freeze({
  enabled: false,
  captureException() {},
  captureMessage() {},
  flush: () => Promise.resolve(true),
});

export type SentryModule = typeof SentrySdk;

export type SentryConfig = Pick<
  Config,
  "SENTRY_DSN" | "SENTRY_TRACES_SAMPLE_RATE" | "SENTRY_ENVIRONMENT" | "VIGIL_ENV"
>;

/** The release events name: vigil's version (`VERSION`). */
export const RELEASE = `vigil@${VERSION}`;

/**
 * The reporter for this configuration: `noopReporter` without `SENTRY_DSN` (and `load` is never
 * called), else a Sentry client. `load` imports the SDK; tests replace it to see that it is not
 * called.
 */
export async function setupErrorReporting(
  config: SentryConfig,
  load: () => Promise<SentryModule> = () => import("@sentry/deno"),
): Promise<ErrorReporter> {
  if (!config.SENTRY_DSN) return noopReporter;
  const Sentry = await load();
  const client = Sentry.init({
    dsn: config.SENTRY_DSN,
    release: RELEASE,
    environment: config.SENTRY_ENVIRONMENT ?? config.VIGIL_ENV,
    tracesSampleRate: config.SENTRY_TRACES_SAMPLE_RATE,
    sendDefaultPii: false,
    // Nothing that patches globals (Deno.serve, fetch, console, Deno.cron) or reads files; no
    // dedupe either: each exhausted delivery is one event even when the message repeats.
    defaultIntegrations: false,
    integrations: [Sentry.linkedErrorsIntegration()],
    // vigil has its own OpenTelemetry tracer provider: the SDK must not replace it.
    skipOpenTelemetrySetup: true,
    beforeSend: (event) => scrubEvent(event),
    beforeBreadcrumb: (breadcrumb) => scrub(breadcrumb),
  });
  if (!client) return noopReporter;

  const scopeFor = (context: ReportContext = {}) => {
    const scope = new Sentry.Scope();
    scope.setClient(client);
    const tags: Record<string, string | number | boolean> = {};
    for (const [name, value] of Object.entries(context.tags ?? {})) {
      if (value !== undefined && value !== null) tags[name] = value;
    }
    // The trace this happened in (a sampled one: an id that exists in Jaeger).
    const span = trace.getActiveSpan();
    const traceId = sampledTraceId(span);
    if (span && traceId) {
      tags.trace_id = traceId;
      scope.setPropagationContext({
        traceId,
        propagationSpanId: span.spanContext().spanId,
        sampleRand: Math.random(),
      });
    }
    scope.setTags(tags);
    if (context.extra) scope.setExtras(context.extra);
    if (context.level) scope.setLevel(context.level);
    if (context.fingerprint) scope.setFingerprint(context.fingerprint);
    if (context.transaction) scope.setTransactionName(context.transaction);
    const request = context.request;
    if (request) scope.addEventProcessor((event) => ({ ...event, request }));
    return scope;
  };

  return {
    enabled: true,
    captureException(error, context) {
      scopeFor(context).captureException(error);
    },
    captureMessage(message, context) {
      scopeFor(context).captureMessage(message, context?.level ?? "error");
    },
    async flush(timeoutMs = 2000) {
      return await client.flush(timeoutMs);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Scrubbing

const FILTERED = "[Filtered]";

/** Keys whose values are secrets whatever they look like (headers, fields, query parameters). */
const SECRET_KEY =
  /authori[sz]ation|cookie|passw(?:or)?d|secret|token|api[-_]?key|signature|credential|session/i;

/** Patterns of secrets and personal data inside any string. */
const SECRET_TEXT: [RegExp, string][] = [
  // "Authorization: …", "cookie=…" written into a message: the rest of the line.
  [
    /\b((?:proxy-)?authorization|set-cookie|cookie|x-api-key)(["']?\s*[:=]\s*)[^\r\n]*/gi,
    `$1$2${FILTERED}`,
  ],
  [/\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]+/gi, `$1 ${FILTERED}`],
  // vigil API keys (src/users/keys.ts) and webhook signing secrets (src/alerts/schema.ts).
  [/vgl_[A-Za-z0-9_-]+/g, `vgl_${FILTERED}`],
  [/whsec_[A-Za-z0-9+/=_-]+/g, `whsec_${FILTERED}`],
  // Credentials in URLs: scheme://user:password@host.
  [/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]+@/gi, `$1${FILTERED}@`],
  // Secret-looking query parameters: ?token=…&api_key=….
  [
    /([?&;][^=&#\s]*(?:token|secret|passw(?:or)?d|api[-_]?key|signature|auth)[^=&#\s]*=)[^&#\s]*/gi,
    `$1${FILTERED}`,
  ],
  // Email addresses (a top-level domain has a letter: `vigil@1.0.0` is a release, kept).
  [
    /[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]*[A-Za-z0-9]/g,
    "[email]",
  ],
];

/** `text` with every secret and email address replaced. */
export function scrubString(text: string): string {
  let out = text;
  for (const [pattern, replacement] of SECRET_TEXT) out = out.replace(pattern, replacement);
  return out;
}

const MAX_DEPTH = 32;

/**
 * A copy of `value` with secrets replaced: values under secret-like keys, and secrets and email
 * addresses in every string (keys included), at any depth.
 */
export function scrub<T>(value: T): T {
  return walk(value, 0, new WeakSet(), false) as T;
}

/** Keys whose value may be a list of [name, value] pairs (Sentry's request fields). */
const PAIR_LISTS = /^(headers|cookies|query_string|data|env)$/;

function walk(value: unknown, depth: number, seen: WeakSet<object>, pairs: boolean): unknown {
  if (typeof value === "string") return scrubString(value);
  if (value === null || typeof value !== "object") return value;
  if (depth >= MAX_DEPTH) return FILTERED;
  if (seen.has(value)) return "[Circular]";
  seen.add(value);
  if (Array.isArray(value)) {
    return value.map((item) =>
      pairs && Array.isArray(item) && item.length === 2 && typeof item[0] === "string" &&
        SECRET_KEY.test(item[0])
        ? [scrubString(item[0]), FILTERED]
        : walk(item, depth + 1, seen, false)
    );
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    return value instanceof Date ? value.toISOString() : scrubString(String(value));
  }
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    const secret = SECRET_KEY.test(key) && item !== null && item !== undefined && item !== "";
    out[scrubString(key)] = secret ? FILTERED : walk(item, depth + 1, seen, PAIR_LISTS.test(key));
  }
  return out;
}

/**
 * The event as it may leave: everything scrubbed (message, exception values, tags, extra,
 * contexts, request headers and data, breadcrumbs) but the SDK's own processing metadata, which
 * is not sent as such.
 */
export function scrubEvent<E extends { sdkProcessingMetadata?: unknown }>(event: E): E {
  const { sdkProcessingMetadata, ...rest } = event;
  const scrubbed = scrub(rest) as E;
  if (sdkProcessingMetadata !== undefined) scrubbed.sdkProcessingMetadata = sdkProcessingMetadata;
  return scrubbed;
}
