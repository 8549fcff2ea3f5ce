/**
 * The embedded default database: PGlite (PostgreSQL compiled to WASM), file-backed under
 * DATA_DIR and served in-process on 127.0.0.1 by pglite-socket, so the rest of vigil talks to it
 * with the same postgres.js code it uses for a real server.
 */
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";

export interface EmbeddedPostgres {
  host: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * PGlite is one backend session: pglite-socket keeps transactions apart, but interleaved
 * extended-protocol messages from two connections corrupt each other ("portal does not exist").
 * The client pool is therefore one connection; the server allows a few more so that a
 * reconnect never races the old socket's teardown.
 */
export const EMBEDDED_POOL_SIZE = 1;

/** Starts PGlite on `dataDir` (or in memory when undefined) and serves it on a free port. */
export async function startEmbeddedPostgres(
  dataDir: string | undefined,
): Promise<EmbeddedPostgres> {
  let lock: Deno.FsFile | undefined;
  if (dataDir) {
    await Deno.mkdir(dataDir, { recursive: true });
    lock = await lockDataDir(dataDir);
  }
  const db = await PGlite.create(dataDir ? { dataDir: `${dataDir}/pglite` } : {});
  const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 4 });
  await server.start();
  const [host, port] = server.getServerConn().split(":");
  return {
    host,
    port: Number(port),
    async stop() {
      await server.stop();
      await db.close();
      lock?.close();
    },
  };
}

/**
 * Two processes on one PGlite directory would corrupt it: hold an exclusive lock for the life of
 * the process (the OS drops it when the process dies).
 */
async function lockDataDir(dataDir: string): Promise<Deno.FsFile> {
  const file = await Deno.open(`${dataDir}/vigil.lock`, { create: true, write: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `another vigil process is using ${dataDir}: stop it, or set DATA_DIR or DATABASE_URL`,
          ),
        ),
      3000,
    );
  });
  try {
    await Promise.race([file.lock(true), timeout]);
  } catch (error) {
    file.close();
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return file;
}
