import fc from "fast-check";
import { assert, assertEquals } from "../../tests/support/assert.ts";
import { dbTest } from "../../tests/support/database.ts";
import { createUser } from "../users/store.ts";
import { insertRuns } from "../patterns/store.ts";
import type { RunResult } from "../patterns/orchestrator.ts";
import { GroupWriter } from "./group_writer.ts";

const runs = Number(Deno.env.get("VIGIL_PROPERTY_RUNS") ?? 200);
const seed = Deno.env.get("VIGIL_PROPERTY_SEED");

const unavailable = () => Object.assign(new Error("connection refused"), { code: "ECONNREFUSED" });
const refused = () => Object.assign(new Error("violates foreign key"), { code: "23503" });
const settle = (p: Promise<void>) => p.then(() => "ok" as const, (e: Error) => e.message);

Deno.test("group writer: a lone record goes at once; concurrent ones share a batch", async () => {
  const batches: number[][] = [];
  const gates: (() => void)[] = [];
  const writer = new GroupWriter<number>({
    writeBatch: async (records) => {
      batches.push(records);
      await new Promise<void>((r) => gates.push(r));
    },
    concurrency: 2,
    maxBatch: 3,
  });
  const writes = Array.from({ length: 7 }, (_, i) => writer.write(i));
  // Two in flight at once: the first two records went alone, the others wait.
  assertEquals(batches, [[0], [1]]);
  let done = 0;
  writes.forEach((w) => w.then(() => done++));
  gates[0]();
  await new Promise((r) => setTimeout(r, 0));
  assertEquals(done, 1, "only the committed record is answered");
  assertEquals(batches[2], [2, 3, 4], "the next batch went as the slot freed, at most maxBatch");
  // Everything else is answered as its batches commit.
  let released = 1;
  // Bounded: a write that never settles fails the test instead of hanging it.
  for (let turn = 0; turn < 100 && done < writes.length; turn++) {
    while (released < gates.length) gates[released++]();
    await new Promise((r) => setTimeout(r, 0));
  }
  assertEquals(done, writes.length, "every write answered");
  await Promise.all(writes);
  assertEquals(batches, [[0], [1], [2, 3, 4], [5, 6]]);
});

Deno.test("group writer: database away fails the batch; a refused batch is retried one by one", async () => {
  const down = new GroupWriter<number>({
    writeBatch: () => Promise.reject(unavailable()),
    concurrency: 1,
  });
  assertEquals(await Promise.all([1, 2, 3].map((n) => settle(down.write(n)))), [
    "connection refused",
    "connection refused",
    "connection refused",
  ]);
  const calls: number[][] = [];
  const picky = new GroupWriter<number>({
    writeBatch: (records) => {
      calls.push(records);
      return records.includes(13) ? Promise.reject(refused()) : Promise.resolve();
    },
    concurrency: 1,
  });
  const results = await Promise.all([1, 13, 2, 3].map((n) => settle(picky.write(n))));
  assertEquals(results, ["ok", "violates foreign key", "ok", "ok"], "only the guilty one fails");
});

Deno.test("group writer: property — every write settles once, answered ok only once committed", async () => {
  type Plan = { records: number; outcomes: ("ok" | "down" | "refuse")[]; concurrency: number };
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        records: fc.integer({ min: 1, max: 60 }),
        outcomes: fc.array(fc.constantFrom("ok", "ok", "down", "refuse"), { minLength: 1 }),
        concurrency: fc.integer({ min: 1, max: 4 }),
        maxBatch: fc.integer({ min: 1, max: 10 }),
        spread: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 60, maxLength: 60 }),
      }),
      async (p: Plan & { maxBatch: number; spread: number[] }) => {
        const committed = new Set<number>();
        let calls = 0;
        let inFlight = 0;
        let maxInFlight = 0;
        const guilty = new Set<number>();
        const writer = new GroupWriter<number>({
          writeBatch: async (records) => {
            assert(records.length <= p.maxBatch, "at most maxBatch");
            inFlight++;
            maxInFlight = Math.max(maxInFlight, inFlight);
            const outcome = p.outcomes[calls++ % p.outcomes.length];
            await new Promise((r) => setTimeout(r, 0));
            inFlight--;
            if (outcome === "down") throw unavailable();
            if (outcome === "refuse" || records.some((r) => guilty.has(r))) {
              if (records.length === 1) guilty.add(records[0]);
              throw refused();
            }
            for (const r of records) committed.add(r);
          },
          concurrency: p.concurrency,
          maxBatch: p.maxBatch,
        });
        const settled = new Map<number, string>();
        const all: Promise<void>[] = [];
        for (let i = 0; i < p.records; i++) {
          // Some writes come in later turns, while batches are in flight.
          for (let k = 0; k < p.spread[i]; k++) await Promise.resolve();
          all.push(
            writer.write(i).then(
              () => void settled.set(i, settled.has(i) ? "twice" : "ok"),
              () => void settled.set(i, settled.has(i) ? "twice" : "failed"),
            ),
          );
        }
        await Promise.all(all);
        assertEquals(settled.size, p.records, "every write settled");
        for (const [i, how] of settled) {
          assert(how !== "twice", `write ${i} settled twice`);
          assertEquals(how === "ok", committed.has(i), `write ${i}: ${how}`);
        }
        assert(maxInFlight <= p.concurrency, `${maxInFlight} batches in flight`);
      },
    ),
    { numRuns: runs, ...(seed ? { seed: Number(seed) } : {}) },
  );
});

dbTest(
  "group writer: concurrent runs in few statements; a refused run fails alone",
  async (_t, db) => {
    const { sql } = db;
    const { user } = await createUser(sql, {
      email: "ann@example.com",
      name: "Ann",
      role: "user",
      now: new Date(),
    });
    const sizes: number[] = [];
    const writer = new GroupWriter<RunResult>({
      writeBatch: (batch) => insertRuns(sql, batch),
      onBatch: (n) => sizes.push(n),
    });
    const run = (userId: string | null): RunResult => ({
      run_id: crypto.randomUUID(),
      pattern_id: "p",
      version: 1,
      user_id: userId,
      status: "success",
      inputs: { n: 1 },
      outputs: null,
      trace: [],
      error: null,
      trace_id: null,
      started_at: new Date(),
      duration_ms: 1.5,
    });
    const good = Array.from({ length: 100 }, () => run(user.id));
    const orphan = run(crypto.randomUUID()); // no such user: the foreign key refuses it
    const results = await Promise.all(
      [...good.slice(0, 50), orphan, ...good.slice(50)].map((r) => settle(writer.write(r))),
    );
    assertEquals(results.filter((r) => r === "ok").length, 100);
    assert(String(results[50]).includes("foreign key"), String(results[50]));
    const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from pattern_runs`;
    assertEquals(n, 100);
    const [stored] = await sql`select outputs, inputs, duration_ms from pattern_runs limit 1`;
    assertEquals([stored.outputs, stored.inputs, stored.duration_ms], [null, { n: 1 }, 1.5]);
    assert(sizes.length < 20, `101 runs in ${sizes.length} batches`);
  },
);
