/**
 * Example patterns shipped in `patterns/*.json`, loaded at start-up: a missing one is created, an
 * older stored version is replaced by a newer file, anything else is left as it is (an admin's
 * edits win). An invalid file is logged and skipped.
 */
import type { Clock } from "../clock.ts";
import type { Sql } from "../db/database.ts";
import type { Logger } from "../observability/logger.ts";
import { Problem } from "../http/problem.ts";
import { PatternDefinitionSchema } from "./definition.ts";
import type { PatternService } from "./service.ts";
import { insertPattern, updatePattern } from "./store.ts";

export async function loadExamplePatterns(
  dir: string,
  deps: { sql: Sql; clock: Clock; patterns: PatternService; logger: Logger },
): Promise<string[]> {
  const loaded: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)].filter((e) => e.isFile && e.name.endsWith(".json"));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return loaded;
    throw error;
  }
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const file = `${dir}/${entry.name}`;
    try {
      const def = PatternDefinitionSchema.parse(JSON.parse(await Deno.readTextFile(file)));
      await deps.patterns.assertValid(def);
      const version = def.version ?? 1;
      const now = deps.clock.now();
      if (
        await insertPattern(deps.sql, def, version, now) ||
        await updatePattern(deps.sql, def, now, version)
      ) {
        loaded.push(def.id);
      }
    } catch (error) {
      const detail = error instanceof Problem
        ? JSON.stringify(error.extra.errors ?? error.detail)
        : String(error);
      deps.logger.error("example pattern {file} skipped: {detail}", { file, detail });
    }
  }
  if (loaded.length) deps.logger.info("example patterns loaded: {ids}", { ids: loaded.join(", ") });
  return loaded;
}
