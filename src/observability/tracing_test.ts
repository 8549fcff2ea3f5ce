import { context, propagation, ROOT_CONTEXT, trace } from "@opentelemetry/api";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";
import { assert, assertEquals, assertMatch } from "../../tests/support/assert.ts";
import { loadConfig } from "../config.ts";
import { installContext } from "./context.ts";
import { sampledTraceId, setupTracing, startActiveSpan, startServerSpan } from "./tracing.ts";

installContext();

function collector(): SpanExporter & { spans: ReadableSpan[] } {
  const spans: ReadableSpan[] = [];
  return {
    spans,
    export(batch, done) {
      spans.push(...batch);
      done({ code: 0 });
    },
    shutdown: () => Promise.resolve(),
  };
}

function tracing(env: Record<string, string>) {
  const exporter = collector();
  const { tracer, forceFlush } = setupTracing(
    loadConfig({ VIGIL_ENV: "test", ...env }),
    exporter,
    "test:1",
  );
  return { tracer, exporter, forceFlush };
}

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const parentWith = (flags: "00" | "01") =>
  propagation.extract(ROOT_CONTEXT, { traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-${flags}` });

Deno.test("tracing: an unsampled root request makes no span, and its ids only when asked", async () => {
  const { tracer, exporter, forceFlush } = tracing({ OTEL_TRACES_SAMPLER_ARG: "0" });
  const span = startServerSpan(tracer, "GET", ROOT_CONTEXT);
  assertEquals(span.isRecording(), false);
  assertEquals(sampledTraceId(span), null);
  span.setAttribute("x", 1).updateName("GET /x").end();
  // A span under it is not sampled either (parent-based) and belongs to the same trace.
  const ctx = trace.setSpan(ROOT_CONTEXT, span);
  const child = tracer.startSpan("pattern.run", {}, ctx);
  assertEquals(child.isRecording(), false);
  const ids = span.spanContext();
  assertMatch(ids.traceId, /^[0-9a-f]{32}$/);
  assertMatch(ids.spanId, /^[0-9a-f]{16}$/);
  assert(!/^0+$/.test(ids.traceId) && !/^0+$/.test(ids.spanId));
  assertEquals(span.spanContext(), ids, "the ids are made once");
  assertEquals(child.spanContext().traceId, ids.traceId);
  // A call out carries its traceparent, with the sampled flag off.
  const carrier: Record<string, string> = {};
  context.with(ctx, () => propagation.inject(context.active(), carrier));
  assertEquals(carrier.traceparent, `00-${ids.traceId}-${ids.spanId}-00`);
  child.end();
  await forceFlush();
  assertEquals(exporter.spans.length, 0);
});

Deno.test("tracing: a sampled root request is a SERVER span, exported", async () => {
  const { tracer, exporter, forceFlush } = tracing({ OTEL_TRACES_SAMPLER_ARG: "1" });
  const span = startServerSpan(tracer, "GET", ROOT_CONTEXT);
  assert(span.isRecording());
  assertEquals(sampledTraceId(span), span.spanContext().traceId);
  // The decision was the root span's only: a span under it is sampled as its child.
  const child = tracer.startSpan("pattern.run", {}, trace.setSpan(ROOT_CONTEXT, span));
  assert(child.isRecording());
  child.end();
  span.end();
  await forceFlush();
  const server = exporter.spans.find((s) => s.name === "GET")!;
  assertEquals(server.kind, 1); // SERVER
  assertEquals(server.parentSpanContext, undefined);
  assertEquals(
    exporter.spans.find((s) => s.name === "pattern.run")?.parentSpanContext?.spanId,
    server.spanContext().spanId,
  );
});

Deno.test("tracing: an incoming traceparent decides (parent-based)", () => {
  const none = tracing({ OTEL_TRACES_SAMPLER_ARG: "0" }).tracer;
  const sampledParent = startServerSpan(none, "GET", parentWith("01"));
  assert(sampledParent.isRecording(), "a sampled parent is followed even at ratio 0");
  assertEquals(sampledTraceId(sampledParent), TRACE_ID);
  const all = tracing({ OTEL_TRACES_SAMPLER_ARG: "1" }).tracer;
  const unsampledParent = startServerSpan(all, "GET", parentWith("00"));
  assertEquals(unsampledParent.isRecording(), false, "an unsampled parent is followed at ratio 1");
  assertEquals(unsampledParent.spanContext().traceId, TRACE_ID);
  // traceidratio (not parent-based) ignores the parent's flag.
  const ratio = tracing({ OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "0" });
  assertEquals(startServerSpan(ratio.tracer, "GET", parentWith("01")).isRecording(), false);
});

Deno.test("tracing: root requests by the sampler's name and ratio", () => {
  const recorded = (env: Record<string, string>, n = 1) => {
    const { tracer } = tracing(env);
    let count = 0;
    for (let i = 0; i < n; i++) {
      if (startServerSpan(tracer, "GET", ROOT_CONTEXT).isRecording()) count++;
    }
    return count;
  };
  assertEquals(recorded({ OTEL_TRACES_SAMPLER: "always_on", OTEL_TRACES_SAMPLER_ARG: "0" }), 1);
  assertEquals(recorded({ OTEL_TRACES_SAMPLER: "always_off" }), 0);
  assertEquals(recorded({ OTEL_TRACES_SAMPLER: "parentbased_always_on" }), 1);
  assertEquals(recorded({ OTEL_TRACES_SAMPLER: "parentbased_always_off" }), 0);
  assertEquals(recorded({ OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "1" }), 1);
  // One in ten of 4,000: 400 expected, outside 300–500 has a chance below 1e-6.
  const tenth = recorded({ OTEL_TRACES_SAMPLER_ARG: "0.1" }, 4000);
  assert(tenth > 300 && tenth < 500, `${tenth} of 4000 sampled at 0.1`);
  // traceidratio decides every span by its trace id: a root and its child always agree.
  const { tracer } = tracing({
    OTEL_TRACES_SAMPLER: "traceidratio",
    OTEL_TRACES_SAMPLER_ARG: "0.5",
  });
  const agree = Array.from({ length: 200 }, () => {
    const root = startServerSpan(tracer, "GET", ROOT_CONTEXT);
    const child = tracer.startSpan("pattern.run", {}, trace.setSpan(ROOT_CONTEXT, root));
    return [root.isRecording(), child.isRecording()];
  });
  assertEquals(agree.filter(([r, c]) => r !== c), [], "roots and children disagree");
  assert(agree.some(([r]) => r) && agree.some(([r]) => !r), "both decisions seen");
});

Deno.test("tracing: a tracer from elsewhere starts its spans itself", () => {
  const span = startServerSpan(trace.getTracer("noop"), "GET", ROOT_CONTEXT);
  assertEquals(span.isRecording(), false);
  assertEquals(sampledTraceId(span), null);
});

Deno.test("tracing: no child span is made in an unsampled trace (parent-based samplers)", async (t) => {
  /** The spans exported and the span `fn` got, for a child started under `parent`. */
  const childUnder = async (env: Record<string, string>, parent: (tracer: never) => unknown) => {
    const { tracer, exporter, forceFlush } = tracing(env);
    const span = parent(tracer as never) as ReturnType<typeof startServerSpan>;
    let got: unknown;
    let active: unknown;
    const value = context.with(
      trace.setSpan(ROOT_CONTEXT, span),
      () =>
        startActiveSpan(tracer, "pattern.step", {}, (child) => {
          got = child;
          active = trace.getActiveSpan();
          child.setAttribute("k", 1);
          child.end();
          return 42;
        }),
    );
    assertEquals(value, 42);
    span.end();
    await forceFlush();
    return { span, got, active, names: exporter.spans.map((s) => s.name) };
  };
  await t.step("an unsampled request: the parent stands in, nothing exported", async () => {
    const r = await childUnder(
      { OTEL_TRACES_SAMPLER_ARG: "0" },
      (tracer) => startServerSpan(tracer, "GET", ROOT_CONTEXT),
    );
    assertEquals([r.got === r.span, r.active === r.span, r.names], [true, true, []]);
  });
  await t.step("an incoming unsampled traceparent: the same", async () => {
    const r = await childUnder(
      { OTEL_TRACES_SAMPLER_ARG: "1" },
      (tracer) => startServerSpan(tracer, "GET", parentWith("00")),
    );
    assertEquals([r.got === r.span, r.names], [true, []]);
  });
  await t.step("a sampled request: a child span of its own", async () => {
    const r = await childUnder(
      { OTEL_TRACES_SAMPLER_ARG: "1" },
      (tracer) => startServerSpan(tracer, "GET", ROOT_CONTEXT),
    );
    assert(r.got !== r.span && r.active === r.got);
    assertEquals(r.names.sort(), ["GET", "pattern.step"]);
  });
  await t.step("a sampler that does not follow the parent decides for the child", async () => {
    const r = await childUnder(
      { OTEL_TRACES_SAMPLER: "always_on" },
      (tracer) => startServerSpan(tracer, "GET", parentWith("00")),
    );
    assert(r.got !== r.span);
    assertEquals(r.names.sort(), ["GET", "pattern.step"]);
  });
});
