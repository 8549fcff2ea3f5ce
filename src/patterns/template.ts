/**
 * Templates in pattern arguments and outputs. `"{{check.latency_ms}}"` alone is replaced by the
 * value itself (its type kept); inside a longer string, `"took {{check.latency_ms}} ms"`, it is
 * interpolated. A reference is a dotted path whose first segment is `inputs` or the `as` of an
 * earlier step.
 */
import { getPath } from "../util/json.ts";

const EXPRESSION = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_-]+)*$/;
const WHOLE = /^\{\{\s*([^{}]*?)\s*\}\}$/;
const ANY = /\{\{\s*([^{}]*?)\s*\}\}/g;

export class TemplateError extends Error {
  override name = "TemplateError";
}

export interface TemplateRef {
  /** Where the template sits inside the templated value (e.g. ["headers", "x-id"]). */
  location: (string | number)[];
  expression: string;
  /** The expression split on dots; `path[0]` is `inputs` or a step's `as`. */
  path: string[];
  /** The template is the whole string, so the value keeps its type. */
  whole: boolean;
  valid: boolean;
}

/** Every template inside a JSON value, with where it is. */
export function findTemplates(value: unknown, location: (string | number)[] = []): TemplateRef[] {
  if (typeof value === "string") {
    const whole = WHOLE.exec(value);
    const expressions = whole ? [whole[1]] : [...value.matchAll(ANY)].map((m) => m[1]);
    return expressions.map((expression) => ({
      location,
      expression,
      path: expression.split("."),
      whole: whole !== null,
      valid: EXPRESSION.test(expression),
    }));
  }
  if (Array.isArray(value)) return value.flatMap((v, i) => findTemplates(v, [...location, i]));
  if (value && typeof value === "object") {
    return Object.entries(value).flatMap(([k, v]) => findTemplates(v, [...location, k]));
  }
  return [];
}

function lookup(expression: string, state: Record<string, unknown>): unknown {
  if (!EXPRESSION.test(expression)) {
    throw new TemplateError(`{{${expression}}} is not a valid reference`);
  }
  const path = expression.split(".");
  if (!Object.hasOwn(state, path[0])) {
    throw new TemplateError(`{{${expression}}}: nothing is named "${path[0]}"`);
  }
  const { found, value } = getPath(state, path);
  if (!found) {
    throw new TemplateError(
      `{{${expression}}}: ${path.slice(0, -1).join(".")} has no "${path.at(-1)}"`,
    );
  }
  return value;
}

function interpolate(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** Replaces every template in `value` with what it names in `state`. */
export function render(value: unknown, state: Record<string, unknown>): unknown {
  if (typeof value === "string") {
    const whole = WHOLE.exec(value);
    if (whole) return lookup(whole[1], state);
    if (!value.includes("{{")) return value;
    return value.replace(ANY, (_, expression: string) => interpolate(lookup(expression, state)));
  }
  if (Array.isArray(value)) return value.map((v) => render(v, state));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, render(v, state)]));
  }
  return value;
}
