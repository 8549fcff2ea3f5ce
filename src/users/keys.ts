/** API keys: `vgl_` + 32 random bytes (base64url); only the SHA-256 of a key is ever stored. */
import { timingSafeEqual } from "node:crypto";
import { sha256Hex } from "../util/hash.ts";

export const KEY_PREFIX = "vgl_";

export function generateApiKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return KEY_PREFIX + btoa(String.fromCharCode(...bytes))
    .replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

export function hashApiKey(key: string): string {
  return sha256Hex(key);
}

/** The first characters of a key, safe to show so that a user can tell their keys apart. */
export function displayPrefix(key: string): string {
  return key.slice(0, KEY_PREFIX.length + 6);
}

export function sameHash(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
