/**
 * Keyset pagination: `?limit=&cursor=`, answered with `next_cursor` (absent on the last page).
 * A cursor is the (timestamp, id) of the last row seen, base64url-encoded; it never skips or
 * repeats rows while others are inserted.
 */
import { z } from "@hono/zod-openapi";
import { Problem } from "./problem.ts";

const MAX_CURSOR_LENGTH = 200;

export const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50).openapi({
    param: { name: "limit", in: "query" },
    example: 50,
  }),
  // Checked by decodeCursor, so that every bad cursor (too long too) is the same 400.
  cursor: z.string().optional().openapi({
    param: { name: "cursor", in: "query" },
    maxLength: MAX_CURSOR_LENGTH,
  }),
});

/** The response of a paged list: `{items, next_cursor}`. */
export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({
    items: z.array(item),
    next_cursor: z.string().nullable().openapi({
      description: "Pass as `cursor` for the next page",
    }),
  });
}

export interface Cursor {
  at: Date;
  id: string;
}

export function encodeCursor(at: Date, id: string): string {
  const raw = JSON.stringify([at.toISOString(), id]);
  return btoa(raw).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

const CursorTuple = z.tuple([z.iso.datetime(), z.uuid()]);

/**
 * A malformed or forged cursor is a 400 naming the parameter, never a query PostgreSQL rejects:
 * the id must be a UUID and the time one PostgreSQL can store (years 1 to 9999).
 */
export function decodeCursor(cursor: string | undefined): Cursor | undefined {
  if (cursor === undefined) return undefined;
  const bad = () =>
    new Problem(400, "The cursor parameter is not a cursor from this API.", {
      errors: [{ path: "query.cursor", message: "is not a cursor from this API" }],
    });
  if (cursor.length > MAX_CURSOR_LENGTH) throw bad();
  let decoded: unknown;
  try {
    decoded = JSON.parse(atob(cursor.replaceAll("-", "+").replaceAll("_", "/")));
  } catch {
    throw bad();
  }
  const parsed = CursorTuple.safeParse(decoded);
  if (!parsed.success) throw bad();
  const at = new Date(parsed.data[0]);
  const year = at.getUTCFullYear();
  if (Number.isNaN(at.getTime()) || year < 1 || year > 9999) throw bad();
  return { at, id: parsed.data[1] };
}

/** Given `limit + 1` rows newest first, the page and the cursor to the next one. */
export function page<T>(
  rows: T[],
  limit: number,
  key: (row: T) => [Date, string],
): { items: T[]; next_cursor: string | null } {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return {
    items,
    next_cursor: rows.length > limit && last ? encodeCursor(...key(last)) : null,
  };
}
