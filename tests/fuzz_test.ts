/**
 * Issue 15: a schema-driven fuzz test of the whole API. It reads `/openapi.json` and, for every
 * operation, sends requests generated with fast-check from the operation's schemas — valid ones
 * and broken ones (missing and extra fields, wrong types, numbers out of range, huge strings,
 * JSON nested 5,000 deep, NUL characters and lone surrogates, bad path and query parameters,
 * forged cursors, wrong content types, malformed JSON, bad credentials and headers, wrong
 * methods) — in-process (`app.request`), as the admin and as two users A and B, with A's
 * resources substituted into B's paths. Then every string and every key of two valid bodies per
 * operation once more with a NUL character and with a lone surrogate.
 *
 * Failures are collected and asserted once at the end, one line per distinct failure (rule,
 * method, path template, status, input kind, answer, and for a 5xx the logged error):
 * - no 5xx at all;
 * - every 4xx is `application/problem+json` with `type`, `title` and `status` (= the HTTP status);
 * - `/health/live` and `/health/ready` still answer 200;
 * - B never reads or changes A's alert, run, API key, notification or deliveries (403/404, never
 *   a 2xx in the fuzz), and A's alert, run and key are, after the fuzz, what A last made them.
 *
 * `FUZZ_RUNS` (default 3,000 generated requests, plus the per-field and fixed checks),
 * `FUZZ_SEED` (printed) replays a run, `FUZZ_VERBOSE=1` prints the statuses per operation and kind.
 */
import fc from "fast-check";
import { isDeepStrictEqual } from "node:util";
import { encodeCursor } from "../src/http/pagination.ts";
import { rootLogger } from "../src/observability/logger.ts";
import { loadExamplePatterns } from "../src/patterns/examples.ts";
import { type Json, testApp } from "./support/app.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { dbTest } from "./support/database.ts";
import {
  addKey,
  asciiJson,
  b64url,
  type BadKind,
  badValue,
  deepArray,
  deepObject,
  dropKey,
  encodeAny,
  type Hint,
  nastyString,
  type OpenApiDoc,
  renameKey,
  replaceNode,
  resolveRef,
  type Schema,
  serialize,
  setAt,
  stringsAndKeys,
  validValue,
} from "./support/fuzz.ts";
import { logRecords, logWatchers } from "./support/logs.ts";

const RUNS = Number(Deno.env.get("FUZZ_RUNS") ?? 3000);
const SEED = Number(Deno.env.get("FUZZ_SEED") ?? Math.floor(Math.random() * 2 ** 31));
const AM_TOKEN = "fuzz-alertmanager-token-0123456789";
const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;

type Caller = "admin" | "a" | "b" | "alertmanager";

interface Param {
  name: string;
  in: "path" | "query";
  required: boolean;
  schema: Schema;
}

interface Operation {
  method: string;
  template: string;
  params: Param[];
  body?: { schema: Schema; required: boolean };
}

type Body =
  | { json: unknown }
  | { text: string }
  | { bytes: Uint8Array };

/** One generated request. Path values and query pairs are already percent-encoded. */
interface Spec {
  op: Operation;
  method: string;
  caller: Caller;
  kind: string;
  path: Record<string, string>;
  query: [string, string][];
  rawQuery?: string;
  body?: Body;
  /** `null`: no content-type header; undefined: JSON's when there is a body. */
  contentType?: string | null;
  /** Replaces the caller's Authorization header (`null`: none). */
  authorization?: string | null;
  /** Other request headers (request id, trace context, ...). */
  headers?: Record<string, string>;
}

interface Failure {
  rule: string;
  method: string;
  template: string;
  status: number;
  kind: string;
  caller: Caller;
  url: string;
  request: string;
  response: string;
  error: string;
}

// ---- the API's operations --------------------------------------------------------------

function operations(doc: OpenApiDoc): Operation[] {
  const ops: Operation[] = [];
  for (const [template, item] of Object.entries<Json>(doc.paths)) {
    for (const [method, op] of Object.entries<Json>(item)) {
      if (!METHODS.includes(method.toUpperCase() as typeof METHODS[number])) continue;
      const content = op.requestBody?.content?.["application/json"];
      ops.push({
        method: method.toUpperCase(),
        template,
        params: (op.parameters ?? []).map((p: Json) => ({
          name: p.name,
          in: p.in,
          required: p.required ?? p.in === "path",
          schema: resolveRef(doc, p.schema ?? {}),
        })),
        body: content
          ? { schema: content.schema, required: op.requestBody.required ?? false }
          : undefined,
      });
    }
  }
  return ops;
}

/** Which resource a path parameter names: `/v1/alerts/{id}/deliveries` → `alerts`. */
const resourceOf = (template: string) => template.split("/")[2] ?? "";

function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

// ---- hostile parameters --------------------------------------------------------------------

const BAD_PATH_VALUES = [
  "not-a-uuid",
  "00000000-0000-0000-0000-000000000000",
  "ffffffff-ffff-ffff-ffff-ffffffffffff",
  "%7B00000000-0000-0000-0000-000000000000%7D",
  "00000000000000000000000000000000",
  "00000000-0000-0000-0000-00000000000g",
  "%00",
  "a%00b",
  "%ZZ",
  "%",
  "%E0%A4%A",
  "%ED%A0%80",
  "%C3%28",
  "%FF%FE",
  "..",
  "%2e%2e",
  "a%2Fb",
  "x".repeat(10_000),
  "%C3%A9",
  "%F0%9F%98%80",
  "1%20or%201%3D1",
  "'%20OR%20'1'%3D'1",
  "-1",
  "0",
  "1e400",
  "null",
  "undefined",
  "__proto__",
  "constructor",
  "Service-Health",
  "a".repeat(65),
  "",
];

const BAD_QUERY_VALUES = [
  "",
  "-1",
  "0",
  "201",
  "1e3",
  "abc",
  "1.5",
  "99999999999999999999",
  "1e400",
  "NaN",
  "Infinity",
  "-Infinity",
  "%205",
  "0x10",
  "true",
  "TRUE",
  "yes",
  "1",
  "null",
  "%5B%5D",
  "%",
  "%ZZ",
  "%00",
  "a%00b",
  "%ED%A0%80",
  "%ED%B0%80",
  "%C3%28",
  "a".repeat(10_000),
  "not-a-uuid",
  "00000000-0000-0000-0000-000000000000",
];

const iso = (d: Date) => d.toISOString();

/** Forged cursors: base64url of everything but a (timestamp, UUID) pair this API wrote. */
const badCursor: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    "%25%25%25",
    "!!!",
    "%00",
    b64url("nope"),
    b64url("{"),
    b64url('{"a":1}'),
    b64url("[]"),
    b64url("[null,null]"),
    b64url(`[1,"${crypto.randomUUID()}"]`),
    b64url(asciiJson([iso(new Date()), "x' or 1=1"])),
    b64url(asciiJson([iso(new Date()), 42])),
    b64url(asciiJson(["0000-01-01T00:00:00Z", crypto.randomUUID()])),
    b64url(asciiJson(["0000-01-01T00:00:00.000Z", crypto.randomUUID()])),
    b64url(asciiJson(["+010000-01-01T00:00:00Z", crypto.randomUUID()])),
    b64url(asciiJson(["-271821-04-20T00:00:00Z", crypto.randomUUID()])),
    b64url(asciiJson(["2024-02-31T25:00:00Z", crypto.randomUUID()])),
    b64url(asciiJson(["2024-01-01T00:00:00+99:00", crypto.randomUUID()])),
    b64url(asciiJson(["2024-01-01", crypto.randomUUID()])),
    b64url(asciiJson([iso(new Date()), "\u0000"])),
    b64url(asciiJson([iso(new Date()), "\ud800"])),
    b64url(asciiJson(["\u0000", crypto.randomUUID()])),
    b64url(asciiJson([iso(new Date()), crypto.randomUUID(), "extra"])),
    b64url(asciiJson({ at: iso(new Date()), id: crypto.randomUUID() })),
    b64url(deepArray(5000)),
    b64url(deepObject(100)),
    b64url("x".repeat(150)),
    btoa(asciiJson([iso(new Date()), crypto.randomUUID()])), // standard base64, padded
    encodeURIComponent(btoa(asciiJson([iso(new Date()), crypto.randomUUID()]))),
    encodeCursor(new Date(), crypto.randomUUID()).toUpperCase(),
    encodeCursor(new Date(), crypto.randomUUID()) + "%00",
    encodeCursor(new Date(), crypto.randomUUID()) + "=",
  ),
  fc.tuple(fc.string(), fc.string()).map((pair) => b64url(asciiJson(pair))),
  fc.tuple(fc.jsonValue({ maxDepth: 2 }), fc.jsonValue({ maxDepth: 2 }))
    .map((pair) => b64url(asciiJson(pair))),
  fc.tuple(fc.date({ noInvalidDate: false }), fc.uuid())
    .map(([d, id]) =>
      b64url(asciiJson([Number.isNaN(d.getTime()) ? "Invalid Date" : d.toISOString(), id]))
    ),
  fc.uint8Array({ maxLength: 60 }).map((bytes) =>
    encodeURIComponent(btoa(String.fromCharCode(...bytes)))
  ),
  nastyString.map(encodeAny),
);

/** Cursors this API could have written, at the edges of what PostgreSQL stores. */
const goodCursor: fc.Arbitrary<string> = fc.tuple(
  fc.date({
    min: new Date("0001-01-01T00:00:00Z"),
    max: new Date("9999-12-31T23:59:59Z"),
    noInvalidDate: true,
  }),
  fc.uuid({ version: 4 }),
).map(([d, id]) => encodeCursor(d, id));

const MALFORMED_JSON = [
  "",
  " ",
  "{",
  "}",
  "[",
  '{"a":}',
  '{"a":1,}',
  "[1,]",
  "{'a':1}",
  "{a:1}",
  "NaN",
  "undefined",
  "nul",
  "tru",
  "\uFEFF{}",
  '{"a":1}garbage',
  '{"a":1}{"b":2}',
  '"\\u00"',
  '"\\ud800',
  '{"a":"\\x00"}',
  '{"a":"\u0000"}', // a raw control character inside a string
  '{"a":"line\nbreak"}',
  "0123",
  "--1",
  "1.",
  ".5",
  "+1",
  "[".repeat(100_000),
  '{"a":'.repeat(5000),
  "null",
  "123",
  '"a string"',
  "[]",
  "true",
  '{"__proto__":{"polluted":true}}',
  '{"a":1,"a":2}',
];

const BAD_BYTES = [
  new Uint8Array([0xff, 0xfe, 0x7b, 0x7d]),
  new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]), // {"a":"\xc3("}
  new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d]), // WTF-8
  new Uint8Array([0x00, 0x7b, 0x7d]),
  new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d]), // UTF-8 BOM + {}
];

/** Request ids and trace context that vigil parses before anything else. */
const ODD_HEADERS: Record<string, string>[] = [
  { "x-request-id": "" },
  { "x-request-id": "x".repeat(8000) },
  { "x-request-id": "a b\tc" },
  { "x-request-id": "\u00e9\u00ff" },
  { "x-request-id": "../../etc" },
  { "x-request-id": '"><script>' },
  { traceparent: "garbage" },
  { traceparent: `00-${"0".repeat(32)}-${"0".repeat(16)}-01` },
  { traceparent: `ff-${"a".repeat(32)}-${"b".repeat(16)}-01` },
  { traceparent: `00-${"a".repeat(32)}-${"b".repeat(16)}-01-extra` },
  { traceparent: `00-${"A".repeat(32)}-${"B".repeat(16)}-zz` },
  { traceparent: "0".repeat(8000) },
  { traceparent: `00-${"a".repeat(32)}-${"b".repeat(16)}-01`, tracestate: "=,=,".repeat(500) },
  { tracestate: "k=\u00e9" },
  { accept: "application/xml" },
  { accept: "*/*;q=0" },
  { "accept-encoding": "gzip;q=abc" },
  { "x-forwarded-for": "999.999.999.999, ::ffff:zz" },
  { "content-length": "999999999" },
  { cookie: "a=" + "b".repeat(8000) },
];

const CONTENT_TYPES: (string | null)[] = [
  null,
  "",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=xyz",
  "application/xml",
  "application/octet-stream",
  "application/json; charset=utf-16",
  "application/json; charset=latin1",
  "application/JSON",
  "application/json, text/plain",
  "application/problem+json",
  "application/vnd.api+json",
  "application/merge-patch+json",
  "application/jsonx",
  "json",
  "*/*",
];

// ---- the test ------------------------------------------------------------------------------

dbTest(
  "fuzz: schema-driven requests never get a 5xx, 4xx are problems, users stay apart",
  async (_t, db) => {
    const app = await testApp(db, {
      env: {
        RATE_LIMIT_PER_MINUTE: "100000000",
        AUTH_FAILURES_PER_MINUTE: "100000",
        ALERTMANAGER_WEBHOOK_TOKEN: AM_TOKEN,
        ALERTMANAGER_RECIPIENTS: "a@fuzz.example",
      } as Record<string, string>,
    });
    await loadExamplePatterns("patterns", { ...app, logger: rootLogger });
    const port = closedPort();
    const unreachable = `http://127.0.0.1:${port}`;

    const a = await app.newUser("a@fuzz.example");
    const b = await app.newUser("b@fuzz.example");
    const keys: Record<Caller, string> = {
      admin: app.adminKey,
      a: a.key,
      b: b.key,
      alertmanager: AM_TOKEN,
    };

    // Every log line of the run is scanned for keys and webhook secrets (set up below).
    const secrets = new Set([app.adminKey, a.key, b.key]);
    const leaked: string[] = [];
    const watch = (record: unknown) => {
      const line = JSON.stringify(record);
      for (const secret of secrets) {
        if (line.includes(secret)) leaked.push(secret.slice(0, 10) + "…");
      }
    };
    logWatchers.add(watch);

    async function must(
      caller: Caller,
      method: string,
      path: string,
      status: number,
      body?: unknown,
    ) {
      const res = await app.request(method, path, { key: keys[caller], body });
      assertEquals(res.status, status, `${caller} ${method} ${path}: ${JSON.stringify(res.body)}`);
      return res.body;
    }

    // Resources of every caller, created before the fuzz.
    const condition = {
      capability: "data.compare",
      args: { value: 1, op: ">", threshold: 0 },
      path: "result",
      op: "==",
      threshold: true,
    };
    const resources = async (caller: Caller, webhook = false) => {
      const alert = await must(caller, "POST", "/v1/alerts", 201, {
        name: `${caller}'s alert`,
        condition,
        channels: webhook ? { inapp: true, webhook: { url: `${unreachable}/hook` } } : undefined,
      });
      const scratch = await must(caller, "POST", "/v1/alerts", 201, {
        name: `${caller}'s other alert`,
        condition: { ...condition, threshold: false },
      });
      const run = await must(caller, "POST", "/v1/patterns/service-health/run", 200, {
        inputs: { url: `${unreachable}/health`, max_latency_ms: 100 },
      });
      if (alert.channels.webhook) secrets.add(alert.channels.webhook.secret);
      const key = await must(caller, "POST", "/v1/api-keys", 201, { label: "spare" });
      assert(typeof key.key === "string" && key.key.startsWith("vgl_"), "a new key is returned");
      secrets.add(key.key);
      await must(caller, "POST", `/v1/alerts/${alert.id}/evaluate`, 200, {});
      const notes = await must(caller, "GET", "/v1/notifications", 200);
      const deliveries = await must(caller, "GET", `/v1/alerts/${alert.id}/deliveries`, 200);
      assert(notes.items.length > 0 && deliveries.items.length > 0, `${caller}: nothing delivered`);
      return {
        alert: alert.id as string,
        scratch: scratch.id as string,
        run: run.run_id as string,
        key: key.id as string,
        notification: notes.items[0].id as string,
      };
    };
    const ofA = await resources("a");
    const ofB = await resources("b");
    const ofAdmin = await resources("admin", true);
    await must("admin", "POST", "/v1/agents", 201, {
      name: "fuzz-agent",
      url: `${unreachable}/agent`,
      capabilities: ["fuzz.echo"],
    });
    await must("admin", "POST", "/v1/patterns", 201, {
      id: "fuzz-p",
      inputs: { x: { type: "number", default: 1 } },
      steps: [{
        capability: "data.compare",
        args: { value: "{{inputs.x}}", op: ">", threshold: 0 },
        as: "c",
      }],
      outputs: { r: "{{c.result}}" },
    });
    await must("admin", "POST", "/v1/patterns", 201, {
      id: "fuzz-doomed",
      steps: [{ capability: "data.pick", args: { value: { a: 1 }, path: "a" }, as: "p" }],
    });
    await must("admin", "POST", "/v1/agents", 201, {
      name: "fuzz-doomed",
      url: `${unreachable}/doomed`,
      capabilities: ["doomed.call"],
    });
    const dlq = await must("admin", "GET", "/v1/dlq", 200);
    const jobs = (await must("admin", "GET", "/v1/jobs", 200)) as Json;
    const jobNames: string[] = (jobs.items ?? jobs).map((j: Json) => j.name);
    const aAlertBefore = await must("a", "GET", `/v1/alerts/${ofA.alert}`, 200);

    /** Valid path values per caller and resource: a caller's own, and for B, A's too. */
    const ownedByA = new Set(Object.values(ofA));
    const pools: Record<Caller, Record<string, string[]>> = {
      a: {
        alerts: [ofA.alert, ofA.scratch],
        runs: [ofA.run],
        "api-keys": [ofA.key],
        notifications: [ofA.notification],
      },
      b: {
        alerts: [ofA.alert, ofA.scratch, ofB.alert, ofB.scratch],
        runs: [ofA.run, ofB.run],
        "api-keys": [ofA.key, ofB.key],
        notifications: [ofA.notification, ofB.notification],
      },
      admin: {
        alerts: [ofAdmin.alert, ofAdmin.scratch],
        runs: [ofAdmin.run],
        "api-keys": [ofAdmin.key],
        notifications: [ofAdmin.notification],
        dlq: dlq.items.map((e: Json) => e.id),
      },
      alertmanager: {},
    };
    for (const caller of ["a", "b", "admin"] as const) {
      pools[caller].patterns = ["service-health", "fuzz-p", "prometheus-threshold"];
      pools[caller].agents = ["fuzz-agent", "http", "data"];
      pools[caller].jobs = jobNames;
    }
    /**
     * What DELETE and PUT may name: disposable resources only, so that the patterns, agents and
     * alerts the other requests use live on. A's own alert is not among A's (A may change it,
     * which the end checks follow), but it is among B's.
     */
    const disposable: Record<Caller, Record<string, string[]>> = {
      a: { alerts: [ofA.scratch], "api-keys": [ofA.key] },
      b: { alerts: [ofA.alert, ofA.scratch, ofB.scratch], "api-keys": [ofA.key, ofB.key] },
      admin: {
        alerts: [ofAdmin.scratch],
        "api-keys": [ofAdmin.key],
        dlq: pools.admin.dlq,
        patterns: ["fuzz-doomed"],
        agents: ["fuzz-doomed"],
      },
      alertmanager: {},
    };

    // ---- arbitraries from the OpenAPI document ----------------------------------------------

    const doc = (await app.request("GET", "/openapi.json")).body as OpenApiDoc;
    const ops = operations(doc);
    assert(ops.length >= 30, `only ${ops.length} operations in /openapi.json`);

    const urlArb = fc.constantFrom(
      `${unreachable}/`,
      `${unreachable}/health`,
      `http://[::1]:${port}/`,
      "http://169.254.169.254/latest/meta-data/",
      "ftp://127.0.0.1/",
      "file:///etc/passwd",
      "not a url",
    );
    /** Template strings, well-formed or not. */
    const templateArb = fc.oneof(
      fc.constantFrom(
        "{{inputs.x}}",
        "{{c.result}}",
        "{{check.latency_ms}}",
        "{{inputs}}",
        "{{inputs.url}} and {{inputs.x}}",
        "{{__proto__}}",
        "{{constructor.prototype}}",
        "{{inputs.__proto__.x}}",
        "{{",
        "}}{{",
        "{{}}",
        "{{ inputs.x }}",
        "{{inputs.x.y.z.w}}",
        `{{${"a.".repeat(500)}a}}`,
        "{{inputs.x}}".repeat(2000),
      ),
      fc.string({ maxLength: 20 }).map((t) => `{{${t}}}`),
    );
    const hint: Hint = (key, s) => {
      if (s?.format === "uri" || key === "url") return urlArb;
      switch (key) {
        case "capability":
          return fc.constantFrom("http.check", "data.compare", "data.pick", "fuzz.echo", "no.such");
        case "pattern_id":
          return fc.constantFrom("service-health", "fuzz-p", "no-such-pattern");
        case "inputs":
          // A pattern's declared inputs (PatternInput schemas), not a run's values.
          if (s?.additionalProperties?.$ref) {
            return fc.oneof(
              fc.constantFrom(
                {},
                { x: { type: "number", default: 1 } },
                { x: { type: "integer" } },
                { x: { type: "number" }, url: { type: "string", required: false } },
              ),
              validValue(doc, s, () => undefined),
            );
          }
          return fc.oneof(
            fc.record({
              url: urlArb,
              max_latency_ms: fc.double({ noNaN: true, noDefaultInfinity: true }),
              expect_status: fc.integer({ min: 100, max: 599 }),
            }, { requiredKeys: ["url"] }),
            fc.record({ x: fc.integer() }, { requiredKeys: [] }),
            fc.record({
              url: urlArb,
              max_latency_ms: fc.double({ noNaN: true, noDefaultInfinity: true }),
              expect_status: fc.integer({ min: 100, max: 599 }),
              x: fc.integer(),
            }, { requiredKeys: [] }),
            fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), {
              maxKeys: 3,
            }),
          );
        case "args":
          return fc.oneof(
            fc.record({
              value: fc.jsonValue({ maxDepth: 1 }),
              op: fc.constantFrom(">", ">=", "<", "<=", "==", "!=", "~"),
              threshold: fc.jsonValue({ maxDepth: 1 }),
              path: fc.string({ maxLength: 10 }),
            }, { requiredKeys: [] }),
            fc.dictionary(fc.constantFrom("value", "threshold", "url", "op", "path"), templateArb, {
              maxKeys: 3,
            }),
            fc.record({ url: urlArb, timeout_ms: fc.integer({ min: 1, max: 500 }) }, {
              requiredKeys: [],
            }),
            fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), {
              maxKeys: 3,
            }),
          );
        case "user_id":
          return fc.oneof(
            { weight: 6, arbitrary: fc.constantFrom(a.id, b.id, app.adminId) },
            { weight: 1, arbitrary: fc.constant("00000000-0000-4000-8000-000000000000") },
          );
        case "timeout_ms":
          return fc.integer({ min: 1, max: 500 });
        case "condition": {
          // Numbers for the ordering operators, anything for (in)equality.
          const comparison = fc.oneof(
            fc.record({
              op: fc.constantFrom(">", ">=", "<", "<="),
              threshold: fc.oneof(
                fc.integer(),
                fc.double({ noNaN: true, noDefaultInfinity: true }),
              ),
            }),
            fc.record({
              op: fc.constantFrom("==", "!="),
              threshold: fc.oneof(fc.boolean(), fc.integer(), fc.constant(null), fc.string()),
            }),
          );
          const sources = fc.oneof(
            fc.constant({
              capability: "data.compare",
              args: { value: 1, op: ">", threshold: 0 },
              path: "result",
            }),
            fc.constant({
              capability: "data.pick",
              args: { value: { a: { b: 1 } }, path: "a.b" },
              path: "",
            }),
            urlArb.map((url) => ({
              capability: "http.check",
              args: { url, timeout_ms: 200 },
              path: "ok",
            })),
            urlArb.map((url) => ({
              pattern_id: "service-health",
              inputs: { url, max_latency_ms: 100 },
              path: "fast_enough",
            })),
            fc.integer().map((x) => ({ pattern_id: "fuzz-p", inputs: { x }, path: "r" })),
          );
          return fc.oneof(
            {
              weight: 5,
              arbitrary: fc.tuple(sources, comparison).map(([c, cmp]) => ({ ...c, ...cmp })),
            },
            { weight: 1, arbitrary: validValue(doc, s, () => undefined) },
          );
        }
        case "steps":
          return fc.oneof(
            {
              weight: 3,
              arbitrary: fc.oneof(
                fc.constant([
                  {
                    capability: "data.compare",
                    args: { value: "{{inputs.x}}", op: ">", threshold: 0 },
                    as: "c",
                  },
                ]),
                fc.tuple(urlArb, templateArb).map(([url, t]) => [
                  { capability: "http.check", args: { url, timeout_ms: 200 }, as: "check" },
                  {
                    capability: "data.compare",
                    args: { value: t, op: "==", threshold: true },
                    as: "c",
                  },
                ]),
                fc.constant([{ capability: "fuzz.echo", args: { x: "{{inputs.x}}" }, as: "e" }]),
                fc.constant([{
                  capability: "data.pick",
                  args: { value: { a: [1] }, path: "a.0" },
                  as: "p",
                }]),
              ),
            },
            {
              weight: 1,
              arbitrary: fc.array(validValue(doc, s.items, hint, undefined, 1), {
                minLength: 1,
                maxLength: 3,
              }),
            },
          );
        case "outputs":
          return fc.dictionary(fc.stringMatching(/^[a-z_]{1,8}$/), templateArb, { maxKeys: 3 });
      }
      return undefined;
    };

    /** Bodies that pass the checks beyond the schema (references, declared inputs, ...). */
    const definitions = fc.oneof(
      fc.constant({
        inputs: { x: { type: "number", default: 1 } },
        steps: [{
          capability: "data.compare",
          args: { value: "{{inputs.x}}", op: ">", threshold: 0 },
          as: "c",
        }],
        outputs: { r: "{{c.result}}" },
      }),
      fc.constant({
        inputs: { url: { type: "string" } },
        steps: [
          {
            capability: "http.check",
            args: { url: "{{inputs.url}}", timeout_ms: 200 },
            as: "check",
          },
          {
            capability: "data.compare",
            args: { value: "{{check.ok}}", op: "==", threshold: true },
            as: "c",
          },
        ],
        outputs: { up: "{{check.ok}}", text: "status {{check.status}} in {{check.latency_ms}} ms" },
      }),
      fc.constant({
        steps: [{ capability: "fuzz.echo", args: { x: 1 }, as: "e", timeout_ms: 200 }],
        outputs: { e: "{{e}}" },
      }),
      fc.constant({
        inputs: { v: { type: "object", default: { a: [1, 2] } } },
        steps: [{ capability: "data.pick", args: { value: "{{inputs.v}}", path: "a.1" }, as: "p" }],
        outputs: { p: "{{p}}" },
      }),
    );
    const coherentBodies: Record<string, fc.Arbitrary<unknown>> = {
      "POST /v1/patterns": fc.tuple(
        fc.stringMatching(/^fz-[a-z0-9]{1,8}$/),
        fc.string(),
        definitions,
      )
        .map(([id, description, d]) => ({ id, description, ...d })),
      "PUT /v1/patterns/{id}": definitions,
      "POST /v1/patterns/{id}/run": fc.oneof(
        urlArb.map((url) => ({ inputs: { url, max_latency_ms: 100 } })),
        fc.integer().map((x) => ({ inputs: { x } })),
        fc.constant({}),
      ),
    };

    const pathValues = (op: Operation, caller: Caller): fc.Arbitrary<Record<string, string>> => {
      const model: Record<string, fc.Arbitrary<string>> = {};
      for (const p of op.params.filter((p) => p.in === "path")) {
        const destructive = op.method === "DELETE" || op.method === "PUT";
        const pool = (destructive ? disposable : pools)[caller][resourceOf(op.template)] ?? [];
        const fromSchema = validValue(doc, p.schema, () => undefined).map((v) =>
          encodeAny(String(v))
        );
        model[p.name] = pool.length
          ? fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...pool) }, {
            weight: 1,
            arbitrary: fromSchema,
          })
          : fromSchema;
      }
      return fc.record(model);
    };

    const queryValue = (p: Param): fc.Arbitrary<string> => {
      if (p.name === "cursor") return goodCursor;
      if (p.name === "user_id") {
        return fc.constantFrom(
          a.id,
          b.id,
          app.adminId,
          crypto.randomUUID(),
        );
      }
      if (p.name === "pattern_id") return fc.constantFrom("service-health", "fuzz-p");
      return validValue(doc, p.schema, () => undefined).map((v) => encodeAny(String(v)));
    };

    const queryPairs = (op: Operation): fc.Arbitrary<[string, string][]> => {
      const params = op.params.filter((p) => p.in === "query");
      return fc.tuple(...params.map((p) => fc.option(queryValue(p), { nil: undefined })))
        .map((values) =>
          params.flatMap((p, i) =>
            values[i] === undefined ? [] : [[p.name, values[i]!] as [string, string]]
          )
        );
    };

    const callerArb = (op: Operation): fc.Arbitrary<Caller> =>
      op.template.includes("alertmanager")
        ? fc.constant<Caller>("alertmanager")
        : fc.constantFrom<Caller>("admin", "a", "b");

    /** A valid request (as far as the schemas tell) to the operation. */
    const bodyArb = (op: Operation): fc.Arbitrary<unknown> => {
      const fromSchema = validValue(doc, op.body!.schema, hint);
      const coherent = coherentBodies[`${op.method} ${op.template}`];
      return coherent
        ? fc.oneof({ weight: 2, arbitrary: coherent }, { weight: 1, arbitrary: fromSchema })
        : fromSchema;
    };
    const baseArb = (op: Operation): fc.Arbitrary<Spec> =>
      callerArb(op).chain((caller) =>
        fc.record({
          path: pathValues(op, caller),
          query: queryPairs(op),
          body: op.body
            ? (op.body.required
              ? bodyArb(op).map((json) => ({ json }))
              : fc.option(bodyArb(op).map((json) => ({ json })), { nil: undefined }))
            : fc.constant(undefined),
        }).map((r) => ({ op, method: op.method, caller, kind: "valid", ...r } as Spec))
      );

    function requestArb(op: Operation): fc.Arbitrary<Spec> {
      const base = baseArb(op);
      const json = (s: Spec) => (s.body && "json" in s.body ? s.body.json : {});
      const kinds: { weight: number; arbitrary: fc.Arbitrary<Spec> }[] = [
        { weight: 4, arbitrary: base },
        {
          weight: 1,
          arbitrary: fc.tuple(
            base,
            fc.constantFrom<string | null>(
              null,
              "",
              "Bearer",
              "Bearer ",
              `Bearer vgl_${"x".repeat(40)}`,
              `Bearer ${"k".repeat(10_000)}`,
              "Basic YTpi",
              `bearer ${a.key}`,
              `Bearer ${a.key} extra`,
              `Bearer ${a.key}\u00e9`,
              `Bearer ${AM_TOKEN}`,
              `Bearer ${b.key.slice(0, -1)}`,
            ),
          ).map(([s, authorization]) => ({ ...s, kind: "auth", authorization })),
        },
        {
          weight: 1,
          arbitrary: fc.tuple(base, fc.constantFrom(...ODD_HEADERS)).map(([s, headers]) => ({
            ...s,
            kind: "headers",
            headers,
          })),
        },
        {
          weight: 1,
          arbitrary: fc.tuple(base, fc.constantFrom(...METHODS, "OPTIONS")).filter(([, m]) =>
            !ops.some((o) => o.template === op.template && o.method === m)
          ).map(([s, method]) => ({
            ...s,
            kind: "wrong-method",
            method,
            body: method === "GET" ? undefined : s.body,
          })),
        },
      ];
      if (op.method !== "GET") {
        const bodyKinds: BadKind[] = [
          "wrong-type",
          "out-of-range",
          "huge-string",
          "deep-json",
          "unicode",
        ];
        for (const kind of bodyKinds) {
          kinds.push({
            weight: 2,
            arbitrary: fc.tuple(base, fc.nat(), badValue(kind), fc.boolean(), nastyString).map(
              ([s, pick, bad, asKey, key]) => ({
                ...s,
                kind,
                body: {
                  json: kind === "unicode" && asKey
                    ? addKey(json(s), pick, key, bad)
                    : replaceNode(json(s), pick, bad),
                },
              }),
            ),
          });
        }
        kinds.push(
          {
            weight: 2,
            arbitrary: fc.tuple(base, fc.nat()).map(([s, pick]) => ({
              ...s,
              kind: "missing-field",
              body: { json: dropKey(json(s), pick) },
            })),
          },
          {
            weight: 2,
            arbitrary: fc.tuple(
              base,
              fc.nat(),
              fc.oneof(
                fc.stringMatching(/^[a-z_]{1,12}$/),
                fc.constantFrom("__proto__", "constructor", ""),
              ),
              fc.jsonValue({ maxDepth: 2 }),
            )
              .map(([s, pick, key, extra]) => ({
                ...s,
                kind: "extra-field",
                body: { json: addKey(json(s), pick, key, extra) },
              })),
          },
          {
            weight: 2,
            arbitrary: fc.tuple(
              base,
              fc.oneof(
                fc.constantFrom(...MALFORMED_JSON).map((text): Body => ({ text })),
                fc.constantFrom(...BAD_BYTES).map((bytes): Body => ({ bytes })),
                fc.string({ unit: "binary", maxLength: 40 }).map((text): Body => ({ text })),
              ),
              fc.nat(),
            ).map(([s, body, cut]) => {
              if (cut % 3 === 0 && s.body && "json" in s.body) {
                const text = serialize(s.body.json);
                return {
                  ...s,
                  kind: "malformed-json",
                  body: { text: text.slice(0, cut % Math.max(text.length, 1)) },
                };
              }
              return { ...s, kind: "malformed-json", body };
            }),
          },
          {
            weight: 2,
            arbitrary: fc.tuple(base, fc.constantFrom(...CONTENT_TYPES), fc.boolean()).map(
              ([s, contentType, form]) => ({
                ...s,
                kind: "content-type",
                contentType,
                body: form ? { text: "a=1&b=%00" } : (s.body ?? { json: {} }),
              }),
            ),
          },
        );
      }
      const pathParams = op.params.filter((p) => p.in === "path");
      const ofAHere = pools.a[resourceOf(op.template)] ?? [];
      if (pathParams.some((p) => p.name === "id") && ofAHere.length) {
        // B, with a valid or broken request, on one of A's resources.
        kinds.push({
          weight: 2,
          arbitrary: fc.tuple(base, fc.constantFrom(...ofAHere)).map(([s, id]) => ({
            ...s,
            caller: "b" as const,
            kind: "cross-tenant",
            path: { ...s.path, id },
          })),
        });
      }
      if (pathParams.length) {
        kinds.push({
          weight: 3,
          arbitrary: fc.tuple(
            base,
            fc.constantFrom(...pathParams.map((p) => p.name)),
            fc.oneof(
              { weight: 3, arbitrary: fc.constantFrom(...BAD_PATH_VALUES) },
              { weight: 1, arbitrary: nastyString.map(encodeAny) },
              { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 40 }).map(encodeAny) },
              {
                weight: 1,
                arbitrary: fc.tuple(
                  fc.uuid(),
                  fc.constantFrom("x", "%00", "/", "%20", "/..", "%0A"),
                )
                  .map(([u, tail]) => u + tail),
              },
            ),
          ).map(([s, name, value]) => ({
            ...s,
            kind: "bad-path-param",
            path: { ...s.path, [name]: value },
          })),
        });
      }
      const queryParams = op.params.filter((p) => p.in === "query");
      if (queryParams.length) {
        kinds.push({
          weight: 3,
          arbitrary: fc.tuple(
            base,
            fc.constantFrom(...queryParams.map((p) => p.name), "unknown"),
            fc.oneof(
              { weight: 3, arbitrary: fc.constantFrom(...BAD_QUERY_VALUES) },
              { weight: 1, arbitrary: nastyString.map(encodeAny) },
            ),
            fc.boolean(),
          ).map(([s, name, value, repeat]) => ({
            ...s,
            kind: "bad-query",
            query: repeat
              ? [...s.query, [name, value]]
              : [...s.query.filter(([n]) => n !== name), [name, value]],
          } as Spec)),
        });
        kinds.push({
          weight: 1,
          arbitrary: fc.tuple(
            base,
            fc.constantFrom(
              "&&&=",
              "=x",
              "limit",
              "%",
              "cursor",
              "a[b]=1",
              "limit=1&limit=2&limit=",
              "%00=%00",
              "cursor=%ED%A0%80",
            ),
          )
            .map(([s, rawQuery]) => ({ ...s, kind: "bad-query", rawQuery })),
        });
        if (queryParams.some((p) => p.name === "cursor")) {
          kinds.push({
            weight: 3,
            arbitrary: fc.tuple(base, badCursor).map(([s, cursor]) => ({
              ...s,
              kind: "bad-cursor",
              query: [...s.query.filter(([n]) => n !== "cursor"), ["cursor", cursor]],
            } as Spec)),
          });
        }
      }
      return fc.oneof(...kinds);
    }

    // ---- sending and judging -----------------------------------------------------------------

    const failures: Failure[] = [];
    let aAlertExpected: Json | "deleted" = aAlertBefore;
    let aKeyRevokedByA = false;
    let sent = 0;
    let crossTenant = 0;
    const byKind = new Map<string, number>();
    const byStatus = new Map<number, number>();
    const byOperation = new Map<string, Map<number, number>>();

    function urlOf(s: Spec): string {
      const path = s.op.template.replace(/\{(\w+)\}/g, (_, name) => s.path[name] ?? "");
      const query = s.rawQuery ?? s.query.map(([k, v]) => `${k}=${v}`).join("&");
      return query ? `${path}?${query}` : path;
    }

    function serverError(requestId: string | null): string {
      for (let i = logRecords.length - 1; i >= 0 && requestId; i--) {
        const r = logRecords[i];
        if (r.fields?.request_id !== requestId || r.level !== "error") continue;
        const e = r.fields.error as Json;
        if (e instanceof Error) {
          const frame = e.stack?.split("\n").find((l) =>
            l.includes("/main/src/") || l.includes("/tests/")
          )?.trim() ?? "";
          return `${e.name}: ${e.message}`.slice(0, 200) + (frame ? ` ${frame.slice(0, 160)}` : "");
        }
        return String(e ?? r.msg).slice(0, 200);
      }
      return "";
    }

    async function send(s: Spec): Promise<{ status: number; body: Json; text: string }> {
      const headers = new Headers(s.headers);
      const auth = s.authorization === undefined ? `Bearer ${keys[s.caller]}` : s.authorization;
      if (auth !== null) headers.set("authorization", auth);
      let body: BodyInit | undefined;
      let shown = "";
      if (s.body && s.method !== "GET") {
        if ("json" in s.body) body = shown = serialize(s.body.json);
        else if ("text" in s.body) body = shown = s.body.text;
        else {
          body = s.body.bytes as Uint8Array<ArrayBuffer>;
          shown = `bytes ${[...s.body.bytes]}`;
        }
        const type = s.contentType === undefined ? "application/json" : s.contentType;
        if (type !== null) headers.set("content-type", type);
      }
      const url = urlOf(s);
      const fail = (rule: string, status: number, response: string, error = "") =>
        failures.push({
          rule,
          method: s.method,
          template: s.op.template,
          status,
          kind: s.kind,
          caller: s.caller,
          url: url.slice(0, 200),
          request: shown.slice(0, 200),
          response: response.slice(0, 200),
          error,
        });
      sent++;
      byKind.set(s.kind, (byKind.get(s.kind) ?? 0) + 1);
      let res: Response;
      try {
        res = await app.app.request(url, { method: s.method, headers, body });
      } catch (error) {
        fail("threw", 0, "", String(error).slice(0, 200));
        return { status: 0, body: undefined, text: "" };
      }
      const text = await res.text();
      byStatus.set(res.status, (byStatus.get(res.status) ?? 0) + 1);
      const opKey = `${s.method} ${s.op.template} ${s.kind}`;
      const opStats = byOperation.get(opKey) ?? new Map<number, number>();
      opStats.set(res.status, (opStats.get(res.status) ?? 0) + 1);
      byOperation.set(opKey, opStats);
      const type = res.headers.get("content-type") ?? "";
      let parsed: Json = text;
      if (type.includes("json") && text) {
        try {
          parsed = JSON.parse(text);
        } catch {
          fail("unparsable JSON answer", res.status, text);
        }
      }
      if (res.status >= 500) {
        fail("5xx", res.status, text, serverError(res.headers.get("x-request-id")));
      } else if (res.status >= 400) {
        const ok = type.startsWith("application/problem+json") && parsed &&
          typeof parsed === "object" &&
          typeof parsed.type === "string" && typeof parsed.title === "string" &&
          parsed.status === res.status;
        if (!ok) fail("4xx not a problem", res.status, `${type} ${text}`);
      }
      // Whose key the request carried (a forged Authorization header may still hold one).
      const holder = s.authorization === undefined
        ? s.caller
        : (["a", "b", "admin"] as const).find((c) => s.authorization?.includes(keys[c]));
      if (holder === "b" && Object.values(s.path).some((v) => ownedByA.has(v))) {
        crossTenant++;
        if (res.status < 300) fail("B reached A's resource", res.status, text);
      }
      const byA = holder === "a";
      if (byA && res.status < 300 && s.path.id === ofA.alert) {
        if (s.method === "PATCH" && s.op.template === "/v1/alerts/{id}") aAlertExpected = parsed;
        if (s.method === "DELETE" && s.op.template === "/v1/alerts/{id}") {
          aAlertExpected = "deleted";
        }
      }
      if (byA && res.status < 300 && s.path.id === ofA.key && s.method === "DELETE") {
        aKeyRevokedByA = true;
      }
      return { status: res.status, body: parsed, text };
    }

    /** A failure found outside the fuzz loop (fixed checks before and after it). */
    const note = (
      rule: string,
      method: string,
      path: string,
      status: number,
      response: unknown,
      caller: Caller = "a",
    ) =>
      failures.push({
        rule,
        method,
        template: path.replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, "{id}"),
        status,
        kind: "fixed check",
        caller,
        url: path,
        request: "",
        response: JSON.stringify(response ?? "").slice(0, 200),
        error: "",
      });

    /** B's attempts on A's resources, each of which must be a 403 or 404 problem. */
    async function crossTenantChecks(when: string) {
      const attempts: [string, string, unknown?][] = [
        ["GET", `/v1/alerts/${ofA.alert}`],
        ["PATCH", `/v1/alerts/${ofA.alert}`, { name: "hijacked", enabled: false }],
        ["POST", `/v1/alerts/${ofA.alert}/evaluate`, { dry_run: false }],
        ["POST", `/v1/alerts/${ofA.alert}/evaluate`, { dry_run: true }],
        ["GET", `/v1/alerts/${ofA.alert}/deliveries`],
        ["DELETE", `/v1/alerts/${ofA.alert}`],
        ["GET", `/v1/runs/${ofA.run}`],
        ["DELETE", `/v1/api-keys/${ofA.key}`],
        ["POST", `/v1/notifications/${ofA.notification}/read`],
      ];
      for (const [method, path, body] of attempts) {
        const res = await app.request(method, path, { key: b.key, body });
        if (res.status !== 403 && res.status !== 404) {
          note(`B reached A's resource (${when})`, method, path, res.status, res.body, "b");
        }
      }
      const lists: [string, string][] = [
        ["/v1/alerts", ofA.alert],
        [`/v1/alerts?user_id=${a.id}`, ofA.alert],
        ["/v1/runs", ofA.run],
        ["/v1/runs?pattern_id=service-health", ofA.run],
        ["/v1/api-keys", ofA.key],
        ["/v1/notifications", ofA.notification],
      ];
      for (const [path, id] of lists) {
        const res = await app.request("GET", path, { key: b.key });
        if (res.status < 300 && JSON.stringify(res.body).includes(id)) {
          note(`B listed A's resource (${when})`, "GET", path, res.status, res.body, "b");
        }
      }
    }

    // ---- the run -----------------------------------------------------------------------------

    await crossTenantChecks("before the fuzz");
    const started = performance.now();
    const specs = fc.sample(fc.oneof(...ops.map(requestArb)), { numRuns: RUNS, seed: SEED });
    // Every operation with valid requests, whatever the sample drew, and every string and key of
    // their bodies once with a NUL character and once with a lone surrogate.
    for (const op of ops) {
      for (const valid of fc.sample(baseArb(op), { numRuns: 2, seed: SEED + 1 })) {
        specs.push(valid);
        if (!valid.body || !("json" in valid.body)) continue;
        const body = valid.body.json;
        const { strings, keys } = stringsAndKeys(body);
        for (const path of strings) {
          for (const text of ["a\u0000b", "\ud800", "x\udfff"]) {
            specs.push({
              ...valid,
              kind: "unicode-each-field",
              body: { json: setAt(body, path, text) },
            });
          }
        }
        for (const path of keys) {
          for (const key of ["k\u0000", "\udbff"]) {
            specs.push({
              ...valid,
              kind: "unicode-each-key",
              body: { json: renameKey(body, path, key) },
            });
          }
        }
      }
    }
    for (const spec of specs) await send(spec);
    const seconds = (performance.now() - started) / 1000;
    await crossTenantChecks("after the fuzz");

    // After the fuzz: the health endpoints, and A's alert, run and key as A last made them.
    for (const path of ["/health/live", "/health/ready"]) {
      const res = await app.request("GET", path, { key: null });
      if (res.status !== 200) note("health after the fuzz", "GET", path, res.status, res.body);
    }
    const definition = (alert: Json) => {
      // What evaluations change (A's own, the job's) is not the definition.
      const {
        last_fired_at: _f,
        last_evaluated_at: _e,
        next_eval_at: _n,
        state: _s,
        state_since: _ss,
        failing_since: _fs,
        counts: _c,
        episode: _ep,
        ...rest
      } = alert;
      if (rest.channels?.webhook) rest.channels.webhook = { url: rest.channels.webhook.url };
      return rest;
    };
    const alertPath = `/v1/alerts/${ofA.alert}`;
    const aAlertAfter = await app.request("GET", alertPath, { key: a.key });
    if (aAlertExpected === "deleted") {
      if (aAlertAfter.status !== 404) {
        note(
          "A deleted its alert, yet it is there",
          "GET",
          alertPath,
          aAlertAfter.status,
          aAlertAfter.body,
        );
      }
    } else if (aAlertAfter.status !== 200) {
      note("A's alert is gone", "GET", alertPath, aAlertAfter.status, aAlertAfter.body);
    } else if (!isDeepStrictEqual(definition(aAlertAfter.body), definition(aAlertExpected))) {
      note("A's alert changed", "GET", alertPath, 200, {
        expected: definition(aAlertExpected),
        actual: definition(aAlertAfter.body),
      });
    }
    const runPath = `/v1/runs/${ofA.run}`;
    const aRun = await app.request("GET", runPath, { key: a.key });
    if (aRun.status !== 200) note("A's run is gone", "GET", runPath, aRun.status, aRun.body);
    const aKeys = await app.request("GET", "/v1/api-keys", { key: a.key });
    const spare = [aKeys.body.items ?? aKeys.body].flat().find((k: Json) => k?.id === ofA.key);
    if (!spare) note("A's spare key is gone", "GET", "/v1/api-keys", aKeys.status, aKeys.body);
    else if (!aKeyRevokedByA && spare.revoked_at !== null) {
      note("A's spare key was revoked, not by A", "GET", "/v1/api-keys", aKeys.status, spare);
    }

    // ---- the verdict -------------------------------------------------------------------------

    const distinct = new Map<string, { first: Failure; count: number }>();
    for (const f of failures) {
      const key = [f.rule, f.method, f.template, f.status, f.kind, f.error.split(" at ")[0]].join(
        "|",
      );
      const entry = distinct.get(key);
      if (entry) entry.count++;
      else distinct.set(key, { first: f, count: 1 });
    }
    const summary = [...distinct.values()]
      .sort((x, y) =>
        (x.first.template + x.first.method).localeCompare(y.first.template + y.first.method)
      )
      .map(({ first: f, count }) =>
        `- [${f.rule}] ${f.method} ${f.template} → ${f.status} (${f.kind}, as ${f.caller}, ×${count})\n` +
        `    url: ${f.url}\n` +
        (f.request ? `    body: ${JSON.stringify(f.request).slice(0, 200)}\n` : "") +
        `    answer: ${f.response.slice(0, 200)}\n` +
        (f.error ? `    error: ${f.error}\n` : "")
      ).join("");
    const stats = `${sent} requests in ${seconds.toFixed(1)} s (seed ${SEED}), ` +
      `${crossTenant} of them B's on A's resources; ` +
      `kinds ${JSON.stringify(Object.fromEntries(byKind))}; ` +
      `statuses ${JSON.stringify(Object.fromEntries([...byStatus].sort((x, y) => x[0] - y[0])))}`;
    // deno-lint-ignore no-console
    console.log(stats);
    if (Deno.env.get("FUZZ_VERBOSE")) {
      for (const [key, counts] of [...byOperation].sort()) {
        // deno-lint-ignore no-console
        console.log(key, JSON.stringify(Object.fromEntries(counts)));
      }
    }
    assert(sent >= RUNS, `only ${sent} requests were sent`);
    logWatchers.delete(watch);
    assertEquals(leaked, [], "keys and webhook secrets never reach the log");
    assert(
      failures.length === 0,
      `${failures.length} failed requests, ${distinct.size} distinct (replay with FUZZ_SEED=${SEED}):\n${summary}\n${stats}`,
    );
  },
);
