/**
 * Limits on request inputs, checked before zod sees them or anything is stored: JSON nesting
 * depth (deep values overflow the stack of recursive code such as JSON.stringify), and text
 * PostgreSQL cannot store (NUL characters and lone UTF-16 surrogates) in the URL or the body.
 */
import type { MiddlewareHandler } from "hono";
import { scanJsonText, unstorablePaths } from "../util/json_limits.ts";
import type { AppEnv } from "./env.ts";
import { Problem } from "./problem.ts";

const JSON_TYPE = /^application\/([\w.-]+\+)?json$/i;

/**
 * Inputs PostgreSQL could choke on, before any route sees them: a NUL (`%00`) in the path or the
 * query is a 400 (a lone surrogate cannot be percent-encoded in UTF-8); a JSON body nested deeper
 * than `maxDepth` is a 400, unstorable text in it a 422 naming each field. Malformed JSON is left
 * to the route's validator (a 400). Hono caches the body text, so the validator reads it again
 * without another read of the stream.
 */
export function guardInputs(maxDepth: number): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (c.req.url.includes("%00")) {
      throw new Problem(400, "The URL contains a NUL character (%00), which cannot be stored.");
    }
    const method = c.req.method;
    if (method === "GET" || method === "HEAD") return await next();
    const type = c.req.header("content-type")?.split(";")[0].trim() ?? "";
    if (!JSON_TYPE.test(type)) return await next();
    const text = await c.req.text();
    const scan = scanJsonText(text, maxDepth);
    if (scan.depth > maxDepth) {
      throw new Problem(400, `The JSON body is nested deeper than ${maxDepth} levels.`, {
        errors: [{ path: "(root)", message: `is nested deeper than ${maxDepth} levels` }],
      });
    }
    if (scan.suspicious) {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        return await next();
      }
      const errors = unstorablePaths(value);
      if (errors.length > 0) throw Problem.invalid(errors);
    }
    await next();
  };
}
