import fc from "fast-check";
import { assert, assertEquals } from "../../tests/support/assert.ts";
import { ManualClock, SECOND } from "../../tests/support/clock.ts";
import {
  BREAKER_STATES,
  type BreakerState,
  createMetrics,
  setBreakerState,
} from "../observability/metrics.ts";
import { type Admission, CircuitBreaker, type Permit } from "./circuit_breaker.ts";

const metrics = createMetrics();

/** The gauge of one agent: state → value. */
async function gauge(agent: string): Promise<Record<string, number>> {
  const values = (await metrics.breakerState.get()).values
    .filter((v) => v.labels.agent_name === agent);
  return Object.fromEntries(values.map((v) => [v.labels.state, v.value]));
}

function setup(agent = "a") {
  const clock = new ManualClock();
  setBreakerState(metrics, agent, "closed");
  const breaker = new CircuitBreaker({
    failureThreshold: 3,
    openMs: 60 * SECOND,
    clock,
    onStateChange: (state) => setBreakerState(metrics, agent, state),
  });
  return { clock, breaker, gauge: () => gauge(agent) };
}

/** The permit of an admission that must have been admitted. */
function permit(admission: Admission): Permit {
  assert(admission.admitted, `expected the call to be admitted, got ${JSON.stringify(admission)}`);
  return admission.permit;
}

Deno.test("circuit breaker: every transition, and the gauge after each", async (t) => {
  const { clock, breaker, gauge } = setup();

  await t.step("starts CLOSED", async () => {
    assertEquals(breaker.state, "closed");
    assertEquals(await gauge(), { closed: 1, open: 0, half_open: 0 });
  });

  await t.step("stays CLOSED below the threshold; a success resets the count", async () => {
    permit(breaker.admit()).failure();
    permit(breaker.admit()).failure();
    assertEquals(breaker.consecutiveFailures, 2);
    permit(breaker.admit()).success();
    assertEquals(breaker.consecutiveFailures, 0);
    permit(breaker.admit()).failure();
    permit(breaker.admit()).failure();
    assertEquals(breaker.state, "closed");
    assertEquals(await gauge(), { closed: 1, open: 0, half_open: 0 });
  });

  await t.step("CLOSED → OPEN at the threshold", async () => {
    permit(breaker.admit()).failure();
    assertEquals(breaker.state, "open");
    assertEquals(breaker.consecutiveFailures, 3);
    assertEquals(await gauge(), { closed: 0, open: 1, half_open: 0 });
  });

  await t.step("OPEN rejects until the cool-down has passed", () => {
    const rejected = breaker.admit();
    const retryAt = new Date(clock.now().getTime() + 60 * SECOND);
    assertEquals(rejected, { admitted: false, retryAt });
    assertEquals(breaker.retryAt, retryAt);
    clock.advance(59 * SECOND);
    assertEquals(breaker.admit().admitted, false);
    assertEquals(breaker.state, "open");
  });

  let trial: Permit;
  await t.step("OPEN → HALF_OPEN after the cool-down, with one trial call", async () => {
    clock.advance(1 * SECOND);
    trial = permit(breaker.admit());
    assertEquals(breaker.state, "half_open");
    assertEquals(breaker.retryAt, undefined);
    assertEquals(await gauge(), { closed: 0, open: 0, half_open: 1 });
    assertEquals(breaker.admit().admitted, false, "only one trial at a time");
  });

  await t.step("HALF_OPEN → OPEN when the trial fails", async () => {
    trial.failure();
    assertEquals(breaker.state, "open");
    assertEquals(await gauge(), { closed: 0, open: 1, half_open: 0 });
    assertEquals(breaker.admit().admitted, false, "a fresh cool-down started");
  });

  await t.step("HALF_OPEN → CLOSED when the trial succeeds", async () => {
    clock.advance(60 * SECOND);
    trial = permit(breaker.admit());
    assertEquals(breaker.state, "half_open");
    trial.success();
    assertEquals(breaker.state, "closed");
    assertEquals(breaker.consecutiveFailures, 0);
    assertEquals(await gauge(), { closed: 1, open: 0, half_open: 0 });
    permit(breaker.admit());
  });
});

Deno.test("circuit breaker: a caller error on the half-open trial frees the trial slot", async () => {
  const { clock, breaker, gauge } = setup("jam");
  for (let i = 0; i < 3; i++) permit(breaker.admit()).failure();
  clock.advance(60 * SECOND);
  const trial = permit(breaker.admit());
  trial.release();
  assertEquals(breaker.state, "half_open", "neither a success nor a failure");
  assertEquals(breaker.consecutiveFailures, 3);
  assertEquals(await gauge(), { closed: 0, open: 0, half_open: 1 });
  // It used to stay "in flight" for good, and every later call was rejected.
  const next = permit(breaker.admit());
  assertEquals(breaker.admit().admitted, false, "still one trial at a time");
  next.success();
  assertEquals(breaker.state, "closed");
});

Deno.test("circuit breaker: outcomes of calls admitted in an earlier state change nothing", async (t) => {
  const { clock, breaker } = setup("stale");
  const closedEra = [0, 1, 2, 3].map(() => permit(breaker.admit()));
  for (let i = 0; i < 3; i++) permit(breaker.admit()).failure();
  assertEquals(breaker.state, "open");

  await t.step("a stale outcome while OPEN", () => {
    closedEra[0].success();
    assertEquals(breaker.state, "open");
    assertEquals(breaker.consecutiveFailures, 3);
  });

  clock.advance(60 * SECOND);
  const trial = permit(breaker.admit());

  await t.step("a stale failure does not re-open HALF_OPEN nor admit a second trial", () => {
    closedEra[1].failure();
    assertEquals(breaker.state, "half_open");
    assertEquals(breaker.admit().admitted, false);
    clock.advance(60 * SECOND);
    assertEquals(breaker.admit().admitted, false, "the first trial is still out");
  });

  await t.step("a stale success does not close HALF_OPEN; a stale release frees nothing", () => {
    closedEra[2].success();
    closedEra[3].release();
    assertEquals(breaker.state, "half_open");
    assertEquals(breaker.admit().admitted, false);
  });

  await t.step("the trial's own outcome decides; stale ones do not count afterwards", () => {
    trial.success();
    assertEquals(breaker.state, "closed");
    trial.failure(); // settled already
    closedEra[0].failure(); // settled already, and stale
    assertEquals(breaker.consecutiveFailures, 0);
    assertEquals(breaker.state, "closed");
  });
});

Deno.test("circuit breaker: a permit settles once", () => {
  const { breaker } = setup("once");
  const p = permit(breaker.admit());
  p.failure();
  p.failure();
  p.failure();
  assertEquals(breaker.consecutiveFailures, 1);
  assertEquals(breaker.state, "closed");
});

// ---------------------------------------------------------------------------------------------
// Property: random admits, outcomes on any permit ever handed out (stale and settled ones too)
// and clock moves. Runs: VIGIL_PROPERTY_RUNS (default 200); replay with VIGIL_PROPERTY_SEED.

type Outcome = "success" | "failure" | "release";
type Command =
  | { kind: "admit" }
  | { kind: "settle"; pick: number; outcome: Outcome }
  | { kind: "advance"; percent: number };

const outcomeArb = fc.constantFrom<Outcome>("success", "failure", "release");
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: "admit" as const }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("settle" as const),
      // Counted from the newest permit, mostly among the last few (the trial is usually newest).
      pick: fc.oneof(fc.nat(2), fc.nat()),
      outcome: outcomeArb,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("advance" as const),
      // In percent of the cool-down; exactly 100 % is the edge that matters most.
      percent: fc.oneof(fc.constant(100), fc.integer({ min: 0, max: 250 })),
    }),
  },
);

interface World {
  clock: ManualClock;
  breaker: CircuitBreaker;
  threshold: number;
  openMs: number;
  permits: { permit: Permit; settled: boolean }[];
}

function world(threshold: number, openMs: number, agent?: string): World {
  const clock = new ManualClock();
  if (agent) setBreakerState(metrics, agent, "closed");
  const breaker = new CircuitBreaker({
    failureThreshold: threshold,
    openMs,
    clock,
    onStateChange: agent ? (state) => setBreakerState(metrics, agent, state) : undefined,
  });
  return { clock, breaker, threshold, openMs, permits: [] };
}

function snapshot({ breaker }: World) {
  return {
    state: breaker.state,
    generation: breaker.generation,
    failures: breaker.consecutiveFailures,
    retryAt: breaker.retryAt?.getTime(),
  };
}

/** Unsettled permits of the current generation: in HALF_OPEN, the trial. */
function current(w: World) {
  return w.permits.filter((p) => !p.settled && p.permit.generation === w.breaker.generation);
}

/** Applies one command, checking what it must (and must not) have changed. */
function apply(w: World, command: Command): void {
  const before = snapshot(w);
  const now = w.clock.now().getTime();
  const same = (why: string) => assertEquals(snapshot(w), before, why);

  if (command.kind === "advance") {
    w.clock.advance(Math.round((w.openMs * command.percent) / 100));
    return same("time alone changes nothing");
  }

  if (command.kind === "admit") {
    const trialOut = before.state === "half_open" && current(w).length > 0;
    const admission = w.breaker.admit();
    if (before.state === "open" && now < before.retryAt!) {
      assertEquals(admission, { admitted: false, retryAt: new Date(before.retryAt!) });
      return same("OPEN during the cool-down rejects");
    }
    if (trialOut) {
      assertEquals(admission, { admitted: false, retryAt: new Date(now) });
      return same("HALF_OPEN with its trial out rejects");
    }
    const p = permit(admission);
    if (before.state === "open") {
      assertEquals(snapshot(w), {
        ...before,
        state: "half_open",
        generation: before.generation + 1,
        retryAt: undefined,
      });
    } else same("CLOSED, or HALF_OPEN without a trial out, admits as it is");
    assertEquals(p.generation, w.breaker.generation);
    w.permits.push({ permit: p, settled: false });
    return;
  }

  if (w.permits.length === 0) return;
  const entry = w.permits[w.permits.length - 1 - (command.pick % w.permits.length)];
  const live = !entry.settled && entry.permit.generation === before.generation;
  entry.permit[command.outcome]();
  entry.settled = true;
  if (!live) return same("a stale or settled permit changes nothing");

  assert(before.state !== "open", "no permit is ever admitted in an OPEN generation");
  const opened = { state: "open", generation: before.generation + 1, retryAt: now + w.openMs };
  if (command.outcome === "release") {
    same("a caller error is neither a success nor a failure");
  } else if (command.outcome === "success") {
    assertEquals(
      snapshot(w),
      before.state === "half_open"
        ? { ...before, state: "closed", generation: before.generation + 1, failures: 0 }
        : { ...before, failures: 0 },
    );
  } else {
    const failures = before.failures + 1;
    const opens = before.state === "half_open" || failures >= w.threshold;
    assertEquals(snapshot(w), opens ? { ...before, ...opened, failures } : { ...before, failures });
  }
}

/** Never stuck: past the cool-down an admit succeeds, unless a trial is out — until it settles. */
function assertNotStuck(w: World, outcome: Outcome): void {
  w.clock.advance(w.openMs);
  const trial = w.breaker.state === "half_open" ? current(w)[0] : undefined;
  if (!trial) return void permit(w.breaker.admit());
  assertEquals(w.breaker.admit().admitted, false, "one trial at a time");
  trial.permit[outcome]();
  trial.settled = true;
  if (outcome === "failure") w.clock.advance(w.openMs);
  permit(w.breaker.admit());
}

Deno.test("circuit breaker: property — one trial at a time, never stuck, stale outcomes inert, gauge exact", async () => {
  const runs = Number(Deno.env.get("VIGIL_PROPERTY_RUNS") ?? 200);
  const seed = Deno.env.get("VIGIL_PROPERTY_SEED");
  let n = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 120 * SECOND }),
      fc.array(commandArb, { maxLength: 80, size: "max" }),
      outcomeArb,
      async (threshold, openMs, commands, settleTrialWith) => {
        const agent = `prop-${n++}`;
        const w = world(threshold, openMs, agent);
        try {
          for (const [i, command] of commands.entries()) {
            const before = snapshot(w);
            apply(w, command);
            const after = snapshot(w);

            const trials = current(w).length;
            if (after.state === "half_open") assert(trials <= 1, `${trials} trials out`);
            if (after.state === "open") assertEquals(trials, 0);
            assertEquals(
              after.generation - before.generation,
              after.state === before.state ? 0 : 1,
              "every transition, and only a transition, starts a new generation",
            );
            const expected = Object.fromEntries(
              BREAKER_STATES.map((s: BreakerState) => [s, s === after.state ? 1 : 0]),
            );
            assertEquals(await gauge(agent), expected, "the gauge is the state");

            // Probe a copy (rebuilt from the same commands) so the run itself goes on undisturbed.
            const copy = world(threshold, openMs);
            for (const c of commands.slice(0, i + 1)) apply(copy, c);
            assertNotStuck(copy, settleTrialWith);
          }
        } finally {
          for (const state of BREAKER_STATES) {
            metrics.breakerState.remove({ agent_name: agent, state });
          }
        }
      },
    ),
    { numRuns: runs, ...(seed ? { seed: Number(seed) } : {}) },
  );
});
