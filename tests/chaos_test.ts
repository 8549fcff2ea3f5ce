/**
 * Process chaos: two real replicas on one real PostgreSQL, a flaky webhook receiver and a flaky
 * (idempotent) fake Resend; replicas are killed with SIGKILL mid-send and restarted, one is
 * stopped with SIGTERM during slow sends. No alert may be lost, none may reach a user twice,
 * nothing may be left pending, and the database must agree with what the receivers saw.
 * The scenario is tests/support/chaos.ts (bench/chaos.ts reuses it).
 */
import { assert, assertEquals } from "./support/assert.ts";
import { formatChaos, runChaos } from "./support/chaos.ts";
import { dbTest } from "./support/database.ts";

const print = (line: string) => Deno.stderr.writeSync(new TextEncoder().encode(`${line}\n`));
const seed = Deno.env.get("CHAOS_SEED");

dbTest(
  "chaos: kill -9 and SIGTERM mid-send on two replicas; no alert lost, none sent twice",
  async (_t, db) => {
    const shutdownTimeoutMs = 10_000;
    const r = await runChaos({
      databaseUrl: db.url,
      shutdownTimeoutMs,
      ...(seed ? { seed: Number(seed) } : {}),
      log: (line) => print(`chaos ${line}`),
    });
    print(formatChaos(r));
    assertEquals(
      { lost: r.lost, duplicates: r.duplicates, stuck: r.stuck, disagreements: r.disagreements },
      { lost: 0, duplicates: 0, stuck: 0, disagreements: 0 },
      `seed ${r.seed}${r.code_changed ? " (src/ changed during the run)" : ""}; ` +
        r.problems.slice(0, 10).join("; "),
    );
    assertEquals(r.unfired, 0, "every alert fired");
    assertEquals(r.requests.bad_signatures, 0, "every webhook verifies");
    assertEquals(r.requests.mismatches, 0, "a retried email carries the same body");
    assert(r.kills >= 3, `${r.kills} kills happened`);
    assert(r.events.some((e) => e.signal === "SIGKILL" && e.in_flight > 0), "a kill hit sends");
    assert(r.sigterm, "a replica was stopped with SIGTERM");
    assertEquals(r.sigterm.exit_code, 0, "SIGTERM exits 0");
    assert(
      r.sigterm.exit_ms < shutdownTimeoutMs,
      `SIGTERM exit within ${shutdownTimeoutMs} ms (took ${r.sigterm.exit_ms})`,
    );
    assertEquals(r.sigterm.unrecorded, 0, "sends finished during the stop are recorded");
    assertEquals(r.final_exit_codes, [0, 0], "both replicas stop cleanly at the end");
  },
  { realPostgresOnly: true },
);
