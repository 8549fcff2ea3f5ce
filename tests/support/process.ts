/** Runs vigil as a real process (`src/main.ts`), for end-to-end tests. */

const ROOT = new URL("../../", import.meta.url).pathname;

export interface VigilProcess extends AsyncDisposable {
  /** Base URL, once it listens. */
  url: string;
  port: number;
  /** Process id (to pause it with SIGSTOP / SIGCONT, say). */
  pid: number;
  /** Every JSON log line so far. */
  logs: Record<string, unknown>[];
  stderr(): string;
  waitForLog(
    predicate: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
}

export function spawnVigil(env: Record<string, string>): {
  child: Deno.ChildProcess;
  lines: Record<string, unknown>[];
  stderr: () => string;
  stdoutDone: Promise<void>;
} {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--unstable-cron", "src/main.ts"],
    cwd: ROOT,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? "/tmp",
      ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
      NO_COLOR: "1",
      PORT: "0",
      VIGIL_ENV: "test",
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: Record<string, unknown>[] = [];
  let err = "";
  const stdoutDone = (async () => {
    let buffer = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        try {
          lines.push(JSON.parse(line));
        } catch {
          lines.push({ raw: line });
        }
      }
    }
  })();
  (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) err += chunk;
  })();
  return { child, lines, stderr: () => err, stdoutDone };
}

/** Starts vigil and waits until it listens. */
export async function startVigil(
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<VigilProcess> {
  const { child, lines, stderr, stdoutDone } = spawnVigil(env);
  const exited = child.status;
  const waitForLog: VigilProcess["waitForLog"] = async (predicate, wait = timeoutMs) => {
    const deadline = Date.now() + wait;
    let done = false;
    exited.then(() => (done = true));
    while (Date.now() < deadline) {
      const found = lines.find(predicate);
      if (found) return found;
      if (done) {
        await stdoutDone;
        const late = lines.find(predicate);
        if (late) return late;
        throw new Error(
          `vigil exited before the expected log line\n${stderr()}\n${JSON.stringify(lines)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 25)); // polling a child process, not a test clock
    }
    throw new Error(`timed out waiting for a log line\n${stderr()}\n${JSON.stringify(lines)}`);
  };
  const listening = await waitForLog((l) =>
    typeof l.msg === "string" && l.msg.startsWith("listening on")
  );
  const port = Number(listening.port);
  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    try {
      child.kill(signal);
    } catch { /* already gone */ }
    const status = await exited;
    await stdoutDone;
    return status.code;
  };
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid,
    logs: lines,
    stderr,
    waitForLog,
    stop,
    async [Symbol.asyncDispose]() {
      await stop("SIGKILL");
    },
  };
}
