/** External processes in tests (Prometheus, Alertmanager): started, polled, stopped. */

export interface Child {
  process: Deno.ChildProcess;
  /** The end of its log (stderr is read all along: a full pipe would block the process). */
  log(): string;
  drained: Promise<void>;
}

export function startChild(command: string, args: string[]): Child {
  const process = new Deno.Command(command, { args, stdout: "null", stderr: "piped" }).spawn();
  let log = "";
  const drained = (async () => {
    for await (const chunk of process.stderr.pipeThrough(new TextDecoderStream())) {
      log = (log + chunk).slice(-20_000);
    }
  })();
  return { process, log: () => log, drained };
}

export async function stopChild(child: Child): Promise<void> {
  try {
    child.process.kill("SIGTERM");
  } catch { /* gone */ }
  await child.process.status;
  await child.drained;
}

/** Polls `check` until it returns a value, for at most `seconds` (external processes, not a clock). */
export async function eventually<T>(
  what: string,
  seconds: number,
  check: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ""}`);
}
