/**
 * What vigil records about every request, in one middleware:
 *
 * - the request id: a valid incoming `X-Request-Id` is kept, otherwise one is generated; it is
 *   echoed in the response;
 * - the HTTP server span `{method} {route}` (continuing an incoming `traceparent`), whose context
 *   also carries the request's log fields (request_id, trace_id) for every line logged inside;
 * - one JSON log line: request_id, method, route (the pattern), status, duration_ms, user_id;
 * - `http_requests_total` and `http_request_duration_seconds` by method, route, status and ok,
 *   for API routes only (probes and scrapes are not API requests), and the same requests for
 *   /sla/status (src/sla/traffic.ts).
 *
 * It replaces Hono's requestId, @hono/otel and @hono/prometheus, measured: @hono/otel alone
 * iterates every request header and records OTel metrics nobody reads (README, Performance).
 */
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanStatusCode,
  trace,
  type Tracer,
} from "@opentelemetry/api";
import {
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_URL_PATH,
} from "@opentelemetry/semantic-conventions";
import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import { type Logger, withLogFields } from "../observability/logger.ts";
import type { Metrics } from "../observability/metrics.ts";
import { sampledTraceId, startServerSpan } from "../observability/tracing.ts";
import type { AppEnv } from "./env.ts";

const VALID_REQUEST_ID = /^[\w\-=.:]{1,128}$/;
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
/** Probes and scrapes would drown the log: they are logged at debug level. */
const QUIET = /^\/(health\/|metrics$)/;

export function observeRequests(
  deps: {
    tracer: Tracer;
    metrics: Metrics;
    logger: Logger;
    /** vigil's own SLA (src/sla/): the same requests as http_requests_total. */
    sla?: { observe(route: string, status: number, seconds: number): void };
  },
): MiddlewareHandler<AppEnv> {
  const { tracer, metrics, logger, sla } = deps;
  // Metric children by "method route status": labels built and validated once per combination.
  const children = new Map<
    string,
    { count: { inc(): void }; duration: { observe(v: number): void } }
  >();

  return async (c, next) => {
    const started = performance.now();
    // A client may send any method name: unknown ones are one label value, not one each.
    const method = METHODS.has(c.req.method) ? c.req.method : "OTHER";
    const path = c.req.path;
    const incoming = c.req.header("x-request-id");
    const requestId = incoming && VALID_REQUEST_ID.test(incoming) ? incoming : crypto.randomUUID();
    c.set("requestId", requestId);

    // Sampling is decided before any span work (parent-based: an incoming traceparent's flag
    // wins). An unsampled request's span is only a span context, kept on the context so that
    // the spans under it are not sampled either and calls out carry its traceparent; nothing
    // is set on it, and it is never ended or exported.
    const traceparent = c.req.header("traceparent");
    const parent = traceparent
      ? propagation.extract(ROOT_CONTEXT, { traceparent, tracestate: c.req.header("tracestate") })
      : ROOT_CONTEXT;
    const span = startServerSpan(tracer, method, parent);
    const sampled = span.isRecording();
    if (sampled) span.setAttributes({ [ATTR_HTTP_REQUEST_METHOD]: method, [ATTR_URL_PATH]: path });
    const traceId = sampledTraceId(span); // null when the trace will not be kept
    const ctx = withLogFields(trace.setSpan(parent, span), {
      request_id: requestId,
      trace_id: traceId,
    });

    await context.with(ctx, next);
    // Set on the finished response, never before the handler: a response header set early
    // (c.header) makes Hono build the answer from a Headers object, which costs Deno.serve
    // more than adding headers to the finished one (README, "Where a request's time goes").
    // Every answer gets it, the problem answers of the error handler too.
    c.res.headers.set("X-Request-Id", requestId);

    const route = routePath(c);
    const status = c.res.status;
    if (sampled) {
      span.updateName(`${method} ${route}`);
      span.setAttribute(ATTR_HTTP_ROUTE, route);
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
      if (c.error) span.recordException(c.error);
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    }

    const seconds = (performance.now() - started) / 1000;
    if (path.startsWith("/v1/")) {
      const key = `${method} ${route} ${status}`;
      let child = children.get(key);
      if (!child) {
        const labels = {
          method,
          route,
          status: String(status),
          ok: String(status >= 200 && status < 300),
        };
        child = {
          count: metrics.httpRequests.labels(labels),
          duration: metrics.httpDuration.labels(labels),
        };
        children.set(key, child);
      }
      child.count.inc();
      child.duration.observe(seconds);
      sla?.observe(route, status, seconds);
    }

    const fields = {
      request_id: requestId,
      trace_id: traceId,
      method,
      route,
      status,
      duration_ms: Math.round(seconds * 100_000) / 100,
      user_id: c.get("principal")?.userId ?? null,
    };
    if (status >= 500) logger.error("request", fields);
    else if (QUIET.test(path)) logger.debug("request", fields);
    else logger.info("request", fields);
  };
}
