/**
 * Outbound requests to user-supplied targets (checks, remote agents, webhooks).
 *
 * Every address a URL names or resolves to is classified with ipaddr.js, including the IPv4
 * address embedded in IPv4-mapped, IPv4-compatible, NAT64, 6to4 and Teredo IPv6 addresses (that
 * is where such a packet ends up). Cloud metadata addresses are always refused; anything that is
 * not global unicast (loopback, private, link-local, unique-local, CGNAT, multicast, reserved, …)
 * only passes when ALLOW_PRIVATE_TARGETS is on.
 *
 * The name is resolved once per request and the connection goes to a checked address, so a DNS
 * answer that changes between the check and the connection (rebinding) cannot redirect it:
 * plain http connects to the IP literal with the original Host header; https goes through a
 * one-connection local CONNECT tunnel onto the checked address, so TLS still verifies the
 * certificate against the host name. Redirects are not followed, so a public target cannot
 * bounce a request onto a private one.
 */
import {
  context,
  propagation,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
} from "@opentelemetry/api";
import ipaddr from "ipaddr.js";
import { lookup } from "node:dns/promises";
import { CallerError } from "./types.ts";
import { startActiveSpan } from "../observability/tracing.ts";

/** Resolves a host name to its IP addresses. */
export type Resolver = (host: string) => Promise<string[]>;

export interface OutboundPolicy {
  allowPrivate: boolean;
  /** Host name resolution (tests inject one); the system resolver by default. */
  resolve?: Resolver;
  /** Extra trusted root certificates (PEM) for https targets, for tests. */
  caCerts?: string[];
  /** Records a CLIENT span per request made inside a sampled trace. */
  tracer?: Tracer;
}

export interface OutboundOptions {
  /** Send the W3C trace context (remote agents continue vigil's trace; other targets do not get it). */
  propagate?: boolean;
}

// AWS/GCP/Azure/OpenStack IMDS, AWS ECS task metadata, AWS IMDS over IPv6, Alibaba, Azure
// WireServer, Oracle Cloud (legacy), Tencent Cloud.
const METADATA = new Set(
  [
    "169.254.169.254",
    "169.254.170.2",
    "fd00:ec2::254",
    "100.100.100.200",
    "168.63.129.16",
    "192.0.0.192",
    "169.254.0.23",
  ].map((a) => ipaddr.parse(a).toNormalizedString()),
);
export const METADATA_ADDRESSES: readonly string[] = [...METADATA];

const METADATA_REASON = "the cloud metadata address is never allowed";
const PRIVATE_REASON =
  "private and loopback addresses are not allowed (ALLOW_PRIVATE_TARGETS=false)";

/** IPv6 prefixes whose last 32 bits are an IPv4 address. */
const LAST_32 = [
  "::/96", // IPv4-compatible (deprecated)
  "::ffff:0:0/96", // IPv4-mapped
  "::ffff:0:0:0/96", // IPv4-translated (RFC 6145)
  "64:ff9b::/96", // NAT64 well-known prefix (RFC 6052)
].map((cidr) => ipaddr.IPv6.parseCIDR(cidr));

const TRANSLATION = new Set(["ipv4Mapped", "rfc6145", "rfc6052", "6to4", "teredo"]);

function v4(hi: number, lo: number): ipaddr.IPv4 {
  return new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
}

/** The IPv4 addresses an IPv6 address carries. */
function embedded(ip: ipaddr.IPv6): ipaddr.IPv4[] {
  const p = ip.parts;
  if (LAST_32.some((cidr) => ip.match(cidr))) return [v4(p[6], p[7])];
  if (p[0] === 0x2002) return [v4(p[1], p[2])]; // 6to4: 2002:AABB:CCDD::/48
  // Teredo 2001:0:SERVER:flags:port:~CLIENT
  if (p[0] === 0x2001 && p[1] === 0) return [v4(p[2], p[3]), v4(~p[6] & 0xffff, ~p[7] & 0xffff)];
  return [];
}

/** Why an address may not be called, or undefined when it may. Accepts any ipaddr.js form. */
export function refusal(address: string, policy: OutboundPolicy): string | undefined {
  const bare = address.replace(/^\[|\]$/g, "");
  if (!ipaddr.isValid(bare)) return `${address} is not an IP address`;
  const ip = ipaddr.parse(bare);
  const inner = ip.kind() === "ipv6" ? embedded(ip as ipaddr.IPv6) : [];
  if ([ip, ...inner].some((a) => METADATA.has(a.toNormalizedString()))) return METADATA_REASON;
  if (policy.allowPrivate) return undefined;
  const range = ip.range();
  // A translation prefix is as public as the IPv4 address it carries, checked below.
  if (range !== "unicast" && !(TRANSLATION.has(range) && inner.length > 0)) {
    return `${PRIVATE_REASON}: ${bare} is ${range}`;
  }
  const hidden = inner.find((a) => a.range() !== "unicast");
  if (hidden) return `${PRIVATE_REASON}: ${bare} carries ${hidden} (${hidden.range()})`;
  return undefined;
}

const systemResolve: Resolver = async (host) =>
  (await lookup(host, { all: true })).map((a) => a.address);

function literal(url: URL): string | undefined {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  return ipaddr.isValid(host) ? host : undefined;
}

/** The addresses `url` may be connected to (all of them checked), or a CallerError. */
async function allowedAddresses(url: URL, policy: OutboundPolicy): Promise<string[]> {
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new CallerError(`${url.protocol} URLs are not allowed; use http or https`);
  }
  if (url.username || url.password) {
    throw new CallerError("URLs with credentials (user:password@) are not allowed");
  }
  const host = url.hostname.replace(/\.$/, "");
  let addresses: string[];
  const ip = literal(url);
  if (ip) {
    addresses = [ip];
  } else if (host === "localhost" || host.endsWith(".localhost")) {
    addresses = ["127.0.0.1"];
  } else {
    try {
      addresses = await (policy.resolve ?? systemResolve)(host);
    } catch {
      addresses = [];
    }
    if (addresses.length === 0) throw new CallerError(`cannot resolve host ${host}`);
  }
  for (const address of addresses) {
    const reason = refusal(address, policy);
    if (reason) throw new CallerError(`refused ${url.host}: ${reason}`);
  }
  return addresses.map((a) => ipaddr.parse(a.replace(/^\[|\]$/g, "")).toString());
}

/** Throws a CallerError unless `url` is an http(s) URL whose every address may be called. */
export async function assertOutboundAllowed(url: URL, policy: OutboundPolicy): Promise<void> {
  await allowedAddresses(url, policy);
}

/** fetch's cause when the connection was never made: nothing was sent. */
const NOT_CONNECTED = /client error \(Connect\)/;

/**
 * fetch, after the policy check, connected to a checked address (the next one when a connection
 * cannot be made), never following redirects, aborted by `signal`. Inside a sampled trace it is
 * a CLIENT span with the HTTP semantic attributes (the URL without its query or credentials:
 * they may hold tokens).
 */
export function outboundFetch(
  url: URL,
  init: RequestInit & { signal: AbortSignal },
  policy: OutboundPolicy,
  options: OutboundOptions = {},
): Promise<Response> {
  const method = (init.method ?? "GET").toUpperCase();
  const withContext = (): RequestInit & { signal: AbortSignal } => {
    if (!options.propagate) return init;
    const headers = new Headers(init.headers);
    propagation.inject(context.active(), headers, {
      set: (carrier, key, value) => carrier.set(key, value),
    });
    return { ...init, headers };
  };
  if (!policy.tracer || !trace.getActiveSpan()?.isRecording()) {
    return checkedFetch(url, withContext(), policy);
  }
  const attributes = {
    "http.request.method": method,
    "server.address": url.hostname.replace(/^\[|\]$/g, ""),
    "server.port": Number(url.port || (url.protocol === "https:" ? 443 : 80)),
    "url.full": `${url.origin}${url.pathname}`,
  };
  return startActiveSpan(
    policy.tracer,
    method,
    { kind: SpanKind.CLIENT, attributes },
    async (span) => {
      try {
        const res = await checkedFetch(url, withContext(), policy);
        span.setAttribute("http.response.status_code", res.status);
        if (res.status >= 400) {
          span.setAttribute("error.type", String(res.status));
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
        return res;
      } catch (error) {
        span.setAttribute("error.type", error instanceof Error ? error.name : "Error");
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: error instanceof Error ? error.message : String(error),
        });
        throw error;
      } finally {
        span.end();
      }
    },
  );
}

async function checkedFetch(
  url: URL,
  init: RequestInit & { signal: AbortSignal },
  policy: OutboundPolicy,
): Promise<Response> {
  const addresses = await allowedAddresses(url, policy);
  let failure: unknown;
  for (const address of addresses) {
    try {
      return await pinnedFetch(url, address, init, policy);
    } catch (error) {
      if (init.signal.aborted || !NOT_CONNECTED.test(String((error as Error).cause))) throw error;
      failure = error;
    }
  }
  throw failure;
}

async function pinnedFetch(
  url: URL,
  address: string,
  init: RequestInit & { signal: AbortSignal },
  policy: OutboundPolicy,
): Promise<Response> {
  // One request per client, and no idle connection kept: it would outlive the pin.
  const options: Deno.CreateHttpClientOptions = { caCerts: policy.caCerts, poolMaxIdlePerHost: 0 };
  let target = url;
  const headers = new Headers(init.headers);
  let tunnel: Tunnel | undefined;
  if (literal(url)) {
    // No name to resolve: fetch connects to exactly this address.
  } else if (url.protocol === "http:") {
    target = new URL(url);
    target.hostname = address.includes(":") ? `[${address}]` : address;
    // The setter ignores what it cannot parse (a zone id): never fall back to the name.
    if (!literal(target)) throw new TypeError(`cannot connect to ${address}`);
    headers.set("host", url.host);
    options.allowHost = true;
  } else {
    tunnel = openTunnel(address, Number(url.port || 443), init.signal);
    options.proxy = { url: tunnel.url };
  }
  const client = Deno.createHttpClient(options);
  try {
    return await fetch(target, { ...init, headers, client, redirect: "manual" });
  } catch (error) {
    tunnel?.close();
    if (!tunnel?.failure) throw error;
    throw new TypeError("fetch failed", {
      cause: new Error(`client error (Connect): ${address}: ${tunnel.failure.message}`),
    });
  } finally {
    client.close(); // a response already received still streams its body
  }
}

interface Tunnel {
  url: string;
  failure?: Error;
  close(): void;
}

/**
 * A local CONNECT proxy for one connection, piped to `address:port`: fetch runs TLS through it
 * with the URL's host name, so the certificate is checked as usual while the TCP connection goes
 * to the address that was checked. The listener closes after its first connection.
 */
function openTunnel(address: string, port: number, signal: AbortSignal): Tunnel {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const tunnel: Tunnel = {
    url: `http://127.0.0.1:${listener.addr.port}`,
    close: () => {
      try {
        listener.close();
      } catch {
        // already closed
      }
    },
  };
  const reply = (conn: Deno.Conn, line: string) =>
    conn.write(new TextEncoder().encode(`HTTP/1.1 ${line}\r\n\r\n`));
  (async () => {
    let local: Deno.Conn;
    try {
      local = await listener.accept();
    } catch {
      return; // fetch failed before connecting
    } finally {
      tunnel.close();
    }
    try {
      if (!(await readHead(local)).startsWith("CONNECT ")) throw new Error("not a CONNECT request");
      const upstream = await Deno.connect({ hostname: address, port, signal });
      await reply(local, "200 Connection Established");
      await Promise.allSettled([
        local.readable.pipeTo(upstream.writable),
        upstream.readable.pipeTo(local.writable),
      ]);
    } catch (error) {
      tunnel.failure = error as Error;
      await reply(local, "502 Bad Gateway").catch(() => {});
      try {
        local.close();
      } catch {
        // already closed
      }
    }
  })();
  return tunnel;
}

/** Reads a request head (up to the blank line) without consuming what follows it. */
async function readHead(conn: Deno.Conn): Promise<string> {
  const buf = new Uint8Array(8192);
  let head = "";
  while (!head.includes("\r\n\r\n")) {
    const n = await conn.read(buf);
    if (n === null || head.length > 8192) throw new Error("bad CONNECT request");
    head += new TextDecoder().decode(buf.subarray(0, n));
  }
  return head;
}

/** Reads at most `limit` bytes of a body as text (a hostile target cannot exhaust memory). */
export async function readLimited(res: Response, limit = 1024 * 1024): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw new Error(`response body larger than ${limit} bytes`);
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(concat(chunks, size));
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}
