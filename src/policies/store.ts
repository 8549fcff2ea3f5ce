/** Notification policies in PostgreSQL: one document per user; none stored means the defaults. */
import type postgres from "postgres";
import type { Queryable } from "../db/database.ts";
import { DEFAULT_POLICY, type Policy, PolicyInputSchema } from "./schema.ts";

export interface StoredPolicy {
  policy: Policy;
  /** Null: the user never set one (the defaults). */
  updated_at: Date | null;
}

/**
 * Reads what was stored through the input schema again (it is the one we wrote): a document that
 * no longer validates (a time zone dropped from the system's tz database, say) falls back to the
 * defaults rather than stopping the user's notifications.
 */
function parsed(document: unknown): Policy {
  const result = PolicyInputSchema.safeParse(document);
  return result.success ? result.data : DEFAULT_POLICY;
}

/** The user's policy (the defaults when none is stored). */
/** A user's stored policy document (null: none stored), as the policy in force. */
export function policyFrom(document: unknown): Policy {
  return document === null || document === undefined ? DEFAULT_POLICY : parsed(document);
}

export async function policyOf(sql: Queryable, userId: string): Promise<StoredPolicy> {
  const [row] = await sql<{ policy: unknown; updated_at: Date }[]>`
    select policy, updated_at from notification_policies where user_id = ${userId}`;
  return row
    ? { policy: parsed(row.policy), updated_at: row.updated_at }
    : { policy: DEFAULT_POLICY, updated_at: null };
}

/** Replaces the user's policy. */
export async function putPolicy(
  sql: Queryable,
  userId: string,
  policy: Policy,
  now: Date,
): Promise<StoredPolicy> {
  const document = sql.json(policy as unknown as postgres.JSONValue);
  await sql`
    insert into notification_policies (user_id, policy, updated_at)
    values (${userId}, ${document}, ${now})
    on conflict (user_id) do update set policy = excluded.policy, updated_at = excluded.updated_at`;
  return { policy, updated_at: now };
}
