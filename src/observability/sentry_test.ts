/**
 * The error reporter without Sentry (no DSN: no import, a no-op) and the scrubber on synthetic
 * events. Events through the real SDK to a fake Sentry are in tests/sentry_test.ts.
 */
import { assert, assertEquals } from "../../tests/support/assert.ts";
import { loadConfig } from "../config.ts";
import {
  noopReporter,
  RELEASE,
  scrub,
  scrubEvent,
  scrubString,
  setupErrorReporting,
} from "./sentry.ts";
import { VERSION } from "./metrics.ts";

const KEY = "vgl_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0u_-x";
const WHSEC = "whsec_" + btoa("0123456789abcdef0123456789abcdef");
const EMAIL = "ann.smith+alerts@example.co.uk";

Deno.test("sentry: without SENTRY_DSN the SDK is never imported and the reporter is a no-op", async () => {
  let loads = 0;
  const load = () => {
    loads++;
    return Promise.reject(new Error("must not be called"));
  };
  for (const env of [{}, { SENTRY_DSN: "" }, { SENTRY_TRACES_SAMPLE_RATE: "1" }]) {
    const reporter = await setupErrorReporting(loadConfig(env), load);
    assertEquals(reporter, noopReporter);
    assertEquals(reporter.enabled, false);
    reporter.captureException(new Error("nothing happens"), { tags: { a: 1 } });
    reporter.captureMessage("nothing happens");
    assertEquals(await reporter.flush(10), true);
  }
  assertEquals(loads, 0, "the dynamic import was not called");
  // And with a DSN it is (the module is what `load` returns).
  const sdk = await setupErrorReporting(
    loadConfig({ SENTRY_DSN: "http://publickey@127.0.0.1:9/1" }),
    () => {
      loads++;
      return Promise.reject(new Error("no SDK in this test"));
    },
  ).catch((error: Error) => error.message);
  assertEquals([sdk, loads], ["no SDK in this test", 1]);
});

/** `import … from "@sentry/deno"` (not `import type`), `export … from`, `import "@sentry/deno"`. */
const STATIC_IMPORT =
  /^\s*(?:(?:import|export)\s+(?!type\b)[^;'"]*\bfrom|import)\s*["']@sentry\/deno["']/gm;

Deno.test("sentry: no module imports @sentry/deno statically (only sentry.ts, by import())", async () => {
  const offenders: string[] = [];
  const walk = async (dir: URL) => {
    for await (const entry of Deno.readDir(dir)) {
      const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
      if (entry.isDirectory) await walk(url);
      else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) {
        const text = await Deno.readTextFile(url);
        // Any import or export of the package that is not type-only.
        for (
          const m of text.matchAll(STATIC_IMPORT)
        ) {
          offenders.push(`${url.pathname}: ${m[0].trim()}`);
        }
        if (
          /import\(\s*["']@sentry\/deno["']\s*\)/.test(text) &&
          !url.pathname.endsWith("/observability/sentry.ts")
        ) {
          offenders.push(`${url.pathname}: dynamic import outside sentry.ts`);
        }
      }
    }
  };
  await walk(new URL("../", import.meta.url));
  assertEquals(offenders, []);
});

Deno.test("sentry: config: DSN, sample rate (0..1, default 0), environment", () => {
  const none = loadConfig({});
  assertEquals(
    [none.SENTRY_DSN, none.SENTRY_TRACES_SAMPLE_RATE, none.SENTRY_ENVIRONMENT],
    [undefined, 0, undefined],
  );
  const set = loadConfig({
    SENTRY_DSN: "https://abc@o1.ingest.sentry.io/42",
    SENTRY_TRACES_SAMPLE_RATE: "0.25",
    SENTRY_ENVIRONMENT: "staging",
  });
  assertEquals(
    [set.SENTRY_DSN, set.SENTRY_TRACES_SAMPLE_RATE, set.SENTRY_ENVIRONMENT],
    ["https://abc@o1.ingest.sentry.io/42", 0.25, "staging"],
  );
  for (
    const [env, message] of [
      [{ SENTRY_DSN: "not a url" }, /SENTRY_DSN must be an absolute http\(s\) URL/],
      [
        { SENTRY_TRACES_SAMPLE_RATE: "2" },
        /SENTRY_TRACES_SAMPLE_RATE must be a number from 0 to 1/,
      ],
    ] as const
  ) {
    let error: Error | undefined;
    try {
      loadConfig(env);
    } catch (e) {
      error = e as Error;
    }
    assert(error && message.test(error.message), error?.message);
  }
  assertEquals(RELEASE, `vigil@${VERSION}`);
});

Deno.test("sentry: scrubString replaces every kind of secret and email address", () => {
  const cases: [string, string][] = [
    [`Authorization: Bearer ${KEY}`, "Authorization: [Filtered]"],
    [`sent "authorization":"Basic dXNlcjpwYXNz" to it`, `sent "authorization":[Filtered]`],
    [`with Bearer abc.def-ghi`, "with Bearer [Filtered]"],
    [`key ${KEY} rejected`, "key vgl_[Filtered] rejected"],
    [`secret ${WHSEC}.`, "secret whsec_[Filtered]."],
    [`mail to ${EMAIL}, please`, "mail to [email], please"],
    [`Cookie: session=abc; other=def`, "Cookie: [Filtered]"],
    ["postgres://vigil:hunter2@db:5432/vigil", "postgres://[Filtered]@db:5432/vigil"],
    ["https://x.test/hook?token=s3cr3t&page=2", "https://x.test/hook?token=[Filtered]&page=2"],
    [
      "/v1/x?api_key=k&sig=1&access_token=t",
      "/v1/x?api_key=[Filtered]&sig=1&access_token=[Filtered]",
    ],
    // The hints vigil shows instead of secrets stay readable, and scrubbing twice changes nothing.
    ["whsec_…a1b2 and vgl_…", "whsec_…a1b2 and vgl_…"],
    ["nothing to hide: GET /v1/alerts/42", "nothing to hide: GET /v1/alerts/42"],
    [
      "release vigil@1.0.0 of npm:@sentry/deno@10.75.2",
      "release vigil@1.0.0 of npm:@sentry/deno@10.75.2",
    ],
    ["root@mail.example, x@y.io.", "[email], [email]."],
  ];
  for (const [input, expected] of cases) {
    assertEquals(scrubString(input), expected, input);
    assertEquals(scrubString(expected), expected, `idempotent: ${expected}`);
  }
});

Deno.test("sentry: scrubEvent cleans the whole event, at any depth, and keeps what is safe", () => {
  const metadata = { normalizedRequest: { headers: { authorization: "x" } } };
  const event = {
    event_id: "0123456789abcdef0123456789abcdef",
    message: `failed for ${EMAIL}`,
    logentry: { message: `key ${KEY}`, params: [EMAIL] },
    exception: {
      values: [{
        type: "Error",
        value: `boom: ${EMAIL} sent Bearer ${KEY} and ${WHSEC}`,
        stacktrace: { frames: [{ filename: "file:///app/src/x.ts", function: "f", lineno: 3 }] },
      }],
    },
    tags: { request_id: "req-1", route: "/v1/alerts/:id", user_email: EMAIL },
    extra: {
      nested: { deeper: [{ note: `write to ${EMAIL}`, api_key: KEY, webhook_secret: WHSEC }] },
      error: "Resend 422: Invalid `to` field: bob@example.com",
      count: 3,
      empty_token: "",
    },
    contexts: { trace: { trace_id: "a".repeat(32), span_id: "b".repeat(16) } },
    request: {
      method: "POST",
      url: `http://vigil.test/v1/x?token=${KEY}&page=1`,
      headers: {
        Authorization: `Bearer ${KEY}`,
        cookie: "session=abc",
        "x-api-key": KEY,
        "user-agent": "curl/8",
        "x-request-id": "req-1",
      },
      cookies: { session: "abc" },
      data: { email: EMAIL, password: "hunter2", secret: WHSEC },
      query_string: [["token", "abc"], ["page", "1"]],
    },
    breadcrumbs: [
      { category: "http", message: `POST with Authorization: Bearer ${KEY}` },
      { category: "log", data: { to: EMAIL, headers: [["Cookie", "a=b"], ["accept", "*/*"]] } },
    ],
    user: { email: EMAIL },
    sdkProcessingMetadata: metadata,
  };
  const scrubbed = scrubEvent(event);
  const text = JSON.stringify({ ...scrubbed, sdkProcessingMetadata: undefined });
  for (
    const secret of [
      KEY.slice(4),
      WHSEC.slice(6),
      EMAIL,
      "bob@example.com",
      "hunter2",
      "session=abc",
    ]
  ) {
    assert(!text.includes(secret), `${secret} is gone: ${text}`);
  }
  assertEquals(scrubbed.message, "failed for [email]");
  assertEquals(
    scrubbed.exception.values[0].value,
    "boom: [email] sent Bearer [Filtered] and whsec_[Filtered]",
  );
  assertEquals(scrubbed.exception.values[0].stacktrace, event.exception.values[0].stacktrace);
  assertEquals(scrubbed.tags, {
    request_id: "req-1",
    route: "/v1/alerts/:id",
    user_email: "[email]",
  });
  assertEquals(scrubbed.extra.nested.deeper[0], {
    note: "write to [email]",
    api_key: "[Filtered]",
    webhook_secret: "[Filtered]",
  });
  assertEquals([scrubbed.extra.count, scrubbed.extra.empty_token], [3, ""]);
  assertEquals(scrubbed.contexts, event.contexts);
  assertEquals(scrubbed.request.headers, {
    Authorization: "[Filtered]",
    cookie: "[Filtered]",
    "x-api-key": "[Filtered]",
    "user-agent": "curl/8",
    "x-request-id": "req-1",
  });
  assertEquals(scrubbed.request.url, "http://vigil.test/v1/x?token=[Filtered]&page=1");
  assertEquals(scrubbed.request.cookies, "[Filtered]");
  assertEquals(scrubbed.request.query_string, [["token", "[Filtered]"], ["page", "1"]]);
  assertEquals(scrubbed.request.data, {
    email: "[email]",
    password: "[Filtered]",
    secret: "[Filtered]",
  });
  assertEquals(scrubbed.breadcrumbs[1].data?.headers, [["Cookie", "[Filtered]"], [
    "accept",
    "*/*",
  ]]);
  // The SDK's own metadata is passed through untouched (it is not sent as such).
  assert(scrubbed.sdkProcessingMetadata === metadata);
  // The input is not modified.
  assertEquals(event.request.headers.Authorization, `Bearer ${KEY}`);
});

Deno.test("sentry: scrub survives cycles, depth and odd values", () => {
  const a: Record<string, unknown> = { name: EMAIL, when: new Date("2026-01-01T00:00:00Z") };
  a.self = a;
  let deep: Record<string, unknown> = { leaf: EMAIL };
  for (let i = 0; i < 50; i++) deep = { next: deep };
  const out = scrub({ a, deep, n: null, u: undefined, b: true, x: 1n }) as Record<string, unknown>;
  const outA = out.a as Record<string, unknown>;
  assertEquals([outA.name, outA.when, outA.self], [
    "[email]",
    "2026-01-01T00:00:00.000Z",
    "[Circular]",
  ]);
  assert(!JSON.stringify(out, (_k, v) => typeof v === "bigint" ? String(v) : v).includes(EMAIL));
  assertEquals([out.n, out.u, out.b, out.x], [null, undefined, true, 1n]);
});
