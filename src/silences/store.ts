/**
 * Silences in PostgreSQL. A silence is *pending* before `starts_at`, *active* from `starts_at`
 * (inclusive) to `ends_at` (exclusive), then *expired*; the state is never stored, it is read at
 * the clock's `now`, which every function here takes as a parameter.
 */
import type postgres from "postgres";
import type { Queryable, Sql } from "../db/database.ts";
import type { Cursor } from "../http/pagination.ts";
import type { Matcher } from "./matchers.ts";

export const SILENCE_STATES = ["active", "pending", "expired"] as const;
export type SilenceState = (typeof SILENCE_STATES)[number];

/** Unexpired (pending or active) silences a user may have at once. */
export const MAX_SILENCES_PER_USER = 1000;

export interface Silence {
  id: string;
  user_id: string;
  matchers: Matcher[];
  starts_at: Date;
  ends_at: Date;
  comment: string;
  created_by: string | null;
  created_at: Date;
}

export function silenceState(silence: Pick<Silence, "starts_at" | "ends_at">, now: Date) {
  const t = now.getTime();
  const state: SilenceState = t < silence.starts_at.getTime()
    ? "pending"
    : t < silence.ends_at.getTime()
    ? "active"
    : "expired";
  return state;
}

const COLUMNS = (sql: Queryable) =>
  sql`id, user_id, matchers, starts_at, ends_at, comment, created_by, created_at`;

/**
 * Inserts a silence unless its user already has `max` unexpired ones (undefined then). The
 * user's row lock makes concurrent creates count one after the other.
 */
export async function insertSilenceCapped(
  sql: Sql,
  silence: Omit<Silence, "id" | "created_at">,
  now: Date,
  max: number = MAX_SILENCES_PER_USER,
): Promise<Silence | undefined> {
  return await sql.begin(async (tx) => {
    await tx`select 1 from users where id = ${silence.user_id} for no key update`;
    const [{ count }] = await tx<{ count: number }[]>`
      select count(*)::int as count from silences
      where user_id = ${silence.user_id} and ends_at > ${now}`;
    if (count >= max) return undefined;
    const [row] = await tx<Silence[]>`
      insert into silences (id, user_id, matchers, starts_at, ends_at, comment, created_by,
                            created_at)
      values (${crypto.randomUUID()}, ${silence.user_id},
              ${tx.json(silence.matchers as unknown as postgres.JSONValue)},
              ${silence.starts_at}, ${silence.ends_at}, ${silence.comment}, ${silence.created_by},
              ${now})
      returning ${COLUMNS(tx)}`;
    return row;
  });
}

/** A silence, if it exists and (unless `userId` is undefined) belongs to that user. */
export async function getSilence(
  sql: Queryable,
  id: string,
  userId?: string,
): Promise<Silence | undefined> {
  const [row] = await sql<Silence[]>`
    select ${COLUMNS(sql)} from silences
    where id = ${id} ${userId === undefined ? sql`` : sql`and user_id = ${userId}`}`;
  return row;
}

const stateFilter = (sql: Queryable, state: SilenceState | undefined, now: Date) => {
  switch (state) {
    case "active":
      return sql`and starts_at <= ${now} and ends_at > ${now}`;
    case "pending":
      return sql`and starts_at > ${now}`;
    case "expired":
      return sql`and ends_at <= ${now}`;
    default:
      return sql``;
  }
};

/** Silences newest first (by created_at, id), of one user or (undefined) everyone's. */
export async function listSilences(
  sql: Queryable,
  opts: { userId?: string; state?: SilenceState; now: Date; limit: number; after?: Cursor },
): Promise<Silence[]> {
  const { userId, state, now, limit, after } = opts;
  return await sql<Silence[]>`
    select ${COLUMNS(sql)} from silences
    where true
      ${userId === undefined ? sql`` : sql`and user_id = ${userId}`}
      ${stateFilter(sql, state, now)}
      ${after ? sql`and (created_at, id) < (${after.at}, ${after.id})` : sql``}
    order by created_at desc, id desc limit ${limit}`;
}

export type ExpireOutcome =
  | { outcome: "expired"; silence: Silence }
  | { outcome: "deleted" }
  | { outcome: "already_expired"; silence: Silence }
  | { outcome: "not_found" };

/**
 * Ends a silence, like Alertmanager's DELETE: an active one ends `now` (it stays, expired, for
 * the record); a pending one is deleted (it never took effect), and so is one that started
 * exactly `now` (its `ends_at` cannot equal its `starts_at`); an expired one is left as it is
 * (`already_expired`). The row is locked, so two concurrent calls see each other's result.
 */
export async function expireSilence(
  sql: Sql,
  id: string,
  userId: string | undefined,
  now: Date,
): Promise<ExpireOutcome> {
  return await sql.begin(async (tx): Promise<ExpireOutcome> => {
    const [silence] = await tx<Silence[]>`
      select ${COLUMNS(tx)} from silences
      where id = ${id} ${userId === undefined ? tx`` : tx`and user_id = ${userId}`}
      for update`;
    if (!silence) return { outcome: "not_found" };
    if (silenceState(silence, now) === "expired") return { outcome: "already_expired", silence };
    if (silence.starts_at.getTime() >= now.getTime()) {
      await tx`delete from silences where id = ${id}`;
      return { outcome: "deleted" };
    }
    const [row] = await tx<Silence[]>`
      update silences set ends_at = ${now} where id = ${id} returning ${COLUMNS(tx)}`;
    return { outcome: "expired", silence: row };
  });
}

/**
 * The silences of `userId` active at `now` (starts_at <= now < ends_at), oldest first. One
 * query on the index silences_active (user_id, ends_at): the evaluator calls it inside its
 * transaction for each evaluation, so pass that transaction as `sql`.
 */
export async function activeSilences(
  sql: Queryable,
  userId: string,
  now: Date,
): Promise<Silence[]> {
  return await sql<Silence[]>`
    select ${COLUMNS(sql)} from silences
    where user_id = ${userId} and ends_at > ${now} and starts_at <= ${now}
    order by created_at, id`;
}
