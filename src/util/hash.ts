import { createHash } from "node:crypto";

/** SHA-256 as hex; synchronous (node:crypto), a fraction of the cost of WebCrypto's async digest. */
export function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
