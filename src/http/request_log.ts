/**
 * One JSON log line per request, and the request's id and trace id on every line logged while
 * serving it (through LogTape's implicit context).
 */
import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import { trace } from "@opentelemetry/api";
import { type Logger, withContext } from "../observability/logger.ts";
import type { AppEnv } from "./env.ts";

/** Probes and scrapes would drown the log: they are logged at debug level. */
const QUIET = /^\/(health\/|metrics$)/;

export function requestLog(logger: Logger): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = performance.now();
    const context = {
      request_id: c.get("requestId"),
      trace_id: trace.getActiveSpan()?.spanContext().traceId,
    };
    await withContext(context, async () => {
      await next();
      const fields = {
        method: c.req.method,
        route: routePath(c),
        status: c.res.status,
        duration_ms: Math.round((performance.now() - started) * 100) / 100,
        user_id: c.get("principal")?.userId ?? null,
      };
      if (QUIET.test(c.req.path)) logger.debug("request", fields);
      else logger.info("request", fields);
    });
  };
}
