/**
 * OpenTelemetry tracing with our own SDK (Deno's built-in OTEL cannot be mixed with one):
 * BasicTracerProvider + BatchSpanProcessor + OTLP/HTTP exporter, with the AsyncLocalStorage
 * context manager and the W3C trace-context propagator. Without an endpoint, spans are still
 * created (their trace ids tie runs together) but never exported.
 */
import {
  type Attributes,
  type Context,
  createContextKey,
  type Link,
  SamplingDecision,
  type SamplingResult,
  type Span,
  type SpanContext,
  SpanKind,
  type SpanOptions,
  SpanStatusCode,
  trace,
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
  RandomIdGenerator,
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

/**
 * A root span's sampling decided before the span is made (startServerSpan): the decision rides on
 * the context the span starts in, and applies to that span only (one without a parent).
 */
const ROOT_DECISION = createContextKey("vigil.trace.root-sampled");

/** The configured sampler, except for a root span whose decision was already taken. */
class DecidedSampler implements Sampler {
  constructor(private readonly inner: Sampler) {}

  shouldSample(
    context: Context,
    traceId: string,
    name: string,
    kind: SpanKind,
    attributes: Attributes,
    links: Link[],
  ): SamplingResult {
    const decided = context.getValue(ROOT_DECISION);
    if (decided !== undefined && !trace.getSpanContext(context)) {
      return {
        decision: decided ? SamplingDecision.RECORD_AND_SAMPLED : SamplingDecision.NOT_RECORD,
      };
    }
    return this.inner.shouldSample(context, traceId, name, kind, attributes, links);
  }

  toString(): string {
    return this.inner.toString();
  }
}

/**
 * Whether a root span (no parent) is sampled, as `OTEL_TRACES_SAMPLER` decides it; undefined for
 * `traceidratio`, whose spans are each decided by their trace id (a root decided beforehand
 * could disagree with its own children).
 */
function rootDecision(config: SamplerConfig): (() => boolean) | undefined {
  const ratio = config.OTEL_TRACES_SAMPLER_ARG;
  switch (config.OTEL_TRACES_SAMPLER) {
    case "always_on":
    case "parentbased_always_on":
      return () => true;
    case "always_off":
    case "parentbased_always_off":
      return () => false;
    case "traceidratio":
      return undefined;
    case "parentbased_traceidratio":
      // The same share as TraceIdRatioBasedSampler's test of a random trace id; the children
      // follow the root, whatever their trace id.
      return ratio >= 1 ? () => true : ratio <= 0 ? () => false : () => Math.random() < ratio;
  }
}

/** The root decision of each tracer made by setupTracing. */
const rootDecisions = new WeakMap<Tracer, () => boolean>();

/** The SDK's own ids (random, never the all-zero invalid one). */
const ids = new RandomIdGenerator();

/**
 * The span of an unsampled root request: nothing is recorded, and its ids are only made if
 * something asks for them (a child span, whose parent-based sampler then says no as well, or a
 * traceparent sent to a remote agent, with the sampled flag off).
 */
class UnsampledSpan implements Span {
  #context: SpanContext | undefined;
  spanContext(): SpanContext {
    return this.#context ??= {
      traceId: ids.generateTraceId(),
      spanId: ids.generateSpanId(),
      traceFlags: TraceFlags.NONE,
    };
  }
  setAttribute(): this {
    return this;
  }
  setAttributes(): this {
    return this;
  }
  addEvent(): this {
    return this;
  }
  addLink(): this {
    return this;
  }
  addLinks(): this {
    return this;
  }
  setStatus(): this {
    return this;
  }
  updateName(): this {
    return this;
  }
  end(): void {}
  isRecording(): boolean {
    return false;
  }
  recordException(): void {}
}

const SERVER: SpanOptions = { kind: SpanKind.SERVER };

/**
 * Starts a request's SERVER span in `parent`, the sampling decided first: a request without a
 * parent span (no incoming traceparent) that the sampler would not keep gets an UnsampledSpan —
 * no ids, no span work. Everything else (a parent, or a tracer not made by setupTracing) goes
 * through `tracer.startSpan`, and its sampler.
 */
export function startServerSpan(tracer: Tracer, name: string, parent: Context): Span {
  const decide = rootDecisions.get(tracer);
  if (!decide || trace.getSpanContext(parent)) return tracer.startSpan(name, SERVER, parent);
  if (!decide()) return new UnsampledSpan();
  return tracer.startSpan(name, SERVER, parent.setValue(ROOT_DECISION, true));
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
    sampler: new DecidedSampler(samplerFrom(config)),
    spanProcessors: spanExporter
      ? [new BatchSpanProcessor(spanExporter, { scheduledDelayMillis: 1000 })]
      : [],
  });
  const tracer = provider.getTracer("vigil", VERSION);
  const decide = rootDecision(config);
  if (decide) rootDecisions.set(tracer, decide);
  if (config.OTEL_TRACES_SAMPLER.startsWith("parentbased_")) parentBased.add(tracer);
  return {
    tracer,
    shutdown: () => provider.shutdown(),
    forceFlush: () => provider.forceFlush(),
  };
}

/** The trace id of a sampled span: one that will exist in the tracing backend; else null. */
export function sampledTraceId(span: Span | SpanContext | undefined): string | null {
  if (span instanceof UnsampledSpan) return null; // without making its ids
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

/** Tracers (made by setupTracing) whose sampler follows the parent's decision. */
const parentBased = new WeakSet<Tracer>();

/** The active span, if it is one of a trace that is not sampled (it records nothing). */
function unsampledActiveSpan(): Span | undefined {
  const active = trace.getActiveSpan();
  if (!active) return undefined;
  if (active instanceof UnsampledSpan) return active;
  return !active.isRecording() && !(active.spanContext().traceFlags & TraceFlags.SAMPLED)
    ? active
    : undefined;
}

/**
 * `tracer.startActiveSpan`, except in a trace that is not sampled when the sampler follows the
 * parent: the child would not be sampled either, so none is made (no ids, no context switch) and
 * `fn` runs in the current context with the unsampled parent as its span (every method of which
 * does nothing). Nine runs in ten, in production.
 */
export function startActiveSpan<T>(
  tracer: Tracer,
  name: string,
  options: SpanOptions,
  fn: (span: Span) => T,
): T {
  const unsampled = parentBased.has(tracer) ? unsampledActiveSpan() : undefined;
  return unsampled ? fn(unsampled) : tracer.startActiveSpan(name, options, fn);
}

/** Runs `fn` in an active span that always ends; a throw marks it failed and goes on. */
export function inSpan<T>(
  tracer: Tracer,
  name: string,
  options: SpanOptions,
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  return startActiveSpan(tracer, name, options, async (span) => {
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
