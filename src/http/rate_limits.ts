/**
 * Abuse control: each API key may make RATE_LIMIT_PER_MINUTE requests a minute
 * (`hono-rate-limiter`), and each client address AUTH_FAILURES_PER_MINUTE failed authentications
 * (guessing keys), per replica. Over the limit: a 429 problem with `Retry-After` and `RateLimit-*`
 * headers, counted in `http_rate_limited_total{reason}`.
 */
import type { Context, MiddlewareHandler } from "hono";
import { getConnInfo } from "hono/deno";
import { rateLimiter } from "hono-rate-limiter";
import type { Metrics } from "../observability/metrics.ts";
import type { AppEnv } from "./env.ts";
import { Problem } from "./problem.ts";

const WINDOW_MS = 60_000;

interface LimitInfo {
  limit: number;
  remaining: number;
  resetTime?: Date;
}

/** The connection's address; "unknown" where there is none (in-process requests in tests). */
function clientAddress(c: Context<AppEnv>): string {
  try {
    return getConnInfo(c).remote.address ?? "unknown";
  } catch {
    return "unknown";
  }
}

function tooMany(
  c: Context,
  reason: "api_key" | "auth_failures",
  metrics: Metrics,
  // hono-rate-limiter leaves its figures on the context
  info = c.get("rateLimit" as never) as LimitInfo | undefined,
): never {
  metrics.rateLimited.inc({ reason });
  const retryAfter = Math.max(
    1,
    Math.ceil(((info?.resetTime?.getTime() ?? Date.now() + WINDOW_MS) - Date.now()) / 1000),
  );
  throw new Problem(
    429,
    reason === "api_key"
      ? `This API key made more than ${info?.limit} requests in a minute; retry in ${retryAfter} s.`
      : `Too many failed authentications from this address; retry in ${retryAfter} s.`,
    {
      headers: {
        "Retry-After": String(retryAfter),
        "RateLimit-Limit": String(info?.limit ?? 0),
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": String(retryAfter),
      },
    },
  );
}

/**
 * Before authentication: failed authentications (answers 401) per client address. Not
 * hono-rate-limiter: it counts every request when it starts and takes the successful ones back
 * when they end, so 64 concurrent good requests from one address looked like 64 failures (the
 * benchmark got 429s). Here only a 401 counts, once it is known; the window is fixed, a minute.
 */
export function limitAuthFailures(perMinute: number, metrics: Metrics): MiddlewareHandler<AppEnv> {
  const failures = new Map<string, { count: number; resetAt: number }>();
  return async (c, next) => {
    const now = Date.now();
    const address = clientAddress(c);
    let entry = failures.get(address);
    if (entry && entry.resetAt <= now) {
      failures.delete(address);
      entry = undefined;
    }
    if (entry && entry.count >= perMinute) {
      tooMany(c, "auth_failures", metrics, {
        limit: perMinute,
        remaining: 0,
        resetTime: new Date(entry.resetAt),
      });
    }
    await next();
    if (c.res.status !== 401) return;
    if (!entry) {
      // Bounded: a flood of addresses evicts the oldest entries instead of growing memory.
      if (failures.size >= 10_000) failures.delete(failures.keys().next().value!);
      entry = { count: 0, resetAt: now + WINDOW_MS };
      failures.set(address, entry);
    }
    entry.count++;
  };
}

/** After authentication: requests per API key. */
export function limitPerKey(perMinute: number, metrics: Metrics): MiddlewareHandler<AppEnv> {
  return rateLimiter<AppEnv>({
    windowMs: WINDOW_MS,
    limit: perMinute,
    standardHeaders: "draft-6",
    keyGenerator: (c) => c.get("principal").keyId,
    handler: (c) => tooMany(c, "api_key", metrics),
  });
}
