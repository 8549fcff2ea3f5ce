/**
 * The chaos run (tests/support/chaos.ts) as benchmark figures: two replicas killed mid-send on
 * a database of their own, created on the given server and dropped afterwards.
 *
 * In bench/run.ts: `Object.assign(results, await chaosFigures(baseUrl));`
 */
import postgres from "postgres";
import { type ChaosOptions, formatChaos, runChaos } from "../tests/support/chaos.ts";

export async function chaosFigures(
  serverUrl: string,
  options: Partial<ChaosOptions> = {},
): Promise<{ chaos_lost: number; chaos_duplicates: number }> {
  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
  const name = `vigil_chaos_${Date.now()}`;
  await admin`create database ${admin(name)}`;
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const log = (line: string) => Deno.stderr.writeSync(new TextEncoder().encode(`bench: ${line}\n`));
  try {
    const r = await runChaos({
      databaseUrl: url.toString(),
      log: (l) => log(`chaos ${l}`),
      ...options,
    });
    log(formatChaos(r).replaceAll("\n", "\nbench:   "));
    return { chaos_lost: r.lost, chaos_duplicates: r.duplicates };
  } finally {
    await admin`drop database if exists ${admin(name)} with (force)`.catch(() => {});
    await admin.end();
  }
}

if (import.meta.main) {
  const server = Deno.args[0] ?? Deno.env.get("DATABASE_URL");
  if (!server) throw new Error("usage: deno run -A --unstable-cron bench/chaos.ts <postgres url>");
  Deno.stdout.writeSync(
    new TextEncoder().encode(JSON.stringify(await chaosFigures(server)) + "\n"),
  );
}
