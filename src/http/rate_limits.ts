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
    // With no failure on record (the usual case) there is nothing to check before the answer,
    // and the client's address is looked up only for a 401.
    let address: string | undefined;
    if (failures.size > 0) {
      const now = Date.now();
      address = clientAddress(c);
      const entry = failures.get(address);
      if (entry && entry.resetAt <= now) failures.delete(address);
      else if (entry && entry.count >= perMinute) {
        tooMany(c, "auth_failures", metrics, {
          limit: perMinute,
          remaining: 0,
          resetTime: new Date(entry.resetAt),
        });
      }
    }
    await next();
    if (c.res.status !== 401) return;
    address ??= clientAddress(c);
    const now = Date.now();
    let entry = failures.get(address);
    if (!entry || entry.resetAt <= now) {
      // Entries are kept in the order their windows end: the expired ones are at the front, and
      // go, so that the map empties (and the fast path above returns) a minute after the last
      // failure. Bounded: a flood of addresses evicts the oldest instead of growing memory.
      failures.delete(address);
      for (const [key, old] of failures) {
        if (old.resetAt > now && failures.size < 10_000) break;
        failures.delete(key);
      }
      entry = { count: 0, resetAt: now + WINDOW_MS };
      failures.set(address, entry);
    }
    entry.count++;
  };
}

/**
 * After authentication: requests per API key, with the draft-6 `RateLimit-*` headers on the
 * answer. hono-rate-limiter counts; the headers are set here on the finished response, not by
 * the library before the handler (`standardHeaders`): a header set before the handler makes
 * Hono build the response from a Headers object, and that, not the counting, was most of this
 * middleware's cost (README, "Where a request's time goes").
 */
export function limitPerKey(perMinute: number, metrics: Metrics): MiddlewareHandler<AppEnv> {
  const limiter = rateLimiter<AppEnv>({
    windowMs: WINDOW_MS,
    limit: perMinute,
    standardHeaders: false,
    keyGenerator: (c) => c.get("principal").keyId,
    handler: (c) => tooMany(c, "api_key", metrics),
  });
  const policy = `${perMinute};w=${Math.ceil(WINDOW_MS / 1000)}`;
  return (c, next) =>
    limiter(c, async () => {
      const info = c.get("rateLimit" as never) as LimitInfo;
      const resetSeconds = info.resetTime
        ? Math.max(0, Math.ceil((info.resetTime.getTime() - Date.now()) / 1000))
        : 0;
      await next();
      const headers = c.res.headers;
      headers.set("RateLimit-Policy", policy);
      headers.set("RateLimit-Limit", String(info.limit));
      headers.set("RateLimit-Remaining", String(info.remaining));
      if (resetSeconds) headers.set("RateLimit-Reset", String(resetSeconds));
    });
}
