/**
 * Structured JSON logs through LogTape: one JSON object a line with `ts`, `level`, `msg`, the
 * logger category and the record's properties. Request-scoped fields (request_id, trace_id) come
 * from LogTape's implicit context, so every line written while serving a request carries them.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import {
  configure,
  dispose,
  getLogger,
  getStreamSink,
  type Logger,
  type LogLevel,
  type LogRecord,
  reset,
  type Sink,
  withContext,
} from "@logtape/logtape";

export type { Logger, LogRecord };
export { withContext };

/** The root logger; modules take a child (`logger.getChild("db")`). */
export const rootLogger: Logger = getLogger(["vigil"]);

const LEVEL_NAMES: Record<LogLevel, string> = {
  trace: "trace",
  debug: "debug",
  info: "info",
  warning: "warn",
  error: "error",
  fatal: "fatal",
};

/** Formats one record as a JSON line. Errors become {name, message, stack}. */
export function formatJsonLine(record: LogRecord): string {
  const line: Record<string, unknown> = {
    ts: new Date(record.timestamp).toISOString(),
    level: LEVEL_NAMES[record.level],
    msg: renderMessage(record.message),
    logger: record.category.join("."),
  };
  for (const [key, value] of Object.entries(record.properties)) {
    line[key] = value instanceof Error ? serializeError(value) : value;
  }
  return JSON.stringify(
    line,
    (_key, value) => typeof value === "bigint" ? value.toString() : value,
  ) +
    "\n";
}

function renderMessage(parts: readonly unknown[]): string {
  let out = "";
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    out += i % 2 === 0 ? String(part) : typeof part === "string" ? part : JSON.stringify(part);
  }
  return out;
}

export function serializeError(error: Error): Record<string, unknown> {
  return {
    name: error.name,
    message: error.message,
    stack: error.stack,
    ...(error.cause instanceof Error ? { cause: serializeError(error.cause) } : {}),
  };
}

export interface LoggingOptions {
  level: "debug" | "info" | "warning" | "error";
  /** Where records go; defaults to JSON lines on stdout. */
  sink?: Sink;
}

/** Configures the process-wide logging (LogTape is global by design). */
export async function setupLogging(options: LoggingOptions): Promise<void> {
  const sink = options.sink ??
    getStreamSink(Deno.stdout.writable, {
      formatter: formatJsonLine,
      closeStream: false,
      nonBlocking: { bufferSize: 256, flushInterval: 50 },
    });
  await configure({
    reset: true,
    contextLocalStorage: new AsyncLocalStorage(),
    sinks: { main: sink },
    loggers: [
      { category: ["vigil"], lowestLevel: options.level, sinks: ["main"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["main"] },
    ],
  });
}

/** Flushes buffered log lines; call before the process exits. */
export async function closeLogging(): Promise<void> {
  await dispose();
}

export { reset as resetLogging };
