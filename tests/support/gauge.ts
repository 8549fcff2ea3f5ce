/** An app with a remote `gauge.read` capability whose value a test sets: alerts to play with. */
import { assertEquals } from "./assert.ts";
import { testApp, type TestAppOptions } from "./app.ts";
import type { TestDatabase } from "./database.ts";
import { serveLocal } from "./servers.ts";

/** A condition that matches when the gauge reads more than 10. */
export const overTen = {
  capability: "gauge.read",
  args: {},
  path: "value",
  op: ">",
  threshold: 10,
};

/** A condition that always matches, with no agent to call (the built-in data.compare). */
export const alwaysMatches = {
  capability: "data.compare",
  args: { value: 2, op: ">", threshold: 1 },
  path: "result",
  op: "==",
  threshold: true,
};

export async function gaugeApp(db: TestDatabase, options: TestAppOptions = {}) {
  const app = await testApp(db, options);
  const gauge = { value: 0 as unknown, calls: 0 };
  const server = serveLocal(() => {
    gauge.calls++;
    return Response.json({ value: gauge.value });
  });
  const res = await app.request("POST", "/v1/agents", {
    body: { name: "gauge", url: server.url, capabilities: ["gauge.read"] },
  });
  assertEquals(res.status, 201);
  return { ...app, gauge, server };
}
