/** The `http` agent: `http.check` (is a URL up?) and `http.request` (call an HTTP API). */
import { z } from "zod";
import { outboundFetch, type OutboundPolicy, readLimited } from "../outbound.ts";
import { type Agent, CallerError, capability } from "../types.ts";

const HttpUrl = z.url({ protocol: /^https?$/, error: "must be an http(s) URL" });

function errorMessage(error: unknown): string {
  if (error instanceof DOMException && error.name === "TimeoutError") return "timed out";
  return error instanceof Error ? error.message : String(error);
}

export function httpAgent(policy: OutboundPolicy): Agent {
  const check = capability({
    name: "http.check",
    description: "Requests a URL and reports whether it answered as expected, and how fast. " +
      "A failed connection is a result with ok=false.",
    args: z.object({
      url: HttpUrl,
      method: z.enum(["GET", "HEAD"]).default("GET"),
      timeout_ms: z.number().int().min(1).max(60_000).default(5000),
      expect_status: z.number().int().min(100).max(599).optional(),
    }).strict(),
    handler: async (args, ctx) => {
      const started = performance.now();
      const latency = () => Math.round((performance.now() - started) * 100) / 100;
      const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(args.timeout_ms)]);
      try {
        const res = await outboundFetch(new URL(args.url), { method: args.method, signal }, policy);
        await res.body?.cancel();
        const ok = args.expect_status === undefined
          ? res.status < 400
          : res.status === args.expect_status;
        return { ok, status: res.status, latency_ms: latency() };
      } catch (error) {
        if (error instanceof CallerError) throw error;
        if (ctx.signal.aborted) throw error; // the step itself was cancelled
        const timedOut = signal.aborted;
        return {
          ok: false,
          status: null,
          latency_ms: latency(),
          error: timedOut ? `timed out after ${args.timeout_ms} ms` : errorMessage(error),
        };
      }
    },
  });

  const request = capability({
    name: "http.request",
    description: "Sends an HTTP request and returns the status, headers and JSON (or text) body.",
    args: z.object({
      url: HttpUrl,
      method: z.enum(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]).default("GET"),
      headers: z.record(z.string(), z.string()).default({}),
      json: z.unknown().optional(),
      timeout_ms: z.number().int().min(1).max(60_000).default(10_000),
    }).strict(),
    handler: async (args, ctx) => {
      const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(args.timeout_ms)]);
      const headers = new Headers(args.headers);
      let body: string | undefined;
      if (args.json !== undefined) {
        body = JSON.stringify(args.json);
        if (!headers.has("content-type")) headers.set("content-type", "application/json");
      }
      const res = await outboundFetch(new URL(args.url), {
        method: args.method,
        headers,
        body,
        signal,
      }, policy);
      const text = await readLimited(res);
      const responseHeaders = Object.fromEntries(res.headers);
      if (/\bjson\b/.test(res.headers.get("content-type") ?? "") && text) {
        try {
          return { status: res.status, headers: responseHeaders, json: JSON.parse(text) };
        } catch {
          // Not actually JSON: fall through to text.
        }
      }
      return { status: res.status, headers: responseHeaders, text };
    },
  });

  return { name: "http", kind: "builtin", timeoutMs: 60_000, capabilities: [check, request] };
}
