/** Throwaway HTTP servers on 127.0.0.1 for tests (fake targets, agents, providers). */

export interface LocalServer extends AsyncDisposable {
  url: string;
  port: number;
  close(): Promise<void>;
}

export function serveLocal(handler: (req: Request) => Response | Promise<Response>): LocalServer {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  const port = server.addr.port;
  const close = async () => {
    await server.shutdown();
  };
  return { url: `http://127.0.0.1:${port}`, port, close, [Symbol.asyncDispose]: close };
}

/** A port with nothing listening on it. */
export function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}
