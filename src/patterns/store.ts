/** Pattern definitions and the run history in PostgreSQL. */
import type postgres from "postgres";
import type { Queryable, Sql } from "../db/database.ts";
import type { Cursor } from "../http/pagination.ts";
import type { PatternDefinition } from "./definition.ts";
import type { RunResult } from "./orchestrator.ts";

export interface StoredPattern {
  id: string;
  version: number;
  definition: PatternDefinition & { version: number };
  created_at: Date;
  updated_at: Date;
}

const asJson = (value: unknown) => value as postgres.JSONValue;

/** Inserts version `version` of a new pattern; undefined when the id is taken. */
export async function insertPattern(
  sql: Sql,
  def: PatternDefinition,
  version: number,
  now: Date,
): Promise<StoredPattern | undefined> {
  const definition = { ...def, version };
  const [row] = await sql<StoredPattern[]>`
    insert into patterns (id, version, definition, created_at, updated_at)
    values (${def.id}, ${version}, ${sql.json(asJson(definition))}, ${now}, ${now})
    on conflict (id) do nothing
    returning id, version, definition, created_at, updated_at`;
  return row;
}

/**
 * Replaces a pattern's definition. Without `version` the stored version is incremented; with
 * it, the row is replaced only when its version is lower (examples shipped in files).
 */
export async function updatePattern(
  sql: Sql,
  def: PatternDefinition,
  now: Date,
  version?: number,
): Promise<StoredPattern | undefined> {
  const next = version ?? sql`patterns.version + 1`;
  const [row] = await sql<StoredPattern[]>`
    update patterns set
      version = ${next},
      definition = jsonb_set(${
    sql.json(asJson(def))
  }::jsonb, '{version}', to_jsonb((${next})::int)),
      updated_at = ${now}
    where id = ${def.id} ${version === undefined ? sql`` : sql`and version < ${version}`}
    returning id, version, definition, created_at, updated_at`;
  return row;
}

export async function getPattern(sql: Queryable, id: string): Promise<StoredPattern | undefined> {
  const [row] = await sql<StoredPattern[]>`
    select id, version, definition, created_at, updated_at from patterns where id = ${id}`;
  return row;
}

export async function listPatterns(sql: Sql): Promise<StoredPattern[]> {
  return await sql<StoredPattern[]>`
    select id, version, definition, created_at, updated_at from patterns order by id`;
}

export async function countPatterns(sql: Sql): Promise<number> {
  const [{ count }] = await sql<{ count: number }[]>`select count(*)::int as count from patterns`;
  return count;
}

export async function deletePattern(sql: Sql, id: string): Promise<boolean> {
  return (await sql`delete from patterns where id = ${id} returning id`).length > 0;
}

/**
 * Runs in one statement (the group writer's batches, src/db/group_writer.ts): one JSON
 * parameter holding every row.
 */
export async function insertRuns(sql: Queryable, runs: readonly RunResult[]): Promise<void> {
  const rows = runs.map((run) => ({
    id: run.run_id,
    pattern_id: run.pattern_id,
    version: run.version,
    user_id: run.user_id,
    status: run.status,
    inputs: run.inputs,
    outputs: run.outputs,
    trace: run.trace,
    error: run.error,
    trace_id: run.trace_id,
    started_at: run.started_at.toISOString(),
    duration_ms: run.duration_ms,
  }));
  await sql`
    insert into pattern_runs
      (id, pattern_id, version, user_id, status, inputs, outputs, trace, error, trace_id,
       started_at, duration_ms)
    select id, pattern_id, version, user_id, status, inputs, outputs, trace, error, trace_id,
           started_at, duration_ms
    from jsonb_to_recordset(${sql.json(asJson(rows))}) as t(
      id uuid, pattern_id text, version integer, user_id uuid, status text, inputs jsonb,
      outputs jsonb, trace jsonb, error text, trace_id text, started_at timestamptz,
      duration_ms double precision)`;
}

export interface StoredRun extends Omit<RunResult, "run_id"> {
  id: string;
}

const RUN_COLUMNS = (sql: Sql) =>
  sql`id, pattern_id, version, user_id, status, inputs, outputs, trace, error, trace_id, started_at, duration_ms`;

/** A run, if it exists and (unless `userId` is undefined) belongs to that user. */
export async function getRun(
  sql: Sql,
  id: string,
  userId?: string,
): Promise<StoredRun | undefined> {
  const [row] = await sql<StoredRun[]>`
    select ${RUN_COLUMNS(sql)} from pattern_runs
    where id = ${id} ${userId === undefined ? sql`` : sql`and user_id = ${userId}`}`;
  return row;
}

export async function listRuns(
  sql: Sql,
  filter: { userId?: string; patternId?: string; status?: string },
  limit: number,
  after?: Cursor,
): Promise<StoredRun[]> {
  const conditions = [
    filter.userId !== undefined ? sql`user_id = ${filter.userId}` : null,
    filter.patternId !== undefined ? sql`pattern_id = ${filter.patternId}` : null,
    filter.status !== undefined ? sql`status = ${filter.status}` : null,
    after ? sql`(started_at, id) < (${after.at}, ${after.id})` : null,
  ].filter((c) => c !== null);
  const where = conditions.reduce(
    (acc, cond, i) => (i === 0 ? sql`where ${cond}` : sql`${acc} and ${cond}`),
    sql``,
  );
  return await sql<StoredRun[]>`
    select ${RUN_COLUMNS(sql)} from pattern_runs ${where}
    order by started_at desc, id desc limit ${limit}`;
}

/** Deletes runs started before `cutoff`, in batches; returns how many. */
export async function pruneRuns(sql: Sql, cutoff: Date, batch = 5000): Promise<number> {
  let total = 0;
  while (true) {
    const rows = await sql`
      delete from pattern_runs where id in (
        select id from pattern_runs where started_at < ${cutoff} limit ${batch}
      ) returning 1`;
    total += rows.length;
    if (rows.length < batch) return total;
  }
}
