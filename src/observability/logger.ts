/**
 * Structured JSON logs: one object a line with `ts`, `level`, `msg`, `logger` and the fields.
 * Fields of the current request (request_id, trace_id) ride on the OpenTelemetry context, so
 * every line written while serving a request carries them without being passed around.
 *
 * Lines are buffered and written in batches (at 64 KiB, every 100 ms, and on close): a log line
 * costs a JSON.stringify, not a write. (LogTape, tried first, cost ~20 µs a request line and
 * held ~50 MB of records under load; see the benchmark notes in the README.)
 */
import { type Context, context, createContextKey } from "@opentelemetry/api";
import { installContext } from "./context.ts";

export type Level = "debug" | "info" | "warn" | "error" | "fatal";
const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40, fatal: 50 };

export type Fields = Record<string, unknown>;

export interface LogRecord {
  ts: string;
  level: Level;
  msg: string;
  logger: string;
  fields: Fields;
}

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  fatal(msg: string, fields?: Fields): void;
  /** A logger for a part of vigil: `vigil.http`, `vigil.delivery`, … */
  child(name: string): Logger;
}

export type Sink = (record: LogRecord) => void;

const FIELDS_KEY = createContextKey("vigil.log.fields");

/** A context whose log lines carry `fields` (merged over the fields already there). */
export function withLogFields(ctx: Context, fields: Fields): Context {
  const current = ctx.getValue(FIELDS_KEY) as Fields | undefined;
  return ctx.setValue(FIELDS_KEY, current ? { ...current, ...fields } : fields);
}

/** Runs `fn` with `fields` on every line it logs. */
export function withLogContext<T>(fields: Fields, fn: () => T): T {
  return context.with(withLogFields(context.active(), fields), fn);
}

export function serializeError(error: Error): Fields {
  return {
    name: error.name,
    message: error.message,
    stack: error.stack,
    ...(error.cause instanceof Error ? { cause: serializeError(error.cause) } : {}),
  };
}

/** `applied migration {name}` → `applied migration 001_x.sql`. */
function render(msg: string, fields: Fields): string {
  if (!msg.includes("{")) return msg;
  return msg.replace(/\{(\w+)\}/g, (all, key: string) => {
    const value = fields[key];
    return value === undefined ? all : typeof value === "string" ? value : JSON.stringify(value);
  });
}

/** Who writes: service, version, instance — on every line, so that replicas' logs can be told apart. */
let identity: Fields = {};
/** `identity` as the JSON text it adds to a line (`,"service":"vigil",…`). */
let identityJson = "";
/** Keys a field cannot take on the fast path: they are the line's own (ts, level, …, identity). */
let lineKeys = new Set<string>();

function setIdentity(fields: Fields): void {
  identity = fields;
  const text = JSON.stringify(fields);
  identityJson = text.length > 2 ? `,${text.slice(1, -1)}` : "";
  // And `__proto__`: whatever assigning it does, the general path does it.
  lineKeys = new Set(["ts", "level", "msg", "logger", "__proto__", ...Object.keys(fields)]);
}
setIdentity({});

/**
 * One JSON line: `ts`, `level`, `msg`, `logger`, the identity, then the fields. The usual line
 * (a plain object of fields, none an Error or named like the line's own keys) is the head's text
 * and one JSON.stringify of the fields; anything else takes the general path. Both give the same
 * text (src/observability/logger_test.ts).
 */
export function formatJsonLine(record: LogRecord): string {
  const fields = record.fields;
  // Also general: inherited keys (for…in sees them, JSON.stringify not) and integer-like keys
  // (an object lists them first, so they would move ahead of ts).
  const proto = Object.getPrototypeOf(fields);
  let plain = proto === Object.prototype || proto === null;
  for (const key in fields) {
    if (!plain) break;
    const first = key.charCodeAt(0);
    if (lineKeys.has(key) || (first >= 48 && first <= 57) || fields[key] instanceof Error) {
      plain = false;
    }
  }
  if (plain) {
    let body: string | undefined;
    try {
      body = JSON.stringify(fields);
    } catch { /* a BigInt or a cycle: the general path */ }
    if (body !== undefined) {
      // ts is an ISO timestamp and level one of five words: neither needs escaping.
      const head = `{"ts":"${record.ts}","level":"${record.level}","msg":${
        JSON.stringify(record.msg)
      },"logger":${JSON.stringify(record.logger)}${identityJson}`;
      return body.length > 2 ? `${head},${body.slice(1)}` : `${head}}`;
    }
  }
  return generalJsonLine(record);
}

/**
 * The line as one object and one JSON.stringify (an Error's fields serialised; a BigInt or a
 * cycle written forgivingly): what formatJsonLine's fast path must always equal.
 */
export function generalJsonLine(record: LogRecord): string {
  const line: Fields = {
    ts: record.ts,
    level: record.level,
    msg: record.msg,
    logger: record.logger,
    ...identity,
  };
  for (const key in record.fields) {
    const value = record.fields[key];
    line[key] = value instanceof Error ? serializeError(value) : value;
  }
  try {
    return JSON.stringify(line);
  } catch {
    // A BigInt or a cycle: fall back to the slow, forgiving path.
    const seen = new WeakSet();
    return JSON.stringify(line, (_k, v) => {
      if (typeof v === "bigint") return v.toString();
      if (v && typeof v === "object") {
        if (seen.has(v)) return "[circular]";
        seen.add(v);
      }
      return v;
    });
  }
}

/** Buffered JSON lines on stdout. */
function stdoutSink(): { sink: Sink; flush(): void } {
  const encoder = new TextEncoder();
  let buffer = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (buffer === "") return;
    const data = encoder.encode(buffer);
    buffer = "";
    let written = 0;
    while (written < data.length) written += Deno.stdout.writeSync(data.subarray(written));
  };
  return {
    flush,
    sink(record) {
      buffer += formatJsonLine(record) + "\n";
      if (buffer.length >= 65_536) flush();
      else if (timer === undefined) {
        const t = setTimeout(flush, 100);
        Deno.unrefTimer(t as unknown as number);
        timer = t;
      }
    },
  };
}

let threshold = RANK.info;

/** The ISO time of the current millisecond: lines logged within one share the string. */
let stampMs = NaN;
let stamp = "";
function timestamp(): string {
  const now = Date.now();
  if (now !== stampMs) {
    stampMs = now;
    stamp = new Date(now).toISOString();
  }
  return stamp;
}
let sink: Sink = () => {};
let flushSink: () => void = () => {};

class JsonLogger implements Logger {
  constructor(private readonly name: string) {}

  #log(level: Level, msg: string, fields: Fields = {}) {
    if (RANK[level] < threshold) return;
    const ambient = context.active().getValue(FIELDS_KEY) as Fields | undefined;
    const all = ambient ? { ...ambient, ...fields } : fields;
    sink({
      ts: timestamp(),
      level,
      msg: render(msg, all),
      logger: this.name,
      fields: all,
    });
  }

  debug(msg: string, fields?: Fields) {
    this.#log("debug", msg, fields);
  }
  info(msg: string, fields?: Fields) {
    this.#log("info", msg, fields);
  }
  warn(msg: string, fields?: Fields) {
    this.#log("warn", msg, fields);
  }
  error(msg: string, fields?: Fields) {
    this.#log("error", msg, fields);
  }
  fatal(msg: string, fields?: Fields) {
    this.#log("fatal", msg, fields);
  }
  child(name: string): Logger {
    return new JsonLogger(`${this.name}.${name}`);
  }
}

/** The root logger; modules take a child (`logger.child("db")`). */
export const rootLogger: Logger = new JsonLogger("vigil");

export interface LoggingOptions {
  level: "debug" | "info" | "warning" | "error";
  /** Where records go; defaults to buffered JSON lines on stdout. */
  sink?: Sink;
  /** Fields on every line (service, version, instance). */
  identity?: Fields;
}

/** Configures the process-wide logging. */
export function setupLogging(options: LoggingOptions): void {
  installContext();
  threshold = RANK[options.level === "warning" ? "warn" : options.level];
  setIdentity(options.identity ?? {});
  if (options.sink) {
    sink = options.sink;
    flushSink = () => {};
  } else {
    const out = stdoutSink();
    sink = out.sink;
    flushSink = out.flush;
  }
}

/** Writes buffered lines; call before the process exits. */
export function closeLogging(): void {
  flushSink();
}
