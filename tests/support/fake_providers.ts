/**
 * Fake delivery providers that behave like the real ones where it matters for exactly-once:
 *
 * - `fakeResendProvider`: Resend's `POST /emails`. A key it accepted answers the same 200 again
 *   for 24 h (of the injected clock) without a second email, a key still in progress answers 409,
 *   and after 24 h the key is forgotten: a new request makes a second email.
 * - `fakeWebhookReceiver`: a Standard Webhooks receiver that de-duplicates by `webhook-id` for
 *   72 h, atomically (a copy arriving while the first is in progress gets 409), as vigil's
 *   webhook contract asks.
 *
 * Each request takes the next scripted behaviour (default: accept). `copies` counts what a user
 * would see: emails created, webhook payloads taken in.
 */
import type { Clock } from "../../src/clock.ts";
import { serveLocal } from "./servers.ts";

export type Behaviour =
  | { kind: "ok"; delayMs?: number }
  | { kind: "status"; status: number; retryAfter?: string }
  /** Never answers (the request is not taken in). */
  | { kind: "hang" }
  /** Takes the message in, then never answers: the sender cannot know it arrived. */
  | { kind: "accept_then_hang" }
  /** An outage in front of the provider (a load balancer's 503): nothing reaches it. */
  | { kind: "outage" }
  /** Held on the way to the provider until `until`, then behaves as `then`. */
  | { kind: "wait"; until: Promise<unknown>; then: Behaviour };

const HOUR = 3_600_000;

interface Provider {
  url: string;
  /** Requests per key (delivery id), accepted or not. */
  requests: Map<string, number>;
  /** User-visible copies per key. */
  copies: Map<string, number>;
  /** When each key was first seen (clock time). */
  firstSeen: Map<string, number>;
  script: Behaviour[];
  respond(...behaviours: Behaviour[]): void;
  /** Requests being processed now. */
  readonly inFlight: number;
  /** Forgets every key and every request seen (a fresh provider, same address). */
  reset(): void;
  /** An outage in front of the provider: every request is answered 503, nothing is kept. */
  down: boolean;
  /** Picks the behaviour of every request not scripted. */
  decide?: (key: string) => Behaviour;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

function fakeProvider(
  clock: Clock,
  options: {
    windowMs: number;
    keyOf: (req: Request) => string | null;
    accepted: (key: string) => Response;
    rejected: (b: Extract<Behaviour, { kind: "status" }>) => Response;
    inProgress?: () => Response;
  },
): Provider {
  const requests = new Map<string, number>();
  const copies = new Map<string, number>();
  const firstSeen = new Map<string, number>();
  const acceptedAt = new Map<string, number>();
  const busy = new Set<string>();
  const hanging = new Set<() => void>();
  const script: Behaviour[] = [];
  let close!: () => void;
  const closed = new Promise<void>((resolve) => (close = resolve));
  const hang = (req: Request) =>
    new Promise<void>((resolve) => {
      const done = () => {
        hanging.delete(done);
        resolve();
      };
      hanging.add(done);
      req.signal.addEventListener("abort", done, { once: true });
    });
  const provider: Provider = {
    url: "",
    requests,
    copies,
    firstSeen,
    script,
    down: false,
    get inFlight() {
      return busy.size;
    },
    respond: (...behaviours) => void script.push(...behaviours),
    reset: () => {
      for (const map of [requests, copies, firstSeen, acceptedAt]) map.clear();
      script.length = 0;
    },
    close: async () => {
      close();
      for (const release of [...hanging]) release();
      await server.close();
    },
    [Symbol.asyncDispose]: () => provider.close(),
  };
  const accept = (key: string) => {
    acceptedAt.set(key, clock.now().getTime());
    copies.set(key, (copies.get(key) ?? 0) + 1);
  };
  const server = serveLocal(async (req) => {
    await req.arrayBuffer();
    const key = options.keyOf(req);
    if (!key) return new Response("missing key", { status: 400 });
    const now = clock.now().getTime();
    requests.set(key, (requests.get(key) ?? 0) + 1);
    if (!firstSeen.has(key)) firstSeen.set(key, now);
    let behaviour = script.shift() ?? provider.decide?.(key) ?? { kind: "ok" };
    while (behaviour.kind === "wait") {
      // Held on the way (a slow network, a proxy): the provider has not seen it yet.
      await Promise.race([behaviour.until, closed]);
      behaviour = behaviour.then;
    }
    if (provider.down || behaviour.kind === "outage") {
      return options.rejected({ kind: "status", status: 503 });
    }
    const known = acceptedAt.get(key);
    if (known !== undefined && now - known < options.windowMs) return options.accepted(key);
    if (busy.has(key) && options.inProgress) return options.inProgress();
    busy.add(key);
    try {
      switch (behaviour.kind) {
        case "ok": {
          const delay = behaviour.delayMs ?? 0;
          if (delay > 0) await new Promise((r) => setTimeout(r, delay));
          accept(key);
          return options.accepted(key);
        }
        case "status":
          return options.rejected(behaviour);
        // Neither answers; the provider is done with the request (it is no longer in
        // progress), only the answer never leaves.
        case "hang":
          busy.delete(key);
          await hang(req);
          return new Response(null, { status: 504 });
        case "accept_then_hang":
          accept(key);
          busy.delete(key);
          await hang(req);
          return new Response(null, { status: 504 });
      }
    } finally {
      busy.delete(key);
    }
  });
  provider.url = server.url;
  return provider;
}

export function fakeResendProvider(clock: Clock): Provider {
  return fakeProvider(clock, {
    windowMs: 24 * HOUR,
    keyOf: (req) => req.headers.get("idempotency-key"),
    accepted: (key) => Response.json({ id: `email-${key}` }),
    rejected: (b) =>
      Response.json(
        { statusCode: b.status, name: "error", message: `HTTP ${b.status}` },
        { status: b.status, headers: b.retryAfter ? { "retry-after": b.retryAfter } : {} },
      ),
    inProgress: () =>
      Response.json(
        {
          statusCode: 409,
          name: "concurrent_idempotent_requests",
          message: "Same idempotency key used while original request is still in progress.",
        },
        { status: 409 },
      ),
  });
}

export function fakeWebhookReceiver(clock: Clock): Provider {
  return fakeProvider(clock, {
    windowMs: 72 * HOUR,
    keyOf: (req) => req.headers.get("webhook-id"),
    accepted: () => new Response(null, { status: 204 }),
    // The contract: de-duplicate atomically, so a copy arriving while the first is still being
    // taken in is refused (and retried later), not taken in twice.
    inProgress: () => new Response("this webhook-id is being processed", { status: 409 }),
    rejected: (b) =>
      new Response(null, {
        status: b.status,
        headers: b.retryAfter ? { "retry-after": b.retryAfter } : {},
      }),
  });
}
