/** `deno task migrate`: apply pending migrations and exit. */
import { ConfigError, loadConfig } from "../config.ts";
import { closeLogging, rootLogger, setupLogging } from "../observability/logger.ts";
import { openDatabase } from "./database.ts";
import { migrate } from "./migrate.ts";

try {
  const config = loadConfig(Deno.env.toObject());
  setupLogging({ level: config.LOG_LEVEL });
  const db = await openDatabase(config);
  try {
    const applied = await migrate(db.sql, rootLogger.child("db"));
    rootLogger.info("migrations up to date ({count} applied now)", { count: applied.length });
  } finally {
    await db.close();
    closeLogging();
  }
} catch (error) {
  const message = error instanceof ConfigError ? error.message : `migration failed: ${error}`;
  Deno.stderr.writeSync(new TextEncoder().encode(message + "\n"));
  Deno.exit(1);
}
