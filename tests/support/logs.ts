/** Captures log records in memory so that tests can assert on what was logged. */
import { type LogRecord, setupLogging } from "../../src/observability/logger.ts";

const MAX = 5000;
export const logRecords: LogRecord[] = [];
/** Called with every record, even those the bounded buffer drops (to scan a whole run's log). */
export const logWatchers = new Set<(record: LogRecord) => void>();

setupLogging({
  level: "debug",
  sink: (record) => {
    for (const watch of logWatchers) watch(record);
    logRecords.push(record);
    if (logRecords.length > MAX) logRecords.splice(0, logRecords.length - MAX);
  },
});

/** Records logged from now on (call before the action, read after). */
export function logsSince(): () => LogRecord[] {
  const start = logRecords.length;
  const first = logRecords[start - 1];
  return () => {
    const from = first ? logRecords.indexOf(first) + 1 : 0;
    return logRecords.slice(from);
  };
}
