import fc from "fast-check";
import { assert, assertEquals } from "../../tests/support/assert.ts";
import {
  ALERT_ID,
  type Matcher,
  matcherAccepts,
  MatcherSchema,
  MatchersSchema,
  matchesEmpty,
  matchingSilence,
  regexProblem,
  silenceMatches,
} from "./matchers.ts";

// Runs: VIGIL_PROPERTY_RUNS (default 200); replay a failure with VIGIL_PROPERTY_SEED (fast-check
// prints the seed and the path of the failing case).
const runs = Number(Deno.env.get("VIGIL_PROPERTY_RUNS") ?? 200);
const seed = Deno.env.get("VIGIL_PROPERTY_SEED");
const property = { numRuns: runs, ...(seed ? { seed: Number(seed) } : {}) };

const ID_A = "11111111-1111-4111-8111-111111111111";
const ID_B = "22222222-2222-4222-8222-222222222222";
const alert = (labels: Record<string, string>, id = ID_A) => ({ id, labels });
const m = (name: string, op: Matcher["op"], value: string): Matcher => ({ name, op, value });

Deno.test("matchers: the four operators on labels, a missing label is the empty string", () => {
  const a = alert({ service: "checkout", env: "prod" });
  assert(silenceMatches([m("service", "=", "checkout")], a));
  assert(!silenceMatches([m("service", "=", "check")], a));
  assert(silenceMatches([m("service", "!=", "search")], a));
  assert(!silenceMatches([m("service", "!=", "checkout")], a));
  assert(silenceMatches([m("service", "=~", "check.*")], a));
  assert(silenceMatches([m("env", "=~", "prod|staging")], a));
  assert(!silenceMatches([m("service", "!~", "check.*")], a));
  assert(silenceMatches([m("service", "!~", "search|cart")], a));
  // missing label: "" — `= ""` and `!~ ".+"` match it, `!= ""` does not
  assert(silenceMatches([m("team", "=", "")], a));
  assert(silenceMatches([m("team", "!~", ".+")], a));
  assert(!silenceMatches([m("team", "!=", "")], a));
  assert(!silenceMatches([m("team", "=~", "web")], a));
  // not a label: inherited properties of objects are no labels
  assert(silenceMatches([m("constructor", "=", "")], a));
  assert(silenceMatches([m("__proto__", "=", "")], a));
});

Deno.test("matchers: regexes are anchored (a full match, like Alertmanager)", () => {
  const a = alert({ service: "checkout-eu" });
  assert(!silenceMatches([m("service", "=~", "checkout")], a));
  assert(!silenceMatches([m("service", "=~", "eu")], a));
  assert(silenceMatches([m("service", "=~", "checkout-eu")], a));
  assert(silenceMatches([m("service", "=~", "checkout|checkout-eu")], a), "alternation inside");
  assert(silenceMatches([m("service", "!~", "checkout")], a));
  assert(silenceMatches([m("service", "=~", "\\w+-(eu|us)")], a));
});

Deno.test("matchers: all must match; alert_id matches the alert's id, not a label", () => {
  const a = alert({ service: "checkout", alert_id: ID_B });
  assert(silenceMatches([m(ALERT_ID, "=", ID_A), m("service", "=", "checkout")], a));
  assert(!silenceMatches([m(ALERT_ID, "=", ID_A), m("service", "=", "search")], a));
  assert(!silenceMatches([m(ALERT_ID, "=", ID_B)], a), "the label alert_id is not the id");
  assert(silenceMatches([m(ALERT_ID, "!=", ID_B)], a));
  assert(silenceMatches([m(ALERT_ID, "=~", "1111.*")], a));
  assert(silenceMatches([], a), "no matchers: vacuously true (the API refuses an empty list)");
  const silences = [
    { id: "s1", matchers: [m("service", "=", "search")] },
    { id: "s2", matchers: [m("service", "=~", "check.*")] },
    { id: "s3", matchers: [m("service", "=", "checkout")] },
  ];
  assertEquals(matchingSilence(silences, a)?.id, "s2");
  assertEquals(matchingSilence(silences.slice(0, 1), a), undefined);
});

Deno.test("matchers: regex safety — refused with a reason, accepted ones compile", () => {
  const refused: [string, RegExp][] = [
    ["(a+)+", /backtrack catastrophically/],
    ["(\\w+\\s?)+$", /backtrack catastrophically/],
    ["(?:a{0,10}){0,10}x", /backtrack catastrophically/],
    ["(a|a)*", /several ways/],
    ["(a|aa)+b", /several ways/],
    ["(ab?)+", /catastrophically|several ways/],
    [".*.*.*x", /too many variable repetitions/],
    [".*a.*b.*c", /too many variable repetitions/],
    ["a{0,100}a{0,100}a{0,100}a{0,100}x", /too many variable repetitions/],
    ["a?".repeat(17) + "a".repeat(17), /too many variable repetitions/],
    ["(a)\\1", /back-reference/],
    ["[", /not a valid regular expression/],
    ["a{2,1}", /not a valid regular expression/],
    ["(", /not a valid regular expression/],
    ["x".repeat(257), /at most 256/],
  ];
  for (const [source, reason] of refused) {
    const problem = regexProblem(source);
    assert(problem !== undefined, `${source} is refused`);
    assert(reason.test(problem), `${source}: ${problem}`);
  }
  const accepted = [
    "",
    ".*",
    ".+",
    "prod|staging",
    "db-[0-9]+",
    ".*foo.*",
    "(web|api)-.*",
    "(?:foo|bar)?baz",
    "(?<tier>web)-\\d{1,3}",
    "\\p{L}+",
    "[a-z\\-]+",
    "\\d*\\d*",
    "(ab)*",
    "x{3}",
    "a?".repeat(16),
  ];
  for (const source of accepted) assertEquals(regexProblem(source), undefined, source);
});

Deno.test("matchers: schema — every problem listed, and one matcher must not match ''", () => {
  const bad = MatchersSchema.safeParse([
    { name: "1bad", op: "==", value: "x" },
    { name: "service", op: "=~", value: "(a+)+" },
    { name: ALERT_ID, op: "=", value: "not-a-uuid" },
    { name: "n".repeat(101), op: "=", value: "v".repeat(257) },
    { name: "service", op: "=", value: "x", extra: true },
  ]);
  assert(!bad.success);
  const paths = bad.error.issues.map((i) => i.path.join("."));
  for (const p of ["0.name", "0.op", "1.value", "2.value", "3.name", "3.value", "4"]) {
    assert(paths.includes(p), `${p} in ${paths.join(", ")}`);
  }
  assertEquals(MatchersSchema.safeParse([]).success, false);
  assertEquals(
    MatchersSchema.safeParse(Array.from({ length: 21 }, () => m("a", "=", "b"))).success,
    false,
  );
  for (const broad of [[m("a", "=~", ".*")], [m("a", "!=", "x"), m("b", "=", "")]]) {
    const r = MatchersSchema.safeParse(broad);
    assert(!r.success);
    assert(/must not match the empty string/.test(r.error.issues[0].message));
  }
  assert(MatchersSchema.safeParse([m("a", "=~", ".*"), m("b", "=", "x")]).success);
  assert(MatchersSchema.safeParse([m(ALERT_ID, "=", ID_A)]).success);
  assert(MatcherSchema.safeParse(m("a", "=~", ".*")).success);
});

// ---- properties ------------------------------------------------------------------------------

/** Regex syntax characters, escaped with a backslash (the escapes Unicode mode allows). */
const SYNTAX = /[.*+?^${}()|[\]\\/]/g;
const nameArb = fc.constantFrom("service", "env", "team", "region", "instance", ALERT_ID);
const valueArb = fc.oneof(
  fc.constantFrom("", "checkout", "prod", "web-1", ID_A, ID_B),
  fc.string({ maxLength: 12 }),
);
const labelsArb = fc.dictionary(
  fc.constantFrom("service", "env", "team", "region", "alert_id"),
  valueArb,
  { maxKeys: 5 },
);
const alertArb = fc.record({ id: fc.constantFrom(ID_A, ID_B), labels: labelsArb });
/** Regexes built from safe pieces, so that generated matchers are ones the API accepts. */
const regexArb = fc.array(
  fc.oneof(
    valueArb.map((v) => v.replace(SYNTAX, "\\$&")),
    fc.constantFrom(".*", "[a-z]+", "\\d", "(?:prod|staging)", "web-[0-9]{1,3}", "x?"),
  ),
  { maxLength: 2 },
).map((parts) => parts.join("")).filter((re) => regexProblem(re) === undefined);
const matcherArb: fc.Arbitrary<Matcher> = fc.oneof(
  fc.record({ name: nameArb, op: fc.constantFrom("=" as const, "!=" as const), value: valueArb }),
  fc.record({ name: nameArb, op: fc.constantFrom("=~" as const, "!~" as const), value: regexArb }),
);
const negate = (op: Matcher["op"]): Matcher["op"] =>
  ({ "=": "!=", "!=": "=", "=~": "!~", "!~": "=~" } as const)[op];

Deno.test("matchers: property — = / != and =~ / !~ are complements", () => {
  fc.assert(
    fc.property(matcherArb, alertArb, (matcher, a) => {
      const opposite = { ...matcher, op: negate(matcher.op) };
      assertEquals(silenceMatches([matcher], a), !silenceMatches([opposite], a));
    }),
    property,
  );
});

Deno.test("matchers: property — a list matches iff every matcher does, in any order", () => {
  fc.assert(
    fc.property(
      fc.array(matcherArb, { maxLength: 6 }),
      alertArb,
      fc.infiniteStream(fc.nat()),
      (matchers, a, shuffle) => {
        const each = matchers.every((x) => silenceMatches([x], a));
        assertEquals(silenceMatches(matchers, a), each);
        const keys = matchers.map(() => shuffle.next().value);
        const shuffled = matchers.map((x, i) => [keys[i], x] as const)
          .sort((p, q) => p[0] - q[0]).map(([, x]) => x);
        assertEquals(silenceMatches(shuffled, a), each);
      },
    ),
    property,
  );
});

Deno.test("matchers: property — alert_id = X matches only the alert X, whatever the labels", () => {
  fc.assert(
    fc.property(alertArb, labelsArb, (a, otherLabels) => {
      const other = { id: a.id === ID_A ? ID_B : ID_A, labels: otherLabels };
      assert(silenceMatches([m(ALERT_ID, "=", a.id)], a));
      assert(!silenceMatches([m(ALERT_ID, "=", a.id)], other));
    }),
    property,
  );
});

Deno.test("matchers: property — a missing label behaves as the empty string; escaped =~ is =", () => {
  fc.assert(
    fc.property(matcherArb, alertArb, valueArb, (matcher, a, v) => {
      if (matcher.name !== ALERT_ID) {
        const { [matcher.name]: _, ...without } = a.labels;
        assertEquals(
          silenceMatches([matcher], { ...a, labels: without }),
          silenceMatches([matcher], { ...a, labels: { ...without, [matcher.name]: "" } }),
        );
        assertEquals(matchesEmpty(matcher), silenceMatches([matcher], { ...a, labels: without }));
      }
      const escaped = v.replace(SYNTAX, "\\$&");
      assertEquals(regexProblem(escaped), undefined, `a literal is a safe regex: ${escaped}`);
      for (const actual of [v, `${v}x`, `x${v}`, ""]) {
        assertEquals(
          matcherAccepts(m("n", "=~", escaped), actual),
          matcherAccepts(m("n", "=", v), actual),
        );
      }
    }),
    property,
  );
});

/** Source text drawn from regex syntax, valid or not. */
const regexTextArb = fc.array(
  fc.constantFrom(
    "a",
    "b",
    ".",
    "*",
    "+",
    "?",
    "|",
    "(",
    ")",
    "(?:",
    "[ab]",
    "{0,9}",
    "{2,}",
    "\\d",
    "\\1",
    "^",
    "$",
  ),
  { maxLength: 14 },
).map((parts) => parts.join(""));

Deno.test("matchers: property — regexProblem never throws, and what it accepts runs fast", () => {
  fc.assert(
    fc.property(regexTextArb, (source) => {
      const problem = regexProblem(source);
      if (problem !== undefined) return;
      // Adversarial inputs: long runs of the characters the regex is made of, then a misfit.
      for (
        const input of [
          "a".repeat(256),
          "ab".repeat(128),
          "1".repeat(255) + "!",
          "a".repeat(255) + "!",
        ]
      ) {
        const started = performance.now();
        matcherAccepts(m("n", "=~", source), input);
        const ms = performance.now() - started;
        assert(ms < 250, `${source} on ${input.slice(0, 10)}… took ${ms.toFixed(0)} ms`);
      }
    }),
    property,
  );
});
