/** Runs wrk against loopback and reads its summary. */

export interface WrkResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  errors: number;
}

export interface WrkOptions {
  url: string;
  seconds: number;
  connections: number;
  threads?: number;
  method?: string;
  body?: string;
  headers?: Record<string, string>;
}

function toMs(value: string): number {
  const m = value.match(/^([\d.]+)(us|ms|s|m)$/);
  if (!m) throw new Error(`cannot read wrk latency ${value}`);
  const n = Number(m[1]);
  return m[2] === "us" ? n / 1000 : m[2] === "ms" ? n : m[2] === "s" ? n * 1000 : n * 60_000;
}

export async function wrk(options: WrkOptions): Promise<WrkResult> {
  // wrk reads whole seconds only ("-d3.5s" is a usage error).
  if (!Number.isInteger(options.seconds)) throw new Error(`wrk: ${options.seconds} s is not whole`);
  const script = await Deno.makeTempFile({ suffix: ".lua" });
  const lua = [
    `wrk.method = ${JSON.stringify(options.method ?? "GET")}`,
    ...(options.body ? [`wrk.body = ${JSON.stringify(options.body)}`] : []),
    ...Object.entries(options.headers ?? {}).map(([k, v]) =>
      `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`
    ),
  ].join("\n");
  await Deno.writeTextFile(script, lua);
  try {
    const out = await new Deno.Command("wrk", {
      args: [
        `-t${options.threads ?? 1}`,
        `-c${options.connections}`,
        `-d${options.seconds}s`,
        "--latency",
        "-s",
        script,
        options.url,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    if (!out.success) {
      throw new Error(
        `wrk failed (code ${out.code}, signal ${out.signal}): ${
          new TextDecoder().decode(out.stderr)
        }${text}`,
      );
    }
    const rps = text.match(/Requests\/sec:\s+([\d.]+)/);
    const p50 = text.match(/^\s+50%\s+(\S+)/m);
    const p99 = text.match(/^\s+99%\s+(\S+)/m);
    const total = text.match(/(\d+) requests in/);
    const non2xx = text.match(/Non-2xx or 3xx responses: (\d+)/);
    const socket = text.match(
      /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/,
    );
    if (!rps || !p50 || !p99 || !total) throw new Error(`cannot read wrk output:\n${text}`);
    const socketErrors = socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
    return {
      requestsPerSecond: Number(rps[1]),
      p50Ms: toMs(p50[1]),
      p99Ms: toMs(p99[1]),
      requests: Number(total[1]),
      errors: Number(non2xx?.[1] ?? 0) + socketErrors,
    };
  } finally {
    await Deno.remove(script);
  }
}
