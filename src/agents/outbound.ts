/**
 * Outbound requests to user-supplied targets (checks, remote agents, webhooks). The cloud
 * metadata address is always refused; loopback and private addresses only when
 * ALLOW_PRIVATE_TARGETS is on. Redirects are not followed, so a public target cannot bounce a
 * request onto a private one.
 */
import { lookup } from "node:dns/promises";
import { isIPv4, isIPv6 } from "node:net";
import { CallerError } from "./types.ts";

export interface OutboundPolicy {
  allowPrivate: boolean;
}

const METADATA = new Set(["169.254.169.254", "fd00:ec2::254"]);

function v4(address: string): number[] {
  return address.split(".").map(Number);
}

function isPrivateV4(address: string): boolean {
  const [a, b] = v4(address);
  return a === 10 || a === 127 || a === 0 ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    (a === 169 && b === 254) ||
    (a === 100 && b >= 64 && b <= 127);
}

function isPrivateV6(address: string): boolean {
  const lower = address.toLowerCase();
  const mapped = lower.match(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/);
  if (mapped) return isPrivateV4(mapped[1]);
  if (lower === "::1" || lower === "::") return true;
  const first = parseInt(lower.split(":")[0] || "0", 16);
  return (first & 0xfe00) === 0xfc00 || (first & 0xffc0) === 0xfe80; // fc00::/7, fe80::/10
}

/** Why an address may not be called, or undefined when it may. */
export function refusal(address: string, policy: OutboundPolicy): string | undefined {
  const bare = address.replace(/^\[|\]$/g, "");
  if (METADATA.has(bare.toLowerCase()) || /^::ffff:169\.254\.169\.254$/i.test(bare)) {
    return "the cloud metadata address is never allowed";
  }
  const isPrivate = isIPv4(bare) ? isPrivateV4(bare) : isIPv6(bare) ? isPrivateV6(bare) : false;
  if (isPrivate && !policy.allowPrivate) {
    return "private and loopback addresses are not allowed (ALLOW_PRIVATE_TARGETS=false)";
  }
  return undefined;
}

/** Throws a CallerError unless `url` is an http(s) URL whose every address may be called. */
export async function assertOutboundAllowed(url: URL, policy: OutboundPolicy): Promise<void> {
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new CallerError(`${url.protocol} URLs are not allowed; use http or https`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, "");
  let addresses: string[];
  if (isIPv4(host) || isIPv6(host)) {
    addresses = [host];
  } else if (host === "localhost" || host.endsWith(".localhost")) {
    addresses = ["127.0.0.1"];
  } else {
    try {
      addresses = (await lookup(host, { all: true })).map((a) => a.address);
    } catch {
      throw new CallerError(`cannot resolve host ${host}`);
    }
  }
  for (const address of addresses) {
    const reason = refusal(address, policy);
    if (reason) throw new CallerError(`refused ${url.host}: ${reason}`);
  }
}

/** fetch, after the policy check, never following redirects, aborted by `signal`. */
export async function outboundFetch(
  url: URL,
  init: RequestInit & { signal: AbortSignal },
  policy: OutboundPolicy,
): Promise<Response> {
  await assertOutboundAllowed(url, policy);
  return await fetch(url, { ...init, redirect: "manual" });
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
