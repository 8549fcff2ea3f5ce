/**
 * Bearer-key authentication for `/v1`. A key is looked up by its SHA-256; the hash is then
 * compared again in constant time. Verdicts are cached for AUTH_CACHE_SECONDS, keyed by the
 * presented key itself, so that a busy client costs neither a query nor a hash per request;
 * revoking through this process evicts at once, other replicas notice within the cache
 * lifetime. `last_used_at` is written when the cache refills.
 */
import type { MiddlewareHandler } from "hono";
import type { Clock } from "../clock.ts";
import type { Sql } from "../db/database.ts";
import { bearerToken } from "../http/bearer.ts";
import type { AppEnv, Principal, Role } from "../http/env.ts";
import { Problem } from "../http/problem.ts";
import { hashApiKey, KEY_PREFIX, sameHash } from "./keys.ts";
import { findKeyOwner, touchApiKey } from "./store.ts";

type Verdict = { principal: Principal } | { problem: string };

const MAX_CACHED = 10_000;

export class Authenticator {
  #cache = new Map<string, { verdict: Verdict; expires: number }>();

  constructor(
    private readonly sql: Sql,
    private readonly clock: Clock,
    private readonly cacheSeconds: number,
  ) {}

  async authenticate(header: string | undefined): Promise<Principal> {
    const key = bearerToken(header);
    if (!key) throw Problem.unauthorized("Send an API key as `Authorization: Bearer <key>`.");
    if (!key.startsWith(KEY_PREFIX)) throw Problem.unauthorized("The API key is not valid.");
    const now = this.clock.now().getTime();
    let entry = this.#cache.get(key);
    if (!entry || entry.expires <= now) {
      entry = {
        verdict: await this.#lookup(hashApiKey(key)),
        expires: now + this.cacheSeconds * 1000,
      };
      if (this.cacheSeconds > 0) {
        // Bounded: a flood of made-up keys evicts the oldest entries, it cannot grow memory.
        if (this.#cache.size >= MAX_CACHED) this.#cache.delete(this.#cache.keys().next().value!);
        this.#cache.set(key, entry);
      }
    }
    if ("problem" in entry.verdict) throw Problem.unauthorized(entry.verdict.problem);
    return entry.verdict.principal;
  }

  /** Forgets cached lookups of a key, so that its revocation takes effect at once. */
  evictKey(keyId: string): void {
    for (const [key, entry] of this.#cache) {
      if ("principal" in entry.verdict && entry.verdict.principal.keyId === keyId) {
        this.#cache.delete(key);
      }
    }
  }

  async #lookup(hash: string): Promise<Verdict> {
    const owner = await findKeyOwner(this.sql, hash);
    if (!owner || !sameHash(owner.key_hash, hash)) return { problem: "The API key is not valid." };
    if (owner.revoked_at) return { problem: "The API key has been revoked." };
    await touchApiKey(this.sql, owner.key_id, this.clock.now());
    return {
      principal: {
        userId: owner.user_id,
        email: owner.email,
        name: owner.name,
        keyId: owner.key_id,
        role: owner.role,
      },
    };
  }
}

export function authenticate(auth: Authenticator): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    c.set("principal", await auth.authenticate(c.req.header("authorization")));
    await next();
  };
}

export function requireRole(role: Role): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (c.get("principal").role !== role) {
      throw Problem.forbidden(`This needs an API key with the ${role} role.`);
    }
    await next();
  };
}

export const requireAdmin = requireRole("admin");

/**
 * The user a create is for: the caller, or (admins only: 403 otherwise) the `requested` user,
 * who must exist (422 naming `user_id`). `what` names the rows, for the 403.
 */
export async function targetUser(
  sql: Sql,
  principal: Principal,
  requested: string | undefined,
  what: string,
): Promise<string> {
  if (requested === undefined || requested === principal.userId) return principal.userId;
  if (principal.role !== "admin") {
    throw Problem.forbidden(`Only admins create ${what} for other users.`);
  }
  const [exists] = await sql`select 1 from users where id = ${requested}`;
  if (!exists) throw Problem.invalid([{ path: "user_id", message: "there is no such user" }]);
  return requested;
}

/** Whose rows a caller may act on: admins anyone's (undefined), users their own. */
export function ownerScope(principal: Principal): string | undefined {
  return principal.role === "admin" ? undefined : principal.userId;
}
