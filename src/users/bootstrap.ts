/** Makes sure somebody can administer a new installation. */
import type { Clock } from "../clock.ts";
import type { Config } from "../config.ts";
import type { Sql } from "../db/database.ts";
import type { Logger } from "../observability/logger.ts";
import { createUser, ensureAdminKey, hasAdminKey } from "./store.ts";

export const BOOTSTRAP_ADMIN_EMAIL = "admin@vigil.local";

/**
 * ADMIN_API_KEY set: that key works as an admin key. Unset under `deno task dev` with no admin
 * yet: an admin key is created and printed once. Otherwise: a warning.
 */
export async function bootstrapAdmin(
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
