/** Small JSON helpers shared by templating, capabilities, caching and de-duplication. */

/** JSON with object keys sorted at every depth: equal values give equal strings. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

/** Deeper values are refused with a clear error instead of overflowing the stack. */
export const MAX_CANONICAL_DEPTH = 256;

function sortKeys(value: unknown, depth = 0): unknown {
  if (depth > MAX_CANONICAL_DEPTH) {
    throw new Error(`value is nested deeper than ${MAX_CANONICAL_DEPTH} levels`);
  }
  if (Array.isArray(value)) return value.map((v) => sortKeys(v, depth + 1));
  if (value && typeof value === "object" && !(value instanceof Date)) {
    const record = value as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(record).sort().map((k) => [k, sortKeys(record[k], depth + 1)]),
    );
  }
  return value;
}

function parsePath(path: string): string[] {
  return path === "" ? [] : path.split(".");
}

/**
 * The value at a dotted path (`series.0.value`); `found` is false when a segment is missing.
 * Array elements are addressed by index.
 */
export function getPath(
  root: unknown,
  path: string | string[],
): { found: boolean; value: unknown } {
  let current = root;
  for (const segment of typeof path === "string" ? parsePath(path) : path) {
    if (current === null || typeof current !== "object") return { found: false, value: undefined };
    if (!Object.hasOwn(current, segment)) return { found: false, value: undefined };
    current = (current as Record<string, unknown>)[segment];
  }
  return { found: current !== undefined, value: current };
}
