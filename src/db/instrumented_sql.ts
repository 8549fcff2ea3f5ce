/**
 * The database as vigil's code sees it: `instrumentSql(sql, { tracer, deadlineMs })` is `sql`
 * (same type, same behaviour) with
 *
 * - **a deadline on every call** (`deadlineMs`): a statement that has not settled in time is
 *   failed with a `DatabaseTimeout` (code `VIGIL_DB_TIMEOUT`, a "database unavailable" error:
 *   503 for a request, an error tick for a job), and one still in the pool's queue is taken off
 *   it so it never runs late (one postgres.js already pipelined onto a busy connection is on the
 *   wire and may still run, as may one whose answer was lost); a transaction must get its
 *   connection, and its COMMIT or
 *   ROLLBACK must be answered, within the deadline too. This is what keeps a database that stops
 *   answering without closing its connections (a partition, a frozen host) from holding requests
 *   until TCP gives up. The outcome of a write whose answer never came is unknown: the request
 *   says 503 and the write may still land when the database comes back (nothing half-written: a
 *   transaction commits whole or not at all). Streams (`forEach`, `cursor`) have no deadline.
 * - **client spans** (`tracer`) for statements executed under a recording span, with the stable
 *   OpenTelemetry database conventions:
 *   - `db.system.name` "postgresql"; `db.namespace` the database name given at connect time;
 *     `server.address` and `server.port` as configured (the first host, or the socket path).
 *   - `db.operation.name` the statement's first keyword, upper-cased (`SELECT`, `WITH`, …), also
 *     the span name (`postgresql` when there is none): the table is not parsed out of SQL text.
 *   - `db.query.text` the statement as sent, with its `$1..$n` placeholders and never a
 *     parameter value. Text postgres.js sends as is (`sql.unsafe`, `sql.file`, a tagged statement
 *     with an `unsafe` fragment) is recorded with its literals replaced by `?`.
 *   - `db.response.returned_rows` the rows of the result (not for `forEach`, cursors, `describe`).
 *   - On failure: status ERROR; `error.type` the SQLSTATE (also `db.response.status_code`), else
 *     the driver's code, else the error's name — also the status message: a PostgreSQL message
 *     may quote a parameter, so no exception event is recorded either.
 *   The span starts when postgres.js executes the statement (its lazy `Query` is first awaited),
 *   so it covers the wait for a connection, and ends when it settles. A fragment (`sql\`and x =
 *   ${y}\``, `sql(identifier)`) is never executed on its own and has no span. A transaction is one
 *   INTERNAL span, `db.transaction`, around its statements (BEGIN and COMMIT are inside it).
 *
 * With no recording span, a statement costs one check of the active span and, with a deadline,
 * one timer (bench/instrumented_sql_bench.ts measures both).
 */
import {
  type Attributes,
  context,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
} from "@opentelemetry/api";
import {
  ATTR_DB_NAMESPACE,
  ATTR_DB_OPERATION_NAME,
  ATTR_DB_QUERY_TEXT,
  ATTR_DB_RESPONSE_STATUS_CODE,
  ATTR_DB_SYSTEM_NAME,
  ATTR_ERROR_TYPE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  DB_SYSTEM_NAME_VALUE_POSTGRESQL,
} from "@opentelemetry/semantic-conventions";
import postgres from "postgres";
import type { Sql } from "./database.ts";

/** Development-status attribute (not in the stable export of semantic-conventions). */
export const ATTR_DB_RESPONSE_RETURNED_ROWS = "db.response.returned_rows";
export const TRANSACTION_SPAN = "db.transaction";

/** What postgres.js's `Query` (src/query.js, connection.js) has that this module uses. */
interface Query {
  tagged: boolean;
  strings: readonly string[];
  args: unknown[];
  /** The text sent, placeholders included: set when the statement is built for a connection. */
  string?: string;
  executed: boolean;
  forEachFn?: unknown;
  cursorFn?: unknown;
  /** Set once the statement is on a connection; `active` while it is the one running there. */
  state: unknown;
  active: boolean;
  cancel(): void;
  handle(): Promise<void>;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  [STATE]?: Settings;
}

interface Settings {
  tracer?: Tracer;
  /** db.system.name, db.namespace, server.*: the same for every span of this pool. */
  attributes: Attributes;
  deadlineMs?: number;
}

export interface Instrumentation {
  /** Client spans for statements run inside a recording span. */
  tracer?: Tracer;
  /** The longest a statement, or a transaction's wait for its connection or its COMMIT, may take. */
  deadlineMs?: number;
}

const STATE = Symbol("vigil.instrumentSql");

/** `sql` with deadlines and client spans for its statements; everything else works as before. */
export function instrumentSql(sql: Sql, { tracer, deadlineMs }: Instrumentation): Sql {
  return wrap(sql, { tracer, deadlineMs, attributes: connectionAttributes(sql.options) });
}

/** A database call that did not settle within its deadline: the database is not answering. */
export class DatabaseTimeout extends Error {
  override name = "DatabaseTimeout";
  readonly code = "VIGIL_DB_TIMEOUT";
  constructor(what: string, ms: number) {
    super(`${what}: the database did not answer within ${ms} ms`);
  }
}

function connectionAttributes(options: Sql["options"]): Attributes {
  const attributes: Attributes = {
    [ATTR_DB_SYSTEM_NAME]: DB_SYSTEM_NAME_VALUE_POSTGRESQL,
    [ATTR_DB_NAMESPACE]: options.database,
  };
  const path = (options as { path?: string | false }).path;
  if (path) {
    attributes[ATTR_SERVER_ADDRESS] = path;
  } else {
    const hosts = options.host as unknown as string[];
    const ports = options.port as unknown as number[];
    if (hosts[0]) attributes[ATTR_SERVER_ADDRESS] = hosts[0];
    if (ports[0]) attributes[ATTR_SERVER_PORT] = ports[0];
  }
  return attributes;
}

// ---- the wrapper -------------------------------------------------------------------------

type AnyFn = (...args: unknown[]) => unknown;

/**
 * A Proxy of a postgres.js sql function (the pool, a transaction's `tx`, a reserved
 * connection): a call as a tagged template is a statement (instrumented if a span is recording);
 * `unsafe` and `file` make statements too; `begin`, `savepoint` and `reserve` hand out wrapped
 * sql functions. Every other property is the target's.
 */
function wrap<T extends object>(target: T, tracing: Settings): T {
  const sql = target as unknown as Record<PropertyKey, AnyFn>;
  const wrapCallbacks = (args: unknown[]) =>
    args.map((arg) =>
      typeof arg === "function" ? (tx: object) => (arg as AnyFn)(wrap(tx, tracing)) : arg
    );
  const overrides: Record<PropertyKey, AnyFn> = Object.assign(
    Object.create(null),
    {
      unsafe: (...args) => watch(sql.unsafe(...args), tracing),
      file: (...args) => watch(sql.file(...args), tracing),
      reserve: async () => wrap(await (sql.reserve() as Promise<object>), tracing),
      savepoint: (...args) => sql.savepoint(...wrapCallbacks(args)),
      begin: (...args) =>
        transaction(() =>
          tracing.deadlineMs === undefined
            ? sql.begin(...wrapCallbacks(args)) as Promise<unknown>
            : withinDeadline(args, tracing.deadlineMs)
        ),
    } satisfies Record<string, AnyFn>,
  );

  /**
   * `sql.begin(...args)` whose connection must come, and whose COMMIT or ROLLBACK must be
   * answered, within `ms`. A connection that comes after the deadline rolls back at once.
   */
  function withinDeadline(args: unknown[], ms: number): Promise<unknown> {
    const fn = args[args.length - 1] as AnyFn;
    const options = args.slice(0, -1);
    let abandoned = false;
    return new Promise((resolve, reject) => {
      const giveUp = (what: string) => () => {
        abandoned = true;
        reject(new DatabaseTimeout(what, ms));
      };
      let timer = setTimeout(giveUp("waiting for a connection for a transaction"), ms);
      const begun = sql.begin(...options, async (tx: object) => {
        clearTimeout(timer);
        if (abandoned) throw new DatabaseTimeout("a transaction's connection came late", ms);
        try {
          return await fn(wrap(tx, tracing));
        } finally {
          timer = setTimeout(giveUp("COMMIT or ROLLBACK"), ms);
        }
      }) as Promise<unknown>;
      begun.then(resolve, reject).finally(() => clearTimeout(timer));
    });
  }

  function transaction(begin: () => Promise<unknown>): Promise<unknown> {
    if (!tracing.tracer || !trace.getActiveSpan()?.isRecording()) return begin();
    const span = tracing.tracer.startSpan(TRANSACTION_SPAN, {
      kind: SpanKind.INTERNAL,
      attributes: tracing.attributes,
    });
    return context.with(trace.setSpan(context.active(), span), begin).then(
      (result) => {
        span.end();
        return result;
      },
      (error) => {
        failed(span, error);
        span.end();
        throw error;
      },
    );
  }

  // Set through the wrapper (pool_stats.ts wraps `begin` in place): kept here, in front of the
  // override, which goes on calling the target's own method (no loop through the wrapper).
  const assigned: Record<PropertyKey, unknown> = Object.create(null);
  return new Proxy(target, {
    apply(fn, self, args) {
      const result = Reflect.apply(fn as AnyFn, self, args);
      // A tagged template makes a Query; sql(identifier) and sql(object) make fragments only.
      const strings = args[0] as { raw?: unknown } | undefined;
      if (strings && Array.isArray(strings.raw)) watch(result, tracing);
      return result;
    },
    get(t, key) {
      if (key in assigned) return assigned[key];
      if (key in overrides && typeof Reflect.get(t, key) === "function") return overrides[key];
      return Reflect.get(t, key);
    },
    set(t, key, value) {
      if (!(key in overrides)) return Reflect.set(t, key, value);
      assigned[key] = value;
      return true;
    },
  });
}

/**
 * Marks a new Query to be traced when it is executed. With no recording span active this is the
 * whole cost: one check. (A fragment made under a span is marked too, and never executed.)
 */
function watch(value: unknown, tracing: Settings): unknown {
  if (tracing.deadlineMs !== undefined) armDeadline(value as Query, tracing.deadlineMs);
  if (!tracing.tracer || !trace.getActiveSpan()?.isRecording()) return value;
  const query = value as Query;
  query[STATE] = tracing;
  // Query.handle runs on the first then/catch/finally/execute/forEach/cursor, and after; the one
  // it replaces may be an inner wrapper's (deadline_sql.ts), which goes on to the prototype's.
  const handle = query.handle;
  query.handle = function (this: Query) {
    if (!this.executed) start(this);
    return handle.call(this);
  };
  return value;
}

/**
 * Fails `query` if it has not settled `ms` after it is executed. One not yet written to a
 * connection is also taken off the queue (postgres.js's cancel, which for such a query only
 * dequeues it), so it cannot run after its caller gave up.
 */
function armDeadline(query: Query, ms: number): void {
  const handle = query.handle;
  query.handle = function (this: Query) {
    if (!this.executed && !this.forEachFn && !this.cursorFn) {
      const timer = setTimeout(() => {
        const queued = !(this.state && this.active);
        this.reject(new DatabaseTimeout("a statement", ms));
        if (queued) this.cancel(); // its own rejection comes second and changes nothing
      }, ms);
      // Promise's own then (Query's species is Promise): settles with the query, runs no handle.
      const clear = () => clearTimeout(timer);
      Promise.prototype.then.call(this, clear, clear);
    }
    return handle.call(this);
  };
}

function start(query: Query): void {
  const tracing = query[STATE]!;
  if (!tracing.tracer) return;
  // Executed in another context than it was made in: only a recording span there counts.
  if (!trace.getActiveSpan()?.isRecording()) return;
  let operation = operationName(query.strings[0]);
  const span = tracing.tracer.startSpan(operation ?? DB_SYSTEM_NAME_VALUE_POSTGRESQL, {
    kind: SpanKind.CLIENT,
    attributes: operation
      ? { ...tracing.attributes, [ATTR_DB_OPERATION_NAME]: operation }
      : tracing.attributes,
  });
  const finish = (error: unknown, result: unknown) => {
    if (!span.isRecording()) return; // ended already
    const text = queryText(query);
    if (text !== undefined) {
      span.setAttribute(ATTR_DB_QUERY_TEXT, text);
      if (!operation && (operation = operationName(text))) {
        span.setAttribute(ATTR_DB_OPERATION_NAME, operation);
        span.updateName(operation);
      }
    }
    if (error !== undefined) {
      failed(span, error);
    } else if (
      Array.isArray(result) && "command" in result && !query.forEachFn && !query.cursorFn
    ) {
      span.setAttribute(ATTR_DB_RESPONSE_RETURNED_ROWS, result.length);
    }
    span.end();
  };
  // postgres.js settles a query through query.resolve/reject, and a cursor replaces them on each
  // step: accessors keep the current ones and end the span on the way through.
  let resolve = query.resolve;
  let reject = query.reject;
  const resolved = (value: unknown) => {
    finish(undefined, value);
    return resolve(value);
  };
  const rejected = (error: unknown) => {
    finish(error ?? new Error(String(error)), undefined);
    return reject(error);
  };
  Object.defineProperties(query, {
    resolve: { configurable: true, get: () => resolved, set: (fn) => resolve = fn },
    reject: { configurable: true, get: () => rejected, set: (fn) => reject = fn },
  });
}

function failed(span: Span, error: unknown): void {
  const type = errorType(error);
  span.setAttribute(ATTR_ERROR_TYPE, type);
  if (error instanceof postgres.PostgresError) {
    span.setAttribute(ATTR_DB_RESPONSE_STATUS_CODE, error.code);
  }
  span.setStatus({ code: SpanStatusCode.ERROR, message: type });
}

/** The SQLSTATE, the driver's or the system's error code, or the error's name. */
export function errorType(error: unknown): string {
  if (error instanceof postgres.PostgresError && error.code) return error.code;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && code) return code;
  if (error instanceof Error && error.name) return error.name;
  return "_OTHER";
}

// ---- statement text ------------------------------------------------------------------------

const FIRST_KEYWORD = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/|\()*([A-Za-z]+)/;

/** The statement's first keyword, upper-cased, past blanks, comments and opening parens. */
export function operationName(text: string | undefined): string | undefined {
  const match = text ? FIRST_KEYWORD.exec(text) : null;
  return match ? match[1].toUpperCase() : undefined;
}

/** The text as sent; sanitized when it was sent as given rather than parameterized. */
function queryText(query: Query): string | undefined {
  const text = query.string;
  if (typeof text !== "string") return undefined; // never got to a connection
  return !query.tagged || inlinesRawText(query.args, 0) ? sanitize(text) : text;
}

function isQuery(value: object): value is Query {
  const q = value as Partial<Query>;
  return typeof q.tagged === "boolean" && Array.isArray(q.strings) && Array.isArray(q.args);
}

/** Does a fragment somewhere in these values put raw text (`sql.unsafe`) into the statement? */
function inlinesRawText(values: readonly unknown[], depth: number): boolean {
  if (depth > 16) return true; // cannot tell: sanitize
  for (const value of values) {
    if (value === null || typeof value !== "object") continue;
    if (isQuery(value)) {
      if (!value.tagged || inlinesRawText(value.args, depth + 1)) return true;
    } else if (Array.isArray(value)) {
      if (
        value.length > 0 && typeof value[0] === "object" && value[0] !== null && isQuery(value[0])
      ) {
        if (inlinesRawText(value, depth + 1)) return true;
      }
    } else if ("first" in value && "rest" in value) {
      // sql(object) / sql(rows): its values may be fragments (insert, update, select builders).
      const first = (value as { first: unknown }).first;
      const rows = Array.isArray(first) ? first : [first];
      for (const row of rows) {
        if (
          row !== null && typeof row === "object" && inlinesRawText(Object.values(row), depth + 1)
        ) {
          return true;
        }
      }
    }
  }
  return false;
}

// Quoted identifiers, comments and placeholders are kept; string, dollar-quoted, bit/hex,
// numeric and boolean literals become `?`.
const LITERALS =
  /("(?:[^"]|"")*"|--[^\n]*|\/\*[\s\S]*?\*\/|\$\d+)|\$([A-Za-z_][A-Za-z0-9_]*)?\$[\s\S]*?\$\2\$|\be'(?:[^'\\]|\\[\s\S]|'')*'|(?:\b(?:[bxn]|u&))?'(?:[^']|'')*'|(?:\b\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\b|\b(?:true|false)\b/gi;

/** `text` with its literal values replaced by `?` (semantic conventions, sanitization). */
export function sanitize(text: string): string {
  return text.replace(LITERALS, (_match, kept: string | undefined) => kept ?? "?");
}
