/**
 * Keyset pagination: `?limit=&cursor=`, answered with `next_cursor` (absent on the last page).
 * A cursor is the (timestamp, id) of the last row seen, base64url-encoded; it never skips or
 * repeats rows while others are inserted.
 */
import { z } from "@hono/zod-openapi";
import { Problem } from "./problem.ts";

export const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50).openapi({
    param: { name: "limit", in: "query" },
    example: 50,
  }),
  cursor: z.string().max(200).optional().openapi({ param: { name: "cursor", in: "query" } }),
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

export function decodeCursor(cursor: string | undefined): Cursor | undefined {
  if (cursor === undefined) return undefined;
  try {
    const raw = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
    const [at, id] = z.tuple([z.iso.datetime(), z.string().min(1)]).parse(JSON.parse(raw));
    return { at: new Date(at), id };
  } catch {
    throw Problem.invalid([{ path: "query.cursor", message: "is not a cursor from this API" }]);
  }
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
