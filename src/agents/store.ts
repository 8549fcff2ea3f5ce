/** Remote agent registrations in PostgreSQL. */
import type { Sql } from "../db/database.ts";
import type { RemoteAgentSpec } from "./remote.ts";

/** Inserts or replaces a registration; true when it was new. */
export async function saveRemoteAgent(
  sql: Sql,
  spec: RemoteAgentSpec,
  now: Date,
): Promise<boolean> {
  const [row] = await sql<{ created: boolean }[]>`
    insert into agents (name, url, capabilities, timeout_ms, authorization_header, created_at,
                        updated_at)
    values (${spec.name}, ${spec.url}, ${sql.json(spec.capabilities)}, ${spec.timeout_ms},
            ${spec.authorization}, ${now}, ${now})
    on conflict (name) do update
      set url = excluded.url, capabilities = excluded.capabilities,
          timeout_ms = excluded.timeout_ms, authorization_header = excluded.authorization_header,
          updated_at = excluded.updated_at
    returning (xmax = 0) as created`;
  return row.created;
}

export async function deleteRemoteAgent(sql: Sql, name: string): Promise<boolean> {
  const rows = await sql`delete from agents where name = ${name} returning name`;
  return rows.length > 0;
}
