/**
 * Makes sure somebody can administer a new installation, and that the users
 * ALERTMANAGER_RECIPIENTS names exist (so that Alertmanager's alerts reach them).
 */
import type { Clock } from "../clock.ts";
import type { Config } from "../config.ts";
import type { Sql } from "../db/database.ts";
import type { Logger } from "../observability/logger.ts";
import { createUser, ensureAdminKey, hasAdminKey } from "./store.ts";

export const BOOTSTRAP_ADMIN_EMAIL = "admin@vigil.local";
export const RECIPIENT_NAME = "Alertmanager recipient";

/**
 * ADMIN_API_KEY set: that key works as an admin key. Unset under `deno task dev` with no admin
 * yet: an admin key is created and printed once. Otherwise: a warning. Then every
 * ALERTMANAGER_RECIPIENTS user that does not exist is created (see bootstrapRecipients).
 */
export async function bootstrapAdmin(
  sql: Sql,
  config: Pick<Config, "ADMIN_API_KEY" | "VIGIL_ENV" | "ALERTMANAGER_RECIPIENTS">,
  clock: Clock,
  logger: Logger,
): Promise<void> {
  await ensureAdmin(sql, config, clock, logger);
  await bootstrapRecipients(sql, config.ALERTMANAGER_RECIPIENTS, clock, logger);
}

async function ensureAdmin(
  sql: Sql,
  config: Pick<Config, "ADMIN_API_KEY" | "VIGIL_ENV">,
  clock: Clock,
  logger: Logger,
): Promise<void> {
  if (config.ADMIN_API_KEY) {
    const created = await ensureAdminKey(
      sql,
      config.ADMIN_API_KEY,
      BOOTSTRAP_ADMIN_EMAIL,
      clock.now(),
    );
    if (created) logger.info("ADMIN_API_KEY registered as an admin key");
    return;
  }
  if (await hasAdminKey(sql)) return;
  if (config.VIGIL_ENV === "development") {
    const { api_key } = await createUser(sql, {
      email: BOOTSTRAP_ADMIN_EMAIL,
      name: "Administrator",
      role: "admin",
      now: clock.now(),
    });
    logger.warn(
      "created the first admin API key (shown once, store it): {api_key}",
      { api_key: api_key.key, user: BOOTSTRAP_ADMIN_EMAIL },
    );
    return;
  }
  logger.warn("no admin API key exists: set ADMIN_API_KEY to create one");
}

/**
 * Creates the users ALERTMANAGER_RECIPIENTS names that do not exist yet (emails compare
 * case-insensitively, as everywhere), without an API key: they receive alerts (in-app and by
 * email); they sign in only once they have a key. An existing user is left as it is. One
 * statement, `on conflict do nothing`: replicas starting together create each user once (the
 * insert that loses the race waits for the winner and does nothing). Logs one line per user it
 * created; returns their emails.
 */
export async function bootstrapRecipients(
  sql: Sql,
  recipients: readonly string[],
  clock: Clock,
  logger: Logger,
): Promise<string[]> {
  const seen = new Set<string>();
  const emails = recipients.filter((email) => {
    const key = email.toLowerCase();
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  if (emails.length === 0) return [];
  const created = await sql<{ email: string }[]>`
    insert into users (email, name, created_at)
    select email, ${RECIPIENT_NAME}, ${clock.now()} from unnest(${emails}::text[]) as email
    on conflict ((lower(email))) do nothing
    returning email`;
  for (const { email } of created) {
    logger.info("created user {email} named by ALERTMANAGER_RECIPIENTS (no API key)", {
      email,
    });
  }
  return created.map((u) => u.email);
}
