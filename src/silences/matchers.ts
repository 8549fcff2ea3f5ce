/**
 * Silence matchers, like Alertmanager's: `{name, op, value}` with op `=`, `!=`, `=~` or `!~`.
 * A silence matches an alert when every one of its matchers does. The name `alert_id` matches
 * the alert's id; any other name matches the alert's label of that name, a missing label being
 * the empty string (as in Alertmanager). Regular expressions are anchored (`^(?:re)$`).
 *
 * JavaScript's regular expressions backtrack (Alertmanager's RE2 does not), so a regex is
 * accepted only if it cannot backtrack for long on a label value: `safe-regex2` (no repetition
 * inside a repetition, at most 25 repetitions), and on top of it the two shapes it does not see,
 * checked on the same parse (`ret`, its parser): an alternation or optional part repeated
 * (`(a|a)*`), and too many variable repetitions in a row (`.*.*.*x`, `a{0,99}a{0,99}a{0,99}`),
 * bounded by a budget of backtracking paths.
 */
import { z } from "@hono/zod-openapi";
import * as ret from "ret";
import safeRegex from "safe-regex2";

type Token = ret.Token;
const { types } = ret;
// ret is CommonJS whose module.exports is the tokenizer itself: its named export is undefined.
const tokenize = ret.default as unknown as typeof ret.tokenizer;

export const MATCHER_OPS = ["=", "!=", "=~", "!~"] as const;
export type MatcherOp = (typeof MATCHER_OPS)[number];

export interface Matcher {
  name: string;
  op: MatcherOp;
  value: string;
}

/** The matcher name that matches the alert's id rather than a label. */
export const ALERT_ID = "alert_id";
export const MAX_MATCHERS = 20;
export const MAX_NAME_LENGTH = 100;
export const MAX_VALUE_LENGTH = 256;
const NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What an alert offers to matchers. */
export interface MatchTarget {
  id: string;
  labels: Record<string, string>;
}

export const isRegexOp = (op: MatcherOp): op is "=~" | "!~" => op === "=~" || op === "!~";

// ---- evaluation ------------------------------------------------------------------------------

const MAX_COMPILED = 1000;
const compiled = new Map<string, RegExp | null>();

/** The anchored regex of `source` (cached), or null if it does not compile. */
function regex(source: string): RegExp | null {
  let re = compiled.get(source);
  if (re === undefined) {
    try {
      re = new RegExp(`^(?:${source})$`, "u");
    } catch {
      re = null;
    }
    if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value!);
    compiled.set(source, re);
  }
  return re;
}

/** Whether one matcher accepts `actual` (the label value, or the alert id). */
export function matcherAccepts(matcher: Matcher, actual: string): boolean {
  switch (matcher.op) {
    case "=":
      return actual === matcher.value;
    case "!=":
      return actual !== matcher.value;
    case "=~":
    case "!~": {
      // Stored matchers were checked on creation; one that does not compile matches nothing.
      const re = regex(matcher.value);
      if (re === null) return false;
      return re.test(actual) === (matcher.op === "=~");
    }
  }
}

/** The value a matcher looks at: the id for `alert_id`, else the label ("" when missing). */
export function matchedValue(name: string, alert: MatchTarget): string {
  if (name === ALERT_ID) return alert.id;
  return Object.hasOwn(alert.labels, name) ? alert.labels[name] : "";
}

/** True when every matcher matches the alert (so an empty list matches everything). */
export function silenceMatches(matchers: readonly Matcher[], alert: MatchTarget): boolean {
  return matchers.every((m) => matcherAccepts(m, matchedValue(m.name, alert)));
}

/** The first of `silences` whose matchers match the alert, if any. */
export function matchingSilence<S extends { matchers: readonly Matcher[] }>(
  silences: readonly S[],
  alert: MatchTarget,
): S | undefined {
  return silences.find((s) => silenceMatches(s.matchers, alert));
}

// ---- regex safety ----------------------------------------------------------------------------

/**
 * The input length a variable repetition is costed at (`*`, `+`, `{n,}`), and the budget of
 * backtracking paths: two unbounded repetitions in a row (`.*foo.*`) fit, three do not.
 */
const ASSUMED_INPUT = 256;
const PATH_BUDGET = (ASSUMED_INPUT + 1) ** 2;

class Unsafe extends Error {}

/** How many ways a backtracking matcher may try to match `tokens` in sequence (a bound). */
function sequencePaths(tokens: readonly Token[]): number {
  let paths = 1;
  for (const token of tokens) paths = Math.min(paths * tokenPaths(token), Number.MAX_SAFE_INTEGER);
  return paths;
}

function groupPaths(group: { stack?: Token[]; options?: Token[][] }): number {
  if (group.options) return group.options.reduce((sum, seq) => sum + sequencePaths(seq), 0);
  return sequencePaths(group.stack ?? []);
}

function tokenPaths(token: Token): number {
  switch (token.type) {
    case types.GROUP:
      return groupPaths(token);
    case types.REFERENCE:
      throw new Unsafe("uses a back-reference, which silences do not support");
    case types.REPETITION: {
      const inner = tokenPaths(token.value);
      if (token.max > 1 && inner > 1) {
        throw new Unsafe(
          "repeats a part that can match in several ways (such as (a|b)* or (ab?)+), which " +
            "can backtrack for a very long time; use a character class such as [ab]*",
        );
      }
      if (token.max <= 1) return (token.min === 0 ? 1 : 0) + (token.max === 1 ? inner : 0);
      const max = Number.isFinite(token.max) ? token.max : token.min + ASSUMED_INPUT;
      return max - token.min + 1;
    }
    default:
      return 1;
  }
}

/**
 * Why `source` cannot be a silence's regular expression, or undefined if it can: it must compile
 * (as a Unicode regex), and it must not be able to backtrack catastrophically.
 */
export function regexProblem(source: string): string | undefined {
  if (source.length > MAX_VALUE_LENGTH) return `must be at most ${MAX_VALUE_LENGTH} characters`;
  try {
    new RegExp(`^(?:${source})$`, "u");
  } catch (error) {
    return `is not a valid regular expression (${(error as Error).message})`;
  }
  let root;
  try {
    root = tokenize(source);
  } catch {
    return "is a regular expression silences do not support";
  }
  if (!safeRegex(source)) {
    return "may backtrack catastrophically (a repetition inside a repetition, or more than " +
      "25 repetitions)";
  }
  try {
    if (groupPaths(root) > PATH_BUDGET) {
      return "has too many variable repetitions in a row (such as .*a.*b.*), which can " +
        "backtrack for a very long time; split it into several matchers on the same label";
    }
  } catch (error) {
    if (error instanceof Unsafe) return error.message;
    throw error;
  }
  return undefined;
}

/**
 * Whether a matcher matches the empty string, that is, alerts without its label. A silence needs
 * at least one matcher that does not (Alertmanager's rule): one that matches every alert
 * (`=~ ".*"`, `!= "x"`, `= ""`) would silence everything its owner has.
 */
export const matchesEmpty = (matcher: Matcher): boolean => matcherAccepts(matcher, "");

// ---- schema ----------------------------------------------------------------------------------

export const MatcherSchema = z.object({
  name: z.string().min(1, "must not be empty").max(MAX_NAME_LENGTH).regex(
    NAME,
    "must be a label name: a letter or _, then letters, digits or _",
  ).openapi({
    description: `A label name, or \`${ALERT_ID}\` for the alert's id`,
    example: "service",
  }),
  op: z.enum(MATCHER_OPS).openapi({
    description: "`=` equal, `!=` not equal, `=~` matches the regex, `!~` does not",
  }),
  value: z.string().max(MAX_VALUE_LENGTH).openapi({
    description: "A value, or for `=~` and `!~` a regular expression matched in full " +
      "(anchored); a missing label is the empty string",
    example: "checkout",
  }),
}).strict().check(z.superRefine((m, ctx) => {
  if (isRegexOp(m.op)) {
    const problem = regexProblem(m.value);
    if (problem) ctx.addIssue({ code: "custom", path: ["value"], message: problem });
  } else if (m.name === ALERT_ID && !UUID.test(m.value)) {
    ctx.addIssue({ code: "custom", path: ["value"], message: "must be an alert id (a UUID)" });
  }
  // Runs whatever else is wrong, so that a 422 lists every problem at once.
}, {
  when: ({ value }) => {
    const m = value as Partial<Record<keyof Matcher, unknown>> | null;
    return typeof m === "object" && m !== null && typeof m.value === "string" &&
      m.value.length <= MAX_VALUE_LENGTH && typeof m.name === "string" &&
      MATCHER_OPS.includes(m.op as MatcherOp);
  },
})).openapi("SilenceMatcher");

export const MatchersSchema = z.array(MatcherSchema)
  .min(1, "a silence needs at least one matcher")
  .max(MAX_MATCHERS, `a silence has at most ${MAX_MATCHERS} matchers`)
  .check(z.superRefine((matchers, ctx) => {
    // Only once every matcher is well-formed: otherwise the rule cannot be judged.
    const parsed = matchers.map((m) => MatcherSchema.safeParse(m));
    if (parsed.some((p) => !p.success)) return;
    if (parsed.every((p) => matchesEmpty(p.data!))) {
      ctx.addIssue({
        code: "custom",
        path: [],
        message: "at least one matcher must not match the empty string (a silence cannot " +
          "match every alert)",
      });
    }
  }, { when: ({ value }) => Array.isArray(value) && value.length > 0 }));
