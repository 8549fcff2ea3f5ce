/**
 * A throwaway PostgreSQL cluster on a free loopback port, from the server binaries on PATH
 * (`initdb`, `pg_ctl`), run as the `postgres` user when we are root (initdb refuses root).
 * Used by the test harness and by the benchmarks.
 */

export interface Cluster {
  url: string;
  /** Synchronous, so that it can run in an `unload` listener. */
  stop(): void;
  /** Stops the server, keeping its data (an outage); `resume` starts it again. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  /**
   * Freezes the server and its backends (SIGSTOP): connections stay open and nothing answers,
   * as in a network partition; `thaw` lets them go on.
   */
  freeze(): void;
  thaw(): void;
}

export function which(command: string): boolean {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/${command}`).isFile) return true;
    } catch { /* not here */ }
  }
  return false;
}

export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function command(args: string[], asPostgres: boolean): [string, string[]] {
  const [cmd, ...rest] = asPostgres ? ["runuser", "-u", "postgres", "--", ...args] : args;
  return [cmd, rest];
}

async function run(args: string[], asPostgres: boolean): Promise<void> {
  const [cmd, rest] = command(args, asPostgres);
  const out = await new Deno.Command(cmd, { args: rest, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

function postgresUid(): number {
  const line = Deno.readTextFileSync("/etc/passwd").split("\n").find((l) =>
    l.startsWith("postgres:")
  );
  if (!line) throw new Error("initdb is installed but there is no postgres user to run it as");
  return Number(line.split(":")[2]);
}

/**
 * Starts a cluster. `durable: false` (tests) turns fsync and synchronous commit off; the
 * benchmarks keep PostgreSQL's defaults.
 */
export async function startCluster(
  options: { durable: boolean; prefix: string },
): Promise<Cluster> {
  const asPostgres = Deno.uid() === 0;
  const dir = await Deno.makeTempDir({ prefix: options.prefix });
  if (asPostgres) await Deno.chown(dir, postgresUid(), null);
  const port = freePort();
  await run(
    ["initdb", "-D", dir, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"],
    asPostgres,
  );
  const settings = [
    `-p ${port}`,
    `-k ${dir}`,
    "-c listen_addresses=127.0.0.1",
    "-c max_connections=200",
    ...(options.durable
      ? []
      : ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]),
  ].join(" ");
  const start = () =>
    run(
      ["pg_ctl", "-D", dir, "-o", settings, "-l", `${dir}/server.log`, "-w", "start"],
      asPostgres,
    );
  await start();
  /** The postmaster and every process it forked. */
  const processes = () => {
    const postmaster = Number(Deno.readTextFileSync(`${dir}/postmaster.pid`).split("\n")[0]);
    const pids = [postmaster];
    for (const entry of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      try {
        const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
        // "pid (comm) state ppid …": comm may hold spaces, so read after the last ')'.
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        if (ppid === postmaster) pids.push(Number(entry.name));
      } catch { /* gone meanwhile */ }
    }
    return pids;
  };
  const signalAll = (signal: Deno.Signal) => {
    for (const pid of processes()) {
      try {
        Deno.kill(pid, signal);
      } catch { /* gone meanwhile */ }
    }
  };
  return {
    freeze: () => signalAll("SIGSTOP"),
    thaw: () => signalAll("SIGCONT"),
    pause: () => run(["pg_ctl", "-D", dir, "-m", "fast", "-w", "stop"], asPostgres),
    resume: start,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop() {
      const [cmd, args] = command(["pg_ctl", "-D", dir, "-m", "immediate", "stop"], asPostgres);
      new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).outputSync();
      Deno.removeSync(dir, { recursive: true });
    },
  };
}
