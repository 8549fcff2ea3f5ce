/**
 * postgres.js 3.4.9 can reject a promise nobody holds when a connection dies under it (a
 * transaction's close handler outliving the transaction, a rollback written to a closed socket:
 * porsager/postgres#1201, #1208). The query that was using the connection already failed and was
 * handled; the stray copy of the error must not end the process (Deno exits on an unhandled
 * rejection), or a database restart would take every replica down with it.
 */
import type { Logger } from "../observability/logger.ts";

const CONNECTION_LOSS = new Set([
  "CONNECTION_DESTROYED",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "ECONNRESET",
  "EPIPE",
]);

export function isConnectionLoss(error: unknown): boolean {
  return CONNECTION_LOSS.has((error as { code?: string } | null)?.code ?? "");
}

/**
 * The database is away (refused, timed out, restarting, connection lost) — as opposed to a
 * query that is wrong. Requests that meet it are answered 503 `database unavailable`.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code ?? "";
  return isConnectionLoss(error) || code === "ECONNREFUSED" || code === "CONNECT_TIMEOUT" ||
    code === "VIGIL_DB_TIMEOUT" || // instrumented_sql.ts: no answer within DB_TIMEOUT_MS
    code === "ETIMEDOUT" || code === "EHOSTUNREACH" || code.startsWith("08") || // connection
    code === "57014" || // a statement the server stopped at statement_timeout (= DB_TIMEOUT_MS)
    code === "57P01" || code === "57P02" || code === "57P03"; // shutting down, cannot connect now
}

/** Keeps the process alive through stray connection-loss rejections, logging each one. */
export function tolerateStrayConnectionErrors(logger?: Logger): void {
  globalThis.addEventListener("unhandledrejection", (event) => {
    if (!isConnectionLoss(event.reason)) return;
    event.preventDefault();
    logger?.warn("a database connection was lost ({code}); the query using it has failed", {
      code: (event.reason as { code: string }).code,
    });
  });
}
