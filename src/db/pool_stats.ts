/**
 * What the pool is doing. postgres.js does not expose its queues (porsager/postgres#443, #908),
 * so vigil counts the one wait it can see exactly: a transaction (`sql.begin`) has been asked
 * for and its callback has not started, because every connection is taken or the database does
 * not answer. Connections in use and idle are read from PostgreSQL itself (monitor.ts).
 */
import type { Sql } from "./database.ts";

export interface PoolStats {
  /** Transactions waiting for a connection now. */
  waiting(): number;
}

/** Counts waiting transactions of `sql` (its `begin` is wrapped in place; callers do not change). */
export function trackTransactions(sql: Sql): PoolStats {
  let waiting = 0;
  const begin = sql.begin.bind(sql) as (...args: unknown[]) => Promise<unknown>;
  const wrapped = (...args: unknown[]) => {
    const fn = args.pop() as (tx: unknown) => unknown;
    waiting++;
    let started = false;
    const start = () => {
      if (!started) waiting--;
      started = true;
    };
    return begin(...args, (tx: unknown) => {
      start();
      return fn(tx);
    }).finally(start); // a transaction that never got a connection stops waiting when it fails
  };
  (sql as unknown as { begin: unknown }).begin = wrapped;
  return { waiting: () => waiting };
}
