import fc from "fast-check";
import { assert, assertEquals } from "../../tests/support/assert.ts";
import {
  initialLifecycle,
  type Lifecycle,
  type Notice,
  type Observation,
  step,
  type Thresholds,
} from "./lifecycle.ts";

const MINUTE = 60_000;
const T0 = new Date("2026-12-01T00:00:00Z");
const THRESHOLDS: Thresholds = {
  failure: 1,
  success: 1,
  error: 3,
  repeatMs: 60 * MINUTE,
  notifyOnResolved: true,
};
const match: Observation = { kind: "match", value: 11 };
const noMatch: Observation = { kind: "no_match", value: 9 };
const failed: Observation = { kind: "error", error: "agent down" };

/** Runs observations a minute apart; returns the last state and every notice with its time. */
function run(
  observations: Observation[],
  t: Partial<Thresholds> = {},
  silenced: (i: number) => boolean = () => false,
) {
  let s = initialLifecycle(T0);
  let episodes = 0;
  const notices: (Notice & { at: number })[] = [];
  observations.forEach((o, i) => {
    const now = new Date(T0.getTime() + (i + 1) * MINUTE);
    const r = step(s, o, { ...THRESHOLDS, ...t }, {
      now,
      silenced: silenced(i),
      newEpisodeId: () => `e${++episodes}`,
    });
    s = r.next;
    notices.push(...r.notices.map((n) => ({ ...n, at: i })));
  });
  return { state: s, notices, sent: notices.filter((n) => !n.silenced).map((n) => n.kind) };
}

Deno.test("lifecycle: fires after failure_threshold matches, resolves after success_threshold", () => {
  const { state, sent } = run([match, match, noMatch, match, match, noMatch, noMatch], {
    failure: 2,
    success: 2,
  });
  assertEquals(sent, ["firing", "resolved"]);
  assertEquals(state.state, "ok");
  const pending = run([match], { failure: 2 });
  assertEquals([pending.state.state, pending.sent], ["pending", []]);
});

Deno.test("lifecycle: errors count neither way; error_threshold errors notify once, recovery once", () => {
  const { sent, state } = run([match, failed, failed, failed, failed, match, noMatch]);
  assertEquals(sent, ["firing", "error", "error", "resolved"]);
  assertEquals(state.state, "ok");
  const short = run([match, failed, failed, noMatch]);
  assertEquals(short.sent, ["firing", "resolved"], "fewer errors than the threshold: no error");
});

Deno.test("lifecycle: repeats every repeat interval while firing, not once acknowledged", () => {
  const firing = Array.from({ length: 130 }, () => match);
  assertEquals(run(firing).sent, ["firing", "repeat", "repeat"]);
  let s = run([match]).state;
  s = { ...s, episode: { ...s.episode!, acknowledged: true } };
  const r = step(s, match, THRESHOLDS, {
    now: new Date(T0.getTime() + 200 * MINUTE),
    silenced: false,
    newEpisodeId: () => "x",
  });
  assertEquals(r.notices, []);
});

Deno.test("lifecycle: a silence holds back the firing; one goes out when it ends, still firing", () => {
  const { notices, sent } = run([match, match, match, match], {}, (i) => i < 2);
  assertEquals(notices.map((n) => [n.kind, n.silenced, n.at]), [
    ["firing", true, 0],
    ["firing", false, 2],
  ]);
  assertEquals(sent, ["firing"]);
  const quiet = run([match, noMatch], {}, () => true);
  assertEquals(quiet.sent, [], "an episode nobody was told of ends without a resolved message");
});

// ---- the property ------------------------------------------------------------------------------

type Command =
  | { op: "observe"; observation: Observation }
  | { op: "ack" }
  | { op: "silence"; on: boolean }
  | { op: "wait"; ms: number };

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(match, noMatch, failed).map((observation) => ({
      op: "observe" as const,
      observation,
    })),
  },
  { weight: 1, arbitrary: fc.constant({ op: "ack" as const }) },
  { weight: 1, arbitrary: fc.boolean().map((on) => ({ op: "silence" as const, on })) },
  {
    weight: 2,
    arbitrary: fc.integer({ min: 0, max: 180 * MINUTE }).map((ms) => ({ op: "wait" as const, ms })),
  },
);

const thresholdsArb: fc.Arbitrary<Thresholds> = fc.record({
  failure: fc.integer({ min: 1, max: 4 }),
  success: fc.integer({ min: 1, max: 4 }),
  error: fc.integer({ min: 1, max: 4 }),
  repeatMs: fc.integer({ min: MINUTE, max: 120 * MINUTE }),
  notifyOnResolved: fc.boolean(),
});

Deno.test("lifecycle: property — firing and resolved alternate, repeats only when due, nothing lost or doubled", () => {
  const runs = Number(Deno.env.get("VIGIL_PROPERTY_RUNS") ?? 500);
  const seed = Deno.env.get("VIGIL_PROPERTY_SEED");
  fc.assert(
    fc.property(
      thresholdsArb,
      fc.array(commandArb, { maxLength: 120, size: "max" }),
      (t, commands) => {
        let now = T0.getTime();
        let s: Lifecycle = initialLifecycle(T0);
        let silenced = false;
        let episodes = 0;
        let lastSent: "firing" | "resolved" | undefined;
        let sentInEpisode = 0;
        let lastSentAt: number | undefined;
        let owedSince: number | undefined; // a notice held back by the silence
        for (const command of commands) {
          if (command.op === "wait") {
            now += command.ms;
            continue;
          }
          if (command.op === "silence") {
            silenced = command.on;
            continue;
          }
          if (command.op === "ack") {
            if (s.episode) s = { ...s, episode: { ...s.episode, acknowledged: true } };
            continue;
          }
          now += MINUTE; // evaluations are at least a minute apart
          const before = s;
          const r = step(s, command.observation, t, {
            now: new Date(now),
            silenced,
            newEpisodeId: () => `e${++episodes}`,
          });
          s = r.next;

          for (const n of r.notices) {
            if (n.kind === "resolved") assert(!n.silenced, "a resolved message is never held back");
            if (n.silenced) {
              assert(silenced, "only a silence holds a notice back");
              if (n.kind !== "error") owedSince ??= now;
              continue;
            }
            if (n.kind === "firing" || n.kind === "resolved") {
              assert(lastSent !== n.kind, `two ${n.kind} messages in a row`);
              if (n.kind === "resolved") {
                assertEquals(
                  lastSent,
                  "firing",
                  "resolved follows firing",
                );
              }
              lastSent = n.kind;
            }
            if (n.kind === "firing" || n.kind === "repeat") {
              assertEquals(s.state, "firing");
              assert(!silenced && !s.episode!.acknowledged);
              if (n.kind === "repeat") {
                const owed = owedSince !== undefined;
                assert(
                  owed || now - lastSentAt! >= t.repeatMs,
                  `a repeat after ${now - lastSentAt!} ms, interval ${t.repeatMs}`,
                );
              }
              sentInEpisode++;
              lastSentAt = now;
              owedSince = undefined;
            }
          }
          // Nothing owed is forgotten: after a silence, the first evaluation (that could be made)
          // still firing, and not acknowledged, sends it.
          if (
            owedSince !== undefined && !silenced && command.observation.kind !== "error" &&
            before.state === "firing" &&
            s.state === "firing" && s.episode && !s.episode.acknowledged
          ) {
            assert(
              r.notices.some((n) => !n.silenced && (n.kind === "firing" || n.kind === "repeat")),
              "an owed notification was not sent",
            );
          }
          if (r.opened) {
            sentInEpisode = r.notices.some((n) => n.kind === "firing" && !n.silenced) ? 1 : 0;
            if (!r.notices.some((n) => n.kind === "firing" && !n.silenced)) lastSentAt = undefined;
          }
          if (r.closed) {
            const told = sentInEpisode > 0;
            assertEquals(
              r.notices.some((n) => n.kind === "resolved"),
              told && t.notifyOnResolved,
              "resolved exactly when the episode was told and resolved messages are on",
            );
            if (told && !t.notifyOnResolved) lastSent = "resolved"; // the pair is closed anyway
            sentInEpisode = 0;
            owedSince = undefined;
            lastSentAt = undefined;
          }

          // The state agrees with the counters.
          if (s.state === "pending") assert(s.failures > 0 && s.failures < t.failure);
          if (s.state === "firing") assert(s.episode !== null);
          if (s.state === "ok") assert(s.episode === null && s.failures === 0);
          if (s.state !== "error") assert(s.errors < t.error || before.state === "error");
          assertEquals(
            s.episode !== null,
            s.state === "firing" || (s.state === "error" && s.episode !== null),
          );
        }
      },
    ),
    { numRuns: runs, ...(seed ? { seed: Number(seed) } : {}) },
  );
});
