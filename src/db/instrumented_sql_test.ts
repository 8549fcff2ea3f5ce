/**
 * Client spans for database statements (instrumented_sql.ts), against real PostgreSQL: one CLIENT span
 * per executed statement under a recording span, with the database conventions and never a
 * parameter value; none for fragments, without a span or under an unsampled one; transactions,
 * savepoints, reserved connections, cursors, failures and cancellations; every span ends; results
 * are those of the bare sql.
 */
import {
  context,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
} from "@opentelemetry/api";
import {
  AlwaysOffSampler,
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import fc from "fast-check";
import postgres from "postgres";
import { assert, assertEquals, assertRejects } from "../../tests/support/assert.ts";
import { dbTest, type TestDatabase } from "../../tests/support/database.ts";
import { installContext } from "../observability/context.ts";
import type { Sql } from "./database.ts";
import {
  ATTR_DB_RESPONSE_RETURNED_ROWS,
  DatabaseTimeout,
  instrumentSql,
  operationName,
  sanitize,
  TRANSACTION_SPAN,
} from "./instrumented_sql.ts";

installContext();

/** Spans started and not (yet) ended: none may be left when a statement has settled. */
class OpenSpans implements SpanProcessor {
  readonly open = new Set<Span>();
  onStart(span: Span): void {
    this.open.add(span);
  }
  onEnd(span: ReadableSpan): void {
    this.open.delete(span as unknown as Span);
  }
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

const exporter = new InMemorySpanExporter();
const openSpans = new OpenSpans();
const provider = new BasicTracerProvider({
  spanProcessors: [new SimpleSpanProcessor(exporter), openSpans],
});
const tracer = provider.getTracer("traced-sql-test");
const unsampledTracer = new BasicTracerProvider({
  sampler: new AlwaysOffSampler(),
  spanProcessors: [new SimpleSpanProcessor(exporter)],
}).getTracer("unsampled");

const runs = Number(Deno.env.get("VIGIL_PROPERTY_RUNS") ?? 40);
const seed = Deno.env.get("VIGIL_PROPERTY_SEED");

/** Runs `fn` under a fresh sampled root span; returns its result and the root. */
async function underRoot<T>(fn: () => Promise<T>): Promise<{ result: T; root: Span }> {
  return await tracer.startActiveSpan("root", async (root) => {
    try {
      return { result: await fn(), root };
    } finally {
      root.end();
    }
  });
}

function fresh(): void {
  exporter.reset();
  openSpans.open.clear();
}

/** The finished spans except the test's own roots. */
function dbSpans(): ReadableSpan[] {
  return exporter.getFinishedSpans().filter((s) => s.name !== "root");
}

function parentOf(span: ReadableSpan): string | undefined {
  return span.parentSpanContext?.spanId;
}

function assertAllEnded(): void {
  assertEquals([...openSpans.open].map((s) => (s as unknown as ReadableSpan).name), []);
}

/** Every string a span carries: its name, attribute values, status message and events. */
function everyString(span: ReadableSpan): string[] {
  const values = (attributes: Record<string, unknown>) =>
    Object.entries(attributes).flatMap(([k, v]) => [k, String(v)]);
  return [
    span.name,
    ...values(span.attributes),
    span.status.message ?? "",
    ...span.events.flatMap((e) => [e.name, ...values(e.attributes ?? {})]),
  ];
}

function connection(db: TestDatabase) {
  const url = new URL(db.url);
  return {
    "db.system.name": "postgresql",
    "db.namespace": url.pathname.slice(1),
    "server.address": url.hostname,
    "server.port": Number(url.port || 5432),
  };
}

dbTest(
  "instrumented sql: a statement under a sampled span is one CLIENT child span",
  async (_t, db) => {
    fresh();
    const sql = instrumentSql(db.sql, { tracer });
    const secret = "s3cr3t-value-9f2c";
    const { result, root } = await underRoot(() =>
      sql`select ${secret}::text as v, ${42}::int as n from generate_series(1, 3)`
    );
    assertEquals(result.length, 3);
    const spans = dbSpans();
    assertEquals(spans.length, 1);
    const [span] = spans;
    assertEquals(span.kind, SpanKind.CLIENT);
    assertEquals(span.name, "SELECT");
    assertEquals(parentOf(span), root.spanContext().spanId);
    assertEquals(span.spanContext().traceId, root.spanContext().traceId);
    assertEquals(span.attributes, {
      ...connection(db),
      "db.operation.name": "SELECT",
      "db.query.text": "select $1::text as v, $2::int as n from generate_series(1, 3)",
      [ATTR_DB_RESPONSE_RETURNED_ROWS]: 3,
    });
    assertEquals(span.status.code, SpanStatusCode.UNSET);
    assert(!everyString(span).some((s) => s.includes(secret)), "no parameter value");
    assertAllEnded();
  },
);

dbTest("instrumented sql: operations, multi-part statements, helpers", async (_t, db) => {
  fresh();
  const sql = instrumentSql(db.sql, { tracer });
  await underRoot(async () => {
    await sql`create table traced_t (id serial primary key, name text unique, doc jsonb)`;
    await sql`insert into traced_t ${sql({ name: "a", doc: sql.json({ k: 1 }) })}`;
    await sql`update traced_t set ${sql({ name: "b" }, "name")} where name = ${"a"}`;
    await sql`  -- a comment first
      with x as (select 1) select * from x`;
    await sql`${sql`select`} 1`; // the keyword in a fragment: named from the text sent
    await sql`delete from traced_t where name in ${sql(["b", "c"])}`;
  });
  const spans = dbSpans();
  assertEquals(spans.map((s) => [s.name, s.attributes["db.operation.name"]]), [
    ["CREATE", "CREATE"],
    ["INSERT", "INSERT"],
    ["UPDATE", "UPDATE"],
    ["WITH", "WITH"],
    ["SELECT", "SELECT"],
    ["DELETE", "DELETE"],
  ]);
  assertEquals(spans.map((s) => s.attributes["db.query.text"]), [
    "create table traced_t (id serial primary key, name text unique, doc jsonb)",
    'insert into traced_t ("name","doc")values($1,$2)',
    'update traced_t set "name"=$1 where name = $2',
    "  -- a comment first\n      with x as (select 1) select * from x",
    "select 1",
    "delete from traced_t where name in ($1,$2)",
  ]);
  // Rows returned, not rows touched: an insert without `returning` returns none.
  assertEquals(spans.map((s) => s.attributes[ATTR_DB_RESPONSE_RETURNED_ROWS]), [0, 0, 0, 1, 1, 0]);
  assertAllEnded();
});

dbTest("instrumented sql: fragments and identifiers have no span of their own", async (_t, db) => {
  fresh();
  const sql = instrumentSql(db.sql, { tracer });
  const { result } = await underRoot(async () => {
    const condition = sql`and n > ${1}`;
    const column = sql("n");
    const unused = sql`select ${"never sent"}`; // made, never executed
    assert(unused !== undefined);
    assertEquals(dbSpans().length, 0);
    return await sql`select ${column} from generate_series(1, 3) as t(n) where true ${condition}`;
  });
  assertEquals(result.map((r) => r.n), [2, 3]);
  const spans = dbSpans();
  assertEquals(spans.length, 1);
  assertEquals(
    spans[0].attributes["db.query.text"],
    'select "n" from generate_series(1, 3) as t(n) where true and n > $1',
  );
  assertAllEnded();
});

dbTest("instrumented sql: statements in a transaction are children of its span", async (_t, db) => {
  fresh();
  const sql = instrumentSql(db.sql, { tracer });
  await sql`create table traced_t (id serial primary key, name text unique)`;
  const { root } = await underRoot(() =>
    sql.begin(async (tx) => {
      await tx`insert into traced_t (name) values (${"x"})`;
      await tx.savepoint((sp) => sp`select count(*) from traced_t`);
      return await Promise.all([tx`select 1`, tx`select 2`]);
    })
  );
  const spans = dbSpans();
  const txSpan = spans.find((s) => s.name === TRANSACTION_SPAN)!;
  assert(txSpan, "a transaction span");
  assertEquals(txSpan.kind, SpanKind.INTERNAL);
  assertEquals(parentOf(txSpan), root.spanContext().spanId);
  assertEquals(txSpan.attributes["db.system.name"], "postgresql");
  assertEquals(txSpan.status.code, SpanStatusCode.UNSET);
  const statements = spans.filter((s) => s !== txSpan);
  assertEquals(statements.map((s) => s.name).sort(), ["INSERT", "SELECT", "SELECT", "SELECT"]);
  for (const s of statements) {
    assertEquals(s.kind, SpanKind.CLIENT);
    assertEquals(parentOf(s), txSpan.spanContext().spanId);
  }
  assertAllEnded();
});

dbTest("instrumented sql: a transaction that rolls back is ERROR", async (_t, db) => {
  fresh();
  const sql = instrumentSql(db.sql, { tracer });
  await sql`create table traced_t (id serial primary key, name text unique)`;
  await underRoot(async () => {
    await assertRejects(
      () =>
        sql.begin(async (tx) => {
          await tx`insert into traced_t (name) values (${"y"})`;
          await tx`insert into traced_t (name) values (${"y"})`; // unique violation
        }),
      postgres.PostgresError,
    );
  });
  const spans = dbSpans();
  const txSpan = spans.find((s) => s.name === TRANSACTION_SPAN)!;
  assertEquals(txSpan.status.code, SpanStatusCode.ERROR);
  assertEquals(txSpan.attributes["error.type"], "23505");
  assertEquals(spans.filter((s) => s.status.code === SpanStatusCode.ERROR).length, 2);
  assertEquals((await sql`select count(*)::int as n from traced_t where name = 'y'`)[0].n, 0);
  assertAllEnded();
});

dbTest("instrumented sql: a failing statement is ERROR with its SQLSTATE", async (_t, db) => {
  fresh();
  const sql = instrumentSql(db.sql, { tracer });
  await sql`create table traced_t (id serial primary key, name text unique)`;
  await sql`insert into traced_t (name) values ('taken')`;
  await underRoot(async () => {
    await assertRejects(
      () => sql`insert into traced_t (name) values (${"taken"})`,
      postgres.PostgresError,
    );
    await assertRejects(() => sql`selec 1`, postgres.PostgresError);
    // The server's message quotes the value: it must not reach the span.
    await assertRejects(
      () => sql`select ${"not-a-number-71c3"}::int`,
      postgres.PostgresError,
      "not-a-number-71c3",
    );
  });
  const spans = dbSpans();
  assertEquals(
    spans.map((s) => [
      s.name,
      s.status.code,
      s.attributes["db.response.status_code"],
      s.attributes["error.type"],
      s.attributes["db.query.text"],
    ]),
    [
      ["INSERT", SpanStatusCode.ERROR, "23505", "23505", "insert into traced_t (name) values ($1)"],
      ["SELEC", SpanStatusCode.ERROR, "42601", "42601", "selec 1"],
      ["SELECT", SpanStatusCode.ERROR, "22P02", "22P02", "select $1::int"],
    ],
  );
  for (const s of spans) {
    assert(!everyString(s).some((x) => x.includes("taken") || x.includes("not-a-number")));
    assertEquals(s.events, [], "no exception event (its message may quote a value)");
  }
  assertAllEnded();
});

dbTest(
  "instrumented sql: cancelled, and never sent (ended pool): ERROR, and ended",
  async (_t, db) => {
    fresh();
    const sql = instrumentSql(db.sql, { tracer });
    const ended = postgres(db.url, { max: 1, onnotice: () => {} });
    await ended.end();
    const closed = instrumentSql(ended, { tracer });
    await underRoot(async () => {
      const slow = sql`select pg_sleep(10)`;
      const running = slow.execute();
      await new Promise((r) => setTimeout(r, 100));
      await slow.cancel();
      await assertRejects(() => running, postgres.PostgresError);
      await assertRejects(() => closed`select ${1}`, Error);
    });
    const spans = dbSpans();
    assertEquals(
      spans.map((s) => [s.status.code, s.attributes["error.type"], s.attributes["db.query.text"]]),
      [
        [SpanStatusCode.ERROR, "57014", "select pg_sleep(10)"],
        // Never built for a connection: no text; the operation still comes from the template.
        [SpanStatusCode.ERROR, "CONNECTION_ENDED", undefined],
      ],
    );
    assertEquals(spans[1].name, "SELECT");
    assertAllEnded();
  },
);

dbTest("instrumented sql: cursors, forEach, describe, reserve, unsafe, simple", async (_t, db) => {
  fresh();
  const sql = instrumentSql(db.sql, { tracer });
  await underRoot(async () => {
    const batches: number[][] = [];
    for await (const rows of sql`select n from generate_series(1, 5) as t(n)`.cursor(2)) {
      batches.push(rows.map((r) => r.n));
    }
    assertEquals(batches, [[1, 2], [3, 4], [5]]);
    const seen: number[] = [];
    await sql`select n from generate_series(1, 3) as t(n)`.forEach((r) => void seen.push(r.n));
    assertEquals(seen, [1, 2, 3]);
    const described = await sql`select ${1}::int as one`.describe();
    assertEquals(described.columns.map((c) => c.name), ["one"]);
    const reserved = await sql.reserve();
    try {
      assertEquals((await reserved`select 7 as n`)[0].n, 7);
    } finally {
      reserved.release();
    }
    assertEquals((await sql.unsafe("select $1::text as v", ["param-3a1f"]))[0].v, "param-3a1f");
    assertEquals((await sql.unsafe("select 'literal-8b2e' as v"))[0].v, "literal-8b2e");
    await sql`select 1; select 2`.simple();
  });
  const spans = dbSpans();
  assertEquals(spans.map((s) => [s.name, s.attributes["db.query.text"]]), [
    ["SELECT", "select n from generate_series(1, 5) as t(n)"],
    ["SELECT", "select n from generate_series(1, 3) as t(n)"],
    ["SELECT", "select $1::int as one"],
    ["SELECT", "select 7 as n"],
    ["SELECT", "select $1::text as v"],
    // Sent as given: literals become `?`.
    ["SELECT", "select ? as v"],
    ["SELECT", "select 1; select 2"],
  ]);
  assertEquals(
    spans.map((s) => s.attributes[ATTR_DB_RESPONSE_RETURNED_ROWS]),
    [undefined, undefined, undefined, 1, 1, 1, undefined],
  );
  assert(!spans.some((s) => everyString(s).some((x) => x.includes("3a1f") || x.includes("8b2e"))));
  assertAllEnded();
});

dbTest("instrumented sql: no recording span, no span and no per-query state", async (_t, db) => {
  fresh();
  const sql = instrumentSql(db.sql, { tracer });
  const unsampledParent = trace.setSpan(
    context.active(),
    trace.wrapSpanContext({
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
      spanId: "00f067aa0ba902b7",
      traceFlags: TraceFlags.NONE,
      isRemote: true,
    }),
  );
  const run = async () => {
    const q = sql`select ${1}::int as n`;
    assert(!Object.hasOwn(q, "handle"), "an untraced query is postgres.js's own");
    await q;
    await sql.begin((tx) => tx`select 1`);
    await sql.unsafe("select 1");
  };
  await run(); // no span at all
  await context.with(unsampledParent, run); // a parent that is not sampled
  await unsampledTracer.startActiveSpan("unsampled root", async (span: Span) => {
    assert(!span.isRecording());
    await run();
    span.end();
  });
  assertEquals(exporter.getFinishedSpans().length, 0);
  assertAllEnded();
});

dbTest("instrumented sql: results are those of the bare sql", async (_t, db) => {
  fresh();
  const traced = instrumentSql(db.sql, { tracer });
  await db.sql`create table traced_t (id int primary key, name text, at timestamptz, doc jsonb)`;
  const shape = (r: postgres.RowList<postgres.Row[]>) => ({
    rows: [...r],
    count: r.count,
    command: r.command,
    columns: r.columns?.map((c) => [c.name, c.type, c.table, c.number]),
  });
  const statements: ((sql: Sql) => Promise<postgres.RowList<postgres.Row[]>>)[] = [
    (sql) =>
      sql`insert into traced_t ${
        sql({ id: 2, name: "two", at: new Date(0), doc: sql.json({ a: [1] }) })
      } returning *`,
    (sql) => sql`update traced_t set name = ${"m"} where id = ${1} returning id, name`,
    (sql) => sql`select * from traced_t order by id`,
    (sql) => sql`select * from traced_t where false`,
    (sql) => sql`delete from traced_t where id = ${1}`,
    (sql) => sql`select ${sql.array([1, 2])}::int[] as a, ${null}::text as z`,
  ];
  for (const [i, statement] of statements.entries()) {
    const onFreshRows = async (sql: Sql) => {
      await db.sql`truncate traced_t`;
      await db.sql`insert into traced_t values (1, 'one', 'epoch', '{"k": "v"}')`;
      return shape(await statement(sql));
    };
    const bare = await onFreshRows(db.sql);
    assertEquals(await onFreshRows(traced), bare, `statement ${i} without a span`);
    const { result } = await underRoot(() => onFreshRows(traced));
    assertEquals(result, bare, `statement ${i} under a span`);
  }
  assertEquals(dbSpans().length, statements.length);
  // Everything else on the pool works through the wrapper.
  assertEquals(traced.options.database, db.sql.options.database);
  assertEquals(traced.parameters, db.sql.parameters);
  assertEquals(traced.PostgresError, postgres.PostgresError);
  assertEquals(traced.json, db.sql.json);
  assertEquals(typeof traced.end, "function");
});

dbTest(
  "instrumented sql: a begin set on the wrapper later wraps the traced one",
  async (_t, db) => {
    fresh();
    const sql = instrumentSql(db.sql, { tracer });
    // As pool_stats.ts does: replaces `begin` in place, calling the one it found.
    let calls = 0;
    const begin = sql.begin.bind(sql) as (...args: unknown[]) => Promise<unknown>;
    (sql as unknown as { begin: unknown }).begin = (...args: unknown[]) => {
      calls++;
      return begin(...args);
    };
    const { result } = await underRoot(() => sql.begin((tx) => tx`select 1 as n`));
    assertEquals([calls, result[0].n], [1, 1]);
    assertEquals(dbSpans().map((s) => s.name), ["SELECT", TRANSACTION_SPAN]);
    assertAllEnded();
  },
);

dbTest("instrumented sql: a statement awaited in another context", async (_t, db) => {
  fresh();
  const sql = instrumentSql(db.sql, { tracer });
  // Made under a span, executed after it ended: nothing is recording then.
  let later: PromiseLike<unknown> | undefined;
  await underRoot(() => {
    later = sql`select 1`;
    return Promise.resolve();
  });
  await later;
  assertEquals(dbSpans().length, 0);
  assertAllEnded();
});

// ---- no parameter value anywhere, for any value -------------------------------------------

dbTest("instrumented sql property: no parameter value appears in any span", async (_t, db) => {
  const sql = instrumentSql(db.sql, { tracer });
  await sql`create table traced_t (id serial primary key, name text unique, doc jsonb)`;
  const text = fc.oneof(
    fc.string({ maxLength: 24 }),
    fc.string({ unit: "grapheme", maxLength: 24 }),
    fc.string({ unit: "binary", maxLength: 24 }),
    fc.constantFrom("'", "''", "$1", "$$", "\\", "%s", "?", "select", "null", "true"),
  );
  let n = 0;
  await fc.assert(
    fc.asyncProperty(text, async (random) => {
      fresh();
      // A marker no statement contains: if any part of the value leaks, the marker does.
      const marker = `pv${(n++).toString(36)}q${crypto.randomUUID().slice(0, 8)}`;
      const value = `${marker}${random}`;
      const attempts: (() => PromiseLike<unknown>)[] = [
        () => sql`select ${value}::text as v`,
        () => sql`select ${value}::int`, // fails; the message quotes the value
        () => sql`insert into traced_t ${sql({ name: value, doc: sql.json({ value }) })}`,
        () => sql`insert into traced_t (name) values (${value})`, // unique violation
        () => sql`select 1 from traced_t where true ${sql`and name = ${value}`}`,
        () => sql`select 1 from traced_t where name in ${sql([value, "other"])}`,
        () => sql`select ${sql.array([value])}::text[] as a`,
        () => sql`update traced_t set ${sql({ name: value + "!" }, "name")} where name = ${value}`,
        () => sql.unsafe("select $1::text as v", [value]),
        () => sql.unsafe(`select '${value.replaceAll("'", "''")}'::text as v`),
        () => sql`select ${sql.unsafe(`'${value.replaceAll("'", "''")}'`)}::text as v`,
        () => sql.begin((tx) => tx`select ${value}::text as v`),
      ];
      await underRoot(async () => {
        for (const attempt of attempts) await Promise.resolve(attempt()).catch(() => {});
      });
      const spans = dbSpans();
      // One span per statement, and the transaction's.
      assert(spans.length === attempts.length + 1, `${spans.length} spans`);
      for (const span of spans) {
        for (const s of everyString(span)) {
          assert(!s.includes(marker), `${span.name}: ${JSON.stringify(s)} holds the value`);
          if (random.length >= 4 && !/^[\s\w$]*$/.test(random)) {
            assert(!s.includes(value), `${span.name}: ${JSON.stringify(s)}`);
          }
        }
      }
      assert(openSpans.open.size === 0, "every span ended");
      await sql`delete from traced_t`;
    }),
    { numRuns: runs, ...(seed ? { seed: Number(seed) } : {}) },
  );
});

// ---- statement text helpers ------------------------------------------------------------------

Deno.test("traced sql: operationName is the first keyword, past blanks and comments", () => {
  assertEquals(operationName("select 1"), "SELECT");
  assertEquals(operationName("\n  -- note\n /* c */ Insert into t"), "INSERT");
  assertEquals(operationName("((select 1)) union select 2"), "SELECT");
  assertEquals(operationName("with x as (select 1) delete from t"), "WITH");
  assertEquals(operationName("begin"), "BEGIN");
  assertEquals(operationName(""), undefined);
  assertEquals(operationName("$1"), undefined);
  assertEquals(operationName(undefined), undefined);
});

Deno.test("traced sql: sanitize replaces literals, keeps identifiers and placeholders", () => {
  assertEquals(
    sanitize(
      `select "a 'b'", t1.c2, $1, $12 from t where s = 'it''s' and e = E'x\\'y' and n = -12.5e3` +
        ` and d = $$a 'q' $1$$ and g = $tag$z$tag$ and h = x'ff' and b = true and v::varchar(20)` +
        ` -- 'kept comment'`,
    ),
    `select "a 'b'", t1.c2, $1, $12 from t where s = ? and e = ? and n = -? and d = ? and g = ?` +
      ` and h = ? and b = ? and v::varchar(?) -- 'kept comment'`,
  );
});

// ---- deadlines ---------------------------------------------------------------------------------

/**
 * A pool of one connection, held by a transaction until released: statements wait in the pool's
 * queue, not on a connection. (A statement postgres.js has already pipelined onto a busy
 * connection is on the wire: it may run after its deadline, like one whose answer was lost.)
 */
async function heldPool(_db: TestDatabase) {
  const raw = postgres(_db.url, { max: 1, onnotice: () => {} });
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let holding!: () => void;
  const held = new Promise<void>((r) => (holding = r));
  const transaction = raw.begin(async (tx) => {
    await tx`select 1`;
    holding();
    await released;
  });
  await held;
  return {
    raw,
    async release() {
      release();
      await transaction;
    },
  };
}

dbTest(
  "instrumented sql: a statement with no answer in time fails as DatabaseTimeout",
  async (_t, db) => {
    const sql = instrumentSql(db.sql, { deadlineMs: 150 });
    const error = await assertRejects(() => sql`select pg_sleep(1)`, DatabaseTimeout);
    assertEquals((error as { code?: string }).code, "VIGIL_DB_TIMEOUT");
    assertEquals((await sql`select 1 as one`)[0].one, 1, "the pool goes on working");
  },
);

dbTest("instrumented sql: a queued statement that timed out never runs later", async (_t, db) => {
  await db.sql`create table deadline_probe (n int)`;
  const held = await heldPool(db);
  try {
    const sql = instrumentSql(held.raw, { deadlineMs: 100 });
    const error = await assertRejects(
      () => sql`insert into deadline_probe values (1)`,
      DatabaseTimeout,
    );
    assertEquals((error as { code?: string }).code, "VIGIL_DB_TIMEOUT");
    await held.release();
    await held.raw`select 1`; // the connection is free again: a late insert would have run by now
    assertEquals((await db.sql`select count(*)::int as n from deadline_probe`)[0].n, 0);
  } finally {
    await held.raw.end();
  }
});

dbTest(
  "instrumented sql: a transaction whose connection comes late does nothing",
  async (_t, db) => {
    await db.sql`create table deadline_probe (n int)`;
    const held = await heldPool(db);
    try {
      const sql = instrumentSql(held.raw, { deadlineMs: 100 });
      let ran = false;
      const error = await assertRejects(
        () =>
          sql.begin(async (tx) => {
            ran = true;
            await tx`insert into deadline_probe values (1)`;
          }),
        DatabaseTimeout,
      );
      assertEquals((error as { code?: string }).code, "VIGIL_DB_TIMEOUT");
      await held.release();
      await held.raw`select 1`;
      assertEquals((await db.sql`select count(*)::int as n from deadline_probe`)[0].n, 0);
      assertEquals(ran, false, "the late connection rolled back before the callback ran");
    } finally {
      await held.raw.end();
    }
  },
);

dbTest(
  "instrumented sql: with a deadline, transactions, helpers and results are unchanged",
  async (_t, db) => {
    const sql = instrumentSql(db.sql, { deadlineMs: 2000 });
    await sql`create table deadline_probe (n int primary key, v text)`;
    const rows = await sql.begin(async (tx) => {
      await tx`insert into deadline_probe ${tx([{ n: 1, v: "a" }, { n: 2, v: "b" }])}`;
      return await tx`select * from deadline_probe where n = any(${[1, 2]}) order by n`;
    });
    assertEquals(rows.map((r) => r.v), ["a", "b"]);
    const failed = await assertRejects(
      () => sql.begin((tx) => tx`insert into deadline_probe values (1, 'dup')`),
      postgres.PostgresError,
    );
    assertEquals((failed as { code?: string }).code, "23505", "a real error stays itself");
    const seen: number[] = [];
    await sql`select n from deadline_probe order by n`.forEach((r) => void seen.push(r.n));
    assertEquals(seen, [1, 2]);
  },
);
