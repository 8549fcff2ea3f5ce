/**
 * OpenTelemetry tracing with our own SDK (Deno's built-in OTEL cannot be mixed with one):
 * BasicTracerProvider + BatchSpanProcessor + OTLP/HTTP exporter, with the AsyncLocalStorage
 * context manager and the W3C trace-context propagator. Without an endpoint, spans are still
 * created (their trace ids tie logs and runs together) but never exported.
 */
import type { Tracer } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
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

export function setupTracing(
  config: Pick<
    Config,
    "OTEL_EXPORTER_OTLP_ENDPOINT" | "OTEL_SERVICE_NAME" | "OTEL_TRACES_SAMPLER_ARG"
  >,
  exporter?: SpanExporter,
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
    }),
    sampler: new ParentBasedSampler({
      root: new TraceIdRatioBasedSampler(config.OTEL_TRACES_SAMPLER_ARG),
    }),
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
