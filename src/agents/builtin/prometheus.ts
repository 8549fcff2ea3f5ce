/** The `prometheus` agent: `prometheus.query`, an instant query against PROMETHEUS_URL. */
import { z } from "zod";
import { outboundFetch, type OutboundPolicy, readLimited } from "../outbound.ts";
import { type Agent, CallerError, capability } from "../types.ts";

type Sample = [number, string];
interface QueryResponse {
  status: "success" | "error";
  error?: string;
  data?: {
    resultType: "vector" | "matrix" | "scalar" | "string";
    result: unknown;
  };
}

export function prometheusAgent(baseUrl: string | undefined, policy: OutboundPolicy): Agent {
  const query = capability({
    name: "prometheus.query",
    description: "Runs an instant PromQL query. A vector answers `series` (and `value` when it " +
      "has exactly one element); a scalar answers `value`.",
    args: z.object({
      query: z.string().min(1, "must not be empty").max(10_000),
      time: z.union([z.number(), z.iso.datetime()]).optional(),
      timeout_ms: z.number().int().min(1).max(60_000).default(10_000),
    }).strict(),
    handler: async (args, ctx) => {
      if (!baseUrl) throw new CallerError("PROMETHEUS_URL is not configured");
      const url = new URL("api/v1/query", baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`);
      url.searchParams.set("query", args.query);
      if (args.time !== undefined) url.searchParams.set("time", String(args.time));
      const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(args.timeout_ms)]);
      const res = await outboundFetch(url, { method: "GET", signal }, policy);
      const text = await readLimited(res, 8 * 1024 * 1024);
      let body: QueryResponse;
      try {
        body = JSON.parse(text);
      } catch {
        throw new Error(`Prometheus answered ${res.status} with a body that is not JSON`);
      }
      if (body.status !== "success" || !body.data) {
        const message = `Prometheus: ${body.error ?? `HTTP ${res.status}`}`;
        // 400 and 422 mean the query is wrong, not that Prometheus is unwell.
        throw res.status === 400 || res.status === 422
          ? new CallerError(message)
          : new Error(message);
      }
      return shape(body.data.resultType, body.data.result);
    },
  });
  return { name: "prometheus", kind: "builtin", timeoutMs: 60_000, capabilities: [query] };
}

function shape(resultType: string, result: unknown) {
  switch (resultType) {
    case "scalar":
      return { result_type: "scalar", value: Number((result as Sample)[1]) };
    case "string":
      return { result_type: "string", value: (result as Sample)[1] };
    case "vector": {
      const series = (result as { metric: Record<string, string>; value: Sample }[]).map((s) => ({
        metric: s.metric,
        value: Number(s.value[1]),
        timestamp: s.value[0],
      }));
      return {
        result_type: "vector",
        series,
        ...(series.length === 1 ? { value: series[0].value } : {}),
      };
    }
    default: {
      const series = (result as { metric: Record<string, string>; values: Sample[] }[]).map((
        s,
      ) => ({
        metric: s.metric,
        values: s.values.map(([t, v]) => [t, Number(v)]),
      }));
      return { result_type: "matrix", series };
    }
  }
}
