/**
 * Building blocks of the schema-driven fuzz test (tests/fuzz_test.ts): fast-check arbitraries for
 * values valid under an OpenAPI 3.1 (JSON Schema) schema, hostile values, and the mutations that
 * turn a valid body into an invalid one.
 */
import fc from "fast-check";

// deno-lint-ignore no-explicit-any
export type Schema = any;
// deno-lint-ignore no-explicit-any
export type OpenApiDoc = any;

/** A hint replaces the schema's own arbitrary for a property name (URLs, known ids, ...). */
export type Hint = (key: string | undefined, schema: Schema) => fc.Arbitrary<unknown> | undefined;

export function resolveRef(doc: OpenApiDoc, schema: Schema): Schema {
  let s = schema;
  for (let i = 0; s && typeof s === "object" && typeof s.$ref === "string" && i < 20; i++) {
    const parts = s.$ref.replace(/^#\//, "").split("/");
    s = parts.reduce((node: Schema, part: string) => node?.[part], doc);
  }
  return s ?? {};
}

/** Values the schema accepts (formats and patterns included), a few levels deep at most. */
export function validValue(
  doc: OpenApiDoc,
  schema: Schema,
  hint: Hint,
  key?: string,
  depth = 0,
): fc.Arbitrary<unknown> {
  const s = resolveRef(doc, schema);
  const hinted = hint(key, s);
  if (hinted) return hinted;
  if (depth > 6) return fc.constant(null);
  if (Array.isArray(s.enum)) return fc.constantFrom(...s.enum);
  if ("const" in s) return fc.constant(s.const);
  const alternatives = s.anyOf ?? s.oneOf;
  if (Array.isArray(alternatives)) {
    return fc.oneof(...alternatives.map((a: Schema) => validValue(doc, a, hint, key, depth + 1)));
  }
  if (Array.isArray(s.type)) {
    return fc.oneof(
      ...s.type.map((t: string) => validValue(doc, { ...s, type: t }, hint, key, depth)),
    );
  }
  switch (s.type) {
    case "string":
      return validString(s);
    case "integer": {
      const min = s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + 1 : s.minimum ?? -1e6;
      const max = s.exclusiveMaximum !== undefined ? s.exclusiveMaximum - 1 : s.maximum ?? 1e6;
      return fc.integer({ min: Math.ceil(min), max: Math.floor(max) });
    }
    case "number":
      return fc.double({
        min: s.minimum ?? -1e6,
        max: s.maximum ?? 1e6,
        noNaN: true,
        noDefaultInfinity: true,
      });
    case "boolean":
      return fc.boolean();
    case "null":
      return fc.constant(null);
    case "array":
      return fc.array(validValue(doc, s.items ?? {}, hint, undefined, depth + 1), {
        minLength: s.minItems ?? 0,
        maxLength: Math.max(s.minItems ?? 0, Math.min(s.maxItems ?? 4, 4)),
      });
    case "object":
      return validObject(doc, s, hint, depth);
  }
  if (s.properties) return validObject(doc, s, hint, depth);
  // `{}`: any JSON value.
  return fc.jsonValue({ maxDepth: 2 });
}

function validObject(doc: OpenApiDoc, s: Schema, hint: Hint, depth: number) {
  const props: Record<string, Schema> = s.properties ?? {};
  const names = Object.keys(props);
  if (names.length === 0) {
    const extra = s.additionalProperties;
    if (extra === false) return fc.constant({});
    const value = validValue(
      doc,
      extra === true || !extra ? {} : extra,
      hint,
      undefined,
      depth + 1,
    );
    return fc.dictionary(fc.stringMatching(/^[a-z_]{1,12}$/), value, { maxKeys: 3 });
  }
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const name of names) model[name] = validValue(doc, props[name], hint, name, depth + 1);
  return fc.record(model, { requiredKeys: s.required ?? [] });
}

function validString(s: Schema): fc.Arbitrary<string> {
  const min = s.minLength ?? 0;
  const max = Math.max(min, Math.min(s.maxLength ?? 40, 40));
  const fits = (v: string) => v.length >= min && v.length <= (s.maxLength ?? Infinity);
  switch (s.format) {
    case "uuid":
      return fc.uuid({ version: 4 });
    case "email":
      return fc.stringMatching(/^[a-z][a-z0-9.]{0,20}@[a-z]{1,12}\.example$/).filter(fits);
    case "date-time":
      return fc.date({
        min: new Date("2000-01-01"),
        max: new Date("2100-01-01"),
        noInvalidDate: true,
      })
        .map((d) => d.toISOString());
    case "uri":
      return fc.constantFrom("https://example.invalid/hook", "http://127.0.0.1:9/");
  }
  if (typeof s.pattern === "string") {
    return fc.stringMatching(new RegExp(s.pattern)).filter(fits);
  }
  return fc.string({
    minLength: Math.max(min, 1) > max ? max : min,
    maxLength: max,
    unit: "grapheme",
  })
    .filter(fits);
}

// ---- hostile values ----------------------------------------------------------------------

/**
 * A value JSON.stringify cannot write (1e400, 5,000 levels of nesting, ...) travels as a marker
 * string that `serialize` replaces with the raw text.
 */
const RAW = "\u0001raw:";
const rawTexts: string[] = [];
export function raw(text: string): string {
  rawTexts.push(text);
  return `${RAW}${rawTexts.length - 1}`;
}

/** JSON text of a value, with `raw` markers replaced by their text. */
export function serialize(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) return "";
  if (!text.includes("\\u0001raw:")) return text;
  return text.replace(/"\\u0001raw:(\d+)"/g, (_, i) => rawTexts[Number(i)]);
}

export const deepArray = (levels: number) => "[".repeat(levels) + "]".repeat(levels);
export const deepObject = (levels: number) => '{"a":'.repeat(levels) + "1" + "}".repeat(levels);

const HUGE = "a".repeat(200_000);
const HUGER = "é".repeat(300_000); // 600 KB of UTF-8
const OVER_LIMIT = "x".repeat(1_100_000); // the body is over 1 MiB

export type BadKind =
  | "wrong-type"
  | "out-of-range"
  | "huge-string"
  | "deep-json"
  | "unicode";

export const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) =>
  String.fromCharCode(c)
);

/** Strings with NUL characters, lone surrogates and other characters storage may refuse. */
export const nastyString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    "\u0000",
    "a\u0000b",
    "\ud800",
    "\udfff",
    "x\ud83dy",
    "\ude00\ud83d",
    "\ud83d\ude00",
    "\uFEFF",
    "\u202Eevil",
    "\u200B",
    "e\u0301",
    "%00",
    "\\u0000",
    "' or 1=1 --",
    "'; drop table users; --",
    "{{inputs.url}}",
    "{{__proto__.polluted}}",
    "../../../../etc/passwd",
    "\r\n\r\nX-Injected: 1",
    "\uFFFF\uFFFE",
    "\u{10FFFF}",
  ),
  fc.tuple(fc.string({ maxLength: 8 }), loneSurrogate, fc.string({ maxLength: 8 }))
    .map(([a, s, b]) => a + s + b),
  fc.string({ unit: "binary", maxLength: 30 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)) }),
);

export function badValue(kind: BadKind): fc.Arbitrary<unknown> {
  switch (kind) {
    case "wrong-type":
      return fc.constantFrom<unknown>(
        null,
        true,
        false,
        0,
        -1,
        "",
        "x",
        "1",
        "true",
        [],
        [1, 2],
        {},
        { a: 1 },
        [null],
        { "": null },
        { "__proto__": { polluted: true } },
        { constructor: { prototype: { polluted: true } } },
      );
    case "out-of-range":
      return fc.oneof(
        fc.constantFrom<unknown>(
          -1,
          0,
          1.5,
          -0.0001,
          1e308,
          -1e308,
          2 ** 31,
          -(2 ** 31) - 1,
          2 ** 53 + 2,
          Number.MAX_SAFE_INTEGER,
          Number.MIN_SAFE_INTEGER,
          5e-324,
          raw("1e400"),
          raw("-1e400"),
          raw("123456789012345678901234567890"),
          raw("-0"),
          raw("1E+2"),
        ),
        fc.integer(),
        fc.double(),
      );
    case "huge-string":
      return fc.constantFrom(HUGE, HUGER, OVER_LIMIT, "a".repeat(201), "b".repeat(2001));
    case "deep-json":
      return fc.constantFrom(
        raw(deepArray(5000)),
        raw(deepObject(5000)),
        raw(deepArray(33)),
        raw(deepObject(31)),
        raw(`[${"0,".repeat(50_000)}0]`),
        raw(`{${Array.from({ length: 5000 }, (_, i) => `"k${i}":${i}`).join(",")}}`),
      );
    case "unicode":
      return fc.oneof(
        nastyString,
        nastyString.map((s) => ({ [s]: 1 })),
        nastyString.map((s) => [s]),
      );
  }
}

// ---- mutations of valid bodies -----------------------------------------------------------

type Path = (string | number)[];

function nodes(value: unknown, path: Path = [], out: Path[] = [], depth = 0): Path[] {
  out.push(path);
  if (depth > 8 || value === null || typeof value !== "object") return out;
  for (const [k, v] of Object.entries(value)) {
    nodes(v, [...path, Array.isArray(value) ? Number(k) : k], out, depth + 1);
  }
  return out;
}

function objectPaths(value: unknown): Path[] {
  return nodes(value).filter((p) => {
    const v = get(value, p);
    return v !== null && typeof v === "object" && !Array.isArray(v);
  });
}

function get(value: unknown, path: Path): unknown {
  // deno-lint-ignore no-explicit-any
  return path.reduce((v: any, k) => v?.[k], value);
}

function clone<T>(value: T): T {
  return value === undefined ? value : JSON.parse(JSON.stringify(value));
}

/** An own property, even `__proto__`, as JSON.parse would make it. */
function setOwn(target: object, key: string | number, value: unknown): object {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
  return target;
}

/** The value with the node at (pick mod number of nodes) replaced. */
export function replaceNode(value: unknown, pick: number, replacement: unknown): unknown {
  const all = nodes(value);
  const path = all[pick % all.length];
  if (path.length === 0) return replacement;
  const copy = clone(value);
  // deno-lint-ignore no-explicit-any
  const parent: any = get(copy, path.slice(0, -1));
  setOwn(parent, path[path.length - 1], replacement);
  return copy;
}

/** The value without one key of one of its objects (if it has any). */
export function dropKey(value: unknown, pick: number): unknown {
  const candidates = objectPaths(value).flatMap((p) =>
    Object.keys(get(value, p) as object).map((k) => [...p, k])
  );
  if (candidates.length === 0) return value;
  const path = candidates[pick % candidates.length];
  const copy = clone(value);
  // deno-lint-ignore no-explicit-any
  const parent: any = get(copy, path.slice(0, -1));
  delete parent[path[path.length - 1]];
  return copy;
}

/** The value with an extra key in one of its objects. */
export function addKey(value: unknown, pick: number, key: string, extra: unknown): unknown {
  const candidates = objectPaths(value);
  if (candidates.length === 0) return setOwn({}, key, extra);
  const path = candidates[pick % candidates.length];
  const copy = clone(value);
  // deno-lint-ignore no-explicit-any
  const target: any = path.length === 0 ? copy : get(copy, path);
  setOwn(target, key, extra);
  return copy;
}

/** Percent-encodes any string, lone surrogates included (as their WTF-8 bytes). */
export function encodeAny(text: string): string {
  let out = "";
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (code >= 0xd800 && code <= 0xdfff) {
      out += [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)]
        .map((b) => `%${b.toString(16).toUpperCase()}`).join("");
    } else {
      out += encodeURIComponent(ch);
    }
  }
  return out;
}

export const b64url = (text: string) =>
  btoa(text).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");

/** JSON text in ASCII only (anything else \u-escaped, lone surrogates included). */
export function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u0080-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** Paths to every string in the value, and to every key of its objects. */
export function stringsAndKeys(value: unknown): { strings: Path[]; keys: Path[] } {
  const all = nodes(value);
  return {
    strings: all.filter((p) => typeof get(value, p) === "string"),
    keys: all.filter((p) => p.length > 0 && typeof p[p.length - 1] === "string"),
  };
}

/** The value with the node at `path` replaced. */
export function setAt(value: unknown, path: Path, replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const copy = clone(value);
  // deno-lint-ignore no-explicit-any
  const parent: any = get(copy, path.slice(0, -1));
  setOwn(parent, path[path.length - 1], replacement);
  return copy;
}

/** The value with the key at the end of `path` renamed (its value kept). */
export function renameKey(value: unknown, path: Path, key: string): unknown {
  const copy = clone(value);
  // deno-lint-ignore no-explicit-any
  const parent: any = get(copy, path.slice(0, -1));
  const old = path[path.length - 1];
  const kept = parent[old];
  delete parent[old];
  setOwn(parent, key, kept);
  return copy;
}
