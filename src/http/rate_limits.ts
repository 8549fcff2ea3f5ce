/**
 * Abuse control with `hono-rate-limiter`: each API key may make RATE_LIMIT_PER_MINUTE requests
 * a minute, and each client address AUTH_FAILURES_PER_MINUTE failed authentications (guessing
 * keys), per replica. Over the limit: a 429 problem with `Retry-After` and `RateLimit-*`
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

function tooMany(c: Context, reason: "api_key" | "auth_failures", metrics: Metrics): never {
  metrics.rateLimited.inc({ reason });
  const info = c.get("rateLimit" as never) as LimitInfo | undefined;
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

/** Before authentication: counts only the requests answered 401, by client address. */
export function limitAuthFailures(perMinute: number, metrics: Metrics): MiddlewareHandler<AppEnv> {
  return rateLimiter<AppEnv>({
    windowMs: WINDOW_MS,
    limit: perMinute,
    standardHeaders: false,
    keyGenerator: clientAddress,
    skipSuccessfulRequests: true,
    requestWasSuccessful: (c) => c.res.status !== 401,
    handler: (c) => tooMany(c, "auth_failures", metrics),
  });
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
