/**
 * Bounded request bodies. hono's bodyLimit trusts a Content-Length and otherwise counts the
 * stream as it reads, so a body without one is still cut off at the limit.
 */
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "./env.ts";
import { Problem } from "./problem.ts";

/** Every route's limit, except the Alertmanager receiver's (ALERTMANAGER_MAX_BODY_BYTES). */
export const MAX_BODY_BYTES = 1024 * 1024;

/** A body over `maxSize` bytes is a 413 problem naming the limit. */
export function limitBody(maxSize: number): MiddlewareHandler<AppEnv> {
  return bodyLimit({
    maxSize,
    onError: () => {
      throw new Problem(413, `The request body is larger than ${maxSize} bytes.`);
    },
  });
}
