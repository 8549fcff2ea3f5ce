/**
 * A local server that speaks Resend's `POST /emails`, for driving the real `resend` SDK (through
 * RESEND_BASE_URL). Each call takes the next scripted behaviour (default: accept).
 */
import { serveLocal } from "./servers.ts";

export type Behaviour =
  | { ok: true }
  | { status: number; name?: string; message?: string; retryAfter?: string }
  | { hang: true };

export interface ResendCall {
  idempotencyKey: string | null;
  authorization: string | null;
  body: { from: string; to: string | string[]; subject: string; text?: string; html?: string };
}

export function fakeResend() {
  const calls: ResendCall[] = [];
  const script: Behaviour[] = [];
  const hanging: (() => void)[] = [];
  const server = serveLocal(async (req) => {
    if (req.method !== "POST" || new URL(req.url).pathname !== "/emails") {
      return Response.json({ statusCode: 404, name: "not_found", message: "Not found" }, {
        status: 404,
      });
    }
    calls.push({
      idempotencyKey: req.headers.get("idempotency-key"),
      authorization: req.headers.get("authorization"),
      body: await req.json(),
    });
    const behaviour = script.shift() ?? { ok: true };
    if ("hang" in behaviour) {
      // Never answers in time: the client must time out. Released when the fake closes.
      await new Promise<void>((resolve) => hanging.push(resolve));
      return new Response(null, { status: 504 });
    }
    if ("ok" in behaviour) return Response.json({ id: crypto.randomUUID() });
    return Response.json(
      {
        statusCode: behaviour.status,
        name: behaviour.name ?? "error",
        message: behaviour.message ?? `HTTP ${behaviour.status}`,
      },
      {
        status: behaviour.status,
        headers: behaviour.retryAfter ? { "retry-after": behaviour.retryAfter } : {},
      },
    );
  });
  const close = async () => {
    for (const release of hanging.splice(0)) release();
    await server.close();
  };
  return {
    url: server.url,
    calls,
    /** Queues how the next calls are answered. */
    respond(...behaviours: Behaviour[]) {
      script.push(...behaviours);
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
