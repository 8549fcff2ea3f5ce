/** The baseline of `http_overhead_ratio`: the same JSON handler as `/v1/me`, on a bare Hono app. */
import { Hono } from "hono";

const app = new Hono();
app.get("/v1/me", (c) =>
  c.json({
    user: { id: "00000000-0000-4000-8000-000000000000", email: "bench@example.com", name: "Bench" },
    api_key: { id: "00000000-0000-4000-8000-000000000001", role: "admin" },
  }));

const port = Number(Deno.args[0] ?? 8001);
Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, app.fetch);
