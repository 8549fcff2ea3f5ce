/**
 * RFC 9457 problem details. Anything that should reach a client as a 4xx/5xx is a `Problem`;
 * the error handler renders it as `application/problem+json`.
 */
import type { ZodError } from "zod";

export interface FieldError {
  path: string;
  message: string;
}

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  request_id?: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

const TITLES: Record<number, [slug: string, title: string]> = {
  400: ["bad-request", "Bad Request"],
  401: ["unauthorized", "Unauthorized"],
  403: ["forbidden", "Forbidden"],
  404: ["not-found", "Not Found"],
  405: ["method-not-allowed", "Method Not Allowed"],
  409: ["conflict", "Conflict"],
  413: ["payload-too-large", "Payload Too Large"],
  415: ["unsupported-media-type", "Unsupported Media Type"],
  422: ["validation-failed", "Validation Failed"],
  429: ["too-many-requests", "Too Many Requests"],
  500: ["internal-error", "Internal Server Error"],
  502: ["bad-gateway", "Bad Gateway"],
  503: ["unavailable", "Service Unavailable"],
};

export class Problem extends Error {
  override name = "Problem";
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly extra:
      & { errors?: FieldError[]; headers?: Record<string, string> }
      & Record<
        string,
        unknown
      > = {},
  ) {
    super(detail);
  }

  static unauthorized(detail: string) {
    return new Problem(401, detail, { headers: { "WWW-Authenticate": 'Bearer realm="vigil"' } });
  }
  static forbidden(detail: string) {
    return new Problem(403, detail);
  }
  static notFound(detail: string) {
    return new Problem(404, detail);
  }
  static conflict(detail: string) {
    return new Problem(409, detail);
  }
  static invalid(errors: FieldError[], detail?: string) {
    return new Problem(422, detail ?? summarize(errors), { errors });
  }

  body(requestId?: string): ProblemBody {
    const { headers: _headers, errors, ...extensions } = this.extra;
    return problemBody(this.status, this.detail, { requestId, errors, extensions });
  }
}

export function problemBody(
  status: number,
  detail: string,
  opts: { requestId?: string; errors?: FieldError[]; extensions?: Record<string, unknown> } = {},
): ProblemBody {
  const [slug, title] = TITLES[status] ?? [`http-${status}`, `HTTP ${status}`];
  return {
    type: `urn:vigil:problem:${slug}`,
    title,
    status,
    detail,
    ...(opts.requestId ? { request_id: opts.requestId } : {}),
    ...(opts.errors ? boundedErrors(opts.errors) : {}),
    ...opts.extensions,
  };
}

/** An answer lists at most this many problems; the rest are only counted. */
export const MAX_LISTED_ERRORS = 50;
const MAX_ERROR_TEXT = 300;

const clip = (text: string) =>
  text.length > MAX_ERROR_TEXT ? `${text.slice(0, MAX_ERROR_TEXT)}…` : text;

/** A huge or hostile body must not make a huge answer: few problems, each of bounded size. */
function boundedErrors(errors: FieldError[]): { errors: FieldError[]; more_errors?: number } {
  const listed = errors.slice(0, MAX_LISTED_ERRORS)
    .map((e) => ({ path: clip(e.path), message: clip(e.message) }));
  return errors.length > MAX_LISTED_ERRORS
    ? { errors: listed, more_errors: errors.length - MAX_LISTED_ERRORS }
    : { errors: listed };
}

/** One entry per zod issue, with a dotted path (`steps.0.capability`). */
export function fieldErrors(error: ZodError, prefix: (string | number)[] = []): FieldError[] {
  return error.issues.map((issue) => ({
    path: formatPath([
      ...prefix,
      ...issue.path.map((p) => (typeof p === "symbol" ? String(p) : p)),
    ]),
    message: issue.message,
  }));
}

export function formatPath(path: readonly (string | number)[]): string {
  return path.length === 0 ? "(root)" : path.join(".");
}

function summarize(errors: FieldError[]): string {
  if (errors.length === 0) return "The request is not valid.";
  const first = `${clip(errors[0].path)}: ${clip(errors[0].message)}`;
  return errors.length === 1 ? first : `${first} (and ${errors.length - 1} more problems)`;
}
