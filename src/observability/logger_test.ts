import fc from "fast-check";
import { assert, assertEquals } from "../../tests/support/assert.ts";
import {
  type Fields,
  formatJsonLine,
  generalJsonLine,
  type LogRecord,
  rootLogger,
  setupLogging,
} from "./logger.ts";

const identity = { service: "vigil", version: "1.2.3", instance: "host:42" };
const records: LogRecord[] = [];
setupLogging({ level: "debug", sink: (r) => void records.push(r), identity });

const key = fc.oneof(
  fc.constantFrom(
    "request_id",
    "trace_id",
    "ts",
    "level",
    "msg",
    "logger",
    "service",
    "instance",
    "__proto__",
    "1",
    "07",
    "error",
    "",
  ),
  fc.string(),
);
const value = fc.oneof(
  fc.jsonValue(),
  fc.constant(undefined),
  fc.string().map((m) => new Error(m)),
  fc.string().map((m) => new Error(m, { cause: new TypeError("inner") })),
  fc.bigInt(),
  fc.date({ noInvalidDate: true }),
  fc.jsonValue().map((v) => ({ nested: v, error: new Error("deep") })),
);
const fields = fc.array(fc.tuple(key, value), { maxLength: 8 }).map((entries) => {
  const out: Fields = {};
  for (const [k, v] of entries) {
    // An own "__proto__" key, as JSON.parse makes one.
    if (k === "__proto__") {
      Object.defineProperty(out, k, {
        value: v,
        enumerable: true,
        configurable: true,
        writable: true,
      });
    } else out[k] = v;
  }
  return out;
});

Deno.test("logger: every line is the text of one JSON.stringify of the whole line", () => {
  fc.assert(
    fc.property(
      fields,
      fc.constantFrom("debug", "info", "warn", "error", "fatal"),
      fc.string(),
      fc.string(),
      (f, level, msg, logger) => {
        const record: LogRecord = { ts: new Date(0).toISOString(), level, msg, logger, fields: f };
        assertEquals(formatJsonLine(record), generalJsonLine(record));
      },
    ),
    { numRuns: 2000 },
  );
});

Deno.test("logger: a request line, a null-prototype and a cyclic one", () => {
  const record = (f: Fields): LogRecord => ({
    ts: "2026-01-01T00:00:00.000Z",
    level: "info",
    msg: "request",
    logger: "vigil.http",
    fields: f,
  });
  const request = record({ request_id: "r-1", trace_id: null, status: 200, duration_ms: 0.12 });
  assertEquals(
    formatJsonLine(request),
    '{"ts":"2026-01-01T00:00:00.000Z","level":"info","msg":"request","logger":"vigil.http",' +
      '"service":"vigil","version":"1.2.3","instance":"host:42",' +
      '"request_id":"r-1","trace_id":null,"status":200,"duration_ms":0.12}',
  );
  const bare = Object.assign(Object.create(null), { a: 1 });
  assertEquals(formatJsonLine(record(bare)), generalJsonLine(record(bare)));
  const cyclic: Fields = { a: 1 };
  cyclic.self = cyclic;
  assertEquals(formatJsonLine(record(cyclic)), generalJsonLine(record(cyclic)));
  assertEquals(formatJsonLine(record({})), generalJsonLine(record({})));
});

Deno.test("logger: lines carry the time they were logged", async () => {
  records.length = 0;
  const before = Date.now();
  rootLogger.info("first");
  await new Promise((r) => setTimeout(r, 5));
  rootLogger.info("second");
  const after = Date.now();
  const [first, second] = records.map((r) => Date.parse(r.ts));
  assert(before <= first && first < second && second <= after, `${first} ${second}`);
});
