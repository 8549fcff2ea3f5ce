/**
 * Limits on JSON values, without recursion (so no depth can overflow the stack): nesting depth,
 * and text PostgreSQL cannot store (NUL characters and lone UTF-16 surrogates).
 */
import { type FieldError, formatPath } from "../http/problem.ts";

export interface JsonTextScan {
  /** The deepest nesting of arrays and objects. */
  depth: number;
  /** A `\u0000` or surrogate escape (or a raw NUL) occurs: the parsed value needs a closer look. */
  suspicious: boolean;
}

/**
 * One linear pass over JSON text, without parsing it: stops counting once past `maxDepth`.
 * Malformed text is scanned too (JSON.parse reports it afterwards).
 */
export function scanJsonText(text: string, maxDepth = Infinity): JsonTextScan {
  let depth = 0;
  let deepest = 0;
  let suspicious = false;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0) suspicious = true;
    if (inString) {
      if (c === 0x22 /* " */) inString = false;
      else if (c === 0x5c /* \ */) {
        if (text.charCodeAt(i + 1) === 0x75 /* u */) {
          const code = parseInt(text.slice(i + 2, i + 6), 16);
          if (code === 0 || (code >= 0xd800 && code <= 0xdfff)) suspicious = true;
        }
        i++; // the escaped character
      }
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > deepest) deepest = depth;
      if (deepest > maxDepth) break;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) depth--;
  }
  return { depth: deepest, suspicious };
}

/** Text PostgreSQL cannot store in text or jsonb columns. */
export function isUnstorable(text: string): boolean {
  return text.includes("\u0000") || !text.isWellFormed();
}

/**
 * Where a JSON value holds unstorable text, keys included (every one: the answer lists the
 * first ones and counts the rest). Iterative, so no depth can overflow the stack.
 */
export function unstorablePaths(value: unknown): FieldError[] {
  const found: FieldError[] = [];
  const stack: [unknown, (string | number)[]][] = [[value, []]];
  while (stack.length > 0) {
    const [node, path] = stack.pop()!;
    if (typeof node === "string") {
      if (isUnstorable(node)) found.push({ path: formatPath(path), message: UNSTORABLE });
    } else if (Array.isArray(node)) {
      for (let i = node.length - 1; i >= 0; i--) stack.push([node[i], [...path, i]]);
    } else if (node !== null && typeof node === "object") {
      const entries = Object.entries(node);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, child] = entries[i];
        if (isUnstorable(key)) {
          found.push({ path: formatPath([...path, key]), message: `this key ${UNSTORABLE}` });
        }
        stack.push([child, [...path, key]]);
      }
    }
  }
  return found;
}

const UNSTORABLE = "contains a NUL character or a lone UTF-16 surrogate, which cannot be stored";

/** The depth of a value (arrays and objects), counted iteratively; stops past `limit`. */
export function jsonDepth(value: unknown, limit = Infinity): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node !== "object") continue;
    if (depth + 1 > deepest) deepest = depth + 1;
    if (deepest > limit) break;
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (child !== null && typeof child === "object") stack.push([child, depth + 1]);
    }
  }
  return deepest;
}

/** Text made storable (NUL and lone surrogates become U+FFFD) and at most `max` characters. */
export function storableText(text: string, max = 2000): string {
  const clipped = text.length > max ? `${text.slice(0, max)}…` : text;
  return clipped.replaceAll("\u0000", "\uFFFD").toWellFormed();
}

/** The UTF-8 size of a string. */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // 3 bytes for one unit from U+0800; a surrogate pair is 4 bytes over 2 units.
    if (c >= 0x800 && (c < 0xd800 || c > 0xdfff)) bytes += 2;
    else if (c >= 0x80) bytes += 1;
  }
  return bytes;
}
