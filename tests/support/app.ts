/** An app on a test database, with an admin key and request helpers. */
import "./logs.ts";
import type { SpanExporter } from "@opentelemetry/sdk-trace-base";
import { createApp } from "../../src/app.ts";
import { type Config, type Env, loadConfig } from "../../src/config.ts";
import { rootLogger } from "../../src/observability/logger.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import type { ErrorReporter } from "../../src/observability/sentry.ts";
import { setupTracing } from "../../src/observability/tracing.ts";
import { createServices } from "../../src/services.ts";
import { createUser } from "../../src/users/store.ts";
import { ManualClock } from "./clock.ts";
import type { TestDatabase } from "./database.ts";

export function testConfig(env: Env = {}): Config {
  return loadConfig({ VIGIL_ENV: "test", ...env } as Record<string, string>);
}

/** Response bodies are loosely typed JSON: tests assert on them field by field. */
// deno-lint-ignore no-explicit-any
export type Json = any;

export interface Reply<T = Json> {
  status: number;
  headers: Headers;
  body: T;
}

export interface RequestOptions {
  key?: string | null;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface TestAppOptions {
  env?: Env;
  clock?: ManualClock;
  /** Receives the spans (tracing tests). */
  exporter?: SpanExporter;
  /** A second app (replica) on the same database needs another admin. */
  adminEmail?: string;
  /** Error tracking (the Sentry tests); default: none. */
  errors?: ErrorReporter;
}

export async function testApp(db: TestDatabase, options: TestAppOptions = {}) {
  const clock = options.clock ?? new ManualClock();
  const config = testConfig(options.env);
  const tracing = setupTracing(config, options.exporter);
  const services = createServices({
    config,
    sql: db.sql,
    clock,
    logger: rootLogger,
    metrics: createMetrics(),
    tracer: tracing.tracer,
    errors: options.errors,
  });
  const app = createApp({ ...services, startedAt: clock.now() });
  const admin = await createUser(db.sql, {
    email: options.adminEmail ?? "admin@example.com",
    name: "Admin",
    role: "admin",
    now: clock.now(),
  });

  async function request<T = Json>(
    method: string,
    path: string,
    opts: RequestOptions = {},
  ): Promise<Reply<T>> {
    const headers: Record<string, string> = { ...opts.headers };
    const key = opts.key === undefined ? admin.api_key.key : opts.key;
    if (key !== null) headers.authorization = `Bearer ${key}`;
    let body: BodyInit | undefined;
    if (opts.body !== undefined) {
      body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
      headers["content-type"] ??= "application/json";
    }
    const res = await app.request(path, { method, headers, body });
    const text = await res.text();
    const type = res.headers.get("content-type") ?? "";
    return {
      status: res.status,
      headers: res.headers,
      body: type.includes("json") && text ? JSON.parse(text) : text,
    };
  }

  /** Creates a user through the API and returns its id and key. */
  async function newUser(email: string, role: "admin" | "user" = "user") {
    const res = await request("POST", "/v1/users", { body: { email, name: email, role } });
    if (res.status !== 201) throw new Error(`creating ${email}: ${JSON.stringify(res.body)}`);
    return { id: res.body.user.id as string, key: res.body.api_key.key as string };
  }

  return {
    ...services,
    app,
    tracing,
    request,
    newUser,
    adminKey: admin.api_key.key,
    adminId: admin.user.id,
    clock,
  };
}
