/**
 * What the statement spans and deadlines (src/db/instrumented_sql.ts) cost: `select 1` on one connection, bare and
 * through the wrapper with no span active, under an unsampled parent (a request whose trace is
 * not kept), and under a sampled one (spans made and dropped: no processor); and the cost of
 * making a statement without running it, where the wrapper's share is not hidden by the round
 * trip.
 *
 *   deno bench --allow-all bench/instrumented_sql_bench.ts
 *
 * Against DATABASE_URL, else a throwaway cluster (initdb and pg_ctl on PATH).
 */
import { type Context, context, ROOT_CONTEXT, trace } from "@opentelemetry/api";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
} from "@opentelemetry/sdk-trace-base";
import postgres from "postgres";
import { instrumentSql } from "../src/db/instrumented_sql.ts";
import { installContext } from "../src/observability/context.ts";
import { startCluster } from "../tests/support/cluster.ts";

installContext();

let url = Deno.env.get("DATABASE_URL");
if (!url) {
  const cluster = await startCluster({ durable: false, prefix: "vigil-bench-traced-sql-" });
  globalThis.addEventListener("unload", () => cluster.stop());
  url = cluster.url;
}
const bare = postgres(url, { max: 1, onnotice: () => {} });
await bare`select 1`; // connected, types fetched

const tracer = new BasicTracerProvider({ sampler: new AlwaysOnSampler() }).getTracer("bench");
const traced = instrumentSql(bare, { tracer });
// As services.ts wires it: a deadline (a timer per executed statement) and the tracer.
const guarded = instrumentSql(bare, { tracer, deadlineMs: 5000 });
const unsampledRoot = new BasicTracerProvider({ sampler: new AlwaysOffSampler() })
  .getTracer("bench").startSpan("unsampled request");
const sampledRoot = tracer.startSpan("sampled request");
const unsampled = trace.setSpan(ROOT_CONTEXT, unsampledRoot);
const sampled = trace.setSpan(ROOT_CONTEXT, sampledRoot);
if (unsampledRoot.isRecording() || !sampledRoot.isRecording()) throw new Error("bad bench setup");

type Sql = typeof bare;
const select1 = (sql: Sql) => sql`select 1`;
const MADE = 1000;

/** One `select 1` awaited in `ctx` (every case pays the same context switch). */
const roundTrip = (sql: Sql, ctx: Context) => async () => {
  await context.with(ctx, () => select1(sql));
};
/** MADE statements made in `ctx` and not run: the wrapper's own cost, without the round trip. */
const make = (sql: Sql, ctx: Context) => () =>
  context.with(ctx, () => {
    for (let i = 0; i < MADE; i++) select1(sql);
  });

// Warmed up, then many iterations: the round trip varies more than the wrapper could cost.
const rounds = { n: 20_000, warmup: 5_000 };
const group = "select 1, one connection";
Deno.bench("bare", { group, baseline: true, ...rounds }, roundTrip(bare, ROOT_CONTEXT));
Deno.bench("traced, no span", { group, ...rounds }, roundTrip(traced, ROOT_CONTEXT));
Deno.bench("traced, unsampled parent", { group, ...rounds }, roundTrip(traced, unsampled));
Deno.bench(
  "traced, sampled parent (span made, dropped)",
  { group, ...rounds },
  roundTrip(traced, sampled),
);
Deno.bench("with deadline, unsampled parent", { group, ...rounds }, roundTrip(guarded, unsampled));
Deno.bench("bare (again: drift)", { group, ...rounds }, roundTrip(bare, ROOT_CONTEXT));

const made = { n: 2_000, warmup: 500 };
const making = `making ${MADE} statements, not running them`;
Deno.bench("bare", { group: making, baseline: true, ...made }, make(bare, ROOT_CONTEXT));
Deno.bench("traced, no span", { group: making, ...made }, make(traced, ROOT_CONTEXT));
Deno.bench("bare, unsampled parent", { group: making, ...made }, make(bare, unsampled));
Deno.bench("traced, unsampled parent", { group: making, ...made }, make(traced, unsampled));
Deno.bench("bare (again: drift)", { group: making, ...made }, make(bare, ROOT_CONTEXT));
