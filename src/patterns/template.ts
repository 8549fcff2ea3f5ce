/**
 * Templates in pattern arguments and outputs. `"{{check.latency_ms}}"` alone is replaced by the
 * value itself (its type kept); inside a longer string, `"took {{check.latency_ms}} ms"`, it is
 * interpolated. A reference is a dotted path whose first segment is `inputs` or the `as` of an
 * earlier step.
 */
import { getPath } from "../util/json.ts";
import { utf8Length } from "../util/json_limits.ts";

const EXPRESSION = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_-]+)*$/;

/** Templated values (args, outputs) nested deeper than this are refused, not recursed into. */
export const MAX_TEMPLATE_DEPTH = 64;

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

interface Match {
  start: number;
  end: number;
  /** What is between the braces, trimmed. */
  expression: string;
}

/**
 * Every `{{ … }}` of a string, left to right (no braces inside, spaces trimmed), in linear
 * time: a backtracking regex took seconds on `{{` followed by thousands of spaces.
 */
export function scanTemplates(text: string): Match[] {
  const found: Match[] = [];
  let from = 0;
  while (true) {
    const open = text.indexOf("{{", from);
    if (open < 0) return found;
    let i = open + 2;
    while (i < text.length && text[i] !== "{" && text[i] !== "}") i++;
    if (i >= text.length) return found; // no brace left, so no template either
    if (text[i] === "}" && text[i + 1] === "}") {
      found.push({ start: open, end: i + 2, expression: text.slice(open + 2, i).trim() });
      from = i + 2;
    } else {
      // A "{" may open the next template ("{{{a}}"); a lone "}" ends this attempt.
      from = text[i] === "{" ? i - 1 : i + 1;
    }
  }
}

/** The one template that is the whole string, if it is one. */
function wholeTemplate(text: string, matches: Match[]): Match | undefined {
  const [only] = matches;
  return matches.length === 1 && only.start === 0 && only.end === text.length ? only : undefined;
}

/** Every template inside a JSON value, with where it is. Iterative: any depth is safe. */
export function findTemplates(value: unknown, location: (string | number)[] = []): TemplateRef[] {
  const refs: TemplateRef[] = [];
  const stack: [unknown, (string | number)[]][] = [[value, location]];
  while (stack.length > 0) {
    const [node, at] = stack.pop()!;
    if (typeof node === "string") {
      const matches = scanTemplates(node);
      const whole = wholeTemplate(node, matches) !== undefined;
      for (const { expression } of matches) {
        refs.push({
          location: at,
          expression,
          path: expression.split("."),
          whole,
          valid: EXPRESSION.test(expression),
        });
      }
    } else if (Array.isArray(node)) {
      for (let i = node.length - 1; i >= 0; i--) stack.push([node[i], [...at, i]]);
    } else if (node && typeof node === "object") {
      const entries = Object.entries(node);
      for (let i = entries.length - 1; i >= 0; i--) {
        stack.push([entries[i][1], [...at, entries[i][0]]]);
      }
    }
  }
  return refs;
}

/** An expression as shown in an error: a hostile one may be megabytes long. */
const shown = (expression: string) =>
  expression.length > 100 ? `{{${expression.slice(0, 100)}…}}` : `{{${expression}}}`;

function lookup(expression: string, state: Record<string, unknown>): unknown {
  if (!EXPRESSION.test(expression)) {
    throw new TemplateError(`${shown(expression)} is not a valid reference`);
  }
  const path = expression.split(".");
  if (!Object.hasOwn(state, path[0])) {
    throw new TemplateError(`${shown(expression)}: nothing is named "${path[0]}"`);
  }
  const { found, value } = getPath(state, path);
  if (!found) {
    throw new TemplateError(
      `${shown(expression)}: ${path.slice(0, -1).join(".")} has no "${path.at(-1)}"`,
    );
  }
  return value;
}

/**
 * The bytes one run may interpolate, all templates together: a step that interpolates the
 * previous result twice doubles it, and 19 such steps grow 1 KiB to 256 MiB.
 */
export class RenderBudget {
  #used = 0;
  constructor(readonly maxBytes: number) {}

  /** Counts `text` (before it is concatenated); throws once the run has spent its budget. */
  spend(text: string): void {
    // UTF-8 takes at least one byte per UTF-16 unit, so a long text fails before being measured.
    const left = this.maxBytes - this.#used;
    this.#used += text.length > left ? Infinity : utf8Length(text);
    if (this.#used > this.maxBytes) {
      throw new TemplateError(
        `templates rendered more than ${this.maxBytes} bytes in this run (PATTERN_MAX_RENDER_BYTES)`,
      );
    }
  }
}

function interpolate(value: unknown): string {
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value);
  } catch {
    throw new TemplateError("a value interpolated into text is too deep to write as JSON");
  }
}

/**
 * Replaces every template in `value` with what it names in `state`. Interpolated text counts
 * against `budget` (unbounded without one).
 */
export function render(
  value: unknown,
  state: Record<string, unknown>,
  budget = new RenderBudget(Infinity),
  depth = 0,
): unknown {
  if (depth > MAX_TEMPLATE_DEPTH) {
    throw new TemplateError(`templated values may nest at most ${MAX_TEMPLATE_DEPTH} levels`);
  }
  if (typeof value === "string") {
    if (!value.includes("{{")) return value;
    const matches = scanTemplates(value);
    const whole = wholeTemplate(value, matches);
    if (whole) return lookup(whole.expression, state);
    let text = "";
    let from = 0;
    for (const m of matches) {
      const piece = interpolate(lookup(m.expression, state));
      budget.spend(value.slice(from, m.start));
      budget.spend(piece);
      text += value.slice(from, m.start) + piece;
      from = m.end;
    }
    budget.spend(value.slice(from));
    return text + value.slice(from);
  }
  if (Array.isArray(value)) return value.map((v) => render(v, state, budget, depth + 1));
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, render(v, state, budget, depth + 1)]),
    );
  }
  return value;
}
