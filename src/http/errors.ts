/**
 * The app's error and not-found handlers: every failure leaves as problem JSON. Unexpected errors
 * are logged with their stack and answered with a 500 that names the request id, never the stack.
 * Every 5xx is also reported to the error reporter (Sentry, when SENTRY_DSN is set).
 */
import { trace } from "@opentelemetry/api";
import type { ErrorHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { routePath } from "hono/route";
import { isDatabaseUnavailable } from "../db/connection_errors.ts";
import type { Logger } from "../observability/logger.ts";
import { type ErrorReporter, noopReporter } from "../observability/sentry.ts";
import { sampledTraceId } from "../observability/tracing.ts";
import type { AppEnv } from "./env.ts";
import { Problem, type ProblemBody, problemBody } from "./problem.ts";

export function problemResponse(
  body: ProblemBody,
  headers: Record<string, string> = {},
): Response {
  // Only a sampled trace: an id that will exist in Jaeger.
  const traceId = sampledTraceId(trace.getActiveSpan());
  if (traceId) {
    (body as ProblemBody & { trace_id?: string }).trace_id = traceId;
  }
  return new Response(JSON.stringify(body), {
    status: body.status,
    headers: { ...headers, "content-type": "application/problem+json" },
  });
}

export function errorHandler(
  logger: Logger,
  errors: ErrorReporter = noopReporter,
): ErrorHandler<AppEnv> {
  return (error, c) => {
    const requestId = c.get("requestId");
    /** One event per 5xx answer: the request id, route and request (scrubbed by the reporter). */
    const report = (status: number, level: "error" | "warning") => {
      if (!errors.enabled) return;
      const route = routePath(c);
      errors.captureException(error, {
        level,
        tags: { request_id: requestId, route, method: c.req.method, status },
        transaction: `${c.req.method} ${route}`,
        request: {
          method: c.req.method,
          url: c.req.url,
          headers: Object.fromEntries(c.req.raw.headers),
        },
      });
    };
    if (error instanceof Problem) {
      if (error.status >= 500) report(error.status, "warning");
      return problemResponse(error.body(requestId), error.extra.headers);
    }
    if (isDatabaseUnavailable(error)) {
      report(503, "warning");
      logger.warn("{method} {path}: database unavailable ({code})", {
        method: c.req.method,
        path: c.req.path,
        code: (error as { code?: string }).code,
      });
      return problemResponse(
        problemBody(503, "database unavailable: try again shortly", { requestId }),
        { "Retry-After": "5" },
      );
    }
    if (error instanceof HTTPException && error.status === 415) {
      // Hono says only "Unsupported Media Type": say which type is expected.
      const given = c.req.header("content-type") ?? "none";
      return problemResponse(
        problemBody(
          415,
          `This endpoint takes a JSON body: send Content-Type: application/json (got ${
            given.slice(0, 100)
          }).`,
          { requestId },
        ),
      );
    }
    if (error instanceof HTTPException && error.status < 500) {
      // Raised by Hono itself: malformed JSON (400), ...
      return problemResponse(problemBody(error.status, error.message, { requestId }));
    }
    report(500, "error");
    logger.error("unhandled error in {method} {path}", {
      method: c.req.method,
      path: c.req.path,
      request_id: requestId,
      error,
    });
    return problemResponse(
      problemBody(
        500,
        `An unexpected error occurred; quote request id ${requestId} when reporting it.`,
        { requestId },
      ),
    );
  };
}

export const notFoundHandler: NotFoundHandler<AppEnv> = (c) =>
  problemResponse(
    problemBody(404, `There is no route for ${c.req.method} ${c.req.path}.`, {
      requestId: c.get("requestId"),
    }),
  );
