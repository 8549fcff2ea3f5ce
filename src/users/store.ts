/** Users and API keys in PostgreSQL. */
import type { Queryable, Sql } from "../db/database.ts";
import type { Role } from "../http/env.ts";
import { Problem } from "../http/problem.ts";
import type { Cursor } from "../http/pagination.ts";
import { displayPrefix, generateApiKey, hashApiKey } from "./keys.ts";

export interface User {
  id: string;
  email: string;
  name: string;
  created_at: Date;
}

export interface ApiKey {
  id: string;
  user_id: string;
  key_prefix: string;
  role: Role;
  label: string | null;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

/** A key as shown once, at creation: the secret is never readable again. */
export interface NewApiKey extends ApiKey {
  key: string;
}

export interface KeyOwner {
  key_id: string;
  key_hash: string;
  role: Role;
  revoked_at: Date | null;
  user_id: string;
  email: string;
  name: string;
}

const UNIQUE_VIOLATION = "23505";

export async function createUser(
  sql: Sql,
  input: { email: string; name: string; role: Role; now: Date },
): Promise<{ user: User; api_key: NewApiKey }> {
  try {
    return await sql.begin(async (tx) => {
      const [user] = await tx<User[]>`
        insert into users (email, name, created_at)
        values (${input.email}, ${input.name}, ${input.now})
        returning id, email, name, created_at`;
      const api_key = await insertKey(tx, {
        userId: user.id,
        role: input.role,
        label: "first key",
        now: input.now,
      });
      return { user, api_key };
    });
  } catch (error) {
    if ((error as { code?: string }).code === UNIQUE_VIOLATION) {
      throw Problem.conflict(`A user with email ${input.email} already exists.`);
    }
    throw error;
  }
}

export function createApiKey(
  sql: Sql,
  input: { userId: string; role: Role; label: string | null; now: Date },
): Promise<NewApiKey> {
  return insertKey(sql, input);
}

/** A new key for an existing user (admins give one to a user created without, or who lost theirs). */
export async function createApiKeyFor(
  sql: Sql,
  input: { userId: string; role: Role; label: string | null; now: Date },
): Promise<NewApiKey | undefined> {
  const [user] = await sql`select 1 from users where id = ${input.userId}`;
  // A user deleted in between fails the insert's foreign key: a 500 at worst, never a stray key.
  return user ? await insertKey(sql, input) : undefined;
}

async function insertKey(
  sql: Queryable,
  input: { userId: string; role: Role; label: string | null; now: Date; key?: string },
): Promise<NewApiKey> {
  const key = input.key ?? generateApiKey();
  const [row] = await sql<ApiKey[]>`
    insert into api_keys (user_id, key_hash, key_prefix, role, label, created_at)
    values (${input.userId}, ${hashApiKey(key)}, ${displayPrefix(key)}, ${input.role},
            ${input.label}, ${input.now})
    returning id, user_id, key_prefix, role, label, created_at, last_used_at, revoked_at`;
  return { ...row, key };
}

export async function listUsers(sql: Sql, limit: number, after?: Cursor): Promise<User[]> {
  return await sql<User[]>`
    select id, email, name, created_at from users
    ${after ? sql`where (created_at, id) < (${after.at}, ${after.id})` : sql``}
    order by created_at desc, id desc
    limit ${limit}`;
}

export async function listApiKeys(sql: Sql, userId: string): Promise<ApiKey[]> {
  return await sql<ApiKey[]>`
    select id, user_id, key_prefix, role, label, created_at, last_used_at, revoked_at
    from api_keys where user_id = ${userId}
    order by created_at desc, id desc`;
}

export async function findKeyOwner(sql: Sql, keyHash: string): Promise<KeyOwner | undefined> {
  const [row] = await sql<KeyOwner[]>`
    select k.id as key_id, k.key_hash, k.role, k.revoked_at, u.id as user_id, u.email, u.name
    from api_keys k join users u on u.id = k.user_id
    where k.key_hash = ${keyHash}`;
  return row;
}

export async function touchApiKey(sql: Sql, keyId: string, now: Date): Promise<void> {
  await sql`update api_keys set last_used_at = ${now} where id = ${keyId}`;
}

/**
 * Revokes a key. A user may revoke only their own keys (`ownerId`); an admin passes none.
 * Returns false when there is no such key (or it is not the caller's).
 */
export async function revokeApiKey(
  sql: Sql,
  keyId: string,
  now: Date,
  ownerId?: string,
): Promise<boolean> {
  const rows = await sql`
    update api_keys set revoked_at = coalesce(revoked_at, ${now})
    where id = ${keyId} ${ownerId ? sql`and user_id = ${ownerId}` : sql``}
    returning id`;
  return rows.length > 0;
}

export class RevokedAdminKey extends Error {
  override name = "RevokedAdminKey";
}

/**
 * Makes ADMIN_API_KEY an admin key: registered (with its user) if new; true when this call
 * registered it. Safe when replicas start together (inserts that lose a race do nothing). A key
 * that was revoked stays revoked: that throws, and the operator sets a new one.
 */
export async function ensureAdminKey(
  sql: Sql,
  key: string,
  email: string,
  now: Date,
): Promise<boolean> {
  return await sql.begin(async (tx) => {
    const [user] = await tx<{ id: string }[]>`
      insert into users (email, name, created_at) values (${email}, 'Administrator', ${now})
      on conflict ((lower(email))) do update set name = users.name
      returning id`;
    const [inserted] = await tx`
      insert into api_keys (user_id, key_hash, key_prefix, role, label, created_at)
      values (${user.id}, ${hashApiKey(key)}, ${
      displayPrefix(key)
    }, 'admin', 'ADMIN_API_KEY', ${now})
      on conflict (key_hash) do nothing
      returning id`;
    if (inserted) return true;
    const [existing] = await tx<{ id: string; revoked: boolean }[]>`
      select id, revoked_at is not null as revoked from api_keys where key_hash = ${
      hashApiKey(key)
    }`;
    if (existing.revoked) {
      throw new RevokedAdminKey(
        "ADMIN_API_KEY was revoked: set a new key (it is never reinstated)",
      );
    }
    await tx`update api_keys set role = 'admin' where id = ${existing.id}`;
    return false;
  });
}

export async function hasAdminKey(sql: Sql): Promise<boolean> {
  const [row] = await sql`
    select 1 from api_keys where role = 'admin' and revoked_at is null limit 1`;
  return row !== undefined;
}
