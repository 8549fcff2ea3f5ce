/** An OTLP/HTTP (JSON) trace receiver on 127.0.0.1 that decodes the spans it is sent. */
import { serveLocal } from "./servers.ts";

type AnyValue = {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
};
type KeyValue = { key: string; value: AnyValue };

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  kind: number;
  attributes: Record<string, string | number | boolean>;
  status: { code?: number; message?: string };
  events: { name: string; attributes: Record<string, string | number | boolean> }[];
  resource: Record<string, string | number | boolean>;
}

function decode(attributes: KeyValue[] = []): Record<string, string | number | boolean> {
  return Object.fromEntries(attributes.map(({ key, value }) => [
    key,
    value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : undefined) ??
      value.boolValue ?? value.doubleValue ?? "",
  ]));
}

export function otlpReceiver() {
  const spans: ReceivedSpan[] = [];
  const server = serveLocal(async (req) => {
    if (new URL(req.url).pathname !== "/v1/traces") {
      return new Response("not found", { status: 404 });
    }
    if (!(req.headers.get("content-type") ?? "").includes("json")) {
      return new Response("this receiver speaks OTLP/HTTP JSON", { status: 415 });
    }
    const body = await req.json();
    for (const rs of body.resourceSpans ?? []) {
      const resource = decode(rs.resource?.attributes);
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          spans.push({
            traceId: s.traceId,
            spanId: s.spanId,
            parentSpanId: s.parentSpanId || undefined,
            name: s.name,
            kind: s.kind,
            attributes: decode(s.attributes),
            status: s.status ?? {},
            events: (s.events ?? []).map((e: { name: string; attributes: KeyValue[] }) => ({
              name: e.name,
              attributes: decode(e.attributes),
            })),
            resource,
          });
        }
      }
    }
    return Response.json({});
  });
  return { url: server.url, spans, close: server.close, [Symbol.asyncDispose]: server.close };
}
