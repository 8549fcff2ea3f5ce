import { assertEquals, assertThrows } from "../tests/support/assert.ts";
import { ConfigError, loadConfig } from "./config.ts";

Deno.test("config: defaults", () => {
  const config = loadConfig({});
  assertEquals(config.PORT, 8000);
  assertEquals(config.DATA_DIR, ".data");
  assertEquals(config.DATABASE_URL, undefined);
  assertEquals(config.VIGIL_ENV, "production");
  assertEquals(config.ALLOW_PRIVATE_TARGETS, false);
  assertEquals(config.CB_FAILURE_THRESHOLD, 5);
  assertEquals(config.RESEND_RATE_PER_SECOND, 2);
  assertEquals(config.ALERTMANAGER_RECIPIENTS, []);
  assertEquals(config.ALERTMANAGER_MAX_BODY_BYTES, 33_554_432);
  assertEquals(config.DELIVERY_RETENTION_DAYS, 30);
  assertEquals(config.DELIVERY_BACKOFF, [300_000, 1_800_000, 7_200_000, 43_200_000, 86_400_000]);
  assertEquals(config.DELIVERY_LEASE_SECONDS, 120);
  assertEquals(config.SHUTDOWN_TIMEOUT_MS, 30_000);
});

Deno.test("config: every trace sampled outside production, one in ten in production", () => {
  assertEquals(loadConfig({}).OTEL_TRACES_SAMPLER_ARG, 0.1);
  assertEquals(loadConfig({ VIGIL_ENV: "development" }).OTEL_TRACES_SAMPLER_ARG, 1);
  assertEquals(loadConfig({ VIGIL_ENV: "test" }).OTEL_TRACES_SAMPLER_ARG, 1);
  assertEquals(loadConfig({ OTEL_TRACES_SAMPLER_ARG: "1" }).OTEL_TRACES_SAMPLER_ARG, 1);
  assertEquals(
    loadConfig({ VIGIL_ENV: "development", OTEL_TRACES_SAMPLER_ARG: "0" }).OTEL_TRACES_SAMPLER_ARG,
    0,
  );
});

Deno.test("config: a shorter schedule and lease for tests, if one send still fits", () => {
  const config = loadConfig({
    DELIVERY_BACKOFF: "1s, 1.5s,2m,1h,1d",
    DELIVERY_LEASE_SECONDS: "3",
    RESEND_TIMEOUT_MS: "2000",
    WEBHOOK_TIMEOUT_MS: "2250",
  });
  assertEquals(config.DELIVERY_BACKOFF, [1000, 1500, 120_000, 3_600_000, 86_400_000]);
  assertEquals(config.DELIVERY_LEASE_SECONDS, 3);
});

Deno.test("config: private targets are allowed by default outside production", () => {
  assertEquals(loadConfig({ VIGIL_ENV: "development" }).ALLOW_PRIVATE_TARGETS, true);
  assertEquals(loadConfig({ VIGIL_ENV: "test" }).ALLOW_PRIVATE_TARGETS, true);
  assertEquals(
    loadConfig({ VIGIL_ENV: "development", ALLOW_PRIVATE_TARGETS: "false" }).ALLOW_PRIVATE_TARGETS,
    false,
  );
});

Deno.test("config: values are parsed and typed", () => {
  const config = loadConfig({
    PORT: "9000",
    DATABASE_URL: "postgres://u:p@db:5432/vigil",
    ALERTMANAGER_RECIPIENTS: "a@example.com, b@example.com",
    OTEL_TRACES_SAMPLER_ARG: "0.25",
    ALLOW_PRIVATE_TARGETS: "true",
    DATA_DIR: "",
  });
  assertEquals(config.PORT, 9000);
  assertEquals(config.ALERTMANAGER_RECIPIENTS, ["a@example.com", "b@example.com"]);
  assertEquals(config.OTEL_TRACES_SAMPLER_ARG, 0.25);
  assertEquals(config.ALLOW_PRIVATE_TARGETS, true);
});

Deno.test("config: a bad value is one line naming the variable", async (t) => {
  const cases: [Record<string, string>, string][] = [
    [{ PORT: "abc" }, 'invalid configuration: PORT must be a number (got "abc")'],
    [{ PORT: "70000" }, 'invalid configuration: PORT must be at most 65535 (got "70000")'],
    [
      { DATABASE_URL: "mysql://x" },
      'invalid configuration: DATABASE_URL must be a postgres:// connection URL (got "***")',
    ],
    [
      { LOG_LEVEL: "loud" },
      "invalid configuration: LOG_LEVEL must be debug, info, warn (or warning) or error",
    ],
    [
      { OTEL_TRACES_SAMPLER_ARG: "2" },
      'invalid configuration: OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1 (got "2")',
    ],
    [
      { OTEL_TRACES_SAMPLER: "sometimes" },
      "invalid configuration: OTEL_TRACES_SAMPLER",
    ],
    [
      { ALLOW_PRIVATE_TARGETS: "maybe" },
      "invalid configuration: ALLOW_PRIVATE_TARGETS must be true or false",
    ],
    [
      { ADMIN_API_KEY: "short" },
      'invalid configuration: ADMIN_API_KEY must be vgl_ followed by at least 32 characters (got "***")',
    ],
    [
      { ALERTMANAGER_RECIPIENTS: "ops@example.com,nope" },
      'invalid configuration: ALERTMANAGER_RECIPIENTS "nope" is not an email address',
    ],
    [
      { ALERTMANAGER_MAX_BODY_BYTES: "1000" },
      'invalid configuration: ALERTMANAGER_MAX_BODY_BYTES must be at least 1048576 (got "1000")',
    ],
    [
      { DELIVERY_RETENTION_DAYS: "0" },
      'invalid configuration: DELIVERY_RETENTION_DAYS must be at least 1 (got "0")',
    ],
    [
      { DELIVERY_BACKOFF: "5m,soon" },
      'invalid configuration: DELIVERY_BACKOFF "soon" is not a duration such as 30s, 5m or 2h',
    ],
    [
      { DELIVERY_BACKOFF: "5m,500ms" },
      "invalid configuration: DELIVERY_BACKOFF must list delays between 1s and 7d",
    ],
    [
      { DELIVERY_BACKOFF: Array(11).fill("1m").join(",") },
      "invalid configuration: DELIVERY_BACKOFF must list at most 10 delays",
    ],
    [
      { DELIVERY_LEASE_SECONDS: "1" },
      'invalid configuration: DELIVERY_LEASE_SECONDS must be at least 2 (got "1")',
    ],
    [
      { DELIVERY_LEASE_SECONDS: "10" },
      "invalid configuration: DELIVERY_LEASE_SECONDS must leave room for one send of 10000 ms",
    ],
    [
      { SHUTDOWN_TIMEOUT_MS: "100" },
      'invalid configuration: SHUTDOWN_TIMEOUT_MS must be at least 1000 (got "100")',
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: "jaeger:4318" },
      "invalid configuration: OTEL_EXPORTER_OTLP_ENDPOINT must be an absolute http(s) URL",
    ],
  ];
  for (const [env, expected] of cases) {
    await t.step(Object.keys(env)[0], () => {
      const error = assertThrows(() => loadConfig(env), ConfigError);
      assertEquals(error.message.startsWith(expected), true, `${error.message} !~ ${expected}`);
      assertEquals(error.message.includes("\n"), false);
    });
  }
});

Deno.test("config: LOG_LEVEL takes warn, the word every log line uses, as well as warning", () => {
  assertEquals(loadConfig({ LOG_LEVEL: "warn" }).LOG_LEVEL, "warning");
  assertEquals(loadConfig({ LOG_LEVEL: "warning" }).LOG_LEVEL, "warning");
});
