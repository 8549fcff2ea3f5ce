/** Remote agent registrations in PostgreSQL. */
import type { Sql } from "../db/database.ts";
import type { Secrets } from "../security/secrets.ts";
import type { RemoteAgentSpec } from "./remote.ts";

/** What an agent's Authorization header is sealed for (src/security/secrets.ts). */
export const AGENT_AUTHORIZATION = "agents.authorization" as const;

/**
 * Inserts or replaces a registration; true when it was new. The Authorization header is stored
 * sealed with `secrets`.
 */
export async function saveRemoteAgent(
  sql: Sql,
  spec: RemoteAgentSpec,
  now: Date,
  secrets: Secrets,
): Promise<boolean> {
  const authorization = spec.authorization === null
    ? null
    : await secrets.seal(spec.authorization, AGENT_AUTHORIZATION);
  const [row] = await sql<{ created: boolean }[]>`
    insert into agents (name, url, capabilities, timeout_ms, authorization_header, created_at,
                        updated_at)
    values (${spec.name}, ${spec.url}, ${sql.json(spec.capabilities)}, ${spec.timeout_ms},
            ${authorization}, ${now}, ${now})
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

// ---- re-encryption (src/security/reencrypt.ts) ----------------------------------------------

/** Up to `limit` Authorization headers (after agent `after`, by name) not starting with `prefix`. */
export async function agentCredentialsNotSealedWith(
  sql: Sql,
  prefix: string,
  after: string | null,
  limit: number,
): Promise<{ name: string; authorization: string }[]> {
  return await sql<{ name: string; authorization: string }[]>`
    select name, authorization_header as authorization from agents
    where authorization_header is not null and not starts_with(authorization_header, ${prefix})
      ${after === null ? sql`` : sql`and name > ${after}`}
    order by name limit ${limit}`;
}

/** Replaces an Authorization header by its re-sealed value, only if it is still `old`. */
export async function replaceAgentCredential(
  sql: Sql,
  name: string,
  old: string,
  sealed: string,
): Promise<boolean> {
  const rows = await sql`
    update agents set authorization_header = ${sealed}
    where name = ${name} and authorization_header = ${old}
    returning name`;
  return rows.length > 0;
}
