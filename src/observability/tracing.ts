/**
 * OpenTelemetry tracing with our own SDK (Deno's built-in OTEL cannot be mixed with one):
 * BasicTracerProvider + BatchSpanProcessor + OTLP/HTTP exporter, with the AsyncLocalStorage
 * context manager and the W3C trace-context propagator. Without an endpoint, spans are still
 * created (their trace ids tie runs together) but never exported.
 */
import {
  type Span,
  type SpanContext,
  type SpanOptions,
  SpanStatusCode,
  TraceFlags,
  type Tracer,
} from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  type SpanExporter,
  TraceIdRatioBasedSampler,
} from "@opentelemetry/sdk-trace-base";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions";
import type { Config } from "../config.ts";
import { installContext } from "./context.ts";
import { VERSION } from "./metrics.ts";

export interface Tracing {
  tracer: Tracer;
  /** Exports what is buffered and stops the processor (call on shutdown). */
  shutdown(): Promise<void>;
  forceFlush(): Promise<void>;
}

type SamplerConfig = Pick<Config, "OTEL_TRACES_SAMPLER" | "OTEL_TRACES_SAMPLER_ARG">;

/** The sampler `OTEL_TRACES_SAMPLER` names, as the OpenTelemetry SDKs read it. */
export function samplerFrom(config: SamplerConfig): Sampler {
  const ratio = new TraceIdRatioBasedSampler(config.OTEL_TRACES_SAMPLER_ARG);
  switch (config.OTEL_TRACES_SAMPLER) {
    case "always_on":
      return new AlwaysOnSampler();
    case "always_off":
      return new AlwaysOffSampler();
    case "traceidratio":
      return ratio;
    case "parentbased_always_on":
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case "parentbased_always_off":
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case "parentbased_traceidratio":
      return new ParentBasedSampler({ root: ratio });
  }
}

export function setupTracing(
  config:
    & Pick<
      Config,
      "OTEL_EXPORTER_OTLP_ENDPOINT" | "OTEL_SERVICE_NAME" | "VIGIL_ENV"
    >
    & SamplerConfig,
  exporter?: SpanExporter,
  instance = `${Deno.hostname()}:${Deno.pid}`,
): Tracing {
  installContext();
  const endpoint = config.OTEL_EXPORTER_OTLP_ENDPOINT;
  const spanExporter = exporter ??
    (endpoint
      ? new OTLPTraceExporter({ url: `${endpoint.replace(/\/$/, "")}/v1/traces` })
      : undefined);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: config.OTEL_SERVICE_NAME,
      [ATTR_SERVICE_VERSION]: VERSION,
      "service.instance.id": instance,
      // The stable name, and the older one that Jaeger and most backends still show.
      "deployment.environment.name": config.VIGIL_ENV,
      "deployment.environment": config.VIGIL_ENV,
    }),
    sampler: samplerFrom(config),
    spanProcessors: spanExporter
      ? [new BatchSpanProcessor(spanExporter, { scheduledDelayMillis: 1000 })]
      : [],
  });
  return {
    tracer: provider.getTracer("vigil", VERSION),
    shutdown: () => provider.shutdown(),
    forceFlush: () => provider.forceFlush(),
  };
}

/** The trace id of a sampled span: one that will exist in the tracing backend; else null. */
export function sampledTraceId(span: Span | SpanContext | undefined): string | null {
  const ctx = span && "spanContext" in span ? span.spanContext() : span;
  return ctx && (ctx.traceFlags & TraceFlags.SAMPLED) ? ctx.traceId : null;
}

/** Marks `span` failed with `error` (an exception event and status ERROR). */
export function recordError(span: Span, error: unknown): void {
  span.recordException(error instanceof Error ? error : new Error(String(error)));
  span.setStatus({
    code: SpanStatusCode.ERROR,
    message: error instanceof Error ? error.message : String(error),
  });
}

/** Runs `fn` in an active span that always ends; a throw marks it failed and goes on. */
export function inSpan<T>(
  tracer: Tracer,
  name: string,
  options: SpanOptions,
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  return tracer.startActiveSpan(name, options, async (span) => {
    try {
      return await fn(span);
    } catch (error) {
      recordError(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}
